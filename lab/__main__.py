"""Command line: ``python -m lab train ...``, ``python -m lab sample ...``, ``python -m lab download-mnist DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from lab.checkpoint import CheckpointError, load_trained
from lab.data import DatasetMissing, download_mnist
from lab.generate import class_grid, sample_trained
from lab.images import grid, save_png
from lab.train import TrainingDiverged, train
from lab.train_config import CONDITIONS, EXPERIMENTS, UNETS, TrainConfig, course_config, with_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab", description="Diffusion Lab: train and sample the course's UNets."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a Part B model (course defaults per experiment)")
    t.add_argument("--experiment", choices=EXPERIMENTS, help="default: ddpm (with --resume: the run's)")
    t.add_argument("--condition", choices=CONDITIONS, help="default: none for denoisers, time for ddpm / flow")
    t.add_argument("--dataset", choices=("mnist", "fashion_mnist"))
    t.add_argument("--data-dir", help="folder of IDX files (default: bundled MNIST / Debian's Fashion-MNIST)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--D", type=int, help="UNet hidden width")
    t.add_argument("--unet", choices=tuple(UNETS), help="the course's UNet (default) or the better one (CS280A)")
    t.add_argument("--batch", type=int, dest="batch_size")
    t.add_argument("--lr", type=float)
    t.add_argument("--lr-schedule", choices=("exponential", "constant"))
    t.add_argument("--grad-clip", type=float)
    t.add_argument("--sigma", type=float, help="noise level of the single-step denoiser")
    t.add_argument("--T", type=int, help="DDPM timesteps / flow-matching sampling steps")
    t.add_argument("--schedule", choices=("linear", "squaredcos_cap_v2"))
    t.add_argument("--signed", action="store_true", default=None, help="images in [-1, 1] instead of [0, 1]")
    t.add_argument("--device", help="cpu, cuda, cuda:1, ...")
    t.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        help="auto (default): bf16 where the device computes it natively",
    )
    t.add_argument("--max-steps", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--sample-every", type=int, help="epochs between sample grids (0: only at the end)")
    t.add_argument("--sample-every-steps", type=int, help="also a sample grid every this many steps (default 0: none)")
    t.add_argument("--out", required=True, help="run folder: checkpoints, history.jsonl, samples/")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its latest checkpoint; "
        "--lr, --epochs, --max-steps and --grad-clip given with it apply from there",
    )

    s = sub.add_parser("sample", help="sample a trained DDPM or flow-matching model to an .npz (+ PNG grid)")
    s.add_argument("--checkpoint", required=True, help="run folder, checkpoint folder or bundled .safetensors")
    s.add_argument("--out", required=True, help="FILE.npz: images (N, 1, 28, 28) in [0, 1] and labels")
    s.add_argument("--per-class", type=int, help="samples per class (class-conditioned models)")
    s.add_argument("--n", type=int, default=40, help="samples (time-conditioned models)")
    s.add_argument("--cfg", type=float, default=5.0, help="CFG scale (class-conditioned models)")
    s.add_argument("--steps", type=int, help="sampling steps (default: the model's T, as in the course)")
    s.add_argument("--seed", type=int, default=0)

    d = sub.add_parser("download-mnist", help="fetch MNIST's IDX files into a folder (needs a network)")
    d.add_argument("folder")

    args = parser.parse_args(argv)
    try:
        return {"train": _train, "sample": _sample, "download-mnist": _download}[args.command](args)
    except (DatasetMissing, CheckpointError, TrainingDiverged, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; resume with --resume", file=sys.stderr)
        return 130


def _train(args) -> int:
    from tqdm import tqdm

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file: give a folder for the run (it is made if it does not exist)")
    given = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and v is not None}
    if args.resume:  # the run's own settings, with the ones given here changed (resumed_config says which may change)
        config, changes = None, given
    else:
        config, changes = with_overrides(course_config(args.experiment or "ddpm", args.condition), **given), None
    bar = None
    for event in train(config, args.out, resume=args.resume, changes=changes):
        if event["kind"] == "start":
            print(
                f"training {event['config'].experiment} ({event['config'].condition}) on {event['dataset']}, "
                f"{event['steps_per_epoch']} steps per epoch, into {args.out}"
            )
            bar = tqdm(total=event["total_steps"], initial=event["step"], unit="step")
        elif event["kind"] == "step":
            bar.update(1)
            bar.set_postfix(loss=f"{event['loss']:.4f}", lr=f"{event['lr']:.2g}", img_s=f"{event['images_per_s']:.0f}")
            if event.get("samples_png"):
                bar.write(f"step {event['step']}: samples {event['samples_png']}")
        elif event["kind"] == "epoch":
            bar.write(
                f"epoch {event['epoch']}: mean loss {event['mean_loss']:.4f}"
                + (f", samples {event['samples_png']}" if event.get("samples_png") else "")
            )
        else:
            bar.close()
            print(f"{event['kind']} at step {event['step']}; checkpoint {event['checkpoint']}")
    return 0


def _sample(args) -> int:
    for flag, value in (("--per-class", args.per_class), ("--n", args.n), ("--steps", args.steps)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    if Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a folder: give a file name, such as {Path(args.out) / 'samples.npz'}")
    model, train_dict = load_trained(args.checkpoint)
    config = TrainConfig.from_dict(train_dict)
    if config.experiment not in ("ddpm", "flow"):
        raise ValueError(f"{args.checkpoint} is a {config.experiment} model; sample needs a ddpm or flow model")
    g = torch.Generator().manual_seed(args.seed)
    classes = config.condition == "class"
    labels = class_grid(10, args.per_class or 4) if classes else None
    n = len(labels) if classes else args.n
    steps = args.steps or config.T
    if config.experiment == "ddpm" and not 1 <= steps <= config.T:
        raise ValueError(f"--steps must be in [1, {config.T}] for this model, got {steps}")
    images = sample_trained(model, config.to_dict(), labels, n, args.cfg, steps=steps, generator=g)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=images.numpy(), labels=(labels if classes else torch.full((n,), -1)).numpy())
    png = save_png(grid(images, args.per_class or 4 if classes else 10), out.with_suffix(".png"), 2)
    print(f"wrote {out} ({n} images) and {png}")
    return 0


def _download(args) -> int:
    print(f"MNIST IDX files in {download_mnist(args.folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
