"""The room's compute queue (serving/queue.py): in-flight sharing, arrival order, places in line, dropping requests
nobody waits for, a results cache bounded by bytes, errors, warm-up last."""

import threading
import time

import pytest

from serving.queue import ComputeQueue


class Blocker:
    """A computation that runs until released, counting its runs."""

    def __init__(self, value="done"):
        self.value, self.runs, self.go, self.started = value, 0, threading.Event(), threading.Event()

    def __call__(self, progress):
        self.runs += 1
        self.started.set()
        assert self.go.wait(30)
        return self.value


def busy(**settings) -> tuple[ComputeQueue, Blocker]:
    """A queue of one worker, busy with a request until the blocker is released."""
    queue, blocker = ComputeQueue(workers=1, **settings), Blocker()
    queue.submit("running", blocker)
    assert blocker.started.wait(10)
    return queue, blocker


def recorder(log: list, name: str):
    def fn(progress):
        log.append(name)
        return name

    return fn


def test_identical_requests_are_computed_once_and_every_caller_gets_the_result():
    queue, blocker = ComputeQueue(workers=4), Blocker(object())
    first = queue.submit(("sdedit", 180), blocker)
    assert blocker.started.wait(10)
    second = queue.submit(("sdedit", 180), blocker)  # another browser, same settings, while it runs
    blocker.go.set()
    assert first.result(10) is second.result(10) is blocker.value
    assert blocker.runs == 1 and queue.counts["computed"] == 1 and queue.counts["joined"] == 1
    third = queue.submit(("sdedit", 180), blocker)  # later: from the cache
    assert third.done() and third.result() is blocker.value and blocker.runs == 1 and queue.counts["cached"] == 1


def test_requests_start_in_arrival_order_and_each_knows_its_place():
    (queue, blocker), log = busy(), []
    tickets = [queue.submit(name, recorder(log, name)) for name in ("a", "b", "c")]
    assert [t.position() for t in tickets] == [0, 1, 2]
    assert tickets[0].progress().done == 0
    blocker.go.set()
    assert [t.result(10) for t in tickets] == ["a", "b", "c"] and log == ["a", "b", "c"]
    assert [t.position() for t in tickets] == [None, None, None]


def test_a_request_whose_browsers_left_before_it_started_is_not_computed():
    (queue, blocker), log = busy(grace_s=0.2), []
    left = queue.submit("left", recorder(log, "left"))
    stays = queue.submit("stays", recorder(log, "stays"))
    assert stays.position() == 1
    left.release()  # its page reran with another seed, or its browser closed
    left.release()  # releasing twice is harmless
    assert stays.position() == 0  # nobody waits for "left": it no longer counts ahead
    time.sleep(0.4)  # past the grace period
    blocker.go.set()
    assert stays.result(10) == "stays"
    time.sleep(0.3)
    assert log == ["stays"] and queue.counts["dropped"] == 1


def test_a_browser_that_comes_back_within_the_grace_period_keeps_its_place():
    (queue, blocker), log = busy(grace_s=30), []
    first = queue.submit("first", recorder(log, "first"))
    later = queue.submit("later", recorder(log, "later"))
    first.release()  # a rerun of its page: released, then asked again at once
    again = queue.submit("first", recorder(log, "first"))
    assert again.position() == 0 and later.position() == 1
    blocker.go.set()
    assert again.result(10) == "first" and later.result(10) == "later" and log == ["first", "later"]


def test_the_results_cache_is_bounded_by_bytes_least_recently_used_first():
    queue = ComputeQueue(workers=1, max_bytes=10, sizeof=len)
    for key in ("aaaa", "bbbb"):
        queue.submit(key, lambda p, k=key: k).result(10)
    assert queue.cached("aaaa") == "aaaa" and queue.cached_bytes == 8
    queue.submit("cccc", lambda p: "cccc").result(10)  # 12 bytes > 10: the least recently used goes
    assert queue.cached("aaaa") is None and queue.cached("bbbb") == "bbbb" and queue.cached_bytes == 8
    queue.submit("x" * 11, lambda p: "x" * 11).result(10)  # larger than the whole cache: served, not kept
    assert queue.cached("x" * 11) is None and queue.cached_bytes == 8


def test_an_error_reaches_every_caller_and_is_not_cached():
    queue, runs = ComputeQueue(workers=2), []

    def broken(progress):
        runs.append(1)
        time.sleep(0.2)
        raise ValueError("mask is empty")

    a, b = queue.submit("bad", broken), queue.submit("bad", broken)
    for ticket in (a, b):
        with pytest.raises(ValueError, match="mask is empty"):
            ticket.result(10)
    assert len(runs) == 1 and queue.cached("bad") is None
    with pytest.raises(ValueError):
        queue.submit("bad", broken).result(10)  # asked again: computed again
    assert len(runs) == 2 and queue.counts["failed"] == 2


def test_warm_up_requests_wait_for_every_request_a_browser_waits_for_and_join_them():
    (queue, blocker), log = busy(), []
    warm = queue.submit("warm", recorder(log, "warm"), keep=True)  # nobody waits: runs when nothing else does
    asked = queue.submit("asked", recorder(log, "asked"))
    assert asked.position() == 0 and warm.position() == 1
    blocker.go.set()
    assert asked.result(10) == "asked" and warm.result(10) == "warm" and log == ["asked", "warm"]
    (queue2, blocker2), log2 = busy(), []
    queue2.submit("default page", recorder(log2, "default page"), keep=True)
    queue2.submit("other", recorder(log2, "other"))
    joined = queue2.submit("default page", recorder(log2, "default page"))  # a browser opens the warmed page
    assert joined.position() == 0  # the warm-up request, now waited for, keeps its (earlier) place
    blocker2.go.set()
    assert joined.result(10) == "default page" and log2 == ["default page", "other"]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="workers"):
        ComputeQueue(workers=0)


def test_idle_counts_from_the_last_callers_request_and_ignores_warm_up():
    queue = ComputeQueue(workers=1)
    release = threading.Event()
    ticket = queue.submit("a browser's", lambda p: release.wait(10))
    assert queue.idle_s() == 0.0  # somebody waits: the room is not idle
    queue.submit("warm", lambda p: None, keep=True)
    release.set()
    ticket.wait(10)
    time.sleep(0.2)
    assert 0.15 <= queue.idle_s() < 5  # since the browser's request (a warm-up's does not count)
    ticket.release()
    assert queue.idle_s() < 0.15  # the browser's page reran or left: that is the room's latest activity


def test_a_compute_log_that_fails_on_a_key_neither_kills_its_worker_nor_holds_the_request():
    """The room's compute log read every key as a Part A request; Part B's generators key (a tuple) raised in the worker
    before the computation, the worker thread died and the page waited for ever (found by the protocol fuzzer)."""

    def log(key):
        raise TypeError(f"not a request: {key!r}")

    q = ComputeQueue(workers=1, on_compute=log)
    try:
        assert q.submit(("part-b-samples", "ddpm_class", 5.0, 30, 0), lambda p: 42).result(5) == 42
        assert q.submit("another", lambda p: 43).result(5) == 43  # the one worker still works
    finally:
        q.close()


def test_the_rooms_compute_log_writes_a_line_for_a_part_b_key(tmp_path):
    from serving.room import Room
    from serving.settings import RoomSettings

    room = Room(RoomSettings(compute_log=str(tmp_path / "computed.log"), warm=False))
    try:
        assert (
            room.queue.submit(("part-b-samples", "ddpm_class", 5.0, 30, 180), lambda p: b"x").result(5) == b"x"
        )  # no nbytes: not kept
        (line,) = (tmp_path / "computed.log").read_text().splitlines()
        assert line.split()[1:] == ["part-b-samples", "ddpm_class", "5.0", "30", "180"]
    finally:
        room.close()


def test_a_request_is_its_lab_call_and_the_same_call_written_two_ways_is_one_key():
    import pickle

    import numpy as np
    import torch

    import lab
    from models.bundled import load_backend
    from serving.queue import Progress
    from serving.requests import Request, compute

    name = "MNIST digits"
    x0 = torch.linspace(-1, 1, 28 * 28).reshape(1, 1, 28, 28)
    positional = Request.of(lab.sdedit, name, "cpu", x0, 20, "3", generator=180)
    named = Request.of(lab.sdedit, name, "cpu", im=x0.clone(), prompt="3", i_start=20, scale=7.0, generator=180)
    assert positional == named and hash(positional) == hash(named)  # the signature's order and defaults, bound
    assert positional != Request.of(lab.sdedit, name, "cpu", x0, 21, "3", generator=180)
    assert Request.of(lab.sdedit, name, "cpu", x0, torch.tensor(20), "3", np.float32(7), generator=180) == named
    assert pickle.loads(pickle.dumps(named)) == named  # as a Ray Serve replica receives it
    with pytest.raises(TypeError):  # an argument the course function has not
        Request.of(lab.sdedit, name, "cpu", x0, 20, strength=0.5)

    den = load_backend(name)
    progress = Progress()
    result = compute(named, den, progress)
    expected = lab.sdedit(den, x0, 20, "3", generator=180).clamp(-1, 1)
    assert torch.equal(result.images, expected)  # what the notebook's call returns
    steps = len(lab.strided_timesteps(den.T, 30)) - 20
    assert progress.total == progress.done == steps == len(result.frames) == len(result.frame_labels)
    assert result.frame_labels[0] == "t = 390 -> 360" and result.frame_labels[-1] == "t = 0 -> clean"
