"""A room nobody can hijack, starve or break: who may do what with a run, limits that hold in code, damaged files and
failed writes that stay with their run, Part A computations nobody waits for, bounded prompts and caches.

The job manager here trains with stand-in events (a run of steps that sleeps, checks Stop, writes nothing heavy) unless
a case is about the training process itself; tests/test_room_safety.py drives a real server."""

from __future__ import annotations

import errno
import io
import json
import subprocess
import sys
import threading
import time
import zipfile

import pytest
import torch
from test_jobs import wait_for

import lab
import serving.jobs.folder as jobs_module
from lab.train_config import course_config
from serving.jobs import Caller, JobManager, NotAllowed, RunLimit, RunsFolderBusy
from serving.queue import Cancelled, ComputeQueue
from serving.requests import MAX_PROMPT_CHARS, Request

TINY = dict(D=4, batch_size=64, epochs=2, T=10, sample_every=0, sample_stride=5)
LECTURER = Caller("the-lecturer", "lecturer-tab", lecturer=True)


def steps_of(seconds: float = 0.02, total: int = 10_000):
    """Stand-in training events: total steps of `seconds` each, a stop honoured at the next step (as lab.train does)."""

    def events(job, resume):
        yield {"kind": "start", "total_steps": total}
        for step in range(1, total + 1):
            if job._stop.is_set():
                yield {"kind": "stopped"}
                return
            time.sleep(seconds)
            yield {
                "kind": "step",
                "step": step,
                "epoch": 0,
                "loss": 1.0,
                "lr": 1e-3,
                "images_per_s": 1.0,
                "time": time.time(),
            }
        yield {"kind": "done"}

    return events


def config(**changes):
    return course_config("flow", "time", **TINY | changes)


# --- who may do what


def test_only_the_owner_the_lecturer_or_anyone_once_shared_may_stop_resume_or_download_a_run(tmp_path):
    m = JobManager(tmp_path, max_running=2, events=steps_of())
    lecturers = m.submit(Caller("lecturer-browser", "tab-1"), config())
    student = Caller("student-browser", "tab-2")
    for refused in (
        lambda: m.stop(lecturers.id, student),
        lambda: m.zip_artefacts(lecturers.id, student),
        lambda: m.share(lecturers.id, True, student),
        lambda: m.clear_queue(student),
        lambda: m.all_jobs(student),
    ):
        with pytest.raises(NotAllowed):
            refused()
    assert lecturers.status in ("queued", "running")  # untouched
    theirs = m.submit(student, config())
    m.stop(theirs.id, LECTURER)  # the lecturer may stop any run
    wait_for(lambda: theirs.status == "stopped")
    with pytest.raises(NotAllowed, match="not yours"):
        m.resume(theirs.id, Caller("someone-else"))
    m.share(lecturers.id, True, LECTURER)  # the lecturer shares the run's controls with the room
    m.stop(lecturers.id, student)
    wait_for(lambda: lecturers.status == "stopped")
    m.resume(lecturers.id, student)
    assert lecturers.status in ("queued", "running")
    assert {j.id for j in m.all_jobs(LECTURER)} == {lecturers.id, theirs.id}
    assert m.jobs("student-browser") == [theirs]  # a browser lists its own runs only
    m.shutdown(5)


def test_the_lecturer_reorders_and_clears_the_queue(tmp_path):
    m = JobManager(tmp_path, max_running=1, events=steps_of())
    running = m.submit(Caller("a" * 10), config())
    first, second = m.submit(Caller("b" * 10), config()), m.submit(Caller("c" * 10), config())
    assert m.queued() == [first.id, second.id]
    m.move_first(second.id, LECTURER)
    assert m.queued() == [second.id, first.id]
    assert sorted(m.clear_queue(LECTURER)) == sorted([first.id, second.id])
    assert (first.status, second.status, running.status) == ("stopped", "stopped", "running")
    m.shutdown(5)


# --- limits that hold in code


def test_a_session_may_not_sidestep_its_cap_with_made_up_owners_and_the_queue_is_bounded(tmp_path):
    m = JobManager(tmp_path, max_running=1, max_per_owner=2, max_queued=4, events=steps_of())
    m.submit(Caller("made-up-1", "one-tab"), config())
    m.submit(Caller("made-up-2", "one-tab"), config())
    with pytest.raises(RunLimit, match="already has 2 runs"):
        m.submit(Caller("made-up-3", "one-tab"), config())  # a new ?owner= in the same session counts
    for i in range(3):
        m.submit(Caller(f"student-{i}", f"tab-{i}"), config())
    with pytest.raises(RunLimit, match="the most it queues \\(4\\)"):
        m.submit(Caller("one-more", "another-tab"), config())
    m.shutdown(5)


def test_owners_never_seen_before_queue_behind_a_run_queued_before_them(tmp_path):
    m = JobManager(tmp_path, max_running=1, max_per_owner=2, max_queued=30, events=steps_of())
    first = m.submit(Caller("alice-browser"), config())  # alice has run before: her last start is old
    wait_for(lambda: first.status == "running")
    alices_next = m.submit(Caller("alice-browser"), config())
    fresh = [m.submit(Caller(f"fresh-{i:02d}", f"tab-{i}"), config()) for i in range(20)]
    m.stop(first.id)
    wait_for(lambda: alices_next.status == "running")  # hers starts next, not the twenty fresh ids' first
    assert all(j.status == "queued" for j in fresh) and m.queued() == [j.id for j in fresh]
    m.shutdown(5)


def test_training_settings_are_bounded_in_code_not_only_in_the_widgets():
    for changes, named in [
        (dict(epochs=201), "epochs"),
        (dict(D=512), "D"),
        (dict(batch_size=10**6), "batch_size"),
        (dict(max_steps=10**9), "max_steps"),
        (dict(T=10**6), "T"),
    ]:
        with pytest.raises(ValueError, match=named):
            config(**changes)


def test_a_run_stops_at_the_servers_time_limit_with_a_note_and_resumes(tmp_path):
    m = JobManager(tmp_path, events=steps_of(0.01), max_minutes=0.3 / 60)  # 0.3 s of training at a stretch
    job = m.submit("alice-browser", config())
    wait_for(lambda: job.status == "stopped", 10)
    assert "limit of" in job.note and "Resume goes on" in job.note
    assert json.loads((job.run_dir / "owner.json").read_text())["note"] == job.note  # a restarted server shows it too
    m.resume(job.id)
    wait_for(lambda: job.status == "stopped", 10)
    m.shutdown(5)


def test_a_run_starts_only_with_enough_free_disk(tmp_path):
    m = JobManager(tmp_path, events=steps_of(), min_free_mb=10**12)
    with pytest.raises(RunLimit, match="MB free, less than a run needs"):
        m.submit("alice-browser", config())
    assert m.jobs("alice-browser") == []


def test_stop_and_resume_keeps_one_stopped_checkpoint_not_one_per_stop(tmp_path):
    m = JobManager(tmp_path)  # a real training process
    job = m.submit("alice-browser", config(epochs=50, checkpoint_every_s=None))
    for _ in range(3):
        wait_for(lambda: len(job.steps) >= 2 + 3 * job.resumes, 120)
        m.stop(job.id)
        wait_for(lambda: job.status == "stopped", 120)
        m.resume(job.id)
    m.stop(job.id)
    wait_for(lambda: job.status == "stopped", 120)
    assert [p.name.split("_")[0] for p in (job.run_dir / "checkpoints").iterdir() if not p.name.startswith(".")] == [
        "stopped"
    ]


# --- nothing damaged stops the lab


def damaged_runs(root):
    """A run folder of each kind of damage a crash or a full disk leaves, and one good run beside them."""
    good = config().to_dict()

    def run(name, owner_json, **files):
        d = root / name
        d.mkdir(parents=True)
        (d / "owner.json").write_bytes(owner_json if isinstance(owner_json, bytes) else json.dumps(owner_json).encode())
        (d / "config.json").write_text(json.dumps(good))
        for file, content in files.items():
            path = d / file.replace("__", ".")
            if content is None:
                path.mkdir()
            else:
                path.write_bytes(content)
        return d

    meta = lambda owner: {"owner": owner, "submitted": time.time(), "total_steps": 4, "status": "done"}  # noqa: E731
    run("20260101-000000-aaaaa1", [])  # owner.json holding []
    run(
        "20260101-000000-aaaaa2",
        meta("cut-history"),
        latest=b"final_step_000004",
        history__jsonl=b'{"step": 1, "epoch": 0.5, "loss": 1.0, "lr": 0.001, "images_per_s": 9.0, "time": 1.0}\n{"step": 2, "lo',
    )
    run("20260101-000000-aaaaa3", meta("empty-error"), error__txt=b"")  # what a full disk leaves
    run("20260101-000000-aaaaa4", meta("latest-folder"), latest=None)  # latest as a folder
    run("20260101-000000-aaaaa5", b"\xff\xfe not utf-8 \x80")  # owner.json not UTF-8
    run("20260101-000000-aaaaa6", meta("good"), latest=b"final_step_000004")

    def row(step: int) -> bytes:
        return json.dumps(
            {"step": step, "epoch": 0.5, "loss": 1.0, "lr": 0.001, "images_per_s": 9.0, "time": 1.0 + step}
        ).encode()

    run(
        "20260101-000000-aaaaa7",
        meta("odd-fields") | {"total_steps": "many", "shared": "false", "note": 7},
        latest=b"final_step_000004",
        history__jsonl=b'{"step": 1, "loss": 1.0}\n[]\n{"step": "two"}\n' + row(3) + b"\n",
    )  # rows without time or lr
    run(
        "20260101-000000-aaaaa8",
        meta("cut-middle"),
        latest=b"final_step_000004",
        history__jsonl=row(1) + b'\n{"step": 2, "lo' + row(3) + b"\n" + row(4) + b"\n",
    )  # a full disk cut a record, the run went on
    linked = run("20260101-000000-aaaaa9", meta("linked-sample"), latest=b"final_step_000004", samples=None)
    (linked / "samples" / "epoch_001.png").symlink_to("/etc/passwd")  # a link to anything on the server


def test_each_damaged_run_folder_is_listed_as_damaged_and_nothing_else_is_affected(tmp_path):
    damaged_runs(tmp_path)
    m = JobManager(tmp_path, events=steps_of())  # starts: no folder raises
    status = {j.id[-1]: j.status for j in m.all_jobs(LECTURER)}
    assert status == {
        "1": "damaged",
        "2": "done",
        "3": "failed",
        "4": "damaged",
        "5": "damaged",
        "6": "done",
        "7": "done",
        "8": "done",
        "9": "done",
    }
    (cut,) = m.jobs("cut-history")
    assert [s["step"] for s in cut.steps] == [1]  # the partial last line skipped
    (odd,) = m.jobs("odd-fields")  # fields of the wrong type are read as absent, not as true or as numbers
    assert (
        odd.total_steps is None and odd.shared is False and odd.note is None and [s["step"] for s in odd.steps] == [3]
    )
    (middle,) = m.jobs("cut-middle")
    assert [s["step"] for s in middle.steps] == [1, 4]  # the line glued to the cut record is lost, not the run
    (linked,) = m.jobs("linked-sample")
    assert linked.samples_png is None  # a link is never shown (it could point anywhere on the server)
    zipped = zipfile.ZipFile(io.BytesIO(m.zip_artefacts(linked.id, LECTURER)))
    assert not [n for n in zipped.namelist() if n.endswith((".png", "owner.json"))]  # nor zipped; no owner id either
    (empty,) = m.jobs("empty-error")
    assert "could not be saved" in empty.error
    (folder,) = m.jobs("latest-folder")  # its owner could be read: it is listed for them, with what to do
    assert "damaged" in folder.error and "Download it" in folder.error
    assert m.submit("good", config()).status in ("queued", "running")  # and the queue works
    m.shutdown(5)


def test_a_failed_write_fails_only_its_run_and_frees_its_slot(tmp_path, monkeypatch):
    m = JobManager(tmp_path, max_running=1, events=steps_of(0.05, total=20))
    real = jobs_module.write_text_atomic
    doomed: set[str] = set()

    def disk_full_for_some(path, text):
        if path.parent.name in doomed:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(jobs_module, "write_text_atomic", disk_full_for_some)
    blocker = m.submit("alice-browser", config())  # holds the slot while the next ones queue
    victim = m.submit("bob-browser", config())
    doomed.add(victim.id)  # its status cannot be written when it starts
    after = m.submit("carol-browser", config())
    wait_for(lambda: after.status == "done")
    assert blocker.status == "done" and victim.status == "failed" and "disk is full" in victim.error
    again = m.submit("carol-browser", config())
    wait_for(lambda: again.status == "running")
    doomed.add(again.id)  # its steps, its error and its end cannot be recorded: it fails, the queue goes on
    last = m.submit("dave-browser", config())
    wait_for(lambda: last.status == "done")
    assert again.status == "failed" and not m.running()


def test_a_full_disk_during_a_checkpoint_fails_that_run_and_the_next_one_trains(tmp_path):
    m = JobManager(tmp_path, max_running=1)  # real training processes
    doomed = m.submit("alice-browser", config(epochs=1))
    doomed.run_dir.mkdir(parents=True, exist_ok=True)
    (doomed.run_dir / "checkpoints").write_text("")  # the checkpoint cannot be written (as a full disk refuses it)
    after = m.submit("bob-browser", config(epochs=1))
    wait_for(lambda: after.finished, 120)
    assert doomed.status == "failed" and after.status == "done", (doomed.error, after.error)


def test_the_run_a_server_was_training_goes_on_first_when_it_is_back(tmp_path):
    first = JobManager(tmp_path, max_running=1, events=steps_of())
    training = first.submit("alice-browser", config())
    waiting = first.submit("bob-browser", config())
    wait_for(lambda: len(training.steps) >= 3)
    first.shutdown(5)  # the server goes away
    assert json.loads((training.run_dir / "owner.json").read_text())["status"] == "interrupted"
    again = JobManager(tmp_path, max_running=1, events=steps_of())
    wait_for(lambda: again.get(training.id).status == "running")
    assert again.get(waiting.id).status == "queued" and again.queue_position(waiting.id) == 1
    again.shutdown(5)


def test_a_second_server_on_the_same_runs_folder_is_refused_with_what_to_do(tmp_path):
    JobManager(tmp_path, events=steps_of())
    code = f"from serving.jobs import JobManager\nJobManager({str(tmp_path)!r})"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert other.returncode != 0 and RunsFolderBusy.__name__ in other.stderr
    assert "DIFFUSION_LAB_RUNS" in other.stderr and "DIFFUSION_LAB_CLUSTER" in other.stderr


# --- Part A: computations nobody waits for, bounded requests


def slow_loop(steps: int, started: threading.Event | None = None):
    def fn(progress):
        progress.total = steps
        if started is not None:
            started.set()
        for _ in range(steps):
            time.sleep(0.01)
            progress.step()
        return "done"

    return fn


def test_a_running_computation_nobody_waits_for_stops_at_its_next_step(one_thread):
    q = ComputeQueue(workers=2, cancel_after_s=0.2)
    started = threading.Event()
    ticket = q.submit("slow", slow_loop(1000, started))
    started.wait(5)
    ticket.release()
    with pytest.raises(Cancelled):
        ticket.result(timeout=5)  # about 0.2 s, not the 10 s its 1,000 steps take
    assert q.counts["cancelled"] == 1 and q.cached("slow") is None
    again = q.submit("slow", slow_loop(5))  # asked for again: a fresh computation
    assert again.result(timeout=5) == "done"


def test_a_page_rerun_that_asks_for_the_same_result_again_keeps_it_running(one_thread):
    q = ComputeQueue(workers=2, cancel_after_s=1.0)
    started = threading.Event()
    ticket = q.submit("picture", slow_loop(50, started))
    started.wait(5)
    ticket.release()
    rerun = q.submit("picture", slow_loop(50))  # the same page's next run, a moment later
    assert rerun.result(timeout=10) == "done" and q.counts["cancelled"] == 0 and q.counts["joined"] == 1


def test_a_session_that_moves_on_gives_up_what_it_left_at_once_but_not_what_others_wait_for(one_thread):
    q = ComputeQueue(workers=4, cancel_after_s=60.0)  # the grace alone would keep them for a minute
    started = threading.Event()
    (mine,) = q.submit_all([("seed 1", slow_loop(1000, started))], session="flooding-tab")
    (shared,) = q.submit_all([("shared", slow_loop(1000))], session="flooding-tab")
    other = q.submit("shared", slow_loop(1000), session="another-tab")  # somebody else waits for this one
    started.wait(5)
    mine.release(), shared.release()
    q.submit_all([("seed 2", slow_loop(5))], session="flooding-tab")  # the next click
    with pytest.raises(Cancelled):
        mine.result(timeout=5)
    assert not other.done() and q.counts["cancelled"] == 1
    other.release()


def test_requests_out_of_bounds_are_refused_with_what_to_do():
    ok = Request.of(lab.sample, "MNIST", "cpu", prompt="7", n=4, generator=180)
    assert ok.check() is ok
    for bad, named in [
        (dict(prompt="x" * (MAX_PROMPT_CHARS + 1)), "prompt"),
        (dict(n=10_000), "n"),
        (dict(scale=1e9), "scale"),
        (dict(generator=-1), "generator"),
        (dict(timesteps=list(range(20_000, 0, -1))), "timesteps"),
    ]:
        with pytest.raises(ValueError, match=named):
            Request.of(lab.sample, "MNIST", "cpu", **(dict(prompt="7", n=4, generator=180) | bad)).check()
    with pytest.raises(ValueError, match="course's functions"):  # only the course's functions run on the room
        Request(print, "MNIST", "cpu", ()).check()


def test_the_prompt_embedding_cache_is_bounded_least_recently_used_first(tmp_path):
    from models.embeddings import DEFAULT_PROMPTS, PromptEmbeddings

    store = PromptEmbeddings(
        cache_dir=tmp_path, width=4, max_memory=3, max_files=4, encoder=lambda prompts: torch.ones(len(prompts), 2, 4)
    )
    store.get_many(["a"])  # with the defaults
    for p in ["b", "c", "d", "e", "f"]:
        store.get_many(["a", p])  # "a" kept in use
    assert store.files() <= 4 + len(DEFAULT_PROMPTS) and len(store._memory) <= 3 + len(DEFAULT_PROMPTS)
    assert "a" in store and "f" in store and "b" not in store  # the least recently used went first
    assert all(p in store for p in DEFAULT_PROMPTS)


def test_a_record_cut_by_a_full_disk_is_cut_off_before_the_run_goes_on(tmp_path):
    """A full disk while a step's record was written leaves half a line; the run resumed from its checkpoint writes its
    next record on a line of its own (before: after the half line, and a restarted server listed the run as damaged)."""
    from lab.train import read_history, train

    run = tmp_path / "run"
    cfg = course_config("flow", "class", D=4, batch_size=64, epochs=1, max_steps=3, sample_every=0)
    list(train(cfg, run))
    with open(run / "history.jsonl", "a") as f:
        f.write('{"step": 4, "epoch": 0.1, "lo')  # the disk filled here
    list(train(None, run, resume=True, changes={"max_steps": 5}))
    lines = (run / "history.jsonl").read_text().splitlines()
    assert all(json.loads(line)["step"] for line in lines)  # every line a record
    assert [r["step"] for r in read_history(run)] == [1, 2, 3, 4, 5]


def test_a_manager_that_cannot_start_gives_its_lock_file_back_and_a_second_one_of_a_folder_is_refused(
    tmp_path, monkeypatch
):
    import os

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def full_disk(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    first = JobManager(tmp_path, events=steps_of())
    with pytest.raises(RunsFolderBusy, match="one manager per runs folder") as busy:  # a second one in this process
        JobManager(tmp_path, events=steps_of())
    assert str(tmp_path) not in str(busy.value) and str(os.getpid()) not in str(busy.value)  # no path, no process id
    first.shutdown(5)
    monkeypatch.setattr(JobManager, "_reload", full_disk)
    before = fds()
    for _ in range(20):  # a page view retries it each time
        with pytest.raises(OSError):
            JobManager(tmp_path, events=steps_of())
    assert fds() == before
    monkeypatch.undo()
    JobManager(tmp_path, events=steps_of()).shutdown(5)  # the folder is free again


def test_the_owners_seen_are_those_with_runs_not_every_browser(tmp_path):
    m = JobManager(tmp_path, events=steps_of())
    m.submit("has-a-run", config(max_steps=2))
    for i in range(2000):
        m.jobs(f"browser-{i}")  # a page view of each of many browsers without a run
    m.jobs("has-a-run")
    assert set(m._seen) == {"has-a-run"}
    m.shutdown(5)
