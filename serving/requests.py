"""Every Part A computation as one frozen request: a course function of lab and its arguments, on a backend.

``Request.of(lab.sdedit, backend, device, im=x0, i_start=10, prompt=..., scale=7, generator=seed)`` is the call
``lab.sdedit(den, im=x0, ...)`` the notebook makes, written down: it is hashable, so it keys the room's queue and
results store (two browsers that ask for the same call share one computation), and it pickles, so a Ray Serve replica
computes it as well. Its arguments are bound to the function's signature with its defaults, so the same call written
two ways is one key; images are packed into bytes. ``compute`` runs the function's loop (its ``steps``) on a backend,
recording the first image's trajectory; ``run_loop`` is where a server runs many requests' loops as one
(serving.batching).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import lab
import lab.flow as flow
from lab.images import to_uint8
from serving.queue import Progress

# The course functions a page may ask the room for, and what its progress bar says runs
ENTRY_POINTS: dict[Callable, str] = {
    lab.sample: "sampling",
    lab.one_step_denoise: "one-step denoising",
    lab.iterative_denoise: "iterative denoising",
    lab.iterative_denoise_cfg: "iterative denoising",
    lab.sdedit: "SDEdit",
    lab.inpaint: "inpainting",
    lab.visual_anagrams: "visual anagram",
    lab.make_hybrids: "hybrid image",
    lab.colour_hybrids: "colour hybrid",
    flow.sample: "sampling",
    flow.one_step: "one-step denoising",
    flow.sample_from: "Euler sampling",
    flow.edit_image: "editing",
    flow.anagram_images: "visual anagram",
    flow.hybrid_images: "hybrid image",
}
RAW = {flow.one_step}  # results not clamped to [-1, 1]: the raw estimates, to compute with (1.4 reads the velocity)

MAX_PROMPT_CHARS = 200  # a prompt's most characters (T5 reads 77 tokens, CLIP 77, Qwen3 128: more is never read)
MAX_PROMPTS = 8  # prompts of one request
MAX_VALUES = 64  # sigmas, views, seeds, images of one request (timesteps: as many as the model has)
BOUNDS = {  # argument -> (lowest, highest): what any request may ask for, whatever a page's widgets allow
    "generator": (0, 2**31 - 1),
    "seeds": (0, 2**31 - 1),
    "n": (1, 64),
    "scale": (0, 100),
    "w": (0, 100),
    "i_start": (0, 10_000),
    "t": (0, 10_000),
    "t_start": (0, 1),
    "step_size": (1e-3, 1),
    "kernel_size": (1, 1025),
    "timesteps": (0, 10_000),
    "sigmas": (0, 100),
}
MOST = {"timesteps": 10_000}  # an argument's most values, where not MAX_VALUES


@dataclass(frozen=True)
class Packed:
    """An image (or mask) as float32 bytes and its shape: hashable, so that a request holding it can key a cache."""

    data: bytes
    shape: tuple[int, ...]

    @classmethod
    def of(cls, x: torch.Tensor | np.ndarray) -> Packed:
        a = np.ascontiguousarray(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32))
        return cls(a.tobytes(), tuple(a.shape))

    def tensor(self) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(self.data, np.float32).reshape(self.shape).copy())


def _frozen(value: Any) -> Any:
    """An argument as a request holds it: numbers as Python's, tensors and arrays packed, sequences as tuples."""
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.ndim == 0):
        return value.item()
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return Packed.of(value)
    if isinstance(value, (list, tuple, range)):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class Request:
    """A course function of lab (a key of ENTRY_POINTS), its arguments (name, value) in its signature's order with its
    defaults filled in, and the backend (by name, on a device) it runs on."""

    fn: Callable
    backend: str
    device: str
    args: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, fn: Callable, backend: str, device: str, /, *args, **kwargs) -> Request:
        """The request for fn(den, *args, **kwargs) on backend (TypeError for an argument fn has not)."""
        bound = inspect.signature(fn).bind_partial(None, *args, **kwargs)
        bound.apply_defaults()
        args = tuple((k, _frozen(v)) for k, v in bound.arguments.items() if k not in ("denoiser", "callback"))
        return cls(fn, backend, device, args)

    @property
    def what(self) -> str:
        """What the page's progress bar says runs."""
        return ENTRY_POINTS.get(self.fn, self.fn.__name__)

    def check(self) -> Request:
        """This request, if its function is a course function and every value is within BOUNDS and every prompt within
        MAX_PROMPT_CHARS; else a ValueError that names the value and its range (the room checks each request before it
        queues it)."""
        if self.fn not in ENTRY_POINTS:
            raise ValueError(f"{getattr(self.fn, '__name__', self.fn)!r} is not one of the course's functions")
        for name, value in self.args:
            if value is None:
                continue
            if isinstance(value, Packed):
                if len(value.shape) not in (2, 4) or (len(value.shape) == 4 and value.shape[0] > MAX_VALUES):
                    raise ValueError(f"{name} must be one image or a batch of at most {MAX_VALUES}")
            elif name in ("prompt", "prompts"):
                prompts = [value] if isinstance(value, str) else list(value)
                if len(prompts) > MAX_PROMPTS or any(
                    not isinstance(p, str) or len(p) > MAX_PROMPT_CHARS for p in prompts
                ):
                    raise ValueError(
                        f"a prompt may have at most {MAX_PROMPT_CHARS} characters (and a request {MAX_PROMPTS} "
                        "prompts): shorten it"
                    )
            elif name in BOUNDS:
                low, high = BOUNDS[name]
                values = list(value) if isinstance(value, tuple) else [value]
                if len(values) > MOST.get(name, MAX_VALUES) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high for v in values
                ):
                    raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
            elif isinstance(value, tuple) and len(value) > MAX_VALUES:
                raise ValueError(f"{name} may have at most {MAX_VALUES} values, got {len(value)}")
        return self

    @property
    def name(self) -> str:
        """Its function as a user calls it: lab.sdedit, lab.flow.edit_image."""
        module = "lab" if self.fn.__module__ == "lab.course" else self.fn.__module__
        return f"{module}.{self.fn.__name__}"

    def said(self) -> str:
        """The request in the compute log: its function, backend and arguments (images left out)."""
        args = " ".join(f"{k}={v}" for k, v in self.args if not isinstance(v, Packed))
        return f"{self.name} {self.backend} {args}"

    def steps(self, den, callback: Callable | None = None) -> lab.Loop:
        """Its function's loop on den, unrun (``lab.sdedit.steps(den, ...)``); callback gets each step, where the
        function reports them."""
        kwargs = {k: v.tensor() if isinstance(v, Packed) else v for k, v in self.args}
        if "callback" in inspect.signature(self.fn).parameters:
            kwargs["callback"] = callback
        return self.fn.steps(den, **kwargs)


def editing_row(fn: Callable, backend: str, device: str, image: torch.Tensor, prompt: str, scale, starts, seed: int):
    """The requests of an editing row: fn (lab.sdedit, lab.flow.edit_image) of image from each start (i_start, t_s)
    of starts under prompt, with CFG at scale."""
    return [Request.of(fn, backend, device, image, start, prompt, scale, generator=seed) for start in starts]


def per_image(fn: Callable, backend: str, device: str, x_t: torch.Tensor, ts, **kwargs) -> list[Request]:
    """fn (a one-step denoiser) of each image of x_t at its own t of ts: a request each (one model call)."""
    return [Request.of(fn, backend, device, x_t=x_t[i : i + 1], t=t, **kwargs) for i, t in enumerate(ts)]


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


def compute(request: Request, den, progress: Progress | None = None, run_loop: Callable | None = None) -> Result:
    """Run request's function on den, recording the first image's trajectory; progress counts the model calls.

    run_loop(steps) runs the function's loop: serving.batching.LoopBatcher.run on the server, which runs it together
    with other requests' loops; None runs it here with den, as lab does.
    """
    progress = progress or Progress()
    run_loop = run_loop or (lambda steps: lab.run_steps(steps, den))
    frames, labels, estimates = [], [], []

    def callback(
        step: dict,
    ) -> None:  # the tensors are kept (the loop makes new ones each step), made images at the end
        frames.append(step["x"][:1])
        estimates.append(step[process.estimate_name][:1])
        labels.append(process.label(step["t"], step[process.next_name]))

    steps = request.steps(den, callback)
    process, progress.total = steps.process, steps.total
    out = run_loop(_counted(steps, progress))
    out = out if request.fn in RAW else out.clamp(-1, 1)
    as_images = lambda xs: list(to_uint8(torch.cat(xs), -1, 1)) if xs else []  # noqa: E731
    return Result(out, as_images(frames), labels, as_images(estimates))


def _counted(steps, progress: Progress):
    """steps, progress stepping after each model call (Cancelled there once nobody waits for the result)."""
    call = next(steps)
    while True:
        output = yield call
        progress.step()
        try:
            call = steps.send(output)
        except StopIteration as done:
            return done.value
