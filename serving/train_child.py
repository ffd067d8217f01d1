"""The training process of a job (serving.jobs): ``python -m serving.train_child RUN_DIR CONFIG_JSON [--resume]``.

Runs lab.train.train and writes its events (no tensors) to stdout, one JSON object per line. The run stops at the
next step with a checkpoint on "stop" on stdin, on stdin closing or stdout breaking (the server went away, killed or
not), and on SIGTERM or SIGINT (a Ctrl-C in the server's terminal reaches its children too): the server decides, the
child never dies mid-step. An exception becomes an event {"kind": "error", "summary": ..., "traceback": ...} and exit
code 1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import torch

from lab.train import train
from lab.train_config import RESUMABLE, TrainConfig
from serving.settings import training_settings


def job_events(config: TrainConfig, run_dir, resume: bool, stop):
    """lab.train.train's events for a job, as plain data (no tensors, paths as text): what a process writes and a Ray
    task (serving.cluster_jobs) yields; the job's settings now are those a resume may change."""
    changes = {k: getattr(config, k) for k in RESUMABLE}
    for event in train(config, run_dir, resume=resume, changes=changes, stop=stop):
        yield {k: str(v) if isinstance(v, Path) else v for k, v in event.items() if k not in ("samples", "config")}


def main(argv: list[str]) -> int:
    run_dir, config, resume = argv[0], TrainConfig.from_dict(json.loads(argv[1])), "--resume" in argv[2:]
    threads = training_settings().train_threads
    if threads:
        torch.set_num_threads(threads)
    stop = threading.Event()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def emit(event: dict) -> None:
        try:
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError, ValueError):  # nobody reads us any more: checkpoint at the next step and end
            stop.set()
            sys.stdout = open(os.devnull, "w")

    try:
        for event in job_events(config, run_dir, resume, stop.is_set):
            emit(event)
    except BaseException as e:
        emit({"kind": "error", "summary": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
