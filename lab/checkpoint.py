"""Checkpoints: safetensors weights + JSON config + optimizer state, written atomically; safe loading.

A training checkpoint is a folder ``<run>/checkpoints/epoch_NNN_step_MMMMMM/`` holding ``model.safetensors``,
``optimizer.safetensors`` and ``state.json`` (configs, progress, optimizer hyperparameters, loss history). It is
written to a temporary folder and renamed into place; ``<run>/latest`` names the newest, replaced atomically.
A bundled model is one ``.safetensors`` file whose metadata holds its JSON config (``models/files.py`` reads and
writes those). Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from models.files import CheckpointError, atomic_file, build_unet, load_model_file, read_safetensors
from models.unet import CourseUNet, UNetConfig


def save_checkpoint(run_dir: str | os.PathLike, name: str, model, optimizer, state: dict) -> Path:
    """Write run_dir/checkpoints/name/ atomically (temporary folder, then rename) and point run_dir/latest at it."""
    run_dir = Path(run_dir)
    final = run_dir / "checkpoints" / name
    tmp = Path(
        tempfile.mkdtemp(dir=final.parent if final.parent.exists() else _mkdir(final.parent), prefix=f".{name}.")
    )
    try:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
        opt = optimizer.state_dict()
        tensors = {f"{i}.{k}": v for i, s in opt["state"].items() for k, v in s.items() if isinstance(v, torch.Tensor)}
        save_file(tensors, tmp / "optimizer.safetensors")
        state = state | {"optimizer_param_groups": opt["param_groups"], "optimizer_state_keys": sorted(tensors)}
        (tmp / "state.json").write_text(json.dumps(state))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    atomic_file(run_dir / "latest", lambda p: Path(p).write_text(name))
    return final


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def latest_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint folder run_dir/latest names (run_dir may itself be a checkpoint folder)."""
    run_dir = Path(run_dir)
    if (run_dir / "state.json").exists():
        return run_dir
    pointer = run_dir / "latest"
    if not pointer.exists():
        raise CheckpointError(
            f"{run_dir} has no checkpoint: expected a run folder with a 'latest' file or a checkpoint folder"
        )
    name = pointer.read_text(encoding="utf-8", errors="replace").strip()
    if not re.fullmatch(r"[\w.-]{1,200}", name) or name in (
        ".",
        "..",
    ):  # one folder's name: never a path out of the run
        raise CheckpointError(
            f"{run_dir}/latest does not name a checkpoint folder ({name[:60]!r}): the run's files are damaged"
        )
    return run_dir / "checkpoints" / name


STATE_FIELDS = {
    "train": dict,
    "unet": dict,
    "epoch": int,
    "step": int,
    "step_in_epoch": int,
    "losses": list,
    "generator": list,
    "optimizer_param_groups": list,
}  # what save_checkpoint writes in state.json


def read_state(path: Path) -> dict:
    """A checkpoint's state.json; CheckpointError naming the file and the field for a missing, damaged or foreign one."""
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"{path} is missing or not JSON ({e}): the checkpoint is damaged; resume from another one"
        ) from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(state).__name__}")
    for field, kind in STATE_FIELDS.items():
        if field not in state:
            raise CheckpointError(f"{path} has no {field!r}: it is damaged or not a lab checkpoint")
        if not isinstance(state[field], kind) or (kind is int and isinstance(state[field], bool)):
            raise CheckpointError(
                f"{path}: {field!r} must be a {kind.__name__}, got {type(state[field]).__name__} {state[field]!r:.40}"
            )
    return state


def checkpoint_step(run_dir: str | os.PathLike) -> int | None:
    """The optimizer step of run_dir's latest checkpoint; None if it has none (or it cannot be read)."""
    try:
        return int(json.loads((latest_checkpoint(run_dir) / "state.json").read_text())["step"])
    except (CheckpointError, OSError, ValueError, KeyError, TypeError):
        return None


def load_checkpoint(path: str | os.PathLike) -> tuple[CourseUNet, dict, dict]:
    """(model, state.json contents, optimizer tensors) of a training checkpoint folder or run folder."""
    folder = latest_checkpoint(path)
    state = read_state(folder / "state.json")
    try:
        config = UNetConfig(**state["unet"])
    except TypeError as e:
        raise CheckpointError(f"{folder / 'state.json'}: 'unet' is not a course UNet config ({e})") from e
    weights, _ = read_safetensors(folder / "model.safetensors")
    optimizer, _ = read_safetensors(folder / "optimizer.safetensors")
    return build_unet(config, weights, folder / "model.safetensors"), state, optimizer


def restore_optimizer(optimizer, state: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Load Adam's state saved by save_checkpoint back into optimizer."""
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        per_param.setdefault(int(i), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer_param_groups"]})


def load_trained(path: str | os.PathLike) -> tuple[CourseUNet, dict]:
    """(model, its training config as a dict) from a bundled .safetensors file, a checkpoint folder or a run folder."""
    path = Path(path)
    if path.is_file() or path.suffix == ".safetensors":
        model, meta = load_model_file(path)
        if "train" not in meta:
            raise CheckpointError(f"{path} has no training config in its metadata: expected a file written by the lab")
        return model, meta["train"]
    model, state, _ = load_checkpoint(path)
    return model, state["train"]
