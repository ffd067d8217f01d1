"""A room on one server (serving/room.py over serving/queue.py and serving/batching.py), tested as it runs: `streamlit run
Home.py` driven by clients that speak the browser's protocol (tests/remote_client.py), and AppTest for the warm-up.

- two browsers that open the same page at once cost one computation, and see the same pictures;
- a page waiting behind other browsers' requests says how many are ahead; a browser that leaves before its request
  starts costs nothing;
- after the warm-up, every Part A page opened with its defaults computes nothing new.
"""

import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import image_urls, open_page
from remote_client import RemoteClient
from test_browser import serve_app

from models.bundled import load_backend
from ui import catalog


def computed(log) -> list[str]:
    """The computations the server started, one line each (DIFFUSION_LAB_COMPUTE_LOG)."""
    return log.read_text().splitlines() if log.exists() else []


def test_two_browsers_opening_the_same_page_at_once_cost_one_computation(tmp_path):
    log = tmp_path / "computed.log"
    env = {"DIFFUSION_LAB_RUNS": str(tmp_path / "runs"), "DIFFUSION_LAB_COMPUTE_LOG": str(log)}
    with serve_app(env) as (url, _):
        clients = [RemoteClient(url, "a7_sdedit"), RemoteClient(url, "a7_sdedit")]
        barrier = threading.Barrier(2)

        def open_page_(client):
            barrier.wait()
            client.open()

        threads = [threading.Thread(target=open_page_, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        first, second = clients
        assert first.images and first.images == second.images  # the same pictures, named by their bytes
        assert not first.errors and not second.errors
        lines = computed(log)
        assert len(lines) == 6 and all(" lab.sdedit " in line for line in lines), lines  # the row's six i_start, once
        first.change("Seed", 7)  # one browser changes its seed: only its row is computed
        assert len(computed(log)) == 12 and first.images != second.images
        for c in clients:
            c.close()


def test_a_waiting_page_says_how_many_requests_are_ahead_and_a_page_left_before_its_turn_costs_nothing(tmp_path):
    log = tmp_path / "computed.log"
    env = {
        "DIFFUSION_LAB_RUNS": str(tmp_path / "runs"),
        "DIFFUSION_LAB_COMPUTE_LOG": str(log),
        "DIFFUSION_LAB_COMPUTE_WORKERS": "1",
        "DIFFUSION_LAB_FAST": "0",
    }  # (one request at a time)
    with serve_app(env) as (url, _):
        busy = [RemoteClient(url, "a0_sampling"), RemoteClient(url, "a73_text")]  # 12 requests in line
        threads = [threading.Thread(target=c.open, kwargs={"timeout": 300}) for c in busy]
        for thread in threads:
            thread.start()
        end = time.time() + 60
        while len(computed(log)) < 1 and time.time() < end:
            time.sleep(0.05)
        waiting = RemoteClient(url, "a9_hybrids")
        waiting.open_until(lambda c: any("ahead of yours" in p for p in c.progress), timeout=60)
        said = next(p for p in waiting.progress if "ahead of yours" in p)
        assert said.startswith("waiting: ") and int(said.split()[1]) >= 1, said
        leaving = RemoteClient(url, "a8_anagrams")
        leaving.open_until(lambda c: any("ahead of yours" in p for p in c.progress), timeout=60)
        leaving.close()  # the browser leaves while its request waits
        for thread in threads:
            thread.join(300)
        waiting._until_finished(300)
        assert waiting.images and not waiting.errors
        time.sleep(1.0)
        lines = computed(log)
        assert any(" lab.make_hybrids " in line for line in lines) and not any(
            " lab.visual_anagrams " in line for line in lines
        ), lines
        for c in (*busy, waiting):
            c.close()


def test_after_the_warm_up_every_part_a_page_opened_with_its_defaults_computes_nothing(monkeypatch):
    from serving import generators
    from serving.defaults import GENERATOR_STEPS
    from ui.state import room

    monkeypatch.setenv("DIFFUSION_LAB_WARM", "1")
    monkeypatch.setattr("serving.room.QUIET_S", 0.5)  # the later warm-ups wait for a quiet room: not long here
    monkeypatch.setitem(GENERATOR_STEPS, ("flow", "class"), 20)  # Part B's Fall 2026 default: 300 steps, 2 minutes here
    room.clear()  # a new room: Part B's samples too come from its warm-up, not from an earlier test
    try:
        open_page("a1_forward.py")  # the first page of a fresh server: the room is made and starts warming
        r = room()
        assert r.warmed.wait(600)
        before = dict(r.queue.counts)
        assert before["computed"] >= 40 and before["failed"] == 0, before
        for edition in catalog.EDITIONS.values():  # both editions' defaults are warmed, each on its default backend
            for page in edition.pages:
                if page.url == "a71_inputs":  # nothing to compute until an upload or a drawing
                    continue
                at = open_page(page.file, edition.folder)
                assert image_urls(at), page
                assert r.queue.counts["computed"] == before["computed"], (
                    f"{page} computed something the warm-up did not"
                )
        assert r.queue.counts["cached"] > before["cached"]
        drawn = (
            "a1_forward",
            "a2_blur",
            "a71_inputs",
            "f1_1_noisy",
            "f1_2_blur",
        )  # computed by the page itself, at once
        for edition, e in catalog.EDITIONS.items():
            at = open_page("welcome.py", "home", query={"edition": edition})  # a picture of each section that computes
            captions = [im.caption for el in at.get("image") for im in el.proto.imgs]
            assert captions == [page.title for page in e.pages if page.url not in drawn]
            assert not at.caption or "Computing" not in at.caption[-1].value
        assert r.queue.counts["computed"] == before["computed"]
        sampled, sample = (
            [],
            generators.sample,
        )  # Part B's generators page opens from the warm-up's samples, both editions'
        monkeypatch.setattr(generators, "sample", lambda *a, **k: sampled.append(1) or sample(*a, **k))
        for edition in catalog.EDITIONS:
            assert image_urls(open_page("b2_generators.py", "part_b", query={"edition": edition})) and not sampled
    finally:
        room.clear()


@pytest.mark.parametrize("name", ["MNIST digits", "Emoji (colour)"])  # a data set's images, the photos
def test_the_warm_up_edits_the_one_picture_a_page_opens_on(name):
    """The warm-up's (and the page benchmark's) x0 is first_test_images(name, 1): the image pick_test_image shows
    first. On the photo backends it was both photos, so SDEdit's warmed rows were requests no page makes."""
    from ui.state import first_test_images

    x0, all_images = first_test_images(name, 1), first_test_images(name)
    assert x0.shape == (1, *load_backend(name).image_shape)
    assert torch.equal(x0, all_images[:1])


def test_the_waiting_message_counts_the_requests_ahead_then_the_steps():
    from serving.queue import Progress
    from ui.progress import status

    class Ticket:
        def __init__(self, position, done=0, total=33, finished=False):
            self._position, self._progress, self._done = position, Progress(done, total), finished

        def position(self):
            return self._position

        def progress(self):
            return self._progress

        def done(self):
            return self._done

    assert status([Ticket(2), Ticket(3)]) == (0.0, "waiting: 2 requests of other browsers ahead of yours")
    assert status([Ticket(1)])[1] == "waiting: 1 request of other browsers ahead of yours"
    assert status([Ticket(None, 11), Ticket(4)]) == (11 / 66, "denoising: step 11 of 66")
    assert status([Ticket(None, 33, finished=True), Ticket(None, 0)])[1] == "denoising: step 33 of 66"


def test_room_settings_come_from_the_environment_and_bad_ones_say_what_they_take():
    from dataclasses import fields

    from serving.settings import RoomSettings

    # each setting's variable is DIFFUSION_LAB_<its name>, documented where it is declared
    for f in fields(RoomSettings):
        assert f.metadata["env"] == f"DIFFUSION_LAB_{f.name.upper()}" and f.metadata["doc"], f.name

    s = RoomSettings.from_env(
        {"DIFFUSION_LAB_COMPUTE_WORKERS": "4", "DIFFUSION_LAB_FAST": "0", "DIFFUSION_LAB_WARM_SEEDS": "1, 100"}
    )
    assert (s.compute_workers, s.fast, s.warm_seeds, s.warm) == (4, False, (1, 100), True)
    names = RoomSettings.from_env({"DIFFUSION_LAB_WARM_BACKENDS": "Emoji (colour, flow), Fashion-MNIST,Emoji (colour)"})
    assert names.warm_backends == (
        "Emoji (colour, flow)",
        "Fashion-MNIST",
        "Emoji (colour)",
    )  # a name's own comma stays
    with pytest.raises(ValueError, match="DIFFUSION_LAB_COMPUTE_WORKERS='many': it takes a whole number"):
        RoomSettings.from_env({"DIFFUSION_LAB_COMPUTE_WORKERS": "many"})
    with pytest.raises(ValueError, match="DIFFUSION_LAB_FAST='maybe': it takes 0 or 1"):
        RoomSettings.from_env({"DIFFUSION_LAB_FAST": "maybe"})
    with pytest.raises(ValueError, match="multiple of DIFFUSION_LAB_BATCH_QUANTUM"):
        RoomSettings.from_env({"DIFFUSION_LAB_BATCH_ROWS": "10"})


def test_the_warm_up_serves_the_servers_edition_first_and_the_others_once_the_room_is_quiet():
    """A room that comes in while the lecturer's edition is warm must not wait behind the other edition's warm-up:
    the later backends' defaults are asked for only once nobody has asked for anything for a while. A backend that
    cannot load (a misspelt name) costs only itself."""
    from serving.room import warm_defaults

    class Ticket:
        def wait(self):
            return None

    class Queue:
        quiet = threading.Event()

        def idle_s(self):
            return 1e9 if self.quiet.is_set() else 0.0

    class FakeRoom:  # records what the warm-up asks for
        queue, warmed, closed, asked = Queue(), threading.Event(), threading.Event(), []

        def warm(self, requests):
            self.asked += [request for request, _ in requests]
            return [Ticket() for _ in requests]

    r, dens = FakeRoom(), {name: load_backend(name) for name in ("MNIST digits", "MNIST digits (flow)")}
    thread = threading.Thread(
        target=warm_defaults,
        args=(
            r,
            ["Emoji (colour", "MNIST digits"],
            [0],
            lambda name, _: dens[name],
            lambda name: torch.zeros(1, 1, 28, 28),
            (),
            ["MNIST digits (flow)"],
        ),
    )
    thread.start()
    time.sleep(2.0)  # the lecturer's edition is warmed; the room is never quiet yet
    assert r.asked and {request.backend for request in r.asked} == {"MNIST digits"} and not r.warmed.is_set()
    Queue.quiet.set()
    thread.join(60)
    assert r.warmed.is_set() and {request.backend for request in r.asked} == {"MNIST digits", "MNIST digits (flow)"}
    assert all(
        request.backend == "MNIST digits" for request in r.asked[: len(r.asked) // 2]
    )  # the server's edition first


def test_thirty_browsers_that_open_four_pages_at_once_all_connect_and_get_their_pictures(tmp_path):
    """A lecture's first minute at a warmed server: the pictures of 1.1, 1.6, 1.7 and 1.8 are computed (here by the
    lecturer's browser, which opens them first; the warm-up does it at start), then 30 browsers open those pages at the
    same moment: every websocket handshake is answered (within remote_client.CONNECT_TIMEOUT_S), every page shows its
    pictures without an error, and the server computes nothing for them; then all change their seed and get theirs
    (the times are benchmarks/bench_room.py --spread's)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_room import SPREAD_PAGES, spread

    log = tmp_path / "computed.log"
    with serve_app({"DIFFUSION_LAB_RUNS": str(tmp_path / "runs"), "DIFFUSION_LAB_COMPUTE_LOG": str(log)}) as (url, _):
        for page in SPREAD_PAGES:
            with RemoteClient(url, page) as lecturer:  # the pages' pictures computed: the room finds them warm
                assert not lecturer.errors and lecturer.images
        warmed, after_first_load = len(computed(log)), []
        room = spread(
            [url], 30, SPREAD_PAGES, seed_base=7000, between=lambda: after_first_load.append(len(computed(log)))
        )
    assert room["failed_connect"] == 0 and len(room["connect"]) == 30
    assert len(room["first"]) == 30 and len(room["change"]) == 30 and room["errors"] == []
    assert warmed > 0 and after_first_load == [warmed]  # the first load of 30 browsers computed nothing
    assert len(computed(log)) > warmed  # (their new seeds did)


def test_part_bs_warm_up_stops_when_the_room_asks_for_something_and_goes_on_once_it_is_quiet():
    """Part B's generators page warms on one core once the room is quiet; a room that asks for something meanwhile
    (here: the queue busy for a while) stops it at its next step, and it starts again once the room is quiet."""
    from serving.queue import Cancelled
    from serving.room import warm_defaults

    class Queue:
        calls = 0

        def idle_s(self):
            self.calls += 1
            return 0.0 if 20 <= self.calls < 22 else 1e9  # a browser's request runs for a while, then the room is quiet

    class FakeRoom:
        queue, warmed, closed = Queue(), threading.Event(), threading.Event()

        def warm(self, requests):
            return []

    attempts, steps = [], []

    def part_b(seed, busy):  # 30 steps of sampling, checking busy() at each as serving.generators.sample does
        attempts.append(seed)
        for _ in range(30):
            steps.append(1)
            if busy():
                raise Cancelled("busy")

    r = FakeRoom()
    warm_defaults(r, [], [7], lambda *_: None, lambda name: None, [part_b])
    assert r.warmed.is_set() and attempts == [7, 7] and len(steps) > 30  # stopped once, then done in full
