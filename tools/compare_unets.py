"""The CS280A bells and whistles, "a better time-conditioned UNet", judged against the course's: each run or checkpoint
given is judged by the bundled classifier (FID in its feature space against the held-out digits, and the share of
samples it reads confidently: a time-conditioned model has no class to check), next to its steps and its training
minutes up to that checkpoint (from the run's history). The table goes on flow_time_better's card.

    python tools/compare_unets.py RUN_OR_CHECKPOINT_FOLDER ... [--out FILE.md]

The runs compared on the card, trained side by side on one machine (each its own process and one thread):
    OMP_NUM_THREADS=1 python -m lab train --experiment flow --condition time --epochs 10 --seed 0 --sample-every 0 \\
        --out RUNS/course_d64                                    # the course's UNet, D 64, 10 passes (710 steps)
    python tools/train_bundled.py --threads 1 --runs RUNS flow_time_better     # the better one, D 32, 40 passes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from lab.data import load_dataset  # noqa: E402
from lab.generate import sample_trained  # noqa: E402
from lab.metrics import confident_share, frechet_distance, predict  # noqa: E402
from models.bundled import load_classifier  # noqa: E402
from tools.export_bundled import active_minutes  # noqa: E402

SAMPLES = 400


def judged(path: Path, classifier, reference: torch.Tensor) -> dict:
    """A run's latest checkpoint, or a checkpoint folder: SAMPLES samples (its Euler steps, seed 0) judged."""
    folder = latest_checkpoint(path)
    run = folder.parents[1]
    model, state, _ = load_checkpoint(folder)
    images = sample_trained(model, state["train"], None, SAMPLES, 0.0, generator=torch.Generator().manual_seed(0))
    unet = model.config
    return {
        "checkpoint": f"{run.name}/{folder.name}",
        "unet": f"{state['train'].get('unet', 'course')}, D {unet.D}",
        "steps": state["step"],
        "minutes": active_minutes(run, state["step"]),
        "fid": frechet_distance(predict(classifier, images)[1], reference),
        "confident": confident_share(classifier, images),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", type=Path, help="run folders (their latest checkpoint) or checkpoint folders")
    ap.add_argument("--out", type=Path, help="also write the table here")
    args = ap.parse_args()
    classifier = load_classifier("mnist")
    _, reference = predict(classifier, load_dataset("mnist", "heldout").as_float())
    rows = [
        f"| checkpoint | UNet | steps | training minutes | FID ({SAMPLES} samples) | confident |",
        "|---|---|---|---|---|---|",
    ]
    results = []
    for path in args.paths:
        r = judged(path, classifier, reference)
        results.append(r)
        rows.append(
            f"| {r['checkpoint']} | {r['unet']} | {r['steps']} | {r['minutes']:.1f} | {r['fid']:.2f} | {r['confident']:.1%} |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    if args.out:
        args.out.write_text(table + "\n")
    print(table)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
