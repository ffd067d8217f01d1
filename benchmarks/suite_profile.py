"""Where the test suite's time and CPU go: a pytest plugin that records, per test, its wall time and the CPU of its
test process and everything that process started (servers, training processes, a local Ray), and a summary by file.

    PYTHONPATH=benchmarks python -m pytest -p suite_profile     # writes runs/suite_profile.jsonl (SUITE_PROFILE=FILE)
    python benchmarks/suite_profile.py [FILE]                   # by file: CPU, wall, when it ran and on which process

The suite is CPU-bound on two cores (three test processes, each with its servers and training processes): its length
is about the CPU it needs over the cores, so cutting a file's CPU shortens the suite, and cutting a file's waiting does
not, unless that file is the longest one process runs (the summary's first line says which file ended last).
CPU is counted as the test process's own, plus its children's once reaped, plus the growth of its live descendants;
a process that outlives its test (a module's server) is counted in the test that reaps it.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path

OUT = Path(os.environ.get("SUITE_PROFILE", "runs/suite_profile.jsonl"))
_started: dict[str, tuple] = {}
_recording = False  # on a test process (xdist's controller hears every test too: it records nothing)


def pytest_configure(config):
    global _recording
    _recording = hasattr(config, "workerinput") or config.getoption("dist", "no") == "no"


def _cpu() -> tuple[float, dict[int, float]]:
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    live = {}
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
            live[child.pid] = c.user + c.system
        except psutil.Error:
            pass
    return t.user + t.system + t.children_user + t.children_system, live


def pytest_runtest_logstart(nodeid, location):
    if _recording:
        _started[nodeid] = (time.time(), *_cpu())


def pytest_runtest_logfinish(nodeid, location):
    if nodeid not in _started:
        return
    t0, cpu0, live0 = _started.pop(nodeid)
    cpu1, live1 = _cpu()
    grown = sum(v - live0.get(pid, 0.0) for pid, v in live1.items())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        row = {"id": nodeid, "process": os.environ.get("PYTEST_XDIST_WORKER", "main"), "t0": t0, "t1": time.time()}
        f.write(json.dumps(row | {"cpu": round(cpu1 - cpu0 + grown, 2)}) + "\n")


def summary(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    start, end = min(r["t0"] for r in rows), max(r["t1"] for r in rows)
    files: dict[str, list] = collections.defaultdict(lambda: [0.0, float("inf"), 0.0, ""])
    for r in rows:
        f = files[r["id"].split("::")[0]]
        f[0] += r["cpu"]
        f[1], f[2], f[3] = min(f[1], r["t0"]), max(f[2], r["t1"]), r["process"]
    last = max(files, key=lambda name: files[name][2])
    lines = [
        f"{len(rows)} tests, {end - start:.0f} s from the first to the last, {sum(r['cpu'] for r in rows):.0f} CPU-s; "
        f"ended last: {last}",
        f"{'CPU-s':>7} {'wall s':>7}  {'from..to (s)':>13}  process  file",
    ]
    for name, (cpu, t0, t1, process) in sorted(files.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"{cpu:7.0f} {t1 - t0:7.0f}  {t0 - start:6.0f}..{t1 - start:<6.0f}  {process:7}  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    if not path.is_file():
        sys.exit(
            f"no profile at {path}: run the suite with `PYTHONPATH=benchmarks python -m pytest -p suite_profile` first"
        )
    print(summary(path))
