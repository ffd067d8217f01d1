"""Argument checks shared by lab/: each raises a ValueError that names the parameter and what it allows."""

from __future__ import annotations

import numbers

import torch


def check_int(name: str, value, low: int | None, high: int | None) -> int:
    """Return value as an int if it is an integer in [low, high] (None: unbounded), else raise ValueError."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer{_range(low, high)}, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer{_range(low, high)}, got {value}")
    return value


def check_float(name: str, value, low: float | None = None, high: float | None = None, *, strict_low=False) -> float:
    """Return value as a float if it is a finite number in range (strict_low: > low), else raise ValueError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = value == value and abs(value) != float("inf")
        ok = ok and (low is None or (value > low if strict_low else value >= low)) and (high is None or value <= high)
    if not ok:
        lo = f"> {low}" if strict_low else f">= {low}"
        bounds = " and ".join(b for b in (lo if low is not None else "", f"<= {high}" if high is not None else "") if b)
        raise ValueError(f"{name} must be a finite number{' ' + bounds if bounds else ''}, got {value!r}")
    return value


def check_image(name: str, x, shape: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Check x is a floating-point (B, C, H, W) tensor, with (C, H, W) == shape when shape is given."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating-point dtype (float32, float16, bfloat16), got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got shape {tuple(x.shape)}")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have shape (B, {shape[0]}, {shape[1]}, {shape[2]}), got {tuple(x.shape)}")
    return x


def _range(low, high) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""
