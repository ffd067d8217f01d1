"""Export trained runs (runs/bundled/NAME) to models/weights/: fp16 weights, the course's figures, metrics, a card.

    python tools/export_bundled.py classifier_mnist classifier_fashion_mnist   # train + export the judges first
    python tools/export_bundled.py parta_mnist ddpm_class ...                   # then the models (names of BUNDLED)

Metrics: class-conditional generators are sampled (per-class samples, CFG) and labelled by the bundled
classifier of their dataset (trained on the training split only); FID is computed in that classifier's
128-d feature space against the held-out split, next to the floor of real training images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safetensors.torch import save_file  # noqa: E402

from lab.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from lab.data import load_dataset  # noqa: E402
from lab.generate import class_grid, denoise_once, sample_trained  # noqa: E402
from lab.images import grid, save_png  # noqa: E402
from lab.metrics import accuracy, confident_share, denoiser_mse, frechet_distance, predict  # noqa: E402
from lab.train import read_history  # noqa: E402
from lab.train_config import TrainConfig  # noqa: E402
from models.bundled import WEIGHTS, load_classifier  # noqa: E402
from models.classifier import train_classifier  # noqa: E402
from models.files import save_model_file  # noqa: E402
from tools.train_bundled import BUNDLED, NOTES, RUNS, SNAPSHOT_WEIGHTS  # noqa: E402

SIGMAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)  # Part B 1.2.2's sweep
FIGURES_ONLY = {"pure_noise", "flow_class_constant"}  # pictures, curve and card: pure noise collapses to the training
# mean whatever the input; the scheduler-free run is 2.6's comparison beside flow_class (its weights would pass 40 MB)
UNET_NAMES = {"course": "course", "better": "the better (CS280A: GroupNorm, sinusoidal t)"}
MACHINE = f"a {os.cpu_count()}-core {platform.machine()} CPU (torch {torch.__version__}, no GPU)"


def active_minutes(run: Path, up_to_step: int | None = None) -> float:
    """Training time from history.jsonl (up to a step, where given), leaving out pauses of over 2 minutes (a stop and
    a resume)."""
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    times = [r["time"] for r in rows if up_to_step is None or r["step"] <= up_to_step]
    return sum(b - a for a, b in zip(times, times[1:]) if b - a < 120) / 60


def export_loss(name: str, run: Path, points: int = 1500) -> str:
    """The training loss curve (at most `points` points, evenly spaced in steps) as models/weights/NAME_loss.json."""
    rows = read_history(run)
    if len(rows) > points:
        kept = rows[:: len(rows) // points]
        rows = kept + rows[-1:] if kept[-1] is not rows[-1] else kept
    data = {
        "step": [r["step"] for r in rows],
        "loss": [float(f"{r['loss']:.5g}") for r in rows],
        "epoch": [round(r["epoch"], 3) for r in rows],
    }
    (WEIGHTS / f"{name}_loss.json").write_text(json.dumps(data, separators=(",", ":")))
    return f"{name}_loss.json"


def generate(
    model, config: TrainConfig, per_class: int, scale: float, g, ddpm_stride: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Samples in [0, 1] (and their labels): per_class of each class, or 10 * per_class without classes."""
    labels = class_grid(10, per_class) if config.condition == "class" else None
    return sample_trained(
        model, config.to_dict(), labels, 10 * per_class, scale, stride=ddpm_stride, generator=g
    ), labels


def figures(
    name: str, model, config: TrainConfig, epoch: int, heldout: torch.Tensor, train_mean: torch.Tensor, stride: int
) -> list[str]:
    """The course's figures for one snapshot, as PNGs in models/weights/; returns their file names."""
    g = torch.Generator().manual_seed(0)
    out = []
    if config.experiment == "denoiser":
        x = heldout[:10]  # interleaved: one digit of each class
        rows = [x]
        for sigma in SIGMAS:
            z, y = denoise_once(model, x, sigma, torch.Generator().manual_seed(0))
            rows += [z.clamp(0, 1), y.clamp(0, 1)] if sigma != 0 else []
        path = save_png(grid(torch.cat(rows), 10), WEIGHTS / f"{name}_epoch_{epoch:03d}.png", 2)
        out.append(path.name)
    elif config.experiment == "pure_noise":
        with torch.no_grad():
            y = model(torch.randn(10, 1, 28, 28, generator=g)).clamp(0, 1)
        path = save_png(
            grid(torch.cat([y, train_mean.expand(1, 1, 28, 28)]), 11), WEIGHTS / f"{name}_epoch_{epoch:03d}.png", 2
        )
        out.append(path.name)
    else:
        scale = (
            (8.0 if config.experiment == "flow" else 7.0) if name.startswith("parta") else 5.0
        )  # the course's (w 7: gamma 8)
        images, labels = generate(model, config, 4, scale, g, stride)
        path = save_png(grid(images, 4 if labels is not None else 10), WEIGHTS / f"{name}_epoch_{epoch:03d}.png", 2)
        out.append(path.name)
    return out


def judge_snapshots(
    name: str, config: TrainConfig, snapshots: dict, per_class: int, ddpm_stride: int, classifier, ref_feats
) -> list[str]:
    """Each snapshot judged by the classifier (accuracy where classes apply, the share it reads confidently, FID) at
    the course's CFG 5, written to models/weights/NAME_metrics.json (the pages read it); the card's table lines."""
    rows = {}
    for epoch, model in snapshots.items():
        images, labels = generate(model, config, per_class, 5.0, torch.Generator().manual_seed(0), ddpm_stride)
        predicted, feats = predict(classifier, images)
        rows[str(epoch)] = {
            "accuracy": accuracy(predicted, labels) if labels is not None else None,
            "confident": confident_share(classifier, images),
            "fid": frechet_distance(feats, ref_feats),
        }
        print(f"{name}: epoch {epoch}: {rows[str(epoch)]}", flush=True)
    metrics = {
        "samples": 10 * per_class,
        "scale": 5.0,
        "lr": config.lr,
        "lr_schedule": config.lr_schedule,
        "epochs": rows,
    }
    (WEIGHTS / f"{name}_metrics.json").write_text(json.dumps(metrics, indent=1))
    return [
        f"After each snapshot epoch ({10 * per_class} samples, CFG 5; confident: the judge's top class above 90 %):",
        "",
        "| epoch | classifier accuracy | confident | FID |",
        "|---|---|---|---|",
        *(f"| {e} | {percent(r['accuracy'])} | {r['confident']:.1%} | {r['fid']:.2f} |" for e, r in rows.items()),
    ]


def percent(share: float | None) -> str:
    return "n/a (no classes)" if share is None else f"{share:.2%}"


def export_classifier(dataset: str) -> None:
    train_set, heldout = load_dataset(dataset, "train"), load_dataset(dataset, "heldout")
    t0 = time.time()
    epochs = 10 if dataset == "mnist" else 12
    model = train_classifier(train_set.as_float(), train_set.labels, epochs=epochs)
    minutes = (time.time() - t0) / 60
    acc = accuracy(predict(model, heldout.as_float())[0], heldout.labels)
    save_file(
        {k: v.half().contiguous() for k, v in model.state_dict().items()},
        WEIGHTS / f"classifier_{dataset}.safetensors",
        metadata={"dataset": dataset, "heldout_accuracy": f"{acc:.4f}"},
    )
    (
        WEIGHTS / f"classifier_{dataset}.md"
    ).write_text(f"""# classifier_{dataset}: the independent judge of {dataset} generators

- Model: models/classifier.py (conv32-pool-conv64-pool-fc128-fc10), fp16 safetensors.
- Data: the training split of {train_set.source}; never the held-out split, never generated images.
- Recipe: `python tools/export_bundled.py classifier_{dataset}`: Adam 1e-3, batch 128, {epochs} epochs, random shifts of up to 2 pixels, seed 0.
- Wall time: {minutes:.1f} min on {MACHINE}.
- Held-out accuracy: **{acc:.2%}** on {len(heldout)} images ({heldout.source}).
""")
    print(f"classifier_{dataset}: held-out accuracy {acc:.4f}")


def export_model(name: str, per_class: int, ddpm_stride: int, runs: Path = RUNS) -> None:
    run = runs / name
    folder = latest_checkpoint(run)
    if not folder.name.startswith("final"):
        raise SystemExit(
            f"{name}: the run in {run} has not finished (latest is {folder.name}); finish it with tools/train_bundled.py"
        )
    model, state, _ = load_checkpoint(folder)
    config = TrainConfig.from_dict(state["train"])
    low = -1.0 if config.signed else 0.0
    train_set, heldout_set = load_dataset(config.dataset, "train"), load_dataset(config.dataset, "heldout")
    order = heldout_set.interleaved()  # one image of each class in turn
    heldout, heldout_labels = heldout_set.as_float()[order], heldout_set.labels[order]
    meta = {"train": config.to_dict(), "epochs": state["epoch"], "steps": state["step"]}
    save_model_file(WEIGHTS / f"{name}.safetensors", model, meta)
    size_mb = (WEIGHTS / f"{name}.safetensors").stat().st_size / 1e6

    snapshots = {}  # epoch -> model after that epoch (the last one is the final model)
    for epoch in sorted(set(config.snapshot_epochs) | {state["epoch"]}):
        ckpt = run / "checkpoints" / f"epoch_{epoch:03d}"
        snapshots[epoch] = load_checkpoint(ckpt)[0] if ckpt.exists() else model
        if name in SNAPSHOT_WEIGHTS and epoch != state["epoch"]:
            save_model_file(
                WEIGHTS / f"{name}_epoch_{epoch:03d}.safetensors",
                snapshots[epoch],
                meta | {"epochs": epoch, "steps": epoch * -(-len(train_set) // config.batch_size)},
            )
    weight_files = [
        f"{name}_epoch_{e:03d}.safetensors" for e in snapshots if e != state["epoch"] and name in SNAPSHOT_WEIGHTS
    ]
    weight_files.append(f"{name}.safetensors (epoch {state['epoch']})")
    loss_file = export_loss(name, run)
    train_mean = train_set.as_float().mean(0, keepdim=True)
    pngs = [
        png
        for epoch, snap in snapshots.items()
        for png in figures(name, snap, config, epoch, heldout, train_mean, ddpm_stride)
    ]

    lines = []
    if config.experiment == "denoiser":
        for epoch, snap in snapshots.items():
            mse = denoiser_mse(snap, heldout, SIGMAS)
            lines.append(f"| held-out MSE after epoch {epoch} | " + " | ".join(f"{mse[s]:.4f}" for s in SIGMAS) + " |")
        lines = ["| sigma | " + " | ".join(str(s) for s in SIGMAS) + " |", "|---" * (len(SIGMAS) + 1) + "|", *lines]
    elif config.experiment in ("ddpm", "flow"):
        classifier = load_classifier(config.dataset)
        classifier_acc = accuracy(predict(classifier, heldout)[0], heldout_labels)
        scales = (7.0, 3.0) if name.startswith("parta") else (5.0,)
        flow_backend = name.startswith("parta") and config.experiment == "flow"  # the Fall 2026 edition's: CFG as w
        sampler = (
            f"DDPM, timesteps {config.T - 1 - (config.T - 1) % ddpm_stride} .. 0 by {ddpm_stride} "
            f"({len(range(config.T - 1 - (config.T - 1) % ddpm_stride, -1, -ddpm_stride))} steps)"
            if config.experiment == "ddpm"
            else f"Euler, {config.T} steps (h = {1 / config.T:g})"
        )
        ref = heldout if len(heldout) <= 2000 else heldout[:2000]
        _, ref_feats = predict(classifier, ref)
        floor_imgs = train_set.as_float()[
            torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))[: 10 * per_class]
        ]
        floor = frechet_distance(predict(classifier, floor_imgs)[1], ref_feats)
        lines += [
            f"Sampler: {sampler}; {10 * per_class} samples ({per_class} per class where classes apply), seed 0.",
            f"Judge: classifier_{config.dataset} (held-out accuracy {classifier_acc:.2%}); FID in its 128-d feature space "
            f"against {len(ref)} held-out images; floor (as many real training images): {floor:.2f}.",
            "",
            f"| {'CFG w (v = v_c + w (v_c - v_u))' if flow_backend else 'CFG scale'} | classifier accuracy | FID |",
            "|---|---|---|",
        ]
        for scale in scales if config.condition == "class" else (None,):
            t0 = time.time()
            gamma = (scale + 1 if flow_backend else scale) if scale is not None else 0.0  # w = gamma - 1
            images, labels = generate(model, config, per_class, gamma, torch.Generator().manual_seed(0), ddpm_stride)
            predicted, feats = predict(classifier, images)
            acc = f"{accuracy(predicted, labels):.2%}" if labels is not None else "n/a (no classes)"
            lines.append(
                f"| {scale if scale is not None else 'none'} | {acc} | {frechet_distance(feats, ref_feats):.2f} |"
            )
            print(f"{name}: scale {scale}: {lines[-1]} ({time.time() - t0:.0f} s)", flush=True)

    if config.experiment in ("ddpm", "flow") and not name.startswith("parta") and len(snapshots) > 1:
        lines += ["", *judge_snapshots(name, config, snapshots, per_class, ddpm_stride, classifier, ref_feats)]
    sweep = runs / "sweep_lr.md"  # tools/sweep_lr.py's table: how the scheduler-free run's lr was chosen
    if name == "flow_class_constant" and sweep.exists():
        lines += [
            "",
            "The lr sweep (tools/sweep_lr.py: the course's recipe at a twentieth of its scale, 10 epochs of 3,000 images):",
            "",
            *sweep.read_text().splitlines(),
        ]
    compared = WEIGHTS / "flow_time_better_compare.md"  # tools/compare_unets.py --out: the better UNet's comparison
    if name == "flow_time_better" and compared.exists():
        lines += ["", "Against the course's UNet (tools/compare_unets.py, 400 samples, 50 Euler steps, seed 0):", ""]
        lines += compared.read_text().splitlines()
    if name in FIGURES_ONLY:
        (WEIGHTS / f"{name}.safetensors").unlink()
    command = f"python tools/train_bundled.py {name}"
    classes = ", 10 classes (one-hot; all zeros = no class)" if model.config.num_classes else ""
    params = sum(p.numel() for p in model.parameters())
    shipped = "weights not shipped (figures only)" if name in FIGURES_ONLY else f"fp16 safetensors, {size_mb:.1f} MB"
    process = {"ddpm": f", T = {config.T}, {config.schedule} betas", "flow": f", {config.T} Euler steps"}.get(
        config.experiment, ""
    )
    departures = f"\n- Departures from the course: {NOTES[name]}" if name in NOTES else ""
    where = f"{MACHINE} with 1 torch thread, in the background beside other jobs"
    card = f"""# {name}

- Model: {UNET_NAMES[config.unet]} UNet (models/unet.py), D = {config.D}, {model.config.time} time conditioning{classes}; {params:,} parameters, {shipped}.
- Experiment: {config.experiment} ({config.condition}){process}; images in [{low:g}, 1].
- Data: {train_set.source}.
- Exact command: `{command}` (recipe in tools/train_bundled.py; `python tools/export_bundled.py {name}` wrote this card).{departures}
- Config: `{json.dumps({k: v for k, v in config.to_dict().items() if k not in ("device", "data_dir")})}`
- Trained: {state["epoch"]} epochs, {state["step"]} steps, {active_minutes(run):.1f} min of training on {where}.
- Figures: {", ".join(pngs)} (after the epochs the course shows); training loss per step: {loss_file}.
- Weights: {"none (figures only)" if name in FIGURES_ONLY else ", ".join(weight_files)}.

## Metrics

{chr(10).join(lines) if lines else "See the figures."}
"""
    (WEIGHTS / f"{name}.md").write_text(card)
    print(card)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help=f"classifier_mnist, classifier_fashion_mnist, {', '.join(BUNDLED)}")
    ap.add_argument("--per-class", type=int, default=40, help="samples per class for the metrics (>= 40)")
    ap.add_argument("--ddpm-stride", type=int, default=10, help="DDPM metric sampling stride (1: every timestep)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--runs", type=Path, default=RUNS, help="the runs folder tools/train_bundled.py trained into")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        if name.startswith("classifier_"):
            export_classifier(name.removeprefix("classifier_"))
        else:
            export_model(name, args.per_class, 30 if name.startswith("parta") else args.ddpm_stride, args.runs)
