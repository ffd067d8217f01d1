"""Every Part A page's computation: a frozen ``Run`` config -> one lab call, through the server's compute queue.

Pages call ``run`` / ``run_all``: each config is a request of the room's queue (ui/room.py, lab/compute.py), shared
with every browser that asks for the same config and cached by it; the page's progress bar shows its place in line,
then the steps. ``compute`` is what a queue worker runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import lab
from lab.compute import Progress
from lab.course import CFG_SCALE
from lab.images import to_uint8
from models.bundled import PROMPTS

KINDS = ("sample", "iterative", "sdedit", "inpaint", "anagram", "hybrid", "colour_hybrid", "one_step")
KIND_NAMES = {"sample": "sampling", "iterative": "iterative denoising", "sdedit": "SDEdit", "inpaint": "inpainting",
              "anagram": "visual anagram", "hybrid": "hybrid image", "colour_hybrid": "colour hybrid", "one_step": "one-step denoising"}  # fmt: skip
SDEDIT_ROW = (1, 3, 5, 7, 10, 20)  # the course's i_start row of 1.7 / 1.7.1 / 1.7.3
POLL_S = 0.2  # a waiting page redraws its bar this often (each redraw lets Streamlit stop it when its user moves on)

# The prompts a page starts with: the course's (free-text backends: DeepFloyd IF), or classes of a class backend
COURSE_PROMPTS = {
    "sampling": ("an oil painting of a snowy mountain village", "a man wearing a hat", "a rocket ship"),
    "cfg": ("a high quality photo",),
    "sdedit": ("a high quality photo",),  # IF: "" is the null prompt, so gamma matters with this one
    "inpaint": ("a high quality photo",),
    "text": ("a rocket ship",),
    "anagram": ("an oil painting of an old man", "an oil painting of people around a campfire",
                "an oil painting of a snowy mountain village"),  # the third: the page's three views
    "hybrid": ("a lithograph of a skull", "a lithograph of waterfalls", "a lithograph of a rocket ship"),  # far, near, middle
    "colour": ("a lithograph of a skull", "an oil painting of people around a campfire"),  # grey, colour
}
CLASS_PICKS = {"sampling": (3, 7, 0), "cfg": (3,), "sdedit": (0,), "inpaint": (0,), "text": (7,), "anagram": (2, 7, 4), "hybrid": (1, 7, 0), "colour": (0, 1)}  # class indices
WHY_PICKS = {  # what the digit backend's defaults show, measured with the bundled classifier (README, "Every page")
    "anagram": "On the digit model the default is 2 ↔ 7 through the flip: the classifier reads both in 16 of 16 seeds, "
               "and a plain 2 flipped reads as 7 in none, so the flip alone does not give it (with three views, 4 "
               "through the rotation: all three read in 7 of 8 seeds).",
    "hybrid": "On the digit model the default is 1 far, 7 near: the classifier reads the 7 as it is and a 1 once blurred "
              "(σ 3) in 15 of 16 seeds; a plain 7 blurred reads as 1 in 1 of 16. At 28 px the far digit is a faint "
              "stroke: the course's 64 px colour pictures teach this better.",
}  # fmt: skip
# (sdedit, inpaint: the class of the first test image, which gamma then sharpens: on a class backend the null class
# would make gamma do nothing)


def why_defaults(page: str, den) -> str | None:
    """What the page's default prompts show on the digit backend and how that was measured (None elsewhere)."""
    return WHY_PICKS.get(page) if tuple(getattr(den, "prompts", ()) or ()) == PROMPTS["mnist"] else None


# On a backend whose prompts are words that name classes (the emoji backend), "a high quality photo" is the null class,
# so the pages where the course uses it (and a page must guide for gamma to matter) start on a name instead
NAMED_PICKS = {"cfg": ("a rocket ship",), "sdedit": ("a castle",), "inpaint": ("a castle",)}


def default_gamma(den) -> float:
    """The CFG scale γ the pages open with on this backend: the course's 7, or the backend's own (den.cfg_scale: the
    emoji model's samples are judged best at 3, 85 % right at 7; parta_emoji.md)."""
    return float(getattr(den, "cfg_scale", CFG_SCALE))


def default_prompts(page: str, den) -> tuple[str, ...]:
    """The prompts `page` (a key of COURSE_PROMPTS) opens with on this backend."""
    classes = tuple(getattr(den, "prompts", ()) or ())
    if getattr(den, "free_text", False):
        return NAMED_PICKS.get(page, COURSE_PROMPTS[page])
    if not classes:
        return COURSE_PROMPTS[page]
    return tuple(classes[k % len(classes)] for k in CLASS_PICKS[page])


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
    image: bytes | None = None  # input image (B, C, H, W) float32 in [-1, 1], as bytes (hashable); B > 1: one_step only
    mask: bytes | None = None  # inpainting mask (H, W) float32, 1 = fill in
    views: tuple[str, ...] = ("identity", "flip")
    kernel_size: int = 33
    sigmas: tuple[float, ...] = (2.0,)
    ts: tuple[int, ...] = ()  # one_step: the timestep of each image (the images are x_t, already noised)

    @staticmethod
    def pack(x: torch.Tensor | np.ndarray | None) -> bytes | None:
        return None if x is None else np.ascontiguousarray(np.asarray(x, dtype=np.float32)).tobytes()


@dataclass(frozen=True)
class Result:
    images: torch.Tensor  # (B, C, H, W) in [-1, 1]
    frames: list  # uint8 images at the backend's resolution, one per step: the first image's trajectory
    frame_labels: list  # "t = 990 -> 960" per frame
    x0_frames: list  # uint8 images: the one-step estimate x0_hat at each step

    @property
    def nbytes(self) -> int:
        """Memory held, for the results cache's bound."""
        return self.images.numel() * self.images.element_size() + sum(f.nbytes for f in self.frames + self.x0_frames)


def sdedit_row(backend: str, device: str, seed: int, x0: torch.Tensor, prompt: str, scale: float | None,
               starts: tuple[int, ...] = SDEDIT_ROW) -> list[Run]:  # fmt: skip
    """1.7's row: SDEdit of x0 from each i_start of starts (the course's SDEDIT_ROW)."""
    return [Run("sdedit", backend, device, seed, (prompt,), scale, i_start=i, image=Run.pack(x0)) for i in starts]


def one_step_run(backend: str, device: str, seed: int, noisy: torch.Tensor, ts, prompt: str = "a high quality photo") -> Run:
    """1.3: the one-step estimate of each noisy image (B, C, H, W) at its own timestep."""
    return Run("one_step", backend, device, seed, (prompt,), None, image=Run.pack(noisy), ts=tuple(int(t) for t in ts))


MASKS = {  # inpainting masks: 1 where new content goes
    "top half": lambda m: m[: m.shape[0] // 2].fill(1), "bottom half": lambda m: m[m.shape[0] // 2 :].fill(1),
    "left half": lambda m: m[:, : m.shape[1] // 2].fill(1), "right half": lambda m: m[:, m.shape[1] // 2 :].fill(1),
    "centre square": lambda m: m[m.shape[0] // 4 : 3 * m.shape[0] // 4, m.shape[1] // 4 : 3 * m.shape[1] // 4].fill(1),
}  # fmt: skip


def preset_mask(name: str, H: int, W: int) -> np.ndarray:
    mask = np.zeros((H, W), np.float32)
    MASKS[name](mask)
    return mask


ONE_STEP_TS = (250, 500, 750)  # the course's t of 1.1 to 1.3
FORWARD_T = 500  # the t slider's start on 1.1 and 1.3
ITERATIVE_I_START = 10  # 1.4's i_start (t = 690)


def run(cfg: Run, bar=None) -> Result:
    """cfg's result (see run_all)."""
    return run_all([cfg], bar)[0]


def run_all(cfgs: list[Run], bar=None) -> list[Result]:
    """The configs' results, computed together by the room's queue (or joined, or from its cache).

    The bar shows how many requests are ahead of this page's, then the steps of its runs. A page that reruns (its
    user moved a control) or closes stops waiting: its requests are released, and dropped if nobody else waits.
    """
    from ui.common import backend
    from ui.room import room

    r = room()
    tickets = [r.queue.submit(cfg, r.job(cfg, backend(cfg.backend, cfg.device))) for cfg in cfgs]
    what = ", ".join(dict.fromkeys(KIND_NAMES[cfg.kind] for cfg in cfgs)) + (f" ({len(set(cfgs))} runs)" if len(set(cfgs)) > 1 else "")
    try:
        while waiting := [t for t in tickets if not t.done()]:
            if bar is not None:
                bar.progress(*status(tickets, what))  # also where Streamlit stops this run when its page reruns
            waiting[0].wait(POLL_S)
        if bar is not None:
            bar.empty()
        return [t.result() for t in tickets]
    finally:
        for t in tickets:
            t.release()


def status(tickets, what: str = "denoising") -> tuple[float, str]:
    """(fraction done, text) of a page's requests: its place in line while none runs, else what runs and its steps."""
    progress = [t.progress() for t in tickets]
    done = sum(p.total if t.done() else p.done for t, p in zip(tickets, progress))
    total = sum(p.total for p in progress)
    if not any(p.done for p in progress):
        ahead = [p for p in (t.position() for t in tickets) if p is not None]
        if ahead and min(ahead) > 0:
            n = min(ahead)
            return 0.0, f"waiting: {n} request{'s' if n > 1 else ''} of other browsers ahead of yours"
    return (done / total if total else 0.0), f"{what}: step {done} of {total}" if total else f"{what}: starting"


def compute(cfg: Run, den, progress: Progress | None = None, run_loop=None) -> Result:
    """Run cfg's lab entry point on den, recording the first image's trajectory; progress counts the steps.

    run_loop(steps) runs the entry point's loop (lab.stepping): lab.batching.LoopBatcher.run on the server, which
    runs it together with other requests' loops; None runs it here with den, as lab does.
    """
    progress = progress or Progress()
    run_loop = run_loop or (lambda steps: lab.run_steps(steps, den))
    C, H, W = den.image_shape
    timesteps = lab.strided_timesteps(den.T, cfg.stride)
    frames, labels, x0s = [], [], []
    progress.total = len(cfg.ts) if cfg.kind == "one_step" else len(timesteps) - cfg.i_start

    def callback(step: dict) -> None:  # the tensors are kept (the loop makes new ones each step), made images at the end
        frames.append(step["x"][:1])
        x0s.append(step["x0_hat"][:1])
        labels.append(f"t = {step['t']} -> {'clean' if step['t_prev'] == lab.CLEAN else step['t_prev']}")
        progress.done += 1

    common = dict(timesteps=timesteps, generator=cfg.seed, callback=callback)
    image = None if cfg.image is None else torch.from_numpy(np.frombuffer(cfg.image, np.float32).reshape(-1, C, H, W).copy())
    with lab.stepping():  # each entry point returns its loop, for run_loop
        if cfg.kind == "sample":
            steps = lab.sample(den, cfg.n, cfg.prompts[0], cfg.scale, **common)
        elif cfg.kind == "iterative":
            x_t = lab.forward(image, timesteps[cfg.i_start], den, generator=cfg.seed)
            fn = lab.iterative_denoise if cfg.scale is None else lab.iterative_denoise_cfg
            kwargs = {} if cfg.scale is None else {"scale": cfg.scale}
            steps = fn(den, x_t, cfg.i_start, cfg.prompts[0], **kwargs, **common)
        elif cfg.kind == "sdedit":
            steps = lab.sdedit(den, image, cfg.i_start, cfg.prompts[0], cfg.scale, **common)
        elif cfg.kind == "inpaint":
            mask = torch.from_numpy(np.frombuffer(cfg.mask, np.float32).reshape(H, W).copy())
            steps = lab.inpaint(den, image, mask, cfg.prompts[0], cfg.scale, **common)
        elif cfg.kind == "anagram":
            steps = lab.visual_anagrams(den, cfg.prompts, cfg.views, cfg.n, cfg.scale, **common)
        elif cfg.kind == "hybrid":
            steps = lab.make_hybrids(den, cfg.prompts, cfg.kernel_size, cfg.sigmas, cfg.n, cfg.scale, **common)
        elif cfg.kind == "colour_hybrid":
            steps = lab.colour_hybrids(den, cfg.prompts, cfg.n, cfg.scale, **common)
        elif cfg.kind == "one_step":  # 1.3: one model call per noisy image, each at its own t
            steps = _chain([lab.one_step_denoise(den, image[i : i + 1], t, cfg.prompts[0]) for i, t in enumerate(cfg.ts)], progress)
        else:
            raise ValueError(f"kind must be one of {KINDS}, got {cfg.kind!r}")
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
