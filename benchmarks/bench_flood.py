"""Benchmark of a flood: one browser steps its seed every --gap seconds without waiting for a picture, while another
browser changes its own seed; how long the other's picture takes, against the same request with the room quiet.

    python benchmarks/bench_flood.py [--page a5_sample] [--gap 0.1] [--repeats 3] [--app DIR] [--json FILE]

The app is started as the README starts it (`streamlit run Home.py`, no warm-up: every seed is computed); both
clients speak the browser's protocol (tests/remote_client.py). --app runs another checkout's app (main before a
change) with these clients. tests/test_room_safety.py asserts the same scenario's bound (at most 1 s more than alone).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from remote_client import RemoteClient  # noqa: E402
from test_browser import serve_app  # noqa: E402


def flood_figures(app: Path, page: str, gap: float, repeats: int) -> dict:
    env = {"DIFFUSION_LAB_RUNS": tempfile.mkdtemp(prefix="flood-runs-"), "DIFFUSION_LAB_WARM": "0"}
    with serve_app(env, root=app) as (url, _), RemoteClient(url, page) as other, RemoteClient(url, page) as flooder:
        alone = [other.change("Seed", 1000 + i)["last_image"] for i in range(repeats)]
        stop, clicks = threading.Event(), [0]

        def flood() -> None:
            while not stop.is_set():
                flooder.change_nowait("Seed", 5000 + clicks[0])
                flooder.drain(gap)
                clicks[0] += 1

        thread = threading.Thread(target=flood)
        thread.start()
        try:
            time.sleep(2.0)  # the flood is under way
            during = [other.change("Seed", 2000 + i)["last_image"] for i in range(repeats)]
        finally:
            stop.set()
            thread.join(30)
    return {
        "app": str(app),
        "page": page,
        "gap_s": gap,
        "alone_s": alone,
        "during_flood_s": during,
        "flood_clicks": clicks[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", default="a5_sample")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between the flooding browser's clicks")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--app", type=Path, default=ROOT, help="the checkout whose app is served")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = flood_figures(args.app, args.page, args.gap, args.repeats) | {
        "machine": platform.processor() or platform.machine()
    }
    print(
        f"{args.page}: alone {', '.join(f'{t:.2f}' for t in figures['alone_s'])} s; during the flood "
        f"{', '.join(f'{t:.2f}' for t in figures['during_flood_s'])} s ({figures['flood_clicks']} clicks)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
