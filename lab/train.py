"""Part B's trainers as one generator: it yields per-step stats (with a preview row every sample_every_steps) and
per-epoch sample grids, and can stop and resume.

Experiments (course defaults in ``COURSE``): the single-step denoiser (z = x + sigma eps, L2 to x), pure-noise
denoising (z = eps), DDPM (eps prediction, Algorithm 1 [1]) and flow matching (x_t = (1 - t) x0 + t x1 with
x0 noise and x1 data, target x1 - x0 [2]), each with time or class conditioning (p_uncond for CFG).

References:
    [1] Ho et al., DDPM, 2020.   [2] Lipman et al., Flow Matching for Generative Modeling, 2023.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from lab.checkpoint import (
    CheckpointError,
    checkpoint_step,
    latest_checkpoint,
    load_checkpoint,
    restore_optimizer,
    save_checkpoint,
)
from lab.data import load_dataset
from lab.diffusion import add_noise
from lab.generate import class_grid, denoise_once, one_hot, sample_trained
from lab.images import grid, save_png
from lab.schedules import make_alphas_cumprod
from lab.train_config import TrainConfig, resumed_config
from models.unet import CourseUNet


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the message says where and what to change."""


@dataclass
class _Progress:
    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken in all
    step_in_epoch: int = 0
    losses: list = field(default_factory=list)  # this epoch's losses so far


def loss_fn(
    model: CourseUNet, config: TrainConfig, x: torch.Tensor, labels: torch.Tensor, alphas_cumprod, g
) -> torch.Tensor:
    """One batch's loss (x (B, 1, 28, 28) clean images), by experiment."""
    eps = torch.randn(x.shape, generator=g).to(x.device)
    if config.experiment == "denoiser":
        return F.mse_loss(model(x + config.sigma * eps), x)
    if config.experiment == "pure_noise":
        return F.mse_loss(model(eps), x)
    B = x.shape[0]
    c = None
    if config.condition == "class":
        drop = torch.rand(B, generator=g).to(x.device) < config.p_uncond
        c = one_hot(torch.where(drop, -1, labels), 10)  # dropped: all zeros
    if config.experiment == "ddpm":
        t = torch.randint(0, config.T, (B,), generator=g).to(x.device)
        x_t = add_noise(x, t, alphas_cumprod, eps)  # Eq. A.2
        return F.mse_loss(model(x_t, t / config.T, c), eps)
    t = torch.rand(B, generator=g).to(x.device)
    x_t = (1 - t.view(-1, 1, 1, 1)) * eps + t.view(-1, 1, 1, 1) * x  # x0 = noise, x1 = data
    return F.mse_loss(model(x_t, t, c), x - eps)


def sample_grid(
    model: CourseUNet, config: TrainConfig, heldout: torch.Tensor, per_class: int = 4
) -> tuple[torch.Tensor, int]:
    """The grid shown after an epoch, in [0, 1], and its images per row; per_class 1: the preview drawn every
    config.sample_every_steps steps (a row of 10, a quarter of the cost)."""
    g = torch.Generator().manual_seed(config.seed)
    model.eval()
    if config.experiment in ("denoiser", "pure_noise"):
        low = -1.0 if config.signed else 0.0
        x = heldout[:10]
        z, out = denoise_once(model, x, config.sigma, g) if config.experiment == "denoiser" else (None, None)
        if config.experiment == "pure_noise":
            z = torch.randn(x.shape, generator=g).to(x.device)
            with torch.no_grad():
                out = model(z)
        images = ((torch.cat([x, z.clamp(low, 1), out.clamp(low, 1)]) - low) / (1 - low)).clamp(0, 1)
        nrow = 10
    else:
        labels = class_grid(10, per_class).to(heldout.device) if config.condition == "class" else None
        images = sample_trained(
            model, config.to_dict(), labels, 10 * per_class, config.cfg_scale, stride=config.sample_stride, generator=g
        )
        nrow = per_class if labels is not None and per_class > 1 else 10
    model.train()
    return images.cpu(), nrow


_INIT_LOCK = threading.Lock()


def initial_model(config: TrainConfig) -> CourseUNet:
    """The UNet's initial weights from config.seed alone: the global RNG is seeded under a lock and restored after,
    so runs started at once in several threads (the app's jobs) each get their seed's weights and disturb nobody."""
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return CourseUNet(config.unet_config())


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    changes: dict | None = None,
    stop: Callable[[], bool] | None = None,
) -> Iterator[dict]:
    """Train, yielding {"kind": "start" | "step" | "epoch" | "stopped" | "done", ...}; checkpoints go to run_dir.

    resume: continue from run_dir's latest checkpoint, with its config and the changes asked for (resumed_config;
    config itself is not used). stop(): checked between steps; when true, a checkpoint is written and the run ends
    with a "stopped" event. NaN / inf loss: TrainingDiverged.
    """
    run_dir = Path(run_dir)
    progress = _Progress()
    if resume and not (run_dir / "latest").exists() and (run_dir / "config.json").exists():
        # stopped or diverged before its first checkpoint: it starts again from its settings, with the changes
        config, resume = (
            resumed_config(TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text())), changes or {}),
            False,
        )
    if resume:
        model, state, optimizer_tensors = load_checkpoint(run_dir)
        try:
            saved = TrainConfig.from_dict(state["train"])
        except (ValueError, TypeError) as e:
            raise CheckpointError(
                f"{latest_checkpoint(run_dir) / 'state.json'}: 'train' is not a training config ({e})"
            ) from e
        config = resumed_config(saved, changes or {})
        progress = _Progress(state["epoch"], state["step"], state["step_in_epoch"], state["losses"])
    config = config.validate()
    device = torch.device(config.device)
    data = load_dataset(config.dataset, "train", config.data_dir)
    heldout_set = load_dataset(config.dataset, "heldout", config.data_dir)
    # one per class
    heldout = heldout_set.as_float(-1 if config.signed else 0, 1)[heldout_set.interleaved()[:10]].to(device)
    x_all = data.as_float(-1 if config.signed else 0, 1).to(device)  # (N, 1, 28, 28)
    labels_all = data.labels.to(device)
    alphas_cumprod = make_alphas_cumprod(config.schedule, config.T).to(device) if config.experiment == "ddpm" else None

    if not resume:
        model = initial_model(config)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
        (run_dir / "history.jsonl").write_text("")
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gamma = 0.1 ** (1 / config.epochs) if config.lr_schedule == "exponential" else 1.0
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    g = torch.Generator().manual_seed(config.seed)
    if resume:
        restore_optimizer(optimizer, state, optimizer_tensors)
        scheduler.last_epoch = progress.epoch
        for group in optimizer.param_groups:
            group["lr"] = config.lr * gamma**progress.epoch
        g.set_state(torch.tensor(state["generator"], dtype=torch.uint8))

    epoch_images = config.epoch_images or len(x_all)
    steps_per_epoch = math.ceil(epoch_images / config.batch_size)
    total = (
        config.epochs * steps_per_epoch
        if config.max_steps is None
        else min(config.max_steps, config.epochs * steps_per_epoch)
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    yield {
        "kind": "start",
        "config": config,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total,
        "step": progress.step,
        "epoch": progress.epoch,
        "dataset": data.source,
        "images": len(x_all),
    }

    def checkpoint(name: str) -> Path:
        state = {
            "train": config.to_dict(),
            "unet": model.config.to_dict(),
            "epoch": progress.epoch,
            "step": progress.step,
            "step_in_epoch": progress.step_in_epoch,
            "losses": progress.losses,
            "generator": g.get_state().tolist(),
        }
        return save_checkpoint(run_dir, name, model, optimizer, state)

    history = open_history(run_dir)
    last_checkpoint = time.monotonic()
    try:
        while progress.epoch < config.epochs and progress.step < total:
            order = epoch_order(len(x_all), epoch_images, config.seed, progress.epoch)
            for b in range(progress.step_in_epoch, steps_per_epoch):
                if stop is not None and stop():
                    path = checkpoint(f"stopped_epoch_{progress.epoch:03d}_step_{progress.step:06d}")
                    _replace_periodic(run_dir, path)
                    yield {"kind": "stopped", "step": progress.step, "epoch": progress.epoch, "checkpoint": path}
                    return
                t0 = time.perf_counter()
                idx = order[b * config.batch_size : (b + 1) * config.batch_size].to(device)
                with autocast:
                    loss = loss_fn(model, config, x_all[idx], labels_all[idx], alphas_cumprod, g)
                if not torch.isfinite(loss):
                    kept = checkpoint_step(run_dir)
                    where = (
                        f"from its last checkpoint (step {kept})"
                        if kept is not None
                        else "from the start (no checkpoint yet)"
                    )
                    raise TrainingDiverged(
                        f"loss became {loss.item()} at step {progress.step + 1} (epoch {progress.epoch + 1}): lower the "
                        f"learning rate (now {optimizer.param_groups[0]['lr']:.2g}) or set a gradient clip such as 1.0, "
                        f"and resume: it goes on {where} with the new settings"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                progress.step += 1
                progress.step_in_epoch = b + 1
                progress.losses.append(loss.item())
                stats = {
                    "kind": "step",
                    "epoch": progress.epoch + (b + 1) / steps_per_epoch,
                    "step": progress.step,
                    "loss": loss.item(),
                    "lr": optimizer.param_groups[0]["lr"],
                    "images_per_s": len(idx) / (time.perf_counter() - t0),
                    "time": time.time(),
                }
                history.write(json.dumps({k: v for k, v in stats.items() if k != "kind"}) + "\n")
                history.flush()
                if (
                    config.sample_every_steps
                    and progress.step % config.sample_every_steps == 0
                    and b + 1 < steps_per_epoch
                ):
                    images, nrow = sample_grid(model, config, heldout, per_class=1)  # (an epoch's end draws its own)
                    png = save_png(grid(images, nrow), run_dir / "samples" / f"step_{progress.step:06d}.png", 2)
                    stats |= {"samples": images, "nrow": nrow, "samples_png": png}
                if (
                    config.checkpoint_every_s is not None
                    and time.monotonic() - last_checkpoint >= config.checkpoint_every_s
                ):
                    _replace_periodic(run_dir, checkpoint(f"step_{progress.step:06d}"))
                    last_checkpoint = time.monotonic()
                yield stats
                if progress.step >= total:
                    break
            if progress.step_in_epoch < steps_per_epoch:  # max_steps reached mid-epoch
                break
            scheduler.step()
            mean_loss = sum(progress.losses) / len(progress.losses)
            progress.epoch, progress.step_in_epoch, progress.losses = progress.epoch + 1, 0, []
            yield _epoch_end(config, run_dir, progress.epoch, progress.step, mean_loss, model, heldout, checkpoint)
            last_checkpoint = time.monotonic()
        path = checkpoint(f"final_step_{progress.step:06d}")
        _replace_periodic(run_dir, path)
        yield {"kind": "done", "step": progress.step, "epoch": progress.epoch, "checkpoint": path}
    finally:
        history.close()


def epoch_order(n: int, epoch_images: int, seed: int, epoch: int) -> torch.Tensor:
    """The data's indices for one epoch of epoch_images images: whole shuffled passes over the n images (each its own
    permutation), cut to epoch_images; a function of the seed and the epoch only, so a resumed run draws the same."""
    passes = math.ceil(epoch_images / n)
    perms = [
        torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch + 1_000_003 * k))
        for k in range(passes)
    ]
    return torch.cat(perms)[:epoch_images]


def _replace_periodic(run_dir: Path, newest: Path) -> None:
    """Remove the periodic (step_*) and stop (stopped_*) checkpoints other than newest: only the latest one is worth
    keeping (a run stopped and resumed ten times keeps one, not ten)."""
    for old in [*(run_dir / "checkpoints").glob("step_*"), *(run_dir / "checkpoints").glob("stopped_*")]:
        if old != newest:
            shutil.rmtree(old, ignore_errors=True)


def _epoch_end(config, run_dir, epoch, step, mean_loss, model, heldout, checkpoint) -> dict:
    """Checkpoint (keep snapshot epochs and the newest), and a sample grid when one is due."""
    path = checkpoint(f"epoch_{epoch:03d}")
    _replace_periodic(run_dir, path)
    for old in (run_dir / "checkpoints").glob("epoch_*"):
        if old != path and int(old.name.split("_")[1]) not in config.snapshot_epochs:
            shutil.rmtree(old, ignore_errors=True)
    event = {"kind": "epoch", "epoch": epoch, "step": step, "mean_loss": mean_loss, "checkpoint": path, "samples": None}
    due = (
        (config.sample_every and epoch % config.sample_every == 0)
        or epoch in config.snapshot_epochs
        or epoch == config.epochs
    )
    if due:
        images, nrow = sample_grid(model, config, heldout)
        event |= {
            "samples": images,
            "nrow": nrow,
            "samples_png": save_png(grid(images, nrow), run_dir / "samples" / f"epoch_{epoch:03d}.png", 2),
        }
    return event


HISTORY_FIELDS = (
    "step",
    "epoch",
    "loss",
    "lr",
    "images_per_s",
    "time",
)  # what train writes on every line of history.jsonl


def read_history(run_dir: str | Path) -> list[dict]:
    """A run's per-step stats from history.jsonl in step order; steps logged again after a resume from an earlier
    checkpoint (a crash, a restarted server) count once, as last logged. A line that is not such a record (cut short by
    a crash or a full disk, or edited by hand) is skipped: the run's page and its resume go on without it."""
    path = Path(run_dir) / "history.jsonl"
    if not path.exists():
        return []
    rows = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and all(
            isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool) for k in HISTORY_FIELDS
        ):
            rows[int(row["step"])] = {k: row[k] for k in HISTORY_FIELDS}
    return sorted(rows.values(), key=lambda r: r["step"])


def open_history(run_dir: Path):
    """history.jsonl for appending, its last line cut short first (a crash, a full disk while it was written): a record
    is never written after half a record."""
    path = run_dir / "history.jsonl"
    data = path.read_bytes() if path.exists() else b""
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
    return open(path, "a")
