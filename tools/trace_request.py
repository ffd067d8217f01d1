"""Which repository files a page's request runs through, from the page's script to the network's forward, traced.

    python tools/trace_request.py                                     # 3.1 image-to-image editing, colour flow
    python tools/trace_request.py a6_cfg.py --backend "Emoji (colour)" --control slider cfg_gamma 5

The page opens in Streamlit's AppTest as Home.py runs it (the sidebar, run_page); then the control is moved, so the
page asks the room for something new, and every Python call of that rerun is recorded (the room's threads start
after the recording does, so the queue worker's and the batcher's calls are in it). A file is on the request path
when its code runs on the way from the page's script to a network's forward: in the page's thread, what called its
first request (serving/requests.py) and every call from then to its last call into the room (its wait); in the room's
threads, any call outside a torch module's forward (the network's own code: models/unet.py, diffusers).
docs/architecture.md describes the path this prints.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DIFFUSION_LAB_WARM", "0")  # the warm-up's threads would trace the whole catalogue

ROOM_FILES = ("serving/requests.py", "serving/room.py", "serving/queue.py")  # the hand-over from a page to the room
SCRIPT = """
import runpy
from ui.shell import run_page
run_page(lambda: runpy.run_path({path!r}), {page!r}, url={url!r})
"""


def repo_file(frame) -> str | None:
    f = frame.f_code.co_filename
    return f[len(str(ROOT)) + 1 :] if f.startswith(str(ROOT) + os.sep) else None


def in_forward(frame) -> bool:
    """frame runs inside a torch module's forward (the network's own code)."""
    import torch

    while frame is not None:
        if frame.f_code.co_name == "forward" and isinstance(frame.f_locals.get("self"), torch.nn.Module):
            return True
        frame = frame.f_back
    return False


def trace(page: str, backend: str, control: tuple[str, str, str]) -> dict[str, dict[str, list[str]]]:
    """{thread kind: {file: functions}} of the request path, in the order the files first ran (see the docstring)."""
    from streamlit.testing.v1 import AppTest

    from ui.catalog import EDITIONS
    from ui.state import room as server_room

    entry = next(p for e in EDITIONS.values() for p in e.pages if p.file == page)
    folder = "part_a_flow" if page.startswith("f") else "part_a"
    path = str(ROOT / "app_pages" / folder / page)
    seen: dict[str, dict[str, list[str]]] = collections.defaultdict(dict)
    recording = threading.Event()
    page_calls: list[list[tuple[str, str]]] = []  # the page's thread's calls below its script, each with its stack

    def add(kind: str, file: str, fn: str) -> None:
        fns = seen[kind].setdefault(file, [])
        if fn not in fns:
            fns.append(fn)

    def profile(frame, event, arg):
        if event != "call" or not recording.is_set() or (file := repo_file(frame)) is None:
            return
        stack, f = [], frame
        while f is not None and f.f_code.co_filename != path:
            stack.append(f)
            f = f.f_back
        # below the page's script, in its thread: the repository's frames from the page down to this call
        if f is not None and stack:
            page_calls.append([(name, g.f_code.co_name) for g in reversed(stack) if (name := repo_file(g))])
        elif threading.current_thread().name.startswith(("ScriptRunner", "MainThread")):
            return  # the page's thread outside the page's script: the sidebar, the page's frame
        elif "tools/" not in file and not in_forward(frame):  # the room's threads, up to a network's forward
            add(threading.current_thread().name.split("_")[0].split("-")[0], file, frame.f_code.co_name)

    server_room.clear()  # a fresh room, so that its threads start after the profile is set (a process may have one)
    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        at = AppTest.from_string(SCRIPT.format(path=path, page=page, url=entry.url), default_timeout=600)
        at.query_params.update({"backend": backend, "edition": "2026" if folder == "part_a_flow" else "2024"})
        at.run()
        kind, key, value = control
        widget = getattr(at, kind)(key=key)
        recording.set()
        widget.set_value(type(widget.value)(value)).run()
        time.sleep(0.5)  # the room's threads end their round (the page has its pictures once they are packed)
        recording.clear()
    finally:
        threading.setprofile(None)
        sys.setprofile(None)
        server_room.clear()  # its threads carry the profile: the next page of this process gets a room of its own
    if at.exception or at.error:
        raise SystemExit(f"the page failed: {at.exception or [e.value for e in at.error]}")
    # the page's thread: from its first request (serving/requests.py) to its last call into the room (its wait ends)
    handed = [k for k, calls in enumerate(page_calls) if calls[-1][0] in ROOM_FILES]
    if handed:
        for file, fn in page_calls[min(handed)][:-1]:  # what called the first request, from the page down
            add("page", file, fn)
        for calls in page_calls[min(handed) : max(handed) + 1]:
            add("page", *calls[-1])
    return {"page": seen.pop("page", {}), **seen}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", nargs="?", default="f3_1_edit.py", help="a Part A page's file (ui/catalog.py)")
    ap.add_argument("--backend", default="Emoji (colour, flow)")
    ap.add_argument("--control", nargs=3, default=["slider", "edit_test_w", "3.0"], metavar=("KIND", "KEY", "VALUE"))
    a = ap.parse_args()
    seen = trace(a.page, a.backend, tuple(a.control))
    files = list(dict.fromkeys(f for kind in seen.values() for f in kind))
    for kind, found in seen.items():
        print(f"{kind} thread:")
        for file, fns in found.items():
            print(f"  {file}: {', '.join(fns[:8])}{' ...' if len(fns) > 8 else ''}")
    print(f"{len(files)} files from the page's script to the network's forward: {' '.join(files)}")


if __name__ == "__main__":
    main()
