"""What a page view costs the server (issue: a warmed page costs the server almost nothing): page runs take turns
(ui/turns.py), a page that waits for the model gives its turn up, and pictures go out as the PNGs encoded once for the
room (not encoded again, as JPEG, on every view). The room of 30 real browsers is tests/test_room.py's; the times are
benchmarks/bench_room.py --spread's."""

import threading
import time

import pytest
from conftest import image_urls, open_page
from remote_client import RemoteClient
from test_browser import serve_app

from ui.turns import Turns


def hold_in_threads(turns: Turns, n: int, work) -> list[threading.Thread]:
    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def test_no_more_runs_than_turns_hold_one_at_once_and_the_others_are_told_they_wait():
    turns, lock, state = Turns(2), threading.Lock(), {"now": 0, "most": 0, "lines": 0, "removed": 0}
    go = threading.Event()

    def line():
        with lock:
            state["lines"] += 1
        return lambda: state.__setitem__("removed", state["removed"] + 1)

    def run(i):
        go.wait()
        with turns.turn(line):
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            time.sleep(0.05)
            with lock:
                state["now"] -= 1

    threads = hold_in_threads(turns, 6, run)
    go.set()
    for t in threads:
        t.join(10)
    assert state["most"] == 2 and state["now"] == 0
    assert (
        turns.waited == state["lines"] == state["removed"] >= 4 - 1
    )  # at least the 4 past the first 2 (one may be late)
    assert all(turns._free.acquire(blocking=False) for _ in range(2))  # every turn came back


def test_a_run_waiting_for_the_model_lets_another_run_meanwhile_and_takes_a_turn_again_after():
    turns = Turns(1)
    away, other_ran, back = threading.Event(), threading.Event(), threading.Event()

    def waiting_page():
        with turns.turn():
            with turns.away():
                away.set()
                assert other_ran.wait(5)  # the other page ran while this one waited
            assert turns.holds()
            back.set()

    t = threading.Thread(target=waiting_page, daemon=True)
    t.start()
    assert away.wait(5)
    with turns.turn():  # had at once: the waiting page gave its turn up
        other_ran.set()
    t.join(5)
    assert back.is_set()
    assert turns._free.acquire(blocking=False) and not turns._free.acquire(blocking=False)  # one turn, given back


def test_a_run_stopped_while_away_does_not_take_a_turn_again_and_none_is_lost():
    turns = Turns(1)

    class Stopped(Exception):  # as Streamlit stops a run whose user moved on
        pass

    with pytest.raises(Stopped), turns.turn(), turns.away():
        raise Stopped
    assert not turns.holds()
    with turns.turn():  # the turn is free again, and only one
        assert turns.holds() and not turns._free.acquire(blocking=False)


def test_a_turn_not_had_in_time_is_not_waited_for_longer_and_a_turn_inside_a_turn_is_the_same():
    turns = Turns(1, wait_s=0.2)
    taken, release = threading.Event(), threading.Event()

    def hog():
        with turns.turn():
            taken.set()
            release.wait(10)

    t = threading.Thread(target=hog, daemon=True)
    t.start()
    assert taken.wait(5)
    started = time.monotonic()
    with turns.turn():  # runs anyway after wait_s, holding nothing
        assert not turns.holds() and time.monotonic() - started < 2
    release.set()
    t.join(5)
    with turns.turn(), turns.turn():
        assert turns.holds()
    assert turns._free.acquire(blocking=False)  # given back once (a BoundedSemaphore raises if given back twice)
    with pytest.raises(ValueError, match="at least 1"):
        Turns(0)


def test_pictures_go_out_as_the_pngs_encoded_once_for_the_room_not_encoded_again_as_jpeg():
    at = open_page("a6_cfg.py")
    urls = image_urls(at)
    assert urls and all(url.endswith(".png") for url in urls), urls


def test_a_page_waiting_for_its_computation_does_not_hold_up_another_browsers_warmed_page(tmp_path):
    """One page run at a time (DIFFUSION_LAB_PAGE_RUNS=1): a browser whose new seed needs 1.6's samples computed waits
    for the model without its turn, and another browser's 1.1 (no model) is drawn meanwhile, before 1.6 is done."""
    with serve_app(
        {"DIFFUSION_LAB_RUNS": str(tmp_path / "runs"), "DIFFUSION_LAB_PAGE_RUNS": "1", "DIFFUSION_LAB_WARM": "0"}
    ) as (url, _):
        with RemoteClient(url, "a6_cfg") as busy, RemoteClient(url, "a1_forward") as forward:  # both drawn once
            busy.change_nowait("Seed", 4321)  # five samples with and without guidance to compute
            end = time.time() + 60
            while not busy.progress and time.time() < end:  # its bar: it waits for the model
                busy._read(0.5)
            assert busy.progress, "1.6 showed no progress bar"
            done = {}
            reader = threading.Thread(
                target=lambda: (busy._until_finished(120), done.setdefault("busy", time.time())), daemon=True
            )
            reader.start()
            forward.change("Seed", 4321, timeout=60)
            done["forward"] = time.time()
            reader.join(120)
            assert forward.images and busy.images and not forward.errors and not busy.errors
    assert done["forward"] < done["busy"], done
