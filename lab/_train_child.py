"""The training process of a job (lab.jobs): ``python -m lab._train_child RUN_DIR CONFIG_JSON [--resume]``.

Runs lab.train.train and writes its events (no tensors) to stdout, one JSON object per line; "stop" on stdin, or
stdin closing (the server went away), stops the run at the next step with a checkpoint. An exception becomes
an event {"kind": "error", "summary": ..., "traceback": ...} and exit code 1.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from pathlib import Path

import torch

from lab.train import TrainConfig, train


def main(argv: list[str]) -> int:
    run_dir, config, resume = argv[0], TrainConfig.from_dict(json.loads(argv[1])), "--resume" in argv[2:]
    if os.environ.get("DIFFUSION_LAB_TRAIN_THREADS"):
        torch.set_num_threads(int(os.environ["DIFFUSION_LAB_TRAIN_THREADS"]))
    stop = threading.Event()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    out = sys.stdout
    try:
        for event in train(config, run_dir, resume=resume, stop=stop.is_set):
            event = {k: str(v) if isinstance(v, Path) else v for k, v in event.items() if k not in ("samples", "config")}
            out.write(json.dumps(event) + "\n")
            out.flush()
    except BaseException as e:  # noqa: BLE001  (the server keeps it with the job)
        out.write(json.dumps({"kind": "error", "summary": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}) + "\n")
        out.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
