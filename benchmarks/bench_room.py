"""Benchmark of a room on one server: N browsers on one `streamlit run Home.py`, as a lecture uses it.

    python benchmarks/bench_room.py [--sizes 1,4,30] [--steady 120] [--mean-gap 20] [--app DIR] [--json FILE]

The app is started as the README starts it, once per room size; the lecturer opens it (the Welcome page) --lead
seconds before the room comes in, as before a lecture. The room's clients speak the browser's protocol
(tests/remote_client.py: they paint nothing, as students' browsers on their own laptops), on the pages
1.1, 1.6, 1.7, 1.8 and 1.9 with the default backend (MNIST digits):
(a) burst, page by page: all N clients open the page at once (first load), then all change the sidebar's seed at
    once; client i takes seed base + i // 3, so every seed is shared by up to three clients (a lecture: "pick a
    seed", neighbours pick the same);
(b) steady: client i stays on page i mod 5 and changes the seed at random moments (Poisson, mean --mean-gap s per
    client; every seed unique) for --steady seconds.
Latency is from the message that opens the page or carries the changed widget to the run's last image (to the end of
its run where it shows none). Reported: p50 / p95 / max, errors (error messages and exceptions on the page, clients
that timed out), whether clients with equal settings got equal pictures (Streamlit names an image by its bytes),
the server's CPU (cores, averaged over the phase) and its peak memory (VmHWM). Then the bundled backend's inference
cost per image, fp32 as the lab's exact path runs it and the server's fast path, against this CPU's GEMM peaks.
--app runs another checkout's app (for example main before a change) with this benchmark's clients.

Beyond one machine: --cluster serves Part A from Ray Serve (DIFFUSION_LAB_CLUSTER=auto; a fresh
`ray start --head` per room, --ray-cpus CPUs, each backend's Serve replica --serve-cpus of them) and --replicas 1,2
runs each room on that many app servers (client i on server i mod k, as a sticky load balancer spreads browsers);
then the batch sizes Ray Serve formed are reported, and CPU is counted for the whole machine (the model runs in Ray's
processes, not the servers').

    python benchmarks/bench_room.py --cluster --sizes 30,100 --replicas 1,2 --no-inference

--spread runs only the room of a lecture's first minute: the lecturer opens the Welcome page, --lead (60) s later
(the warm-up done) the clients open 1.1, 1.6, 1.7 and 1.8 at once (client i on page i mod 4, default seed), then
change their seed at once; reported: connect (the websocket handshake; failed: none within 10 s), first load, seed
change, at each of --sizes in one run.

    python benchmarks/bench_room.py --spread --sizes 1,30 --no-inference

--edition 2026 runs the same rooms on the Fall 2026 edition's counterparts (1.1 noisy inputs, 2.1 CFG, 3.1 editing,
3.3 anagrams, 3.4 hybrids: a page opens its edition, on its default backend, the digit flow model).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
# the app's packages: this checkout's, or in a model-time child (model_time with --app) the served checkout's
sys.path.insert(0, os.environ["BENCH_ROOM_APP"] if sys.argv[1:2] == ["--model-time"] else str(ROOT))

PAGES = ["a1_forward", "a6_cfg", "a7_sdedit", "a8_anagrams", "a9_hybrids"]
FLOW_PAGES = [
    "f1_1_noisy",
    "f2_1_cfg",
    "f3_1_edit",
    "f3_3_anagrams",
    "f3_4_hybrids",
]  # --edition 2026: their counterparts


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (every process: the servers, Ray's, the clients)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def together(n: int, work) -> list:
    """work(i) for i < n in n threads released at the same moment; an exception is returned, not raised."""
    barrier, out = threading.Barrier(n), [None] * n

    def one(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as e:  # a client that timed out or lost its connection counts as an error
            out[i] = e

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"n": 0}
    xs = sorted(latencies)
    p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
    return {"n": len(xs), "p50": statistics.median(xs), "p95": p95, "max": xs[-1]}


def equal_pictures(groups: dict) -> bool:
    """Every group (clients with equal settings) saw one and the same list of images, and it was not empty."""
    return all(len({tuple(images) for images in lists}) == 1 and lists[0] for lists in groups.values())


def errors_of(clients_or_exceptions) -> list[str]:
    out = []
    for c in clients_or_exceptions:
        if isinstance(c, Exception):
            out.append(f"{type(c).__name__}: {c}")
        else:
            out += c.errors
    return out


def burst(urls: list[str], page: str, n: int, seed_base: int) -> dict:
    from remote_client import RemoteClient

    clients: list = [None] * n

    def open_page(i: int):
        clients[i] = RemoteClient(urls[i % len(urls)], page, QUERY)
        return clients[i].open(timeout=300)

    opened = together(n, open_page)
    live = [c for c in clients if c is not None and c.images is not None]
    first = [o["last_image"] for o in opened if isinstance(o, dict)]
    first_errors = errors_of([o if isinstance(o, Exception) else clients[i] for i, o in enumerate(opened)])
    first_equal = equal_pictures({"default": [clients[i].images for i, o in enumerate(opened) if isinstance(o, dict)]})
    seeds = [seed_base + i // 3 for i in range(n)]
    changed = together(n, lambda i: clients[i].change("Seed", seeds[i], timeout=300))
    change = [o["last_image"] for o in changed if isinstance(o, dict)]
    change_errors = errors_of([o if isinstance(o, Exception) else clients[i] for i, o in enumerate(changed)])
    groups: dict = {}
    for i, o in enumerate(changed):
        if isinstance(o, dict):
            groups.setdefault(seeds[i], []).append(clients[i].images)
    for c in live:
        with contextlib.suppress(Exception):
            c.__exit__(None, None, None)
    return {
        "first": first,
        "change": change,
        "errors": first_errors + change_errors,
        "equal": first_equal and equal_pictures(groups),
        "distinct_seeds": len(set(seeds)),
    }


SPREAD_PAGES = [
    "a1_forward",
    "a6_cfg",
    "a7_sdedit",
    "a8_anagrams",
]  # 1.1, 1.6, 1.7, 1.8: "open 1.6", some already elsewhere
FLOW_SPREAD_PAGES = ["f1_1_noisy", "f2_1_cfg", "f3_1_edit", "f3_3_anagrams"]
# --backend: the room's pages open on this backend (?backend=), which the server warms too; None: the edition's default
BACKEND: str | None = None
QUERY = ""  # the room's clients' query string
WARM: dict[str, str] = {}  # the server's environment for it


def spread(urls: list[str], n: int, pages: list[str], seed_base: int, between=None) -> dict:
    """The room after the warm-up, spread over pages: client i opens pages[i mod len] at the same moment (its default
    seed: warmed), then all change their seed at once. Connect: the websocket handshake (failed: over
    remote_client.CONNECT_TIMEOUT_S, as a browser that shows "Connecting"); first load: connect to the last picture.
    between(): called after the first load, before the seed change (a test counts the computations there)."""
    from remote_client import RemoteClient

    clients: list = [None] * n

    def open_page(i: int):
        clients[i] = RemoteClient(urls[i % len(urls)], pages[i % len(pages)], QUERY)
        return clients[i].open(timeout=300)

    opened = together(n, open_page)
    connected = [c for c in clients if c is not None and hasattr(c, "connect_s")]
    first = [o["last_image"] for o in opened if isinstance(o, dict)]
    per_page = {
        page: {
            "last_picture": [
                o["last_image"] for i, o in enumerate(opened) if isinstance(o, dict) and i % len(pages) == k
            ],
            "finished": [o["finished"] for i, o in enumerate(opened) if isinstance(o, dict) and i % len(pages) == k],
        }
        for k, page in enumerate(pages)
    }
    errors = errors_of([o if isinstance(o, Exception) else clients[i] for i, o in enumerate(opened)])
    live = [i for i, o in enumerate(opened) if isinstance(o, dict)]
    if between is not None:
        between()
    changed = together(len(live), lambda k: clients[live[k]].change("Seed", seed_base + live[k], timeout=300))
    change = [o["last_image"] for o in changed if isinstance(o, dict)]
    errors += errors_of([o if isinstance(o, Exception) else clients[live[k]] for k, o in enumerate(changed)])
    for c in connected:
        with contextlib.suppress(Exception):
            c.__exit__(None, None, None)
    return {
        "connect": [c.connect_s for c in connected],
        "failed_connect": n - len(connected),
        "first": first,
        "change": change,
        "errors": errors,
        "first_finished": [f for p in per_page.values() for f in p["finished"]],
        "pages": per_page,
    }


def model_time(pages: list[str], seeds: list[int], edition: str, app: Path = ROOT) -> dict:
    """The room's model time for the distinct work of a seed change: page pages[i mod len] at seeds[i] for each client
    i, the requests those pages make with their defaults (serving.defaults; a page without a model makes none), each
    (page, seed) once, all submitted at once to a Room with the server's settings (the same queue workers, batching and
    fast path as the server, nothing else running): the wall time until the last is done. In this process on this
    checkout's code and weights; for another app (--app), in a child process on that checkout's."""
    if app.resolve() != ROOT.resolve():
        import subprocess

        job = json.dumps({"pages": pages, "seeds": seeds, "edition": edition, "backend": BACKEND})
        env = dict(os.environ, BENCH_ROOM_APP=str(app.resolve()))
        out = subprocess.run([sys.executable, __file__, "--model-time", job], env=env, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"the model time on {app} failed:\n{out.stderr[-4000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    import torch

    from lab.data import test_images
    from models.bundled import ALL_BACKENDS, BACKENDS, FLOW_BACKENDS, load_backend
    from serving.defaults import default_requests
    from serving.room import Room
    from serving.settings import RoomSettings

    name = BACKEND or next(iter(FLOW_BACKENDS if edition == "2026" else BACKENDS))
    threads = torch.get_num_threads()
    # as in the server, only the room's threads compute with more than one torch thread: this thread loads on one (an
    # OpenMP team left here would slow the room's model calls: serving.batching.own_threads)
    torch.set_num_threads(1)
    den = load_backend(name, "cpu")
    x0 = test_images(ALL_BACKENDS[name][1], den.image_shape, 1)
    r = Room(dataclasses.replace(RoomSettings.from_env({}), model_threads=threads))
    distinct = sorted({(pages[i % len(pages)], seed) for i, seed in enumerate(seeds)})
    requests = [req for page, seed in distinct for req in default_requests(name, "cpu", seed, den, x0).get(page, [])]
    c0, t0 = cpu_seconds(os.getpid()), time.perf_counter()  # this process's, its OpenMP workers included
    for ticket in r.submit(requests, lambda *_: den):
        ticket.wait()
    seconds, cpu = time.perf_counter() - t0, cpu_seconds(os.getpid()) - c0
    r.close()
    torch.set_num_threads(threads)
    return {"seconds": seconds, "cpu": cpu, "distinct": len(distinct), "requests": len(requests)}


def median_model_time(pages: list[str], seeds: list[int], edition: str, app: Path, runs: int = 3) -> dict:
    """model_time runs times (a minute's drift on a shared machine moves one figure by up to 1.5x): the run of median
    seconds, with the spread of all of them."""
    times = sorted((model_time(pages, seeds, edition, app) for _ in range(runs)), key=lambda m: m["seconds"])
    return times[len(times) // 2] | {"all_seconds": [m["seconds"] for m in times]}


def _p(xs: list[float]) -> str:
    s = summary(xs)
    return f"{s['p50']:.2f} / {s['p95']:.2f} s" if s.get("n") else "-"


def ratio(change: dict, model_s: float) -> str:
    """Seed change p95 over the model time of its distinct work ("-" where there was none: 1.1 computes no model)."""
    return f"{change['p95'] / model_s:.2f}" if change.get("n") and model_s > 0.05 else "-"


def spread_rooms(
    app: Path,
    sizes: list[int],
    pages: list[str],
    lead: float,
    log: Path | None,
    profile: Path | None = None,
    edition: str = "2024",
) -> dict:
    """spread() at each size in one run, each on a fresh server that the lecturer opened lead seconds before; with
    profile (a folder), each room once more under py-spy, into that folder (py-spy pauses the server to read its
    stacks: those rooms' times are not the benchmark's, out[n]["profiled"] keeps them apart)."""
    out = {}
    from ui.state import DEFAULT_SEED  # the sidebar's seed: the one the warm-up computes

    defaults = median_model_time(pages, [DEFAULT_SEED] * len(pages), edition, app)  # what a room with the lecturer
    print(  # waits on
        f"  model time of the {len(pages)} pages' default work: {defaults['seconds']:.2f} s (median of "
        f"{', '.join(f'{x:.2f}' for x in defaults['all_seconds'])}), {defaults['cpu']:.2f} s of CPU",
        flush=True,
    )
    for n in sizes:
        out[n] = spread_room(app, n, pages, lead, log)
        out[n]["model"] = model_time(pages, [7000 + i for i in range(n)], edition, app)  # the server stopped
        out[n]["defaults_model"] = defaults
        print(
            f"  spread, {n} clients: connect {summary(out[n]['connect'])}, failed {out[n]['failed_connect']}, first load "
            f"(last picture) {summary(out[n]['first'])}, (end of the run) {summary(out[n]['first_finished'])}, change "
            f"{summary(out[n]['change'])}, errors {len(out[n]['errors'])}; model time of the change's distinct work "
            f"{out[n]['model']}; server CPU until the last first load {out[n]['first_cpu']:.2f} s in "
            f"{out[n]['first_wall']:.2f} s, {cpu_per_client(out[n], defaults, n) * 1e3:.0f} ms a client beyond the "
            "model's for the defaults",
            flush=True,
        )
        for page, p in out[n]["pages"].items():
            print(
                f"    {page}: first load p50 / p95, last picture {_p(p['last_picture'])}, end of the run {_p(p['finished'])}"
            )
        if profile:
            profiled = spread_room(app, n, pages, lead, log, profile / f"spread_{n}.txt")
            out[n]["profiled"] = {k: summary(profiled[k]) for k in ("connect", "first", "change")}
            print(f"  (under the profiler: {out[n]['profiled']})", flush=True)
    return out


@contextlib.contextmanager
def warmed_server(app: Path, log: Path | None):
    """`streamlit run Home.py` in app with a runs folder of its own and the warm-up on, as the README starts it
    (tests/conftest.py, which test_browser imports, turns it off for the tests); yields (its URL, its pid)."""
    from test_browser import serve_app

    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_app({"DIFFUSION_LAB_RUNS": tmp, "DIFFUSION_LAB_WARM": "1"} | WARM, root=app, log=log) as served,
    ):
        yield served


def cpu_per_client(room: dict, defaults: dict, n: int) -> float:
    """The server's CPU seconds a client of the room cost until the last first load, beyond what the model takes alone
    for the pages' defaults (at --lead 0 the room waits on those; a minute later they are warmed, but the server may be
    warming Part B's generators page on one core meanwhile: counted here)."""
    return (room["first_cpu"] - (defaults["cpu"] if room["lead"] == 0 else 0.0)) / n


def spread_room(
    app: Path, n: int, pages: list[str], lead: float, log: Path | None, profile: Path | None = None
) -> dict:
    from remote_client import RemoteClient

    with warmed_server(app, log) as (url, pid):
        with RemoteClient(url, "") as lecturer:
            lecturer_s = lecturer.opened["finished"]
        time.sleep(lead)
        c0, t0 = cpu_seconds(pid), time.time()
        first: dict = {}  # the server's CPU and the wall time until the last client's first load
        with py_spy(pid, profile):
            room_out = spread(
                [url], n, pages, seed_base=7000, between=lambda: first.update(cpu=cpu_seconds(pid), at=time.time())
            )
        return room_out | {
            "first_cpu": first["cpu"] - c0,
            "first_wall": first["at"] - t0,
            "lecturer_s": lecturer_s,
            "lead": lead,
            "cores": (cpu_seconds(pid) - c0) / (time.time() - t0),
            "peak_mb": peak_memory_mb(pid),
        }


VIEW_PAGES = [
    "",
    "a1_forward",
    "a6_cfg",
    "a7_sdedit",
    "a8_anagrams",
    "a9_hybrids",
    "f1_1_noisy",
    "f2_1_cfg",
    "f3_1_edit",
    "f3_3_anagrams",
    "f3_4_hybrids",
]  # the Welcome page and the Part A pages of both editions the rooms open


def view_costs(app: Path, pages: list[str], lead: float, views: int, profile: Path | None, log: Path | None) -> dict:
    """A warmed page view's server CPU, one browser at a time: the lecturer opens the Welcome page, lead s later each
    page is opened once (its own caches), then `views` new sessions per page, one after another; per page the server's
    utime + stime per view (ms; /proc counts in ticks of 10 ms). With profile: a py-spy record of those views."""
    from remote_client import RemoteClient

    out = {}
    with (
        warmed_server(app, log) as (url, pid),
        RemoteClient(url, ""),
    ):  # the lecturer's tab stays open (Streamlit drops its compiled scripts when none is)
        time.sleep(lead)
        for page in pages:
            with RemoteClient(url, page):
                pass
        print(f"  (waited {wait_quiet(pid):.0f} s for the server's background warm-ups to end)", flush=True)
        with py_spy(pid, profile):
            for page in pages:
                c0, t0 = cpu_seconds(pid), time.time()
                for _ in range(views):
                    with RemoteClient(url, page) as c:
                        if c.errors:
                            raise RuntimeError(f"{page or 'Welcome'}: {c.errors}")
                out[page or "welcome"] = {
                    "cpu_ms": 1e3 * (cpu_seconds(pid) - c0) / views,
                    "wall_ms": 1e3 * (time.time() - t0) / views,
                }
                with RemoteClient(url, page) as c:  # the same page rerun in a session that has it open: no session made
                    c0 = cpu_seconds(pid)
                    for _ in range(views):
                        c.change("Seed", 180)  # the sidebar's seed, unchanged: a rerun of the page as it is
                    out[page or "welcome"]["rerun_ms"] = 1e3 * (cpu_seconds(pid) - c0) / views
        out["connect"] = session_setup(url, pid, 10 * views)
    views_out = {k: v for k, v in out.items() if k != "connect"}
    setup = statistics.median(v["cpu_ms"] - v["rerun_ms"] for v in views_out.values())
    out["session_setup_ms"] = setup
    part_a = [v["cpu_ms"] for k, v in views_out.items() if k != "welcome"]
    print(
        "  warmed page views, server CPU per view (ms), a new session / a rerun in an open one: "
        + ", ".join(f"{k} {v['cpu_ms']:.0f} / {v['rerun_ms']:.0f}" for k, v in views_out.items())
        + f"; median of the Part A pages {statistics.median(part_a):.0f} ms",
        flush=True,
    )
    print(
        f"  a new session's setup: {setup:.1f} ms of server CPU (median over the pages of a new session's view less a "
        f"rerun's); a bare websocket session, opened and closed without a page: {out['connect']['cpu_ms']:.1f} ms",
        flush=True,
    )
    return out


def wait_quiet(pid: int, cores: float = 0.05, timeout: float = 600.0) -> float:
    """Wait until the server uses under `cores` of the CPU over a second (its warm-ups of the other edition and Part B
    done: the view and session figures count the whole process's CPU); the seconds waited."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        c0 = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - c0 < cores:
            break
    return time.time() - t0


def session_setup(url: str, pid: int, n: int) -> dict:
    """Server CPU of a new session's setup and teardown: n browsers, one after another, open the websocket (Streamlit
    makes the session: its state, its script runner's setup, any file watcher) and close it without running a page."""
    from websockets.sync.client import connect

    stream = url.replace("http", "ws", 1) + "/_stcore/stream"
    c0 = cpu_seconds(pid)
    for _ in range(n):
        with connect(stream, subprotocols=["streamlit"], ping_interval=None):
            pass
    time.sleep(1.0)  # the server tears the sessions down after the close
    return {"cpu_ms": 1e3 * (cpu_seconds(pid) - c0) / n, "n": n}


@contextlib.contextmanager
def py_spy(pid: int, raw: Path | None, rate: int = 200):
    """py-spy sampling the server's threads (pid) while the block runs, into raw (py-spy's raw format; nothing if raw
    is None)."""
    import shutil
    import signal
    import subprocess

    if raw is None:
        yield
        return
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    spy = subprocess.Popen(
        [exe, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o", str(raw)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
        if raw.exists():
            print(f"  profile {raw}:")
            print_breakdown(breakdown(raw))


# Where a sample is (the first rule, in this order, that some frame of it matches) and what it does (the innermost
# frame that a rule matches); a frame reads "function (file:line)"
WHERE = [
    ("the sidebar", ("sidebar (ui/shell.py",)),
    ("the Export button", ("export_button (ui/",)),
    ("the page's own script", ("Page.run (", "app_pages/")),
    ("the router (Home.py: navigation, the room)", ("Home.py",)),
    ("Streamlit around the script", ("scriptrunner",)),
    ("compute workers", ("serving/queue.py", "serving/batching.py")),
    ("the event loop (websocket, tornado)", ("tornado", "websocket", "asyncio", "selectors", "runtime.py")),
    ("path watchers", ("watcher",)),
]
WHAT = [
    (
        "images and media (to_uint8, PNG, media files)",
        ("to_uint8", "crisp", "_png (", "image_utils", "media_file", "PIL/"),
    ),
    ("job manager and runs folder", ("serving/jobs.py",)),
    ("file system (stat, open, paths)", ("pathlib.py", "posixpath", "genericpath", "os.py", "tokenize.py")),
    ("compiling scripts (magic, ast)", ("script_cache", "magic.py", "ast.py")),
    ("cached lookups (cache_resource / cache_data)", ("runtime/caching",)),
    ("widgets and session state", ("elements/widgets", "elements/lib/policies", "state/", "widgets.py")),
    (
        "elements and messages (protobuf, deltas)",
        ("delta_generator", "protobuf", "forward_msg", "_pb2", "elements/", "metrics_util"),
    ),
    ("the models (torch, lab/, models/)", ("torch/", "lab/", "models/")),
    ("websocket and tornado", ("tornado", "websocket", "asyncio", "selectors")),
]


# Samples of a thread waiting (py-spy counts a wait with a timeout, and the event loop's epoll, as busy): left out
IDLE = (
    "Condition.wait (",
    "Event.wait (",
    "_worker (concurrent/futures/thread.py",
    "Runner.run (asyncio/runners.py",
    "select (",
    "sleep (",
    "Thread.join (",
    "task (streamlit/watcher/polling_path_watcher.py:90)",
)  # (the last: its time.sleep)


def breakdown(raw: Path) -> dict[str, dict[str, float]]:
    """Shares of py-spy's busy samples (raw format): {"where": {...}, "what": {...}}, largest first, "other" for the
    rest."""
    where: collections.Counter = collections.Counter()
    what: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")[1:]  # the first names the process
        if not frames or any(k in frames[-1] for k in IDLE):
            continue
        where[next((name for name, keys in WHERE if any(k in f for f in frames for k in keys)), "other")] += int(n)
        what[
            next((name for f in reversed(frames) for name, keys in WHAT if any(k in f for k in keys)), "other Python")
        ] += int(n)
    total = sum(where.values()) or 1
    return {
        "samples": total,
        "where": {k: v / total for k, v in where.most_common()},
        "what": {k: v / total for k, v in what.most_common()},
    }


def print_breakdown(b: dict) -> None:
    print(f"    {b['samples']} busy samples")
    for part in ("where", "what"):
        print(f"    {part}: " + "; ".join(f"{k} {v:.1%}" for k, v in b[part].items()), flush=True)


def steady(urls: list[str], n: int, seconds: float, mean_gap: float, seed_base: int, pages: list[str] = PAGES) -> dict:
    from remote_client import RemoteClient

    rng = random.Random(0)
    gaps = [[rng.expovariate(1 / mean_gap) for _ in range(1000)] for _ in range(n)]
    latencies, errors, lock = [], [], threading.Lock()

    def client(i: int) -> None:
        with RemoteClient(urls[i % len(urls)], pages[i % len(pages)], QUERY) as c:
            end, k = time.time() + seconds, 0
            while True:
                time.sleep(gaps[i][k])
                if time.time() >= end:
                    return
                out = c.change("Seed", seed_base + 1000 * i + k, timeout=300)
                with lock:
                    latencies.append(out["last_image"])
                    errors.extend(c.errors)
                k += 1

    results = together(n, client)
    return {"latencies": latencies, "errors": errors + errors_of([r for r in results if isinstance(r, Exception)])}


def room(
    n: int,
    app: Path,
    steady_s: float,
    mean_gap: float,
    lead: float,
    log: Path | None,
    replicas: int = 1,
    cluster: dict | None = None,
    page_names: list[str] = PAGES,
) -> dict:
    from remote_client import RemoteClient
    from test_browser import serve_app

    out = {"clients": n, "replicas": replicas, "cluster": bool(cluster)}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        env = {"DIFFUSION_LAB_RUNS": tmp, "DIFFUSION_LAB_WARM": "1"} | WARM
        if cluster:
            stack.enter_context(ray_head(cluster["cpus"]))
            env |= {"DIFFUSION_LAB_CLUSTER": "auto", "DIFFUSION_LAB_SERVE_CPUS": str(cluster["serve_cpus"])}
        servers = [stack.enter_context(serve_app(env, root=app, log=log)) for _ in range(replicas)]
        urls, pids = [url for url, _ in servers], [pid for _, pid in servers]
        for url in urls:
            with RemoteClient(url, "") as lecturer:  # each server's first session: its imports, the room's warm-up
                out.setdefault("lecturer_s", lecturer.opened["finished"])
        time.sleep(lead)
        cpu = lambda: machine_cpu_seconds() if cluster else sum(cpu_seconds(p) for p in pids)  # noqa: E731
        t0, c0 = time.time(), cpu()
        pages = {}
        for k, page in enumerate(page_names):
            pages[page] = burst(urls, page, n, seed_base=1000 * (k + 1))
            print(
                f"  {n} clients, burst {page}: first {summary(pages[page]['first'])}, change {summary(pages[page]['change'])}",
                flush=True,
            )
        out["burst_cores"] = (cpu() - c0) / (time.time() - t0)
        out["burst"] = pages
        t0, c0, s0 = time.time(), cpu(), sum(cpu_seconds(p) for p in pids)
        out["steady"] = (
            steady(urls, n, steady_s, mean_gap, seed_base=100_000, pages=page_names)
            if steady_s > 0
            else {"latencies": [], "errors": []}
        )
        out["steady_cores"] = (cpu() - c0) / (time.time() - t0)
        if cluster:  # the app servers' own share in the steady phase (pages, reruns, PNGs): what sizes the app replicas
            out["steady_server_cores"] = (sum(cpu_seconds(p) for p in pids) - s0) / (time.time() - t0)
        out["peak_mb"] = sum(peak_memory_mb(p) for p in pids)
        if cluster:
            out["serve"] = serve_stats()
            print(f"  Ray Serve: {out['serve']}", flush=True)
    return out


@contextlib.contextmanager
def ray_head(cpus: int):
    """A fresh local Ray cluster (`ray start --head`) for one room: nothing cached from another room."""
    import subprocess

    subprocess.run(
        [
            "ray",
            "start",
            "--head",
            f"--num-cpus={cpus}",
            "--num-gpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield
    finally:
        subprocess.run(["ray", "stop", "--force"], capture_output=True)


def serve_stats() -> dict:
    """What the digit backend's Serve deployment did: requests, computed / joined / cached, the batch sizes it formed."""
    import ray

    from serving.serve import PartAOnRay
    from serving.settings import ClusterSettings, RoomSettings

    try:
        stats = PartAOnRay(RoomSettings(), ClusterSettings(cluster="auto")).stats("MNIST digits")
    finally:
        ray.shutdown()
    sizes = stats.pop("batch_sizes")
    model = stats.pop("model") or {}
    return stats | {
        "batches": len(sizes),
        "batch_mean": round(statistics.mean(sizes), 2) if sizes else 0,
        "batch_max": max(sizes, default=0),
        "batch_hist": dict(sorted(collections.Counter(sizes).items())),
        "model_calls": model.get("model_calls"),
        "loop_steps": model.get("steps"),
        "rows_per_call": round(model["rows"] / model["model_calls"], 1) if model.get("model_calls") else None,
    }


def gemm_peaks() -> dict:
    """GFLOP/s of a 2048^3 matrix product, fp32 and bf16, best of 5 on this machine's torch threads."""
    import torch

    peaks = {}
    for dtype in (torch.float32, torch.bfloat16):
        n = 2048 if dtype == torch.float32 else 512  # bf16 without hardware support is slow: a smaller product
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        best = min(_timed(lambda a=a, b=b: a @ b) for _ in range(5))
        peaks[str(dtype).removeprefix("torch.")] = 2 * n**3 / best / 1e9
    return peaks


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def inference_cost() -> dict:
    """ms per image of one model call of the bundled MNIST backend at several batch sizes: the exact fp32 path and,
    where this checkout has it, the server's fast path (for_inference)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from models.bundled import load_backend

    den = load_backend("MNIST digits")
    x, cond = torch.randn(1, 1, 28, 28), den.encode(["3"])
    with FlopCounterMode(display=False) as counter:
        den(x, 500, cond)
    gflop = counter.get_total_flops() / 1e9
    paths = {"exact": den}
    if hasattr(den, "for_inference"):
        paths["fast"] = den.for_inference()
    out = {"gflop_per_image": gflop}
    for name, model in paths.items():
        for batch in (2, 4, 12, 32):
            xb, cb = x.expand(batch, -1, -1, -1).contiguous(), cond.expand(batch, -1)
            model(xb, 500, cb)
            reps = max(5, 200 // batch)

            def calls(model=model, xb=xb, cb=cb, reps=reps):
                return [model(xb, 500, cb) for _ in range(reps)]

            best = min(_timed(calls) for _ in range(3)) / reps
            out[f"{name}_b{batch}_ms"] = 1e3 * best / batch
    return out


def model_time_child(job: dict) -> None:
    """model_time in a child process, on the served checkout's packages (BENCH_ROOM_APP): its figure as JSON."""
    global BACKEND
    BACKEND = job["backend"]
    print(json.dumps(model_time(job["pages"], job["seeds"], job["edition"])))


def main() -> None:
    if sys.argv[1:2] == ["--model-time"]:
        return model_time_child(json.loads(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,30", help="room sizes, comma-separated")
    parser.add_argument("--steady", type=float, default=120, help="seconds of the steady phase (0: none)")
    parser.add_argument("--mean-gap", type=float, default=20, help="mean seconds between a client's changes (steady)")
    parser.add_argument("--lead", type=float, default=20, help="seconds between the lecturer's first page and the room")
    parser.add_argument("--app", type=Path, default=ROOT, help="the checkout whose app is served")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--server-log", type=Path, help="append the servers' output to this file")
    parser.add_argument("--no-inference", action="store_true", help="skip the in-process inference measurement")
    parser.add_argument(
        "--replicas", default="1", help="app servers per room, comma-separated (clients spread over them)"
    )
    parser.add_argument(
        "--cluster", action="store_true", help="Part A on Ray Serve: a local `ray start --head` per room"
    )
    parser.add_argument(
        "--backend",
        help='the bundled backend the room\'s pages open on (e.g. "Emoji (colour)" with --edition 2024, '
        '"Emoji (colour, flow)" with 2026); default: the edition\'s default',
    )
    parser.add_argument(
        "--edition",
        choices=("2024", "2026"),
        default="2024",
        help="2026: the Fall 2026 pages (1.1, 2.1, "
        "3.1, 3.3, 3.4 on the digit flow backend) instead of 1.1, 1.6, 1.7, 1.8, 1.9",
    )
    parser.add_argument(
        "--ray-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray cluster (--cluster)"
    )
    parser.add_argument(
        "--serve-cpus", type=int, default=os.cpu_count(), help="CPUs (torch threads) of a Serve replica (--cluster)"
    )
    parser.add_argument(
        "--views",
        type=int,
        default=0,
        help="with --spread: first a warmed page view's server CPU, "
        "this many views of each page one at a time (Welcome, both editions' Part A pages)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="with --spread: a folder for py-spy records of the views and rooms, "
        "and their breakdown printed (py-spy must be installed: pip install py-spy)",
    )
    parser.add_argument(
        "--spread",
        action="store_true",
        help="only the room that arrives after the warm-up, spread over "
        "1.1, 1.6, 1.7 and 1.8 (or the Fall 2026 counterparts), at each size (--lead 60 by default)",
    )
    args = parser.parse_args()
    if args.backend:
        global BACKEND, QUERY, WARM
        BACKEND, QUERY = args.backend, urllib.parse.urlencode({"backend": args.backend})
        WARM = {"DIFFUSION_LAB_WARM_BACKENDS": args.backend}
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; app: {args.app}",
        flush=True,
    )
    report = {"app": str(args.app)}
    if not args.no_inference:
        report["peaks"], report["inference"] = gemm_peaks(), inference_cost()
        print(json.dumps(report["peaks"]), json.dumps(report["inference"]), flush=True)
    cluster = {"cpus": args.ray_cpus, "serve_cpus": args.serve_cpus} if args.cluster else None
    report["cluster"] = cluster
    pages = FLOW_PAGES if args.edition == "2026" else PAGES
    report["edition"] = args.edition
    if args.spread:
        lead = args.lead if "--lead" in sys.argv else 60.0
        spread_pages = FLOW_SPREAD_PAGES if args.edition == "2026" else SPREAD_PAGES
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        if args.views:
            raw = args.profile / "views.txt" if args.profile else None
            report["views"] = view_costs(args.app.resolve(), VIEW_PAGES, lead, args.views, raw, args.server_log)
        report["spread"] = spread_rooms(
            args.app.resolve(),
            [int(n) for n in args.sizes.split(",")],
            spread_pages,
            lead,
            args.server_log,
            args.profile,
            args.edition,
        )
        print(
            "\n| clients | connect p50 / p95 / max (s) | failed connections | first load p50 / p95 / max: last "
            "picture | end of the run | p95 / model time of the pages' defaults | seed change | model time of "
            "its distinct work | p95 / model time | errors | server cores | server CPU to the last first load (a client, beyond "
            "the model) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        fmt = lambda s: "-" if not s.get("n") else f"{s['p50']:.2f} / {s['p95']:.2f} / {s['max']:.2f}"  # noqa: E731
        for n, r in report["spread"].items():
            print(
                f"| {n} | {fmt(summary(r['connect']))} | {r['failed_connect']} | {fmt(summary(r['first']))} | "
                f"{fmt(summary(r['first_finished']))} | {ratio(summary(r['first']), r['defaults_model']['seconds'])} | "
                f"{fmt(summary(r['change']))} | {r['model']['seconds']:.2f} s ({r['model']['distinct']} page-seeds) | "
                f"{ratio(summary(r['change']), r['model']['seconds'])} | {len(r['errors'])} | {r['cores']:.2f} | "
                f"{r['first_cpu']:.2f} s in {r['first_wall']:.2f} s ({cpu_per_client(r, r['defaults_model'], n) * 1e3:.0f} ms) |"
            )
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=str))
        return
    report["rooms"] = [
        room(int(n), args.app.resolve(), args.steady, args.mean_gap, args.lead, args.server_log, int(k), cluster, pages)
        for n in args.sizes.split(",")
        for k in args.replicas.split(",")
    ]
    print_tables(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


def print_tables(report: dict) -> None:
    fmt = lambda s: "-" if not s.get("n") else f"{s['p50']:.2f} / {s['p95']:.2f} / {s['max']:.2f}"  # noqa: E731
    print(
        "\n| clients | app servers | burst: first load p50 / p95 / max (s) | burst: seed change | steady: seed "
        "change | errors | equal settings, equal pictures | CPU burst / steady (cores: the servers; with Ray "
        "the whole machine) | servers' peak memory |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in report["rooms"]:
        first = [x for p in r["burst"].values() for x in p["first"]]
        change = [x for p in r["burst"].values() for x in p["change"]]
        errors = sum(len(p["errors"]) for p in r["burst"].values()) + len(r["steady"]["errors"])
        equal = all(p["equal"] for p in r["burst"].values())
        print(
            f"| {r['clients']} | {r.get('replicas', 1)}{' + Ray' if r.get('cluster') else ''} | "
            f"{fmt(summary(first))} | {fmt(summary(change))} | {fmt(summary(r['steady']['latencies']))} | "
            f"{errors} | "
            f"{'yes' if equal else 'NO'} | {r['burst_cores']:.2f} / {r['steady_cores']:.2f} | {r['peak_mb']:.0f} MB |"
        )
    for r in report["rooms"]:
        if r.get("serve"):
            print(
                f"Ray Serve, {r['clients']} clients on {r['replicas']} app server(s): {r['serve']}; the app servers' own CPU "
                f"in the steady phase: {r['steady_server_cores']:.2f} cores"
            )
    print("\nper page (burst, p95 of first load / of seed change, s):")
    for r in report["rooms"]:
        cells = [
            f"{page} {summary(p['first']).get('p95', 0):.2f} / {summary(p['change']).get('p95', 0):.2f}"
            for page, p in r["burst"].items()
        ]
        print(f"  {r['clients']} clients, {r.get('replicas', 1)} server(s): " + "; ".join(cells))
    if "inference" in report:
        inf, peaks = report["inference"], report["peaks"]
        print(f"\nGEMM peaks (GFLOP/s): {peaks}; model: {inf['gflop_per_image']:.3f} GFLOP per image")
        for key, ms in inf.items():
            if key.endswith("_ms"):
                print(f"  {key}: {ms:.3f} ms per image = {inf['gflop_per_image'] / ms * 1e3:.0f} GFLOP/s")
    for r in report["rooms"]:
        for page, p in r["burst"].items():
            for e in p["errors"][:3]:
                print(f"  error ({r['clients']} clients, {page}): {e[:200]}")


if __name__ == "__main__":
    main()
