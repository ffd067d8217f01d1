"""Every Part A computation as a frozen request: one type per kind, each carrying its own lab entry point.

A request names what it is computed under (backend, device, seed) and its settings; it is hashable, so it keys the
room's queue and results store (two browsers that ask for the same request share one computation), and it pickles,
so a Ray Serve replica computes it as well. ``compute`` runs a request's loop on a backend, recording the first
image's trajectory; ``run_loop`` is where a server runs many requests' loops as one (serving.batching).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np
import torch

import lab
from lab.course import CFG_SCALE, DEFAULT_PROMPT, HYBRID_KERNEL, HYBRID_SIGMA
from lab.images import to_uint8
from serving.queue import Progress


def pack(x: torch.Tensor | np.ndarray | None) -> bytes | None:
    """An image (or mask) as float32 bytes: hashable, so that a request holding it can key a cache."""
    return None if x is None else np.ascontiguousarray(np.asarray(x, dtype=np.float32)).tobytes()


def unpack(data: bytes, *shape: int) -> torch.Tensor:
    """The float32 tensor of pack's bytes, reshaped (-1 allowed once)."""
    return torch.from_numpy(np.frombuffer(data, np.float32).reshape(*shape).copy())


@dataclass(frozen=True)
class Request:
    """What every Part A computation is computed under: a backend (by name, on a device) and the sidebar's seed."""

    backend: str
    device: str
    seed: int
    stride: int = field(default=30, kw_only=True)  # strided timesteps: T-1 rounded down to a multiple of stride, ..., 0

    kind: ClassVar[str]  # its name in the server's compute log
    what: ClassVar[str]  # what the page's progress bar says runs

    def loop(self, den, timesteps: list[int], callback, progress: Progress):
        """Its lab entry point, unrun (under lab.stepping()): the loop's generator of model calls."""
        raise NotImplementedError

    def total_steps(self, timesteps: list[int]) -> int:
        """Model calls of its loop (the progress bar's steps)."""
        return len(timesteps)


@dataclass(frozen=True, kw_only=True)
class Sample(Request):
    """0, 1.5, 1.6: n images from pure noise, with CFG at scale (None: without)."""

    prompt: str = DEFAULT_PROMPT
    scale: float | None = CFG_SCALE
    n: int = 1
    kind: ClassVar[str] = "sample"
    what: ClassVar[str] = "sampling"

    def loop(self, den, timesteps, callback, progress):
        return lab.sample(den, self.n, self.prompt, self.scale, timesteps=timesteps, generator=self.seed, callback=callback)


@dataclass(frozen=True, kw_only=True)
class Iterative(Request):
    """1.4: the image noised to timesteps[i_start], denoised from there (iterative_denoise, or _cfg with a scale)."""

    image: bytes  # (1, C, H, W) float32 in [-1, 1] (pack)
    i_start: int
    prompt: str = DEFAULT_PROMPT
    scale: float | None = None
    kind: ClassVar[str] = "iterative"
    what: ClassVar[str] = "iterative denoising"

    def loop(self, den, timesteps, callback, progress):
        x_t = lab.forward(unpack(self.image, -1, *den.image_shape), timesteps[self.i_start], den, generator=self.seed)
        common = dict(timesteps=timesteps, generator=self.seed, callback=callback)
        if self.scale is None:
            return lab.iterative_denoise(den, x_t, self.i_start, self.prompt, **common)
        return lab.iterative_denoise_cfg(den, x_t, self.i_start, self.prompt, self.scale, **common)

    def total_steps(self, timesteps):
        return len(timesteps) - self.i_start


@dataclass(frozen=True, kw_only=True)
class SDEdit(Request):
    """1.7, 1.7.1, 1.7.3: the image noised to timesteps[i_start] and denoised with CFG under prompt."""

    image: bytes  # (1, C, H, W) float32 in [-1, 1] (pack)
    i_start: int
    prompt: str = DEFAULT_PROMPT
    scale: float | None = CFG_SCALE
    kind: ClassVar[str] = "sdedit"
    what: ClassVar[str] = "SDEdit"

    def loop(self, den, timesteps, callback, progress):
        image = unpack(self.image, -1, *den.image_shape)
        return lab.sdedit(den, image, self.i_start, self.prompt, self.scale, timesteps=timesteps, generator=self.seed, callback=callback)

    def total_steps(self, timesteps):
        return len(timesteps) - self.i_start


@dataclass(frozen=True, kw_only=True)
class Inpaint(Request):
    """1.7.2: pure noise denoised with the image kept outside the mask after every step (A.5)."""

    image: bytes  # (1, C, H, W) float32 in [-1, 1] (pack)
    mask: bytes  # (H, W) float32, 1 where new content goes (pack)
    prompt: str = DEFAULT_PROMPT
    scale: float | None = CFG_SCALE
    kind: ClassVar[str] = "inpaint"
    what: ClassVar[str] = "inpainting"

    def loop(self, den, timesteps, callback, progress):
        C, H, W = den.image_shape
        image, mask = unpack(self.image, -1, C, H, W), unpack(self.mask, H, W)
        return lab.inpaint(den, image, mask, self.prompt, self.scale, timesteps=timesteps, generator=self.seed, callback=callback)


@dataclass(frozen=True, kw_only=True)
class Anagram(Request):
    """1.8: an image that reads as prompts[k] through views[k]."""

    prompts: tuple[str, ...]
    views: tuple[str, ...] = ("identity", "flip")
    scale: float | None = CFG_SCALE
    n: int = 1
    kind: ClassVar[str] = "anagram"
    what: ClassVar[str] = "visual anagram"

    def loop(self, den, timesteps, callback, progress):
        return lab.visual_anagrams(den, self.prompts, self.views, self.n, self.scale, timesteps=timesteps, generator=self.seed,
                                   callback=callback)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Hybrid(Request):
    """1.9: low frequencies from prompts[0] (far), high from prompts[-1] (near); three prompts: three bands."""

    prompts: tuple[str, ...]
    kernel_size: int = HYBRID_KERNEL
    sigmas: tuple[float, ...] = (HYBRID_SIGMA,)
    scale: float | None = CFG_SCALE
    n: int = 1
    kind: ClassVar[str] = "hybrid"
    what: ClassVar[str] = "hybrid image"

    def loop(self, den, timesteps, callback, progress):
        return lab.make_hybrids(den, self.prompts, self.kernel_size, self.sigmas, self.n, self.scale, timesteps=timesteps,
                                generator=self.seed, callback=callback)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ColourHybrid(Request):
    """1.9's colour split: the grey part from prompts[0], the colour part from prompts[1] (Factorized Diffusion)."""

    prompts: tuple[str, str]
    scale: float | None = CFG_SCALE
    n: int = 1
    kind: ClassVar[str] = "colour_hybrid"
    what: ClassVar[str] = "colour hybrid"

    def loop(self, den, timesteps, callback, progress):
        return lab.colour_hybrids(den, self.prompts, self.n, self.scale, timesteps=timesteps, generator=self.seed, callback=callback)


@dataclass(frozen=True, kw_only=True)
class OneStep(Request):
    """1.3: the one-step estimate of each noisy image, at its own timestep (one model call each)."""

    image: bytes  # (B, C, H, W) float32: the noisy images x_t (pack)
    ts: tuple[int, ...]  # the timestep of each image
    prompt: str = DEFAULT_PROMPT
    kind: ClassVar[str] = "one_step"
    what: ClassVar[str] = "one-step denoising"

    def __post_init__(self):
        object.__setattr__(self, "ts", tuple(int(t) for t in self.ts))

    def loop(self, den, timesteps, callback, progress):
        image = unpack(self.image, -1, *den.image_shape)
        return _chain([lab.one_step_denoise(den, image[i : i + 1], t, self.prompt) for i, t in enumerate(self.ts)], progress)

    def total_steps(self, timesteps):
        return len(self.ts)


@dataclass(frozen=True)
class Result:
    images: torch.Tensor  # (B, C, H, W) in [-1, 1]
    frames: list  # uint8 images at the backend's resolution, one per step: the first image's trajectory
    frame_labels: list  # "t = 990 -> 960" per frame
    x0_frames: list  # uint8 images: the one-step estimate x0_hat at each step

    @property
    def nbytes(self) -> int:
        """Memory held, for the results store's bound."""
        return self.images.numel() * self.images.element_size() + sum(f.nbytes for f in self.frames + self.x0_frames)


def sdedit_row(backend: str, device: str, seed: int, x0: torch.Tensor, prompt: str, scale: float | None,
               starts: tuple[int, ...]) -> list[SDEdit]:  # fmt: skip
    """1.7's row: SDEdit of x0 from each i_start of starts."""
    image = pack(x0)
    return [SDEdit(backend, device, seed, image=image, i_start=i, prompt=prompt, scale=scale) for i in starts]


def compute(request: Request, den, progress: Progress | None = None, run_loop: Callable | None = None) -> Result:
    """Run request's lab entry point on den, recording the first image's trajectory; progress counts the steps.

    run_loop(steps) runs the entry point's loop (lab.stepping): serving.batching.LoopBatcher.run on the server, which
    runs it together with other requests' loops; None runs it here with den, as lab does.
    """
    progress = progress or Progress()
    run_loop = run_loop or (lambda steps: lab.run_steps(steps, den))
    timesteps = lab.strided_timesteps(den.T, request.stride)
    frames, labels, x0s = [], [], []
    progress.total = request.total_steps(timesteps)

    def callback(step: dict) -> None:  # the tensors are kept (the loop makes new ones each step), made images at the end
        frames.append(step["x"][:1])
        x0s.append(step["x0_hat"][:1])
        labels.append(f"t = {step['t']} -> {'clean' if step['t_prev'] == lab.CLEAN else step['t_prev']}")
        progress.done += 1

    with lab.stepping():  # each entry point returns its loop, for run_loop
        steps = request.loop(den, timesteps, callback, progress)
    out = run_loop(steps).clamp(-1, 1)
    as_images = lambda xs: list(to_uint8(torch.cat(xs), -1, 1)) if xs else []  # noqa: E731
    return Result(out, as_images(frames), labels, as_images(x0s))


def _chain(loops: list, progress: Progress):
    """Several loops one after the other as one loop, their results concatenated (lab.sampling's protocol)."""
    out = []
    for steps in loops:
        out.append((yield from steps))
        progress.done += 1
    return torch.cat(out)
