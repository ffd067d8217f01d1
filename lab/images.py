"""Image helpers without Streamlit: tensors to grids, PNG and GIF."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(x: torch.Tensor, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """(B, C, H, W) floats in [low, high] -> (B, H, W, C) uint8 (C = 1 squeezed to (B, H, W))."""
    x = ((x.detach().float().cpu() - low) / (high - low)).clamp(0, 1)
    out = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out[..., 0] if out.shape[-1] == 1 else out


def grid(x: torch.Tensor, nrow: int | None = None, low: float = 0.0, high: float = 1.0, pad: int = 2) -> np.ndarray:
    """Tile (B, C, H, W) into one uint8 image, nrow images per row, pad pixels of white between them."""
    tiles = to_uint8(x, low, high)
    B, H, W = tiles.shape[:3]
    nrow = nrow or math.ceil(math.sqrt(B))
    rows = math.ceil(B / nrow)
    canvas = np.full((rows * (H + pad) + pad, nrow * (W + pad) + pad, *tiles.shape[3:]), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, nrow)
        canvas[pad + r * (H + pad) : pad + r * (H + pad) + H, pad + c * (W + pad) : pad + c * (W + pad) + W] = tile
    return canvas


def save_png(image: np.ndarray, path: str | os.PathLike, scale: int = 1) -> Path:
    """Write a uint8 image as PNG, enlarged scale times with nearest-neighbour."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(image)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    im.save(path)
    return path


def gif_bytes(frames: list[np.ndarray], duration_ms: int = 80, scale: int = 1) -> bytes:
    """An animated GIF of uint8 frames, looping, the last frame held three times as long."""
    ims = [Image.fromarray(f) for f in frames]
    if scale > 1:
        ims = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in ims]
    buffer = io.BytesIO()
    durations = [duration_ms] * (len(ims) - 1) + [duration_ms * 3]
    ims[0].save(buffer, format="GIF", save_all=True, append_images=ims[1:], duration=durations, loop=0)
    return buffer.getvalue()
