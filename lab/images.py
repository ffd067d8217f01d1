"""Image helpers without Streamlit: tensors to grids, PNG and GIF."""

from __future__ import annotations

import io
import math
import os
import threading
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


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 image (H, W) or (H, W, C) as PNG bytes, at its own size."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: np.ndarray, path: str | os.PathLike, scale: int = 1) -> Path:
    """Write a uint8 image as PNG, enlarged scale times with nearest-neighbour. Whole or not at all: written beside
    the path and renamed onto it (a page that reads a run's grid while the run writes it never gets half a PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(image)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    part = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        im.save(part, format="PNG")
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
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


class ImageRejected(ValueError):
    """An upload that cannot be used as an image; the message says why and what to do."""


MAX_PIXELS = (
    16_000_000  # larger uploads are refused (a 4000x4000 RGBA image decodes to 64 MB); JPEGs are decoded smaller
)
MAX_SIDE = 1024  # an upload is shrunk to this at once: the models take 28 or 64 px, the page previews ~450 px
THINNEST = 200  # an image more than this many times longer than wide (or the reverse) has no square to crop


def load_image(data: bytes, name: str = "upload") -> Image.Image:
    """Decode an upload into an RGB or L image: EXIF rotation applied, alpha composited on white, 16-bit scaled.

    ImageRejected for a non-image, a truncated file or a decompression bomb.
    """
    import warnings

    from PIL import ImageOps, UnidentifiedImageError

    if not data:
        raise ImageRejected(f"{name} is empty: choose an image file (PNG, JPEG, WebP, BMP, TIFF, GIF ...)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            width, height = im.size
            im.draft(
                im.mode if im.mode in ("RGB", "L") else None, (MAX_SIDE, MAX_SIDE)
            )  # JPEG: decoded at 1/2..1/8 size
            if im.width * im.height > MAX_PIXELS:
                raise ImageRejected(
                    f"{name} is {width}x{height} pixels, over the {MAX_PIXELS // 1_000_000} MP limit: "
                    "resize it to a few megapixels and upload it again"
                )
            if max(width, height) > THINNEST * min(width, height):
                raise ImageRejected(
                    f"{name} is {width}x{height} pixels: too thin to crop a square from for the model; "
                    "crop it closer to square and upload it again"
                )
            im.load()
            im.thumbnail((MAX_SIDE, MAX_SIDE))  # in place: the full-size pixels are freed before any conversion
    except ImageRejected:
        raise
    except UnidentifiedImageError as e:
        raise ImageRejected(f"{name} is not an image PIL can read: upload a PNG, JPEG, WebP, BMP, TIFF or GIF") from e
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageRejected(f"{name} is too large to decode safely ({e}); resize it and upload it again") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageRejected(f"{name} could not be decoded ({e}); it may be truncated: save or download it again") from e
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray((arr / top * 255).clip(0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ImageRejected(
                f"{name} has {int((~np.isfinite(arr)).sum())} pixels that are not numbers (NaN or infinite): "
                "fill them in or export the image again (as 8- or 16-bit), then upload it"
            )
        im = Image.fromarray((255 * (arr - arr.min()) / max(np.ptp(arr), 1e-12)).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "P", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba).convert("RGB")
    return im if im.mode in ("RGB", "L") else im.convert("RGB")


def fit_image(
    im: Image.Image, shape: tuple[int, int, int], signed: bool = True
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Centre-crop to the backend's aspect ratio, resize to (H, W), match its channels; (1, C, H, W) in [-1, 1].

    Also returns the crop box (left, top, right, bottom) in the original's pixels, to show what was used.
    """
    C, H, W = shape
    side_w, side_h = im.width, im.height
    if side_w * H > side_h * W:  # too wide
        side_w = round(side_h * W / H)
    else:
        side_h = round(side_w * H / W)
    left, top = (im.width - side_w) // 2, (im.height - side_h) // 2
    box = (left, top, left + side_w, top + side_h)
    im = im.crop(box).resize((W, H), Image.LANCZOS).convert("L" if C == 1 else "RGB")
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).reshape(H, W, C).permute(2, 0, 1)[None]
    return (x * 2 - 1 if signed else x), box
