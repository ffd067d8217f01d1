"""The course's 2.6 ("can we get rid of the annoying learning-rate scheduler?"): which constant lr stands in for
ExponentialLR. Each candidate trains the class-conditioned flow model on the course's recipe at a twentieth of its
scale (10 epochs of 3,000 images: 470 steps, the same decay per epoch for the scheduled run), and the bundled classifier
judges 10 samples of each digit (50 Euler steps, CFG 5); the table goes on flow_class_constant's card.

    python tools/sweep_lr.py [--threads 1] [--runs DIR] [--lrs 1e-2 3e-3 1e-3]

Each run resumes where it stopped; a finished one is judged again (cheap) and not retrained.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from lab.generate import class_grid, sample_trained  # noqa: E402
from lab.metrics import accuracy, predict  # noqa: E402
from lab.train import read_history, train  # noqa: E402
from lab.train_config import course_config  # noqa: E402
from models.bundled import load_classifier  # noqa: E402
from tools.train_bundled import COURSE_EPOCHS, RUNS  # noqa: E402

SCALE = dict(
    COURSE_EPOCHS, epoch_images=3_000, snapshot_epochs=(), checkpoint_every_s=120.0
)  # a twentieth of the course's run


def candidates(lrs: list[float]) -> dict[str, dict]:
    """The runs: the course's scheduled lr 1e-2, then each constant lr."""
    runs = {"exponential 1e-2": dict(lr=1e-2, lr_schedule="exponential")}
    runs |= {f"constant {lr:g}": dict(lr=lr, lr_schedule="constant") for lr in lrs}
    return runs


def judged(run: Path, per_class: int = 10) -> tuple[float, float]:
    """The finished run's classifier accuracy on per_class samples of each digit, and its mean loss over the last 100 steps."""
    model, state, _ = load_checkpoint(latest_checkpoint(run))
    labels = class_grid(10, per_class)
    images = sample_trained(model, state["train"], labels, len(labels), 5.0, generator=torch.Generator().manual_seed(0))
    losses = [r["loss"] for r in read_history(run)][-100:]
    return accuracy(predict(load_classifier("mnist"), images)[0], labels), sum(losses) / len(losses)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-2, 3e-3, 1e-3])
    ap.add_argument("--device", default="cpu", help="cuda where a GPU is lent")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = ["| lr | accuracy (100 samples, CFG 5) | mean loss, last 100 steps | minutes |", "|---|---|---|---|"]
    for label, lr in candidates(args.lrs).items():
        run = args.runs / f"sweep_{label.replace(' ', '_')}"
        latest = run / "latest"
        t0 = time.time()
        if not (latest.exists() and latest.read_text().startswith("final")):
            config = course_config("flow", "class", **SCALE, **lr, device=args.device)
            for event in train(
                config,
                run,
                resume=latest.exists(),
                changes={"device": args.device, "precision": "auto"} if latest.exists() else None,
            ):
                if event["kind"] in ("epoch", "done"):
                    print(
                        f"{label}: {event['kind']} epoch {event['epoch']} step {event['step']} {time.time() - t0:.0f} s",
                        flush=True,
                    )
        acc, loss = judged(run)
        rows.append(f"| {label} | {acc:.0%} | {loss:.4f} | {(time.time() - t0) / 60:.1f} |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    (args.runs / "sweep_lr.md").write_text(table + "\n")
    print(table)
    print(json.dumps({"written": str(args.runs / "sweep_lr.md")}))


if __name__ == "__main__":
    main()
