"""Model files: one safetensors file per model, its JSON config in the metadata; read safely, never unpickled.

The networks' weights are stored and checked here, beside the networks: ``lab/`` (training checkpoints, the
algorithms) builds on this module, and nothing in ``models/`` imports ``lab/`` (tests/test_layers.py keeps it so).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from models.unet import CourseUNet, UNetConfig


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: the message names the file and what was expected."""


def _check_safetensors(path: Path) -> None:
    """Refuse a file that is not safetensors, by what it is: safetensors starts with the length N of its header (8
    bytes, little-endian), then N bytes of JSON ("{..."); torch.save writes a zip ("PK") or, in its legacy format, a
    pickle (0x80 and the protocol). Header length's low byte may be 0x80 too: the JSON decides."""
    if not path.exists():
        raise CheckpointError(f"{path} does not exist: expected a .safetensors file or a checkpoint folder")
    with open(path, "rb") as f:
        head = f.read(9)
    if head[8:9] == b"{":  # a safetensors header (a truncated or damaged one: safe_open says so)
        return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise CheckpointError(
            f"{path} is a pickle (torch.save) file; the lab loads only safetensors, which cannot run code. "
            "Convert it yourself with safetensors.torch.save_file(torch.load(f, weights_only=True), ...)"
        )


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; CheckpointError for a missing, pickled or truncated file."""
    path = Path(path)
    _check_safetensors(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({e}); it may be truncated: train or download it again"
        ) from e


def save_model_file(path: str | os.PathLike, model: CourseUNet, metadata: dict, dtype=torch.float16) -> None:
    """Weights (in dtype; BatchNorm counters stay int) and JSON metadata in one safetensors file, atomically."""
    path = Path(path)
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    meta = {"unet": json.dumps(model.config.to_dict())} | {k: json.dumps(v) for k, v in metadata.items()}
    atomic_file(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def atomic_file(path: Path, write) -> None:
    """write(tmp) a temporary file beside path, then put it in path's place: a reader sees the old file or the new one,
    never half of one; flushed to the disk (fsync) before and after the rename, so a crash or a power cut keeps one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """path's new text, atomically and durably (atomic_file)."""
    atomic_file(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _fsync(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build_unet(config: UNetConfig, state: dict[str, torch.Tensor], source: str | os.PathLike) -> CourseUNet:
    """A CourseUNet of config with these weights; CheckpointError naming source if keys or shapes differ."""
    model = CourseUNet(config)
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {unexpected[:3]}"
            if unexpected
            else f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)}"
        )
        raise CheckpointError(f"{source} does not hold a course UNet with {config}: {detail}")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(
            f"{source} holds NaN or infinite weights ({bad[0]}{' and more' if len(bad) > 1 else ''}): the run "
            "diverged before this checkpoint; resume an earlier one with a lower learning rate"
        )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    return model.eval()


def load_model_file(path: str | os.PathLike) -> tuple[CourseUNet, dict]:
    """A bundled or exported model: (UNet in float32, eval mode; its metadata decoded from JSON)."""
    state, metadata = read_safetensors(path)
    try:
        meta = {k: json.loads(v) for k, v in metadata.items()}
        config = UNetConfig(**meta.pop("unet"))
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"{path} has no lab model config in its metadata: expected a file written by the lab"
        ) from e
    return build_unet(config, state, path), meta
