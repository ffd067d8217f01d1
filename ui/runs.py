"""Every Part A page's computation: a frozen ``Run`` config -> one lab call, cached by config.

The cache is a server-wide LRU dict keyed by the frozen config, not ``st.cache_data``: st.cache_data replays
the element calls a cached function makes, which breaks a progress bar that lives outside the function.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

import lab
from lab.images import to_uint8
from ui.common import backend, progress_callback

MAX_RESULTS = 512  # results are small: images at the backend's resolution
_results: OrderedDict = OrderedDict()
_lock = threading.Lock()

KINDS = ("sample", "iterative", "sdedit", "inpaint", "anagram", "hybrid")


@dataclass(frozen=True)
class Run:
    kind: str  # one of KINDS
    backend: str
    device: str
    seed: int
    prompts: tuple[str, ...] = ("a high quality photo",)
    scale: float | None = 7.0  # CFG scale; None: no CFG
    stride: int = 30  # strided timesteps: T-1 rounded down to a multiple of stride, ..., 0
    i_start: int = 0
    n: int = 1  # images from pure noise
    image: bytes | None = None  # input image (1, C, H, W) float32 in [-1, 1], as bytes (hashable)
    mask: bytes | None = None  # inpainting mask (H, W) float32, 1 = fill in
    views: tuple[str, ...] = ("identity", "flip")
    kernel_size: int = 33
    sigmas: tuple[float, ...] = (2.0,)

    @staticmethod
    def pack(x: torch.Tensor | np.ndarray | None) -> bytes | None:
        return None if x is None else np.ascontiguousarray(np.asarray(x, dtype=np.float32)).tobytes()


@dataclass(frozen=True)
class Result:
    images: torch.Tensor  # (B, C, H, W) in [-1, 1]
    frames: list  # uint8 images at the backend's resolution, one per step: the first image's trajectory
    frame_labels: list  # "t = 990 -> 960" per frame
    x0_frames: list  # uint8 images: the one-step estimate x0_hat at each step


def run(cfg: Run, bar=None) -> Result:
    """cfg's result: from the cache, or computed with the progress bar moving; a repeated setting costs nothing."""
    with _lock:
        if cfg in _results:
            _results.move_to_end(cfg)
            if bar is not None:
                bar.empty()
            return _results[cfg]
    result = _compute(cfg, bar)
    with _lock:
        _results[cfg] = result
        while len(_results) > MAX_RESULTS:
            _results.popitem(last=False)
    return result


def _compute(cfg: Run, bar) -> Result:
    """Run cfg's lab entry point, recording the first image's trajectory."""
    den = backend(cfg.backend, cfg.device)
    C, H, W = den.image_shape
    timesteps = lab.strided_timesteps(den.T, cfg.stride)
    frames, labels, x0s = [], [], []

    def record(step: dict) -> None:
        frames.append(to_uint8(step["x"][:1], -1, 1)[0])
        x0s.append(to_uint8(step["x0_hat"][:1], -1, 1)[0])
        labels.append(f"t = {step['t']} -> {'clean' if step['t_prev'] == lab.CLEAN else step['t_prev']}")

    steps = len(timesteps) - cfg.i_start
    moved = progress_callback(bar, steps) if bar is not None else None

    def callback(step: dict) -> None:
        record(step)
        if moved:
            moved(step)

    common = dict(timesteps=timesteps, generator=cfg.seed, callback=callback)
    image = None if cfg.image is None else torch.from_numpy(np.frombuffer(cfg.image, np.float32).reshape(1, C, H, W).copy())
    if cfg.kind == "sample":
        out = lab.sample(den, cfg.n, cfg.prompts[0], cfg.scale, **common)
    elif cfg.kind == "iterative":
        x_t = lab.forward(image, timesteps[cfg.i_start], den, generator=cfg.seed)
        fn = lab.iterative_denoise if cfg.scale is None else lab.iterative_denoise_cfg
        kwargs = {} if cfg.scale is None else {"scale": cfg.scale}
        out = fn(den, x_t, cfg.i_start, cfg.prompts[0], **kwargs, **common)
    elif cfg.kind == "sdedit":
        out = lab.sdedit(den, image, cfg.i_start, cfg.prompts[0], cfg.scale, **common)
    elif cfg.kind == "inpaint":
        mask = torch.from_numpy(np.frombuffer(cfg.mask, np.float32).reshape(H, W).copy())
        out = lab.inpaint(den, image, mask, cfg.prompts[0], cfg.scale, **common)
    elif cfg.kind == "anagram":
        out = lab.visual_anagrams(den, cfg.prompts, cfg.views, cfg.n, cfg.scale, **common)
    elif cfg.kind == "hybrid":
        out = lab.make_hybrids(den, cfg.prompts, cfg.kernel_size, cfg.sigmas, cfg.n, cfg.scale, **common)
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {cfg.kind!r}")
    if bar is not None:
        bar.empty()
    return Result(out.clamp(-1, 1), frames, labels, x0s)
