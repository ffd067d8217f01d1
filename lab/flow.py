"""The Fall 2026 edition's functions, by the course's names: Part A on a pretrained pixel flow model.

t runs from 0 (noise) to 1 (the clean image): x_t = (1 - t) eps + t x1 (A.1); the model predicts the velocity
v = x1 - eps; one step estimates x1_hat = x_t + (1 - t) v (A.2); Euler's method samples, x_{t+h} = x_t + h v (A.3),
the last step shortened to end exactly at 1; classifier-free guidance is v = v_c + w (v_c - v_u) (A.4), v_u under
"" (w = 0 is the conditional velocity; w is gamma - 1 of the Fall 2024 formula). Every function here that samples runs
the one loop of both editions (lab.sampling) over the linear flow process (lab.processes.LinearFlow): the views of
the anagrams, the frequency bands of the hybrids and CFG combine velocities exactly as they combine noise estimates.
Under ``lab.stepping()`` each returns its loop unrun, as the Fall 2024 functions do.

Defaults are the course's: step size 0.02, prompt "a high quality photo", w = 7, the anagram's rotation by 180
degrees, the hybrid's kernel 265 and sigma 16 at 512 px (scaled with the backend's size: ``hybrid_blur``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from lab._checks import check_float, check_image
from lab.course import DEFAULT_PROMPT, UNCONDITIONAL, as_generator, pure_noise
from lab.denoiser import Denoiser
from lab.diffusion import randn_like
from lab.filters import check_kernel, frequency_bands
from lab.guidance import Guide
from lab.processes import LINEAR_FLOW, euler_times
from lab.sampling import Callback, loop, run_steps, run_unless_stepping
from lab.views import get_view

STEP_SIZE = 0.02  # h of 1.5 and after: 50 Euler updates from noise, 25 from t = 0.5
CFG_W = 7.0  # w of 2.1 and after
NOISY_TS = (0.25, 0.5, 0.75)  # t of 1.1 to 1.4
EULER_T = 0.5  # 1.5 starts from the t = 0.5 input
EDIT_STARTS = (0.02, 0.04, 0.06, 0.10, 0.14, 0.25, 0.5)  # 3.1's start times
ANAGRAM_VIEWS = ("identity", "rotate_180")  # 3.3: R = rotation by 180 degrees (both axes)
HYBRID_KERNEL_512, HYBRID_SIGMA_512 = 265, 16.0  # 3.4's blur at PixNerd's 512 px


def interpolate(image: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
    """x_t = (1 - t) noise + t image, A.1: t = 0 the noise, t = 1 the image (t a number, or one per image: (B,))."""
    check_image("image", image)
    if not isinstance(noise, torch.Tensor) or noise.shape != image.shape:
        raise ValueError(f"noise must be a tensor of the image's shape {tuple(image.shape)}, got {getattr(noise, 'shape', noise)}")
    if isinstance(t, torch.Tensor) and t.ndim == 1:
        if not t.is_floating_point() or len(t) != image.shape[0] or bool(((t < 0) | (t > 1)).any()):
            raise ValueError(f"t must hold one number in [0, 1] per image ({image.shape[0]}), got {t.tolist()}")
    else:
        t = check_float("t", t, 0, 1)
    return LINEAR_FLOW.noise(image, t, noise)


def noisy_row(image: torch.Tensor, ts, generator=None) -> torch.Tensor:
    """1.1's row: interpolate(image, eps, t) for each t of ts, one eps ~ N(0, I) for all of them (from the generator: an
    int seed or a torch.Generator); image (1, C, H, W) -> (len(ts), C, H, W)."""
    check_image("image", image)
    if image.shape[0] != 1:
        raise ValueError(f"noisy_row takes one image (1, C, H, W), got {tuple(image.shape)}")
    ts = torch.as_tensor(ts, dtype=torch.float32).flatten()
    eps = randn_like(image, as_generator(generator))
    K = len(ts)
    return interpolate(image.expand(K, -1, -1, -1), eps.expand(K, -1, -1, -1), ts)


def cfg_velocity(v_cond: torch.Tensor, v_uncond: torch.Tensor, w: float = CFG_W) -> torch.Tensor:
    """v = v_c + w (v_c - v_u), A.4: w = 0 is the conditional velocity."""
    return v_cond + check_float("w", w, 0, None) * (v_cond - v_uncond)


def velocity_updates(x1: torch.Tensor, x_t: torch.Tensor, t, v_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1.4: (the predicted update (1 - t) v_hat, the true update (1 - t) v_gt = x1 - x_t, the per-pixel RMS error over
    the channels E_t = sqrt(mean_c [(1 - t)(v_hat - v_gt)]^2), (B, 1, H, W)); t a number or one per image."""
    scale = 1 - (t.view(-1, 1, 1, 1) if isinstance(t, torch.Tensor) and t.ndim == 1 else float(t))
    predicted, true = scale * v_hat, x1 - x_t
    return predicted, true, (predicted - true).pow(2).mean(1, keepdim=True).sqrt()


def hybrid_blur(height: int) -> tuple[int, float]:
    """3.4's Gaussian blur for images `height` px high: the course's kernel 265 and sigma 16 at 512 px, scaled (the
    kernel odd, at least 3)."""
    kernel = max(3, round(HYBRID_KERNEL_512 * height / 512) // 2 * 2 + 1)
    return kernel, HYBRID_SIGMA_512 * height / 512


def _check_velocity(denoiser: Denoiser) -> None:
    if denoiser.prediction != "velocity":
        raise ValueError("this is a Fall 2026 (flow) function and this backend predicts noise (Fall 2024, DDPM): use "
                         "lab.sample, lab.sdedit ... with it, or pick a flow backend")  # fmt: skip


def _guide(denoiser: Denoiser, prompts: Sequence[str], w: float | None, **terms) -> Guide:
    """A Guide over the prompts' velocities: none for w None, else A.4 against "" (the Guide's scale gamma = w + 1)."""
    _check_velocity(denoiser)
    rows = denoiser.encode([*prompts] + ([] if w is None else [UNCONDITIONAL]))  # one call: one text-encoder load
    conds = [rows[i : i + 1] for i in range(len(prompts))]
    if w is None:
        return Guide(conds, **terms)
    return Guide(conds, uncond=rows[-1:], scale=check_float("w", w, 0, None) + 1, **terms)


def _run(denoiser: Denoiser, x: torch.Tensor, guide: Guide, t_start: float, step_size: float, callback) -> torch.Tensor:
    check_image("x", x, denoiser.image_shape)
    steps = loop(LINEAR_FLOW, x, euler_times(t_start, step_size), guide, callback=callback)
    return run_unless_stepping(steps, denoiser)


def one_step_denoise(denoiser: Denoiser, x_t: torch.Tensor, t, prompt: str = DEFAULT_PROMPT) -> torch.Tensor:
    """1.3: x1_hat = x_t + (1 - t) v(x_t, t, c), A.2, from one model call (t a number, or one per image: (B,))."""
    guide = _guide(denoiser, [prompt], None)
    check_image("x_t", x_t, denoiser.image_shape)
    if not (isinstance(t, torch.Tensor) and t.ndim == 1):
        t = check_float("t", t, 0, 1)
    return run_unless_stepping(_one_step(x_t, t, guide), denoiser)


@torch.no_grad()
def _one_step(x_t: torch.Tensor, t, guide: Guide):
    """The one model call of 1.3, in the loop's protocol (lab.sampling.denoise_steps)."""
    x_in, c_in = guide.inputs(x_t)
    v, _ = yield x_in, t, c_in
    return LINEAR_FLOW.estimate(x_t, t, guide.combine(v, None)[0])


def euler_sample(x_start: torch.Tensor, t_start: float, step_size: float, velocity: Callable, callback: Callback | None = None):
    """1.5: Euler's method x_{t+h} = x_t + h velocity(x_t, t) (A.3) from t_start to 1, the last step shortened to end
    exactly there; returns (the end, the states: x_start, then the x of each update). velocity: any callable of (x, t),
    t a number (the course's signature; a backend under a prompt is ``sample_from``'s)."""
    states = [x_start]

    def keep(step: dict) -> None:
        states.append(step["x"])
        if callback is not None:
            callback(step)

    steps = loop(LINEAR_FLOW, x_start, euler_times(t_start, step_size), Guide([torch.zeros(1)]), callback=keep)
    end = run_steps(steps, lambda x, t, _: (velocity(x, t), None))
    return end, states


def sample_from(denoiser: Denoiser, x_t: torch.Tensor, t_start: float, prompt: str = DEFAULT_PROMPT, w: float | None = None,
                step_size: float = STEP_SIZE, callback: Callback | None = None) -> torch.Tensor:  # fmt: skip
    """1.5: Euler's method on the backend's velocity under prompt (CFG with w, none for None) from x_t at t_start."""
    return _run(denoiser, x_t, _guide(denoiser, [prompt], w), t_start, step_size, callback)


def sample(denoiser: Denoiser, n: int = 5, prompt: str = DEFAULT_PROMPT, w: float | None = CFG_W, step_size: float = STEP_SIZE,
           generator=None, callback: Callback | None = None) -> torch.Tensor:  # fmt: skip
    """1.6 / 2.1: n images from pure noise (t = 0), with CFG at w (None: without)."""
    x = pure_noise(denoiser, n, generator)
    return _run(denoiser, x, _guide(denoiser, [prompt], w), 0.0, step_size, callback)


def edit(denoiser: Denoiser, image: torch.Tensor, t_start: float, prompt: str = DEFAULT_PROMPT, w: float | None = CFG_W,
         step_size: float = STEP_SIZE, generator=None, callback: Callback | None = None) -> torch.Tensor:  # fmt: skip
    """3.1 / 3.2: the image noised to t_start (interpolate, one fresh eps), then Euler with CFG under prompt to t = 1:
    the smaller t_start, the more noise and the more the model invents."""
    guide = _guide(denoiser, [prompt], w)
    check_image("image", image, denoiser.image_shape)
    x_t = interpolate(image, randn_like(image, as_generator(generator)), check_float("t_start", t_start, 0, 1))
    return _run(denoiser, x_t, guide, t_start, step_size, callback)


def visual_anagrams(denoiser: Denoiser, prompts: Sequence[str], views: Sequence[str] = ANAGRAM_VIEWS, n: int = 1,
                    w: float | None = CFG_W, step_size: float = STEP_SIZE, generator=None,
                    callback: Callback | None = None) -> torch.Tensor:  # fmt: skip
    """3.3: v = mean_k V_k^-1(v_k(V_k(x_t))), each a CFG velocity; the course's: (v_1 + R^-1 v_2(R x_t)) / 2, R the
    rotation by 180 degrees. An image that shows prompts[k] through views[k]."""
    if len(prompts) != len(views) or len(prompts) < 2:
        raise ValueError(f"prompts and views must pair up, two or more of each; got {len(prompts)} prompts, {len(views)} views")
    C, H, W = denoiser.image_shape
    guide = _guide(denoiser, prompts, w, views=[get_view(v, H, W) for v in views], reduction="mean")
    return _run(denoiser, pure_noise(denoiser, n, generator), guide, 0.0, step_size, callback)


def make_hybrids(denoiser: Denoiser, prompts: Sequence[str], kernel_size: int | None = None, sigmas: Sequence[float] | None = None,
                 n: int = 1, w: float | None = CFG_W, step_size: float = STEP_SIZE, generator=None,
                 callback: Callback | None = None) -> torch.Tensor:  # fmt: skip
    """3.4: v = lowpass(v_1) + highpass(v_2), highpass = v_2 - lowpass(v_2), each a CFG velocity: prompts from far
    (low frequencies) to near (high); three prompts and two sigmas (decreasing): low / middle / high. The blur defaults
    to the course's, scaled to the backend's size (hybrid_blur)."""
    C, H, W = denoiser.image_shape
    default_kernel, default_sigma = hybrid_blur(H)
    kernel_size = default_kernel if kernel_size is None else kernel_size
    sigmas = (default_sigma,) if sigmas is None else tuple(sigmas)
    if len(prompts) < 2 or len(sigmas) != len(prompts) - 1:
        raise ValueError(f"make_hybrids needs len(prompts) - 1 sigmas and at least two prompts; got {len(prompts)} prompts, sigmas {sigmas}")
    for s in sigmas:
        check_kernel(kernel_size, s, H, W)
    guide = _guide(denoiser, prompts, w, bands=frequency_bands(kernel_size, sigmas), reduction="sum")
    return _run(denoiser, pure_noise(denoiser, n, generator), guide, 0.0, step_size, callback)
