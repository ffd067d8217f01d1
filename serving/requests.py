"""Every Part A computation as a frozen request: one type per kind, each carrying its own lab entry point.

A request names what it is computed under (backend, device, seed) and its settings; it is hashable, so it keys the
room's queue and results store (two browsers that ask for the same request share one computation), and it pickles,
so a Ray Serve replica computes it as well. The Fall 2024 edition's requests (``DDPMRequest``: strided timesteps) run
lab's course functions, the Fall 2026 edition's (``FlowRequest``: Euler steps of a step size) lab.flow's. ``compute``
runs a request's loop on a backend, recording the first image's trajectory; ``run_loop`` is where a server runs many
requests' loops as one (serving.batching).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np
import torch

import lab
import lab.flow as flow
from lab.course import CFG_SCALE, DEFAULT_PROMPT, HYBRID_KERNEL, HYBRID_SIGMA
from lab.flow import ANAGRAM_VIEWS, CFG_W, STEP_SIZE
from lab.images import to_uint8
from lab.processes import euler_times
from serving.queue import Progress


def pack(x: torch.Tensor | np.ndarray | None) -> bytes | None:
    """An image (or mask) as float32 bytes: hashable, so that a request holding it can key a cache."""
    return None if x is None else np.ascontiguousarray(np.asarray(x, dtype=np.float32)).tobytes()


def unpack(data: bytes, *shape: int) -> torch.Tensor:
    """The float32 tensor of pack's bytes, reshaped (-1 allowed once)."""
    return torch.from_numpy(np.frombuffer(data, np.float32).reshape(*shape).copy())


MAX_PROMPT_CHARS = 200  # a prompt's most characters (T5 reads 77 tokens, CLIP 77, Qwen3 128: more is never read)
MAX_PROMPTS = 8  # prompts of one request
MAX_VALUES = 64  # timesteps, sigmas, views of one request
BOUNDS = {  # field -> (lowest, highest): what any request may ask for, whatever a page's widgets allow
    "seed": (0, 2**31 - 1),
    "n": (1, 64),
    "scale": (0, 100),
    "w": (0, 100),
    "i_start": (0, 10_000),
    "t_start": (0, 1),
    "stride": (1, 1000),
    "step_size": (1e-3, 1),
    "kernel_size": (1, 1025),
    "ts": (0, 10_000),
    "sigmas": (0, 100),
}


@dataclass(frozen=True)
class Request:
    """What every Part A computation is computed under: a backend (by name, on a device) and the sidebar's seed."""

    backend: str
    device: str
    seed: int

    kind: ClassVar[str]  # its name in the server's compute log
    what: ClassVar[str]  # what the page's progress bar says runs
    clamp: ClassVar[bool] = True  # its result clamped to [-1, 1] (False: the raw estimates, to compute with)
    step_keys: ClassVar[tuple[str, str]]  # the loop callback's next time and clean estimate (the process's names)

    def check(self) -> Request:
        """This request, if every value is within BOUNDS and every prompt within MAX_PROMPT_CHARS; else a ValueError that
        names the value and its range (the room checks each request before it queues it)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or isinstance(value, bytes):
                continue
            if f.name in ("prompt", "prompts"):
                prompts = [value] if isinstance(value, str) else list(value)
                if len(prompts) > MAX_PROMPTS or any(
                    not isinstance(p, str) or len(p) > MAX_PROMPT_CHARS for p in prompts
                ):
                    raise ValueError(
                        f"a prompt may have at most {MAX_PROMPT_CHARS} characters (and a request {MAX_PROMPTS} "
                        "prompts): shorten it"
                    )
            elif f.name in BOUNDS:
                low, high = BOUNDS[f.name]
                values = list(value) if isinstance(value, tuple) else [value]
                if len(values) > MAX_VALUES or not all(
                    isinstance(v, (int, float)) and low <= v <= high for v in values
                ):
                    raise ValueError(f"{f.name} must be between {low:g} and {high:g}, got {value!r}")
            elif isinstance(value, tuple) and len(value) > MAX_VALUES:
                raise ValueError(f"{f.name} may have at most {MAX_VALUES} values, got {len(value)}")
        return self

    def times(self, den) -> list:
        """The times its loop runs through."""
        raise NotImplementedError

    def loop(self, den, times: list, callback, progress: Progress):
        """Its lab entry point's loop, unrun (``lab.sdedit.steps(...)``): the generator of its model calls."""
        raise NotImplementedError

    def total_steps(self, times: list) -> int:
        """Model calls of its loop (the progress bar's steps)."""
        return len(times)

    @staticmethod
    def label(t, t_next) -> str:
        """A trajectory frame's caption: the step from t to t_next."""
        raise NotImplementedError


@dataclass(frozen=True)
class DDPMRequest(Request):
    """The Fall 2024 edition's requests: DDPM down the strided timesteps."""

    stride: int = field(default=30, kw_only=True)  # strided timesteps: T-1 rounded down to a multiple of stride, ..., 0
    step_keys: ClassVar[tuple[str, str]] = ("t_prev", "x0_hat")

    def times(self, den) -> list[int]:
        return lab.strided_timesteps(den.T, self.stride)

    @staticmethod
    def label(t, t_next) -> str:
        return f"t = {t} -> {'clean' if t_next == lab.CLEAN else t_next}"


@dataclass(frozen=True, kw_only=True)
class Sample(DDPMRequest):
    """0, 1.5, 1.6: n images from pure noise, with CFG at scale (None: without)."""

    prompt: str = DEFAULT_PROMPT
    scale: float | None = CFG_SCALE
    n: int = 1
    kind: ClassVar[str] = "sample"
    what: ClassVar[str] = "sampling"

    def loop(self, den, times, callback, progress):
        return lab.sample.steps(
            den, self.n, self.prompt, self.scale, timesteps=times, generator=self.seed, callback=callback
        )


@dataclass(frozen=True, kw_only=True)
class Iterative(DDPMRequest):
    """1.4: the image noised to timesteps[i_start], denoised from there (iterative_denoise, or _cfg with a scale)."""

    image: bytes  # (1, C, H, W) float32 in [-1, 1] (pack)
    i_start: int
    prompt: str = DEFAULT_PROMPT
    scale: float | None = None
    kind: ClassVar[str] = "iterative"
    what: ClassVar[str] = "iterative denoising"

    def loop(self, den, times, callback, progress):
        x_t = lab.forward(unpack(self.image, -1, *den.image_shape), times[self.i_start], den, generator=self.seed)
        common = dict(timesteps=times, generator=self.seed, callback=callback)
        if self.scale is None:
            return lab.iterative_denoise.steps(den, x_t, self.i_start, self.prompt, **common)
        return lab.iterative_denoise_cfg.steps(den, x_t, self.i_start, self.prompt, self.scale, **common)

    def total_steps(self, times):
        return len(times) - self.i_start


@dataclass(frozen=True, kw_only=True)
class SDEdit(DDPMRequest):
    """1.7, 1.7.1, 1.7.3: the image noised to timesteps[i_start] and denoised with CFG under prompt."""

    image: bytes  # (1, C, H, W) float32 in [-1, 1] (pack)
    i_start: int
    prompt: str = DEFAULT_PROMPT
    scale: float | None = CFG_SCALE
    kind: ClassVar[str] = "sdedit"
    what: ClassVar[str] = "SDEdit"

    def loop(self, den, times, callback, progress):
        image = unpack(self.image, -1, *den.image_shape)
        return lab.sdedit.steps(
            den, image, self.i_start, self.prompt, self.scale, timesteps=times, generator=self.seed, callback=callback
        )

    def total_steps(self, times):
        return len(times) - self.i_start


@dataclass(frozen=True, kw_only=True)
class Inpaint(DDPMRequest):
    """1.7.2: pure noise denoised with the image kept outside the mask after every step (A.5)."""

    image: bytes  # (1, C, H, W) float32 in [-1, 1] (pack)
    mask: bytes  # (H, W) float32, 1 where new content goes (pack)
    prompt: str = DEFAULT_PROMPT
    scale: float | None = CFG_SCALE
    kind: ClassVar[str] = "inpaint"
    what: ClassVar[str] = "inpainting"

    def loop(self, den, times, callback, progress):
        C, H, W = den.image_shape
        image, mask = unpack(self.image, -1, C, H, W), unpack(self.mask, H, W)
        return lab.inpaint.steps(
            den, image, mask, self.prompt, self.scale, timesteps=times, generator=self.seed, callback=callback
        )


@dataclass(frozen=True, kw_only=True)
class Anagram(DDPMRequest):
    """1.8: an image that reads as prompts[k] through views[k]."""

    prompts: tuple[str, ...]
    views: tuple[str, ...] = ("identity", "flip")
    scale: float | None = CFG_SCALE
    n: int = 1
    kind: ClassVar[str] = "anagram"
    what: ClassVar[str] = "visual anagram"

    def loop(self, den, times, callback, progress):
        return lab.visual_anagrams.steps(
            den, self.prompts, self.views, self.n, self.scale, timesteps=times, generator=self.seed, callback=callback
        )


@dataclass(frozen=True, kw_only=True)
class Hybrid(DDPMRequest):
    """1.9: low frequencies from prompts[0] (far), high from prompts[-1] (near); three prompts: three bands."""

    prompts: tuple[str, ...]
    kernel_size: int = HYBRID_KERNEL
    sigmas: tuple[float, ...] = (HYBRID_SIGMA,)
    scale: float | None = CFG_SCALE
    n: int = 1
    kind: ClassVar[str] = "hybrid"
    what: ClassVar[str] = "hybrid image"

    def loop(self, den, times, callback, progress):
        return lab.make_hybrids.steps(
            den,
            self.prompts,
            self.kernel_size,
            self.sigmas,
            self.n,
            self.scale,
            timesteps=times,
            generator=self.seed,
            callback=callback,
        )


@dataclass(frozen=True, kw_only=True)
class ColourHybrid(DDPMRequest):
    """1.9's colour split: the grey part from prompts[0], the colour part from prompts[1] (Factorized Diffusion)."""

    prompts: tuple[str, str]
    scale: float | None = CFG_SCALE
    n: int = 1
    kind: ClassVar[str] = "colour_hybrid"
    what: ClassVar[str] = "colour hybrid"

    def loop(self, den, times, callback, progress):
        return lab.colour_hybrids.steps(
            den, self.prompts, self.n, self.scale, timesteps=times, generator=self.seed, callback=callback
        )


@dataclass(frozen=True, kw_only=True)
class OneStep(DDPMRequest):
    """1.3: the one-step estimate of each noisy image, at its own timestep (one model call each)."""

    image: bytes  # (B, C, H, W) float32: the noisy images x_t (pack)
    ts: tuple[int, ...]  # the timestep of each image
    prompt: str = DEFAULT_PROMPT
    kind: ClassVar[str] = "one_step"
    what: ClassVar[str] = "one-step denoising"

    def __post_init__(self):
        object.__setattr__(self, "ts", tuple(int(t) for t in self.ts))

    def loop(self, den, times, callback, progress):
        image = unpack(self.image, -1, *den.image_shape)
        return _chain(
            [lab.one_step_denoise.steps(den, image[i : i + 1], t, self.prompt) for i, t in enumerate(self.ts)], progress
        )

    def total_steps(self, times):
        return len(self.ts)


@dataclass(frozen=True)
class Result:
    images: torch.Tensor  # (B, C, H, W) in [-1, 1]
    frames: list  # uint8 images at the backend's resolution, one per step: the first image's trajectory
    frame_labels: list  # "t = 990 -> 960" per frame
    x0_frames: list  # uint8 images: the step's clean estimate at each step (x0_hat; the flow's x1_hat)

    @property
    def nbytes(self) -> int:
        """Memory held, for the results store's bound."""
        return self.images.numel() * self.images.element_size() + sum(f.nbytes for f in self.frames + self.x0_frames)


@dataclass(frozen=True)
class FlowRequest(Request):
    """The Fall 2026 edition's requests: Euler steps of step_size on a flow backend, from its start to t = 1."""

    step_size: float = field(default=STEP_SIZE, kw_only=True)
    step_keys: ClassVar[tuple[str, str]] = ("t_next", "x1_hat")

    def times(self, den) -> list[float]:
        return euler_times(self.start(), self.step_size)

    def start(self) -> float:
        """Where its steps start: 0 (pure noise), an edit's t_start."""
        return 0.0

    @staticmethod
    def label(t, t_next) -> str:
        return f"t = {t:.2f} -> {t_next:.2f}"


@dataclass(frozen=True, kw_only=True)
class FlowSample(FlowRequest):
    """1.6, 2.1: n images from pure noise, with CFG at w (None: without); image i from the notebook's noise(seed + i)."""

    prompt: str = DEFAULT_PROMPT
    w: float | None = CFG_W
    n: int = 1
    kind: ClassVar[str] = "flow_sample"
    what: ClassVar[str] = "sampling"

    def loop(self, den, times, callback, progress):
        return flow.sample.steps(
            den,
            self.n,
            self.prompt,
            self.w,
            self.step_size,
            callback=callback,
            seeds=range(self.seed, self.seed + self.n),
        )


@dataclass(frozen=True, kw_only=True)
class FlowOneStep(FlowRequest):
    """1.3, 1.4, 1.5: the one-step estimate x1_hat of each noisy image x_t, at its own t (one model call each),
    unclamped (1.4 reads the velocity from it)."""

    image: bytes  # (B, C, H, W) float32: the noisy images x_t (pack)
    ts: tuple[float, ...]  # the t of each image
    prompt: str = DEFAULT_PROMPT
    kind: ClassVar[str] = "flow_one_step"
    what: ClassVar[str] = "one-step denoising"
    clamp: ClassVar[bool] = False

    def __post_init__(self):
        object.__setattr__(self, "ts", tuple(float(t) for t in self.ts))

    def loop(self, den, times, callback, progress):
        image = unpack(self.image, -1, *den.image_shape)
        return _chain(
            [flow.one_step.steps(den, image[i : i + 1], t, self.prompt) for i, t in enumerate(self.ts)], progress
        )

    def total_steps(self, times):
        return len(self.ts)


@dataclass(frozen=True, kw_only=True)
class FlowEuler(FlowRequest):
    """1.5: Euler steps from a noisy image x_t at t_start to t = 1, under prompt (CFG at w; None: none)."""

    image: bytes  # (1, C, H, W) float32: x_t (pack)
    t_start: float
    prompt: str = DEFAULT_PROMPT
    w: float | None = None
    kind: ClassVar[str] = "flow_euler"
    what: ClassVar[str] = "Euler sampling"

    def start(self) -> float:
        return self.t_start

    def loop(self, den, times, callback, progress):
        x_t = unpack(self.image, -1, *den.image_shape)
        return flow.sample_from.steps(den, x_t, self.t_start, self.prompt, self.w, self.step_size, callback=callback)


@dataclass(frozen=True, kw_only=True)
class FlowEdit(FlowRequest):
    """3.1, 3.2: the image noised to t_start, then Euler with CFG under prompt."""

    image: bytes  # (1, C, H, W) float32 in [-1, 1] (pack)
    t_start: float
    prompt: str = DEFAULT_PROMPT
    w: float | None = CFG_W
    kind: ClassVar[str] = "flow_edit"
    what: ClassVar[str] = "editing"

    def start(self) -> float:
        return self.t_start

    def loop(self, den, times, callback, progress):
        image = unpack(self.image, -1, *den.image_shape)
        return flow.edit_image.steps(
            den, image, self.t_start, self.prompt, self.w, self.step_size, generator=self.seed, callback=callback
        )


@dataclass(frozen=True, kw_only=True)
class FlowAnagram(FlowRequest):
    """3.3: an image that reads as prompts[k] through views[k] (the course's: the rotation by 180 degrees)."""

    prompts: tuple[str, ...]
    views: tuple[str, ...] = ANAGRAM_VIEWS
    w: float | None = CFG_W
    n: int = 1
    kind: ClassVar[str] = "flow_anagram"
    what: ClassVar[str] = "visual anagram"

    def loop(self, den, times, callback, progress):
        return flow.anagram_images.steps(
            den, self.prompts, self.views, self.n, self.w, self.step_size, generator=self.seed, callback=callback
        )


@dataclass(frozen=True, kw_only=True)
class FlowHybrid(FlowRequest):
    """3.4: low frequencies from prompts[0] (far), high from prompts[-1] (near); three prompts: three bands."""

    prompts: tuple[str, ...]
    kernel_size: int
    sigmas: tuple[float, ...]
    w: float | None = CFG_W
    n: int = 1
    kind: ClassVar[str] = "flow_hybrid"
    what: ClassVar[str] = "hybrid image"

    def loop(self, den, times, callback, progress):
        return flow.hybrid_images.steps(
            den,
            self.prompts,
            self.kernel_size,
            self.sigmas,
            self.n,
            self.w,
            self.step_size,
            generator=self.seed,
            callback=callback,
        )


def sdedit_row(
    backend: str, device: str, seed: int, x0: torch.Tensor, prompt: str, scale: float | None, starts: tuple[int, ...]
) -> list[SDEdit]:
    """1.7's row: SDEdit of x0 from each i_start of starts."""
    image = pack(x0)
    return [SDEdit(backend, device, seed, image=image, i_start=i, prompt=prompt, scale=scale) for i in starts]


def edit_row(
    backend: str, device: str, seed: int, x1: torch.Tensor, prompt: str, w: float | None, starts: tuple[float, ...]
) -> list[FlowEdit]:
    """3.1's row: the edit of x1 from each start time of starts."""
    image = pack(x1)
    return [FlowEdit(backend, device, seed, image=image, t_start=t, prompt=prompt, w=w) for t in starts]


def compute(request: Request, den, progress: Progress | None = None, run_loop: Callable | None = None) -> Result:
    """Run request's lab entry point on den, recording the first image's trajectory; progress counts the steps.

    run_loop(steps) runs the entry point's loop (its ``steps``): serving.batching.LoopBatcher.run on the server, which
    runs it together with other requests' loops; None runs it here with den, as lab does.
    """
    progress = progress or Progress()
    run_loop = run_loop or (lambda steps: lab.run_steps(steps, den))
    times = request.times(den)
    frames, labels, estimates = [], [], []
    progress.total = request.total_steps(times)
    next_key, estimate_key = request.step_keys

    def callback(
        step: dict,
    ) -> None:  # the tensors are kept (the loop makes new ones each step), made images at the end
        frames.append(step["x"][:1])
        estimates.append(step[estimate_key][:1])
        labels.append(request.label(step["t"], step[next_key]))
        progress.step()  # Cancelled here once nobody waits for the result

    steps = request.loop(den, times, callback, progress)
    out = run_loop(steps)
    out = out.clamp(-1, 1) if request.clamp else out
    as_images = lambda xs: list(to_uint8(torch.cat(xs), -1, 1)) if xs else []  # noqa: E731
    return Result(out, as_images(frames), labels, as_images(estimates))


def _chain(loops: list, progress: Progress):
    """Several loops one after the other as one loop, their results concatenated (lab.sampling's protocol)."""
    out = []
    for steps in loops:
        out.append((yield from steps))
        progress.step()
    return torch.cat(out)
