"""Beyond one machine: Part A on Ray Serve and training runs as Ray tasks, on a local Ray that the tests
start (2 CPUs, no GPU); and the default path, which imports nothing of Ray."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray is in the test extras (requirements-dev.txt)")

from test_restart import wait_for  # noqa: E402

import lab  # noqa: E402
from lab.train_config import course_config  # noqa: E402
from models.bundled import load_backend  # noqa: E402
from serving.queue import Progress  # noqa: E402
from serving.requests import Request, editing_row  # noqa: E402
from serving.room import Room  # noqa: E402
from serving.settings import ClusterSettings, RoomSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(D=4, batch_size=64, epochs=2, T=10, sample_every=0, sample_stride=5)
BACKEND = "MNIST digits"
TASK_S = 300  # a Ray task's first step: a worker starts, imports torch and the lab, loads the digits (50 s seen on a busy 2-core CPU)
CLUSTER_S = 600  # the app's first page starting a cluster: Ray, Serve and a replica that imports torch and the lab


def test_the_cluster_job_manager_has_every_method_of_the_job_manager_the_pages_call():
    """The pages call one interface: a method the job manager has and the cluster's lacks breaks a page of every app
    on a cluster (Train live opens with an error)."""
    import inspect

    from serving.cluster_jobs import ClusterJobManager
    from serving.jobs import JobManager

    def public(cls) -> set[str]:
        return {name for name, value in inspect.getmembers(cls, callable) if not name.startswith("_")}

    assert public(JobManager) - public(ClusterJobManager) == set()


def test_without_the_setting_nothing_of_ray_is_imported(tmp_path):
    """`streamlit run Home.py` as today: a Part A page and the training page run, and no module of Ray is loaded."""
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / "tests")!r})
from conftest import open_page
open_page("a8_anagrams.py")
open_page("b4_train.py", "part_b", {{"owner": "nobody"}})
print(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
"""
    env = {k: v for k, v in os.environ.items() if k != "DIFFUSION_LAB_CLUSTER"}
    env |= {"DIFFUSION_LAB_WARM": "0", "DIFFUSION_LAB_RUNS": str(tmp_path / "runs")}  # its own runs: ours may be held
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_cluster_that_does_not_answer_is_a_message_on_the_pages_at_once():
    """A wrong DIFFUSION_LAB_CLUSTER: Part A and training pages say what to do (ray.init alone would wait minutes)."""
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / "tests")!r})
from conftest import PAGE_SCRIPT
from streamlit.testing.v1 import AppTest
for page, part in (("a8_anagrams.py", "part_a"), ("b4_train.py", "part_b")):
    at = AppTest.from_string(PAGE_SCRIPT.format(path=str({str(ROOT)!r} + "/app_pages/" + part + "/" + page), page=page, url=None), default_timeout=120)
    at.query_params["owner"] = "nobody"
    at.run()
    assert not at.exception, at.exception
    print(page, [e.value for e in at.error])
"""
    env = os.environ | {"DIFFUSION_LAB_CLUSTER": "127.0.0.1:1", "DIFFUSION_LAB_WARM": "0"}
    started = time.time()
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    pages = out.stdout.strip().splitlines()[-2:]
    assert len(pages) == 2 and all(
        "no Ray cluster answers at 127.0.0.1:1" in line and "unset DIFFUSION_LAB_CLUSTER" in line for line in pages
    ), pages
    assert time.time() - started < 120


RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]


def ray_gcs_running() -> bool:
    """Whether a Ray cluster's GCS server runs on this machine."""
    for proc in Path("/proc").iterdir():
        try:
            if b"gcs_server" in (proc / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def test_the_readme_command_starts_a_ray_cluster_that_outlives_the_page_that_started_it(tmp_path):
    """`DIFFUSION_LAB_CLUSTER=auto streamlit run Home.py` with no cluster running: the app starts one, and it is still
    there for the next page (Ray's processes started inside the app died with the first page's script thread)."""
    from remote_client import RemoteClient
    from test_browser import serve_app

    if ray_gcs_running():
        pytest.skip("a Ray cluster already runs on this machine: the test does not touch it")
    env = {"DIFFUSION_LAB_CLUSTER": "auto", "DIFFUSION_LAB_RUNS": str(tmp_path / "runs"), "DIFFUSION_LAB_WARM": "0"}
    try:
        with serve_app(env) as (url, _):
            with RemoteClient(url, "a8_anagrams", run_timeout=CLUSTER_S) as first:  # the app starts Ray and Serve
                assert first.images and not first.errors
            time.sleep(5)  # the first page's script thread has ended
            assert ray_gcs_running(), "the cluster died with the page that started it"
            import psutil

            gcs = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "gcs_server"]
            assert gcs and all(p.environ().get("RAY_AUTH_MODE") == "token" for p in gcs)  # a client needs the token
            with RemoteClient(url, "a9_hybrids", run_timeout=TASK_S) as second:
                assert second.images and not second.errors
    finally:
        subprocess.run([*RAY_CLI, "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def local_ray():
    from serving.cluster import NAMESPACE, RUNTIME_ENV

    ray.init(
        num_cpus=2,
        num_gpus=0,
        include_dashboard=False,
        namespace=NAMESPACE,
        runtime_env=RUNTIME_ENV,
        log_to_driver=False,
    )
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def rooms(local_ray):
    """The same room settings in process and on the cluster (no warm-up; Serve waits 50 ms to form a batch)."""
    here = Room(RoomSettings(warm=False))
    there = Room(RoomSettings(warm=False), ClusterSettings(cluster="auto", serve_wait_ms=50))
    return here, there


def requests(x0: torch.Tensor) -> list:
    common = (BACKEND, "cpu")
    return [
        Request.of(lab.sample, *common, n=2, prompt="seven", scale=7.0, generator=3),
        Request.of(lab.visual_anagrams, *common, ("two", "seven"), ("identity", "flip"), scale=7.0, generator=3),
        Request.of(lab.make_hybrids, *common, ("one", "seven"), sigmas=(2.0,), scale=7.0, generator=3),
        *editing_row(lab.sdedit, *common, x0, "zero", 7.0, (3, 10), 3),
    ]


def test_a_part_a_run_through_ray_serve_equals_the_in_process_result_bit_for_bit(rooms):
    here, there = rooms
    den = load_backend(BACKEND)
    x0 = torch.zeros(1, *den.image_shape)
    for cfg in requests(x0):
        local = here.job(cfg, den)(Progress())
        served = there.job(cfg, den)(Progress())
        assert torch.equal(local.images, served.images), cfg.said()
        assert (
            all((a == b).all() for a, b in zip(local.frames, served.frames))
            and local.frame_labels == served.frame_labels
        )


def test_concurrent_requests_of_two_sessions_are_batched_and_identical_ones_computed_once(rooms):
    _, there = rooms
    den = load_backend(BACKEND)
    before = there.cluster.stats(BACKEND)

    def sample(prompt, seed):
        return Request.of(lab.sample, BACKEND, "cpu", n=1, prompt=prompt, scale=7.0, generator=seed)

    mine = [sample("three", seed) for seed in range(100, 106)]
    theirs = mine[:2] + [sample("eight", seed) for seed in range(100, 104)]
    results = {}

    def session(name, cfgs):  # a browser's requests, each on its own thread as the room's queue workers send them
        threads = [
            threading.Thread(target=lambda c=c: results.setdefault((name, c), there.job(c, den)(Progress())))
            for c in cfgs
        ]
        [t.start() for t in threads]
        [t.join() for t in threads]

    sessions = [threading.Thread(target=session, args=(n, c)) for n, c in (("mine", mine), ("theirs", theirs))]
    [t.start() for t in sessions]
    [t.join() for t in sessions]
    after = there.cluster.stats(BACKEND)
    assert torch.equal(results[("mine", mine[0])].images, results[("theirs", mine[0])].images)
    assert after["requests"] - before["requests"] == 12
    assert after["computed"] - before["computed"] == 10  # the two identical requests: computed once each
    assert after["joined"] + after["cached"] - before["joined"] - before["cached"] == 2
    formed = after["batch_sizes"][len(before["batch_sizes"]) :]
    assert max(formed) > 1 and sum(formed) == 10
    steps = after["model"]["steps"] - before["model"]["steps"]
    calls = after["model"]["model_calls"] - before["model"]["model_calls"]
    assert steps == 10 * 34 and calls < steps / 2  # one model call per step for many requests


def test_a_training_run_on_ray_finishes_and_a_second_app_replica_lists_it(local_ray, tmp_path):
    from serving.cluster_jobs import ClusterJobManager

    one, two = ClusterJobManager(tmp_path / "runs"), ClusterJobManager(tmp_path / "runs")
    job = one.submit("alice", course_config("flow", "class", **TINY, max_steps=20))
    wait_for(lambda: two.get(job.id).finished, TASK_S, what="the run to finish")
    seen = two.jobs("alice")
    assert [j.id for j in seen] == [job.id] and seen[0].status == "done" and len(seen[0].steps) == 20
    assert (tmp_path / "runs" / job.id / "latest").read_text().startswith("final")
    later = one.submit("bob", course_config("flow", "class", **TINY, max_steps=400))  # stopped from the other replica
    wait_for(lambda: len(two.get(later.id).steps) >= 5, TASK_S, what="bob's run to train")
    two.stop(later.id)
    wait_for(lambda: one.get(later.id).status == "stopped", TASK_S, what="bob's run to stop")
    assert one.checkpoint_step(later.id) >= 5


def test_the_per_browser_cap_and_the_fair_order_hold_across_app_replicas(local_ray, tmp_path):
    from serving.cluster_jobs import ClusterJobManager
    from serving.jobs import RunLimit

    one = ClusterJobManager(tmp_path / "runs", max_running=1, max_per_owner=1)
    two = ClusterJobManager(tmp_path / "runs")  # finds the cluster's manager, with the limits it was made with
    assert two.max_running == 1
    first = one.submit("erin", course_config("flow", "class", **TINY, max_steps=400))
    with pytest.raises(RunLimit, match="most one browser may have at once"):
        two.submit("erin", course_config("flow", "class", **TINY, max_steps=5))
    frank = two.submit("frank", course_config("flow", "class", **TINY, max_steps=5))  # waits for the one slot
    assert one.queue_position(frank.id) == 1 and one.get(frank.id).status == "queued"
    one.stop(first.id)
    wait_for(
        lambda: two.get(frank.id).status == "done", TASK_S, what="frank's run to start and finish after erin's stopped"
    )


def test_a_killed_ray_worker_fails_the_run_with_a_message_and_it_resumes_from_its_checkpoint(local_ray, tmp_path):
    from serving.cluster_jobs import ClusterJobManager

    m = ClusterJobManager(tmp_path / "runs")
    job = m.submit("carol", course_config("flow", "class", **TINY, max_steps=120, checkpoint_every_s=0.5))
    wait_for(
        lambda: m.get(job.id).pid is not None and (m.checkpoint_step(job.id) or 0) >= 10, TASK_S, what="a checkpoint"
    )
    os.kill(m.get(job.id).pid, signal.SIGKILL)
    wait_for(lambda: m.get(job.id).finished, TASK_S, what="the run to fail")
    failed = m.get(job.id)
    assert failed.status == "failed" and "died" in failed.error and "resume" in failed.error
    checkpoint = m.checkpoint_step(job.id)
    m.resume(job.id)
    wait_for(lambda: m.get(job.id).finished, TASK_S, what="the resumed run")
    done = m.get(job.id)
    assert done.status == "done" and [s["step"] for s in done.steps] == list(range(1, 121))
    history = [json.loads(line)["step"] for line in (job.run_dir / "history.jsonl").read_text().splitlines()]
    assert history.count(1) == 1 and sorted(set(history)) == list(range(1, 121))  # resumed, not started again from 0
    assert all(b == checkpoint + 1 for a, b in zip(history, history[1:]) if b <= a)  # from its checkpoint's next step


def test_two_app_servers_on_one_cluster_show_the_same_picture_and_the_same_runs(local_ray, tmp_path):
    """Two `streamlit run Home.py` on different ports, one Ray cluster and one runs folder: a page's picture is the
    same from either (and computed once), a run started from one is listed, stopped and resumed from the other."""
    from remote_client import RemoteClient
    from test_browser import serve_app
    from test_restart import page_of, run_of, start_run

    from serving.serve import PartAOnRay

    runs = tmp_path / "runs"
    env = {
        "DIFFUSION_LAB_CLUSTER": ray.get_runtime_context().gcs_address,
        "DIFFUSION_LAB_RUNS": str(runs),
        "DIFFUSION_LAB_WARM": "0",
        "DIFFUSION_LAB_CHECKPOINT_EVERY_S": "1",
        "DIFFUSION_LAB_SERVE_WAIT_MS": "50",
    }
    before = PartAOnRay(RoomSettings(), ClusterSettings(cluster="auto")).stats(BACKEND)
    with serve_app(env) as (one, _), serve_app(env) as (two, _):
        pictures = []
        for url in (one, two):
            with RemoteClient(url, "a9_hybrids", run_timeout=TASK_S) as page:
                assert not page.errors and page.images
                pictures.append(page.images)
        assert pictures[0] == pictures[1]
        after = PartAOnRay(RoomSettings(), ClusterSettings(cluster="auto")).stats(BACKEND)
        assert after["requests"] - before["requests"] == 2 and after["computed"] - before["computed"] == 1

        start_run(one, "dana", epochs=50, run_timeout=TASK_S).close()
        run = run_of(runs, "dana")
        wait_for(lambda: (run / "latest").exists(), TASK_S, what="dana's run to checkpoint")
        other = page_of(two, "dana", run_timeout=TASK_S)
        assert other.shows(f"run `{run.name}` · running") and not other.errors
        other.press("Stop")
        wait_for(
            lambda: page_of(one, "dana", run_timeout=TASK_S).shows(f"run `{run.name}` · stopped"),
            TASK_S,
            what="the stop, seen from the first",
        )


def test_a_cuda_run_is_allowed_where_the_cluster_has_a_gpu_though_this_process_has_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU of its own")
    with pytest.raises(ValueError, match="use device cpu"):
        course_config("flow", "class", **TINY, device="cuda")
    # what the cluster's job manager and the Train live page say where the cluster has GPUs
    assert course_config("flow", "class", **TINY, device="cuda", cuda_elsewhere=True).device == "cuda"
    with pytest.raises(ValueError, match="use device cpu"):  # a task gets one GPU: it is cuda:0 there
        course_config("flow", "class", **TINY, device="cuda:1", cuda_elsewhere=True)


def test_the_jobs_actor_answers_only_its_methods_and_comes_back_when_its_process_dies(local_ray, tmp_path):
    from serving.cluster_jobs import ClusterJobManager, ClusterJobsUnavailable
    from serving.jobs import NotAllowed

    m = ClusterJobManager(tmp_path / "runs")
    for method in ("shutdown", "_dispatch", "__init__", "events"):
        with pytest.raises(ValueError, match="has no method"):
            m._call(method)
    job = m.submit("alice", course_config("flow", "class", **TINY, max_steps=3))
    wait_for(lambda: m.get(job.id).finished, TASK_S, what="the run to finish")
    with pytest.raises(NotAllowed):  # the caller is checked in the actor too
        m.zip_artefacts(job.id, __import__("serving.jobs").jobs.Caller("bob"))
    ray.kill(m.actor, no_restart=False)  # its process dies

    def answers() -> bool:
        try:
            return [j.id for j in m.jobs("alice")] == [job.id]  # the restarted actor read the runs folder again
        except ClusterJobsUnavailable as e:  # meanwhile: a message, not Ray's traceback
            assert "restarts by itself" in str(e)
            return False

    wait_for(answers, TASK_S, what="the jobs actor to come back")
