"""The protocol fuzzer (tests/fuzz.py) for as long as you like: seed after seed over every page of both editions and
Part B on one server started as the README starts it; reported: rounds, what broke (page, message), and how long a
fresh browser then waits for the Welcome page.

    python benchmarks/bench_fuzz.py --minutes 10 [--rounds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per page per seed")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--server-log", type=Path, help="the server's output (its tracebacks) here")
    args = parser.parse_args()
    from fuzz import Fuzzer
    from remote_client import RemoteClient
    from test_browser import serve_app
    from test_fuzz import PAGES

    with (
        tempfile.TemporaryDirectory() as runs,
        serve_app({"DIFFUSION_LAB_RUNS": runs}, log=args.server_log) as (url, _),
    ):
        end, seed, rounds, broken = time.time() + 60 * args.minutes, args.seed, 0, []
        while time.time() < end:
            fuzzer = Fuzzer(url, seed=seed)
            for page in PAGES:
                fuzzer.page(page, args.rounds)
                if time.time() >= end:
                    break
            rounds, broken, seed = rounds + fuzzer.rounds, broken + fuzzer.broken, seed + 1
            print(f"seed {seed - 1}: {fuzzer.rounds} rounds, {len(fuzzer.broken)} broken", flush=True)
        t0 = time.time()
        with RemoteClient(url, "") as fresh:
            fresh_s, fresh_errors = time.time() - t0, fresh.errors
    print(
        f"\n{rounds} rounds over {len(PAGES)} pages, seeds {args.seed}..{seed - 1}: {len(broken)} broken; a fresh browser's "
        f"Welcome page afterwards in {fresh_s:.2f} s{', errors: ' + str(fresh_errors) if fresh_errors else ''}"
    )
    for page, what in broken[:30]:
        print(f"  {page or 'welcome'}: {what}")


if __name__ == "__main__":
    main()
