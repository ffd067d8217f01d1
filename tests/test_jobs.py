"""The training job manager: limit, queue, stop and resume, failures, artefacts."""

import io
import os
import shutil
import signal
import time
import zipfile

import psutil
import pytest
from PIL import Image

from lab.train_config import course_config
from serving.jobs import Job, JobManager

TINY = dict(D=4, batch_size=64, epochs=2, T=10, sample_every=0, sample_stride=5)


def wait_for(predicate, timeout=120.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_two_students_training_at_once_respect_the_limit(tmp_path):
    manager = JobManager(tmp_path, max_running=1)
    a = manager.submit("alice", course_config("flow", "class", **TINY, max_steps=40))
    b = manager.submit("bob", course_config("ddpm", "time", **TINY, max_steps=5))
    wait_for(lambda: a.status == "running")
    assert b.status == "queued" and manager.queue_position(b.id) == 1
    seen_running = set()
    while not (a.finished and b.finished):
        seen_running.add(len(manager.running()))
        time.sleep(0.01)
    assert seen_running <= {0, 1}  # never two at once
    assert (a.status, b.status) == ("done", "done")
    assert [j.id for j in manager.jobs("alice")] == [a.id] and [j.id for j in manager.jobs("bob")] == [b.id]
    assert len(a.steps) == 40 and (a.run_dir / "history.jsonl").exists()


def test_stop_and_resume_a_run(tmp_path):
    manager = JobManager(tmp_path)
    job = manager.submit("alice", course_config("ddpm", "class", **TINY))
    wait_for(lambda: len(job.steps) >= 3)
    manager.stop(job.id)
    wait_for(lambda: job.status == "stopped")
    stopped_at = job.steps[-1]["step"]
    assert stopped_at < job.total_steps
    manager.resume(job.id)
    wait_for(lambda: job.status == "done")
    assert job.steps[-1]["step"] == job.total_steps and job.resumes == 1
    names = zipfile.ZipFile(io.BytesIO(manager.zip_artefacts(job.id))).namelist()
    assert f"{job.id}/history.jsonl" in names and f"{job.id}/job.json" in names
    assert any(n.endswith("model.safetensors") for n in names)
    with pytest.raises(ValueError, match="only a stopped or failed run can be resumed"):
        manager.resume(job.id)


def test_a_resumed_run_lists_every_step_even_one_whose_event_was_lost(tmp_path):
    """A run killed after its checkpoint of step N but before its step-N event reached the manager resumes at N + 1:
    its steps are what the run logged up to its checkpoint, not what the manager happened to hear, so none is missing."""
    manager = JobManager(tmp_path)
    job = manager.submit("alice", course_config("ddpm", "class", **TINY, checkpoint_every_s=0.2))
    wait_for(lambda: (manager.checkpoint_step(job.id) or 0) >= 3)
    manager.stop(job.id)
    wait_for(lambda: job.status == "stopped")
    checkpoint = manager.checkpoint_step(job.id)
    job.steps = [s for s in job.steps if s["step"] != checkpoint]  # the lost event
    manager.resume(job.id)
    wait_for(lambda: job.status == "done")
    assert [s["step"] for s in job.steps] == list(range(1, job.total_steps + 1))


def test_a_failed_run_has_its_error_and_its_error_file_by_the_time_it_shows_as_failed(tmp_path, monkeypatch):
    """Whoever sees "failed" finds the error and error.txt: they are written before the status changes."""
    import serving.jobs.folder as jobs

    write = jobs.write_text_atomic

    def slow_write(path, text):  # a slow disk: error.txt takes a while to land
        if path.name == "error.txt":
            time.sleep(0.5)
        return write(path, text)

    monkeypatch.setattr(jobs, "write_text_atomic", slow_write)
    manager = JobManager(tmp_path)
    broken = manager.submit("alice", course_config("flow", "time", **TINY, data_dir=str(tmp_path / "no-such-folder")))
    wait_for(lambda: broken.status == "failed", timeout=120)
    assert broken.error and broken.error.startswith("DatasetMissing: ")
    assert "Traceback" in (broken.run_dir / "error.txt").read_text()


def test_a_queued_run_can_be_stopped_and_a_crashed_run_keeps_its_error(tmp_path):
    manager = JobManager(tmp_path)
    first = manager.submit("alice", course_config("flow", "time", **TINY, max_steps=30))
    second = manager.submit("alice", course_config("flow", "time", **TINY))
    manager.stop(second.id)
    assert second.status == "stopped" and manager.queue_position(second.id) is None
    wait_for(lambda: first.finished)
    broken = manager.submit("alice", course_config("flow", "time", **TINY, data_dir=str(tmp_path / "no-such-folder")))
    wait_for(lambda: broken.finished)  # raised in the training process, reported to the server
    assert (
        broken.status == "failed" and broken.error.startswith("DatasetMissing: ") and "no-such-folder" in broken.error
    )
    assert "Traceback" in (broken.run_dir / "error.txt").read_text()
    diverged = manager.submit("alice", course_config("flow", "time", **TINY, lr=1e30))
    wait_for(lambda: diverged.finished)
    assert diverged.status == "failed" and diverged.error.startswith("TrainingDiverged: loss became")


def test_a_restarted_server_finds_its_runs_finished_ones_done_interrupted_ones_resumable(tmp_path):
    first = JobManager(tmp_path)
    done = first.submit("alice", course_config("flow", "class", **TINY, max_steps=6))
    wait_for(lambda: done.status == "done")
    cut = first.submit("alice", course_config("ddpm", "time", **TINY))
    wait_for(lambda: len(cut.steps) >= 3)
    first.stop(cut.id)
    wait_for(lambda: cut.status == "stopped")
    (tmp_path / "not-a-run").mkdir()

    first.shutdown(5)  # the server goes away (one manager per runs folder in a process)
    second = JobManager(tmp_path)  # the server restarted
    assert [j.id for j in second.jobs("alice")] == [cut.id, done.id] and second.jobs("bob") == []
    again, interrupted = second.get(done.id), second.get(cut.id)
    assert (again.status, interrupted.status) == ("done", "stopped")
    assert again.config == done.config and len(again.steps) == 6 and again.total_steps == done.total_steps
    assert [s["loss"] for s in interrupted.steps] == [s["loss"] for s in cut.steps]
    second.resume(cut.id)
    wait_for(lambda: interrupted.status == "done")
    assert interrupted.steps[-1]["step"] == interrupted.total_steps


def test_samples_every_n_steps_reach_the_page_and_a_restarted_server(tmp_path):
    first = JobManager(tmp_path)
    job = first.submit("alice", course_config("flow", "class", **TINY | dict(sample_every_steps=3), max_steps=8))
    shown = set()
    while not job.finished:  # what the page's redraws see while it runs
        shown.add(job.samples_label)
        time.sleep(0.01)
    assert job.status == "done" and job.samples_label == "at step 6" and "at step 3" in shown
    assert sorted(p.name for p in (job.run_dir / "samples").iterdir()) == ["step_000003.png", "step_000006.png"]
    width, height = Image.open(job.run_dir / "samples" / "step_000006.png").size
    assert width > 5 * height  # a preview: one row, a sample of each digit
    assert [s["step"] for s in job.steps] == list(range(1, 9))  # the samples add no steps
    first.shutdown(5)
    assert JobManager(tmp_path).get(job.id).samples_label == "at step 6"  # the server restarted
    with pytest.raises(ValueError, match="sample_every_steps"):
        course_config("flow", "class", sample_every_steps=-1)


def test_a_training_process_that_dies_without_a_word_fails_its_job(tmp_path):
    manager = JobManager(tmp_path)
    job = manager.submit("alice", course_config("flow", "time", **TINY))
    wait_for(lambda: (job.run_dir / "latest").exists() and len(job.steps) >= job.total_steps // 2 + 3)  # epoch 1 saved
    os.kill(job.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    wait_for(lambda: job.finished)
    assert (
        job.status == "failed"
        and "was killed by SIGKILL (out of memory" in job.error
        and "train.log of run " + job.id in job.error
    )
    assert str(tmp_path) not in job.error  # the browser is not shown the server's paths
    from ui.training import failure_advice

    kept = manager.checkpoint_step(job.id)
    advice = failure_advice(job, kept)
    assert (
        kept >= job.total_steps // 2
        and f"Its last checkpoint, at step {kept}, is kept: Resume goes on from there" in advice
    )
    assert "learning rate" not in advice  # a kill is not the settings' fault
    manager.resume(job.id)  # from its last checkpoint
    wait_for(lambda: job.finished)
    assert job.status == "done" and [s["step"] for s in job.steps] == list(range(1, job.total_steps + 1))


def test_a_runs_pace_reads_its_recent_steps_not_one_short_batch(tmp_path):
    job = Job("j", "me", course_config("flow", "class", epochs=1), tmp_path)
    assert job.images_per_s() is None and job.eta_seconds() is None
    job.total_steps = 100
    job.steps = [{"step": i, "images_per_s": 1000.0, "time": 0.1 * i} for i in range(1, 30)]
    job.steps.append({"step": 30, "images_per_s": 79.0, "time": 3.0})  # an epoch's short last batch
    assert job.images_per_s() == 1000.0
    assert job.eta_seconds() == pytest.approx(0.1 * 70)


def test_a_browser_may_have_two_runs_going_and_the_queue_is_fair_between_browsers(tmp_path):
    from serving.jobs import RunLimit

    finished_run(tmp_path, "interrupted", "alice", time.time(), latest="epoch_0001")  # stopped, resumable
    manager = JobManager(tmp_path, max_running=1, max_per_owner=2)
    a1 = manager.submit("alice", course_config("flow", "time", **TINY))
    a2 = manager.submit("alice", course_config("flow", "time", **TINY, max_steps=5))
    with pytest.raises(
        RunLimit,
        match="already has 2 runs queued or running, the most one browser may have at once on this server is 2",
    ):
        manager.submit("alice", course_config("flow", "time", **TINY, max_steps=5))
    with pytest.raises(RunLimit):
        manager.resume("interrupted")  # a resumed run counts as one going
    assert manager.get("interrupted").status == "stopped"
    b1 = manager.submit("bob", course_config("flow", "time", **TINY, max_steps=5))  # later, but bob has nothing going
    wait_for(lambda: a1.status == "running")
    assert manager.queue_position(b1.id) == 1 and manager.queue_position(a2.id) == 2
    manager.stop(a2.id)  # a queued run stopped: alice may start another
    a3 = manager.submit("alice", course_config("flow", "time", **TINY, max_steps=5))
    assert manager.queue_position(b1.id) == 1 and manager.queue_position(a3.id) == 2
    manager.stop(a1.id)
    wait_for(lambda: b1.status in ("running", "done"))  # after alice's run, bob's before alice's next one
    assert a3.status == "queued"
    wait_for(lambda: a3.finished)


def finished_run(root, job_id: str, owner: str, submitted: float, latest: str = "final") -> None:
    """A run folder as a finished (or, with latest a checkpoint's name, stopped) run leaves it, without training it."""
    import json

    run = root / job_id
    run.mkdir(parents=True)
    (run / "owner.json").write_text(json.dumps({"owner": owner, "submitted": submitted, "total_steps": 3}))
    (run / "config.json").write_text(json.dumps(course_config("flow", "time", **TINY).to_dict()))
    (run / "latest").write_text(latest)


def test_finished_runs_of_browsers_not_seen_for_long_are_cleaned_up(tmp_path):
    now = time.time()
    finished_run(tmp_path, "old", "gone", now - 40 * 86400)
    finished_run(tmp_path, "kept", "here", now - 40 * 86400)
    finished_run(tmp_path, "recent", "gone", now - 86400)
    manager = JobManager(tmp_path)
    manager.jobs("here")  # this browser looks at its runs now
    going = Job(
        "going",
        "gone",
        course_config("flow", "time", **TINY),
        tmp_path / "going",
        "running",
        submitted=now - 50 * 86400,
    )
    manager._jobs["going"] = going  # a run still training is never removed
    assert manager.cleanup(30 * 86400, now=now) == ["old"]
    assert not (tmp_path / "old").exists() and (tmp_path / "kept").exists() and (tmp_path / "recent").exists()
    assert sorted(j.id for j in manager.jobs("gone")) == ["going", "recent"]
    manager._seen_saved = 0.0
    manager.jobs("here")  # written to disk (at most once a minute)
    manager.shutdown(5)
    again = JobManager(tmp_path)  # a restarted server remembers who was seen when: "kept" is 60 days old, its owner
    assert again.cleanup(30 * 86400, now=now + 20 * 86400) == []  # was seen 20 days ago
    assert sorted(again.cleanup(30 * 86400, now=now + 31 * 86400)) == ["kept", "recent"]


def test_a_run_killed_before_its_first_checkpoint_starts_again_by_itself_after_a_restart(tmp_path):
    import json

    first = JobManager(tmp_path)
    job = first.submit("alice", course_config("flow", "time", **TINY, max_steps=4, checkpoint_every_s=None))
    wait_for(lambda: job.finished)
    first.shutdown(5)  # waits for the run's last write (owner.json: done), which would otherwise race the edit below
    for name in ("latest", "checkpoints"):  # as if it had been killed before its first checkpoint
        path = job.run_dir / name
        path.unlink() if path.is_file() else shutil.rmtree(path)
    meta = json.loads((job.run_dir / "owner.json").read_text())
    (job.run_dir / "owner.json").write_text(json.dumps(meta | {"status": "running"}))

    again = JobManager(tmp_path)  # the restarted server: the run it was training goes on by itself, from step 0
    listed = again.get(job.id)
    assert listed.status != "stopped" and listed.resumes == 0  # nobody pressed Resume
    wait_for(lambda: listed.finished)
    assert listed.status == "done" and [s["step"] for s in listed.steps] == [1, 2, 3, 4]


def forked_from(pid: int) -> psutil.Process:
    """The process a run's training process pid was started by (its parent)."""
    return psutil.Process(psutil.Process(pid).ppid())


def while_training(manager: JobManager, owner: str, look):
    """What look(process) sees of a run's training process while it trains; the run stopped after."""
    job = manager.submit(owner, course_config("flow", "class", **TINY, max_steps=400))
    wait_for(lambda: len(job.steps) >= 3)
    seen = look(psutil.Process(job.pid))
    manager.stop(job.id)
    wait_for(lambda: job.finished)
    return seen


def test_runs_are_forked_from_one_process_that_imported_torch_once_and_train_as_a_fresh_process_does(
    tmp_path, monkeypatch
):
    manager = JobManager(tmp_path / "forked")
    parent, other = (while_training(manager, owner, lambda p: forked_from(p.pid)) for owner in ("alice", "bob"))
    assert parent.pid == other.pid != os.getpid() and parent.name() == "lab-forkserver"
    assert "torch" in " ".join(m.path for m in parent.memory_maps())  # it has torch loaded: the runs do not import it

    config = course_config("ddpm", "class", **TINY, max_steps=8)
    forked = manager.submit("carol", config)
    wait_for(lambda: forked.finished)
    import serving.jobs.child as child

    monkeypatch.setattr(child, "fork_server", lambda: None)  # a fresh `python -m serving.train_child`, as before
    fresh = JobManager(tmp_path / "fresh").submit("carol", config)
    wait_for(lambda: fresh.pid is not None or fresh.finished)
    assert fresh.finished or forked_from(fresh.pid).pid == os.getpid()
    wait_for(lambda: fresh.finished)
    assert forked.status == fresh.status == "done"
    assert [s["loss"] for s in forked.steps] == [s["loss"] for s in fresh.steps]  # bit for bit


def lab_fork_servers() -> set[int]:
    """The pids of this process's fork servers (their name is set as their Python starts)."""
    return {p.pid for p in psutil.Process().children() if p.name() == "lab-forkserver"}


def test_a_page_that_can_start_runs_starts_the_fork_server_so_the_first_run_is_forked_warm_too(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_TEST_FRESH_ENVIRONMENT", str(tmp_path))  # an environment no fork server has yet
    before = lab_fork_servers()
    manager = JobManager(tmp_path)
    time.sleep(1.0)
    assert lab_fork_servers() == before  # a server whose pages never train starts none
    manager.warm_up()  # the Train live page, opening
    wait_for(lambda: lab_fork_servers() - before)  # before any run is asked for
    (started,) = lab_fork_servers() - before
    assert while_training(manager, "alice", lambda p: forked_from(p.pid).pid) == started
    monkeypatch.setenv("DIFFUSION_LAB_TRAIN_THREADS", "1")  # a run's setting: the same fork server
    manager.warm_up()
    assert lab_fork_servers() - before == {started}


def test_a_setting_changed_after_the_fork_server_started_reaches_the_next_run(tmp_path, monkeypatch):
    manager = JobManager(tmp_path)

    def threads_and_parent(process: psutil.Process):
        return max(process.num_threads() for _ in range(10) if time.sleep(0.01) is None), forked_from(process.pid).pid

    seen = {}
    for setting in ("1", "3"):
        monkeypatch.setenv("DIFFUSION_LAB_TRAIN_THREADS", setting)
        seen[setting] = while_training(manager, "alice", threads_and_parent)
    assert seen["1"][1] == seen["3"][1]  # one fork server, started before the setting changed
    assert seen["3"][0] >= seen["1"][0] + 2  # torch's pool: 1 thread, then 3


def test_a_killed_fork_server_loses_no_run_and_the_next_run_gets_another(tmp_path):
    manager = JobManager(tmp_path)
    going = manager.submit("alice", course_config("flow", "class", **TINY, max_steps=60))
    wait_for(lambda: len(going.steps) >= 2)
    first = forked_from(going.pid)
    assert first.name() == "lab-forkserver"
    first.kill()  # the fork server only, as the out-of-memory killer might
    wait_for(lambda: going.finished)
    assert going.status == "done" and len(going.steps) == 60  # the run is its own process: it went on to the end
    again = manager.submit("alice", course_config("flow", "class", **TINY, max_steps=400))
    wait_for(lambda: len(again.steps) >= 2)
    second = forked_from(again.pid)
    assert second.pid != first.pid and second.name() == "lab-forkserver"
    os.kill(again.pid, signal.SIGKILL)
    wait_for(lambda: again.finished)
    assert again.status == "failed" and "was killed by SIGKILL" in again.error
