"""What the course's own models (DeepFloyd IF, PixNerd) share in their settings: a setting declared with its
environment variable, a source read as a local folder or a hub id, an optional package, the device chosen."""

from __future__ import annotations

import importlib.util
from dataclasses import field
from pathlib import Path

import torch


def variable(name: str, default, doc: str, kind: str, shown: str | None = None):
    """A dataclass field read from environment variable ``name`` (``kind``: a key of serving.variables.KINDS, what it
    takes and how its text is read; ``shown``: the default as the docs say it, where it is computed). A callable
    default is a factory."""
    meta = {"env": name, "doc": doc, "takes": kind, "shown": shown}
    if callable(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def cache_variable():
    """The prompt-embedding cache's folder: one setting for both course models (each text encoder its own subfolder)."""
    return variable(
        "DIFFUSION_LAB_CACHE",
        "~/.cache/diffusion-lab",
        "the prompt-embedding cache (safetensors), shared by all IF sizes and PixNerd (each text encoder's own folder)",
        "folder",
    )


def is_local(source: str) -> bool:
    """A local folder (absolute, relative or ~ path that exists, or any path-looking value) rather than a hub id."""
    path = Path(source).expanduser()
    return path.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1 or "\\" in source


def has_package(name: str) -> bool:
    """Whether a package is importable (without importing it)."""
    return importlib.util.find_spec(name) is not None


def choose_device(setting: str, env: str, not_configured: type[Exception]) -> torch.device:
    """CUDA when available for "auto", else the CPU; an explicit setting as is. Cuda asked for on a torch without CUDA
    raises not_configured(problem, fix), naming the setting's variable env."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise not_configured(
            f"{env} is {setting!r}, but this torch has no CUDA GPU ({torch.__version__}).",
            f"set {env}=auto (or cpu), or install a CUDA build of torch on a machine with an NVIDIA GPU.",
        )
    return device
