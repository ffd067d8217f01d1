"""The Fall 2026 edition's functions: Part A on a pretrained pixel flow model.

t runs from 0 (noise) to 1 (the clean image): x_t = (1 - t) eps + t x1 (A.1); the model predicts the velocity
v = x1 - eps; one step estimates x1_hat = x_t + (1 - t) v (A.2); Euler's method samples, x_{t+h} = x_t + h v (A.3),
the last step shortened to end exactly at 1; classifier-free guidance is v = v_c + w (v_c - v_u) (A.4), v_u under
"" (w = 0 is the conditional velocity; w is gamma - 1 of the Fall 2024 formula).

Two faces, one loop (lab.sampling over lab.processes.LinearFlow):

- **The course notebook's functions** (``parta_updated.ipynb``), by its names and signatures, on any
  ``predict_velocity(x, t, condition)`` (a model object of lab.flow_model, the course's PixNerd adapter, a toy field):
  ``interpolate``, ``one_step_denoise``, ``velocity_diagnostics``, ``euler_sample``, ``cfg_velocity``, ``edit``,
  ``visual_anagrams``, ``make_hybrids``, and its helpers ``rotate180`` and ``lowpass``. They return what the notebook
  says, always. Where the notebook's ``edit``, ``visual_anagrams`` and ``make_hybrids`` take no null condition, the
  lab's take the notebook's own default as a last keyword, ``null_condition=""`` (the empty prompt, which the model's
  ``predict_velocity`` encodes, as the course's adapter does).
- **The lab's functions on a backend** (a ``Denoiser``), for the pages and the room: prompts as strings, several
  images and prompts in one batched model call per step, generators and callbacks: ``noisy_row``, ``one_step``,
  ``sample_from``, ``sample``, ``edit_image``, ``anagram_images``, ``hybrid_images``. Each one's ``steps``
  (``flow.sample.steps(...)``) returns its loop unrun, for a server that runs many loops as one.

Defaults are the course's: step size 0.02, prompt "a high quality photo", w = 7, the anagram's rotation by 180
degrees, the hybrid's kernel 265 and sigma 16 at 512 px (scaled with the backend's size: ``hybrid_blur``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from lab._checks import check_float, check_image, check_int
from lab.course import DEFAULT_PROMPT, UNCONDITIONAL, pure_noise
from lab.denoiser import Denoiser
from lab.diffusion import as_generator, randn_like
from lab.fall2026 import (  # the edition's constants
    ANAGRAM_VIEWS,
    BLUR_SIGMAS_512,
    CFG_W,
    HYBRID_KERNEL_512,
    HYBRID_SIGMA_512,
    STEP_SIZE,
)
from lab.filters import check_kernel, frequency_bands, gaussian_blur
from lab.guidance import Guide
from lab.processes import LINEAR_FLOW, euler_times
from lab.sampling import Callback, Loop, loop, run_steps, with_steps
from lab.views import get_view

Velocity = Callable[[torch.Tensor, float], torch.Tensor]  # the notebook's velocity(x, t)
PredictVelocity = Callable  # the notebook's predict_velocity(x, t, condition)


# --- the course notebook's functions, by its names and signatures


def interpolate(image: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
    """1.1: x_t = (1 - t) noise + t image, A.1: t = 0 exactly the noise, t = 1 exactly the image (t a number, or one
    per image: (B,))."""
    check_image("image", image)
    if not isinstance(noise, torch.Tensor) or noise.shape != image.shape:
        raise ValueError(
            f"noise must be a tensor of the image's shape {tuple(image.shape)}, got {getattr(noise, 'shape', noise)}"
        )
    if isinstance(t, torch.Tensor) and t.ndim == 1:
        if not t.is_floating_point() or len(t) != image.shape[0] or bool(((t < 0) | (t > 1)).any()):
            raise ValueError(f"t must hold one number in [0, 1] per image ({image.shape[0]}), got {t.tolist()}")
    else:
        t = check_float("t", t, 0, 1)
    return LINEAR_FLOW.noise(image, t, noise)


def one_step_denoise(x: torch.Tensor, t: float, condition, predict_velocity: PredictVelocity) -> torch.Tensor:
    """1.3: x1_hat = x + (1 - t) v(x, t, c), A.2, from one model call."""
    return x + (1 - check_float("t", t, 0, 1)) * predict_velocity(x, t, condition)


@torch.inference_mode()
def velocity_diagnostics(
    x_t: torch.Tensor,
    t: float,
    clean_image: torch.Tensor,
    epsilon: torch.Tensor,
    condition,
    predict_velocity: PredictVelocity,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1.4: (the predicted update (1 - t) v_hat, the true update (1 - t) v_gt = x1 - x_t, both (B, C, H, W); the
    per-pixel RMS error over the channels, (B, H, W)), raw values. epsilon is the noise x_t was made with (v_gt =
    x1 - epsilon: its update is the same x1 - x_t)."""
    v_hat = predict_velocity(x_t, t, condition)
    predicted, true, error = velocity_updates(clean_image, x_t, check_float("t", t, 0, 1), v_hat)
    return predicted, true, error[:, 0]


@torch.inference_mode()
def euler_sample(
    x_start: torch.Tensor, t_start: float, step_size: float, velocity: Velocity
) -> tuple[torch.Tensor, list[tuple[float, torch.Tensor]]]:
    """1.5: Euler's method x_{t+h} = x_t + h velocity(x_t, t) (A.3) from t_start to 1, the last step shortened to end
    exactly there (from 0 at h 0.02: 50 calls of velocity, from 0.5: 25, from 0.93: 4). Returns (the end, the states:
    (t, x) of the start and of every update, the last at t = 1)."""
    states = [(float(t_start), x_start)]
    steps = loop(
        LINEAR_FLOW,
        x_start,
        euler_times(t_start, step_size),
        Guide([torch.zeros(1)]),
        callback=lambda step: states.append((step["t_next"], step["x"])),
    )
    end = run_steps(steps, lambda x, t, _: (velocity(x, t), None))
    return end, states


def cfg_velocity(
    x: torch.Tensor, t: float, condition, w: float, predict_velocity: PredictVelocity, null_condition=""
) -> torch.Tensor:
    """2.1: v = v_c + w (v_c - v_u), A.4, both at the same x and t; v_u under null_condition (the empty prompt). At
    w = 0 exactly the conditional velocity."""
    v_c = predict_velocity(x, t, condition)
    v_u = predict_velocity(x, t, null_condition)
    return v_c + check_float("w", w) * (v_c - v_u)


def edit(
    image: torch.Tensor,
    noise: torch.Tensor,
    t_start: float,
    condition,
    predict_velocity: PredictVelocity,
    w: float = CFG_W,
    step_size: float = STEP_SIZE,
    null_condition="",
) -> torch.Tensor:
    """3.1 / 3.2: the image noised to t_start, interpolate(image, noise, t_start), then Euler with CFG under condition to
    t = 1: the smaller t_start, the more noise and the more the model invents."""
    guided = lambda x, t: cfg_velocity(x, t, condition, w, predict_velocity, null_condition)  # noqa: E731
    return euler_sample(interpolate(image, noise, t_start), t_start, step_size, guided)[0]


def rotate180(x: torch.Tensor) -> torch.Tensor:
    """The notebook's: the image turned by 180 degrees (both spatial axes flipped); its own inverse."""
    return torch.flip(x, (-2, -1))


def lowpass(x: torch.Tensor, sigma: float = HYBRID_SIGMA_512) -> torch.Tensor:
    """The notebook's low pass: a Gaussian blur of kernel 2 round(16.5 W / 64) + 1 and sigma, reflect-padded (as
    torchvision's gaussian_blur): 265 and 16 at 512 px. sigma is given at 512 px and scaled with the width, as the
    kernel is (at 512 px the notebook's exactly; 17 and 1.0 at 32 px)."""
    W = x.shape[-1]
    return gaussian_blur(
        x, 2 * round(16.5 * W / 64) + 1, check_float("sigma", sigma, 0, None, strict_low=True) * W / 512
    )


def visual_anagrams(
    noise: torch.Tensor,
    condition_a,
    condition_b,
    predict_velocity: PredictVelocity,
    w: float = CFG_W,
    step_size: float = STEP_SIZE,
    null_condition="",
) -> torch.Tensor:
    """3.3: from noise at t = 0, Euler on v = (v_a(x) + rotate180(v_b(rotate180(x)))) / 2, each a CFG velocity: an image
    of condition_a that shows condition_b upside down."""

    def velocity(x, t):
        v_a = cfg_velocity(x, t, condition_a, w, predict_velocity, null_condition)
        v_b = rotate180(cfg_velocity(rotate180(x), t, condition_b, w, predict_velocity, null_condition))
        return (v_a + v_b) / 2

    return euler_sample(noise, 0.0, step_size, velocity)[0]


def make_hybrids(
    noise: torch.Tensor,
    condition_a,
    condition_b,
    predict_velocity: PredictVelocity,
    w: float = CFG_W,
    step_size: float = STEP_SIZE,
    null_condition="",
) -> torch.Tensor:
    """3.4: from noise at t = 0, Euler on v = lowpass(v_a) + v_b - lowpass(v_b), each a CFG velocity at the same x and
    t: condition_a seen from afar, condition_b close up."""

    def velocity(x, t):
        v_a = cfg_velocity(x, t, condition_a, w, predict_velocity, null_condition)
        v_b = cfg_velocity(x, t, condition_b, w, predict_velocity, null_condition)
        return lowpass(v_a) + v_b - lowpass(v_b)

    return euler_sample(noise, 0.0, step_size, velocity)[0]


def noise(seed: int, shape: tuple[int, int, int], device="cpu") -> torch.Tensor:
    """The notebook's noise(seed): (1, C, H, W) standard normal from a CPU generator seeded with seed, on device."""
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0, 2**63 - 1))
    return torch.randn((1, *shape), generator=generator).to(device)


# --- what the pages show beside them


def velocity_updates(
    x1: torch.Tensor, x_t: torch.Tensor, t, v_hat: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1.4: (the predicted update (1 - t) v_hat, the true update (1 - t) v_gt = x1 - x_t, the per-pixel RMS error over
    the channels E_t = sqrt(mean_c [(1 - t)(v_hat - v_gt)]^2), (B, 1, H, W)); t a number or one per image."""
    scale = 1 - (t.view(-1, 1, 1, 1) if isinstance(t, torch.Tensor) and t.ndim == 1 else float(t))
    predicted, true = scale * v_hat, x1 - x_t
    return predicted, true, (predicted - true).pow(2).mean(1, keepdim=True).sqrt()


def blur_sweep(x_t: torch.Tensor, t: float, x1: torch.Tensor) -> tuple[torch.Tensor, float, int, float]:
    """1.2's sweep, the notebook's: x_t / t blurred at each sigma of 1, 2, 4, 8, 16 (at 512 px, scaled to the width)
    with kernel 6 sigma + 1 (made odd), the one of least MSE to x1 (images in [-1, 1]) kept: (it, its sigma, its
    kernel, its MSE)."""
    best = None
    for sigma, kernel in sweep_blurs(x_t.shape[-1]):
        blurred = gaussian_blur(x_t / t, kernel, sigma)
        mse = float((blurred - x1).pow(2).mean())
        if best is None or mse < best[3]:
            best = (blurred, sigma, kernel, mse)
    return best


def sweep_blurs(width: int) -> list[tuple[float, int]]:
    """(sigma, kernel) of 1.2's sweep for images `width` px wide: the course's sigmas at 512 px scaled, kernel
    int(6 sigma + 1) made odd (7, 13, 25, 49, 97 at 512 px)."""
    out = []
    for sigma512 in BLUR_SIGMAS_512:
        sigma = sigma512 * width / 512
        kernel = int(6 * sigma + 1)
        out.append((sigma, kernel + 1 - kernel % 2))
    return out


def hybrid_blur(height: int) -> tuple[int, float]:
    """3.4's Gaussian blur for images `height` px high: the course's kernel 265 and sigma 16 at 512 px, scaled (the
    kernel odd, at least 3)."""
    kernel = max(3, round(HYBRID_KERNEL_512 * height / 512) // 2 * 2 + 1)
    return kernel, HYBRID_SIGMA_512 * height / 512


# --- the lab's functions on a backend: batched, prompts as strings, generators and callbacks (the pages, the room)


def noisy_row(image: torch.Tensor, ts, generator=None) -> torch.Tensor:
    """1.1's row: interpolate(image, eps, t) for each t of ts, one eps ~ N(0, I) for all of them (from the generator: an
    int seed, as the notebook's noise(seed), or a torch.Generator); image (1, C, H, W) -> (len(ts), C, H, W)."""
    check_image("image", image)
    if image.shape[0] != 1:
        raise ValueError(f"noisy_row takes one image (1, C, H, W), got {tuple(image.shape)}")
    ts = torch.as_tensor(ts, dtype=torch.float32).flatten()
    eps = randn_like(image, as_generator(generator))
    K = len(ts)
    return interpolate(image.expand(K, -1, -1, -1), eps.expand(K, -1, -1, -1), ts)


def guided_velocity(v_cond: torch.Tensor, v_uncond: torch.Tensor, w: float = CFG_W) -> torch.Tensor:
    """v = v_c + w (v_c - v_u), A.4, of two velocities already made: w = 0 is the conditional velocity."""
    return v_cond + check_float("w", w, 0, None) * (v_cond - v_uncond)


def _check_velocity(denoiser: Denoiser) -> None:
    if denoiser.prediction != "velocity":
        raise ValueError(
            "this is a Fall 2026 (flow) function and this backend predicts noise (Fall 2024, DDPM): use "
            "lab.sample, lab.sdedit ... with it, or pick a flow backend"
        )


def _guide(denoiser: Denoiser, prompts: Sequence[str], w: float | None, **terms) -> Guide:
    """A Guide over the prompts' velocities: none for w None, else A.4 against "" (the Guide's scale gamma = w + 1)."""
    _check_velocity(denoiser)
    rows = denoiser.encode([*prompts] + ([] if w is None else [UNCONDITIONAL]))  # one call: one text-encoder load
    conds = [rows[i : i + 1] for i in range(len(prompts))]
    if w is None:
        return Guide(conds, **terms)
    return Guide(conds, uncond=rows[-1:], scale=check_float("w", w, 0, None) + 1, **terms)


def _run(denoiser: Denoiser, x: torch.Tensor, guide: Guide, t_start: float, step_size: float, callback):
    """Euler's loop over x from t_start (lab.sampling.loop), unrun."""
    check_image("x", x, denoiser.image_shape)
    return loop(LINEAR_FLOW, x, euler_times(t_start, step_size), guide, callback=callback)


@with_steps
def one_step(denoiser: Denoiser, x_t: torch.Tensor, t, prompt: str = DEFAULT_PROMPT) -> torch.Tensor:
    """1.3 on a backend: x1_hat = x_t + (1 - t) v(x_t, t, c), A.2, from one model call (t a number, or one per image)."""
    guide = _guide(denoiser, [prompt], None)
    check_image("x_t", x_t, denoiser.image_shape)
    if not (isinstance(t, torch.Tensor) and t.ndim == 1):
        t = check_float("t", t, 0, 1)
    return Loop(_one_step(x_t, t, guide), 1, LINEAR_FLOW)


@torch.no_grad()
def _one_step(x_t: torch.Tensor, t, guide: Guide):
    """The one model call of 1.3, in the loop's protocol (lab.sampling.denoise_steps)."""
    x_in, c_in = guide.inputs(x_t)
    v, _ = yield x_in, t, c_in
    return LINEAR_FLOW.estimate(x_t, t, guide.combine(v, None)[0])


@with_steps
def sample_from(
    denoiser: Denoiser,
    x_t: torch.Tensor,
    t_start: float,
    prompt: str = DEFAULT_PROMPT,
    w: float | None = None,
    step_size: float = STEP_SIZE,
    callback: Callback | None = None,
) -> torch.Tensor:
    """1.5 on a backend: Euler's method on its velocity under prompt (CFG with w, none for None) from x_t at t_start."""
    return _run(denoiser, x_t, _guide(denoiser, [prompt], w), t_start, step_size, callback)


def seeded_noise(denoiser: Denoiser, seeds: Sequence[int]) -> torch.Tensor:
    """Image i from the notebook's noise(seeds[i]): (len(seeds), C, H, W) in the backend's dtype, on its device."""
    return torch.cat([noise(s, denoiser.image_shape) for s in seeds]).to(denoiser.device, denoiser.dtype)


@with_steps
def sample(
    denoiser: Denoiser,
    n: int = 5,
    prompt: str = DEFAULT_PROMPT,
    w: float | None = CFG_W,
    step_size: float = STEP_SIZE,
    generator=None,
    callback: Callback | None = None,
    seeds: Sequence[int] | None = None,
) -> torch.Tensor:
    """1.6 / 2.1 on a backend: n images from pure noise (t = 0), with CFG at w (None: without); seeds: image i from the
    notebook's noise(seeds[i]) (the pages: 180, 181, ...), else all n from the generator."""
    x = pure_noise(denoiser, n, generator) if seeds is None else seeded_noise(denoiser, seeds)
    return _run(denoiser, x, _guide(denoiser, [prompt], w), 0.0, step_size, callback)


@with_steps
def edit_image(
    denoiser: Denoiser,
    image: torch.Tensor,
    t_start: float,
    prompt: str = DEFAULT_PROMPT,
    w: float | None = CFG_W,
    step_size: float = STEP_SIZE,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """3.1 / 3.2 on a backend: the image noised to t_start (one fresh eps from the generator: an int seed is the
    notebook's noise(seed)), then Euler with CFG under prompt to t = 1."""
    guide = _guide(denoiser, [prompt], w)
    check_image("image", image, denoiser.image_shape)
    x_t = interpolate(image, randn_like(image, as_generator(generator)), check_float("t_start", t_start, 0, 1))
    return _run(denoiser, x_t, guide, t_start, step_size, callback)


@with_steps
def anagram_images(
    denoiser: Denoiser,
    prompts: Sequence[str],
    views: Sequence[str] = ANAGRAM_VIEWS,
    n: int = 1,
    w: float | None = CFG_W,
    step_size: float = STEP_SIZE,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """3.3 on a backend: v = mean_k V_k^-1(v_k(V_k(x_t))), each a CFG velocity, every view's velocity in one model call;
    the course's: (v_1 + R^-1 v_2(R x_t)) / 2, R the rotation by 180 degrees. Images that show prompts[k] through
    views[k]."""
    if len(prompts) != len(views) or len(prompts) < 2:
        raise ValueError(
            f"prompts and views must pair up, two or more of each; got {len(prompts)} prompts, {len(views)} views"
        )
    C, H, W = denoiser.image_shape
    guide = _guide(denoiser, prompts, w, views=[get_view(v, H, W) for v in views], reduction="mean")
    return _run(denoiser, pure_noise(denoiser, n, generator), guide, 0.0, step_size, callback)


@with_steps
def hybrid_images(
    denoiser: Denoiser,
    prompts: Sequence[str],
    kernel_size: int | None = None,
    sigmas: Sequence[float] | None = None,
    n: int = 1,
    w: float | None = CFG_W,
    step_size: float = STEP_SIZE,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """3.4 on a backend: v = lowpass(v_1) + highpass(v_2), highpass = v_2 - lowpass(v_2), each a CFG velocity: prompts
    from far (low frequencies) to near (high); three prompts and two sigmas (decreasing): low / middle / high. The
    blur defaults to the course's, scaled to the backend's size (hybrid_blur)."""
    C, H, W = denoiser.image_shape
    default_kernel, default_sigma = hybrid_blur(H)
    kernel_size = default_kernel if kernel_size is None else kernel_size
    sigmas = (default_sigma,) if sigmas is None else tuple(sigmas)
    if len(prompts) < 2 or len(sigmas) != len(prompts) - 1:
        raise ValueError(
            f"hybrid_images needs len(prompts) - 1 sigmas and at least two prompts; got {len(prompts)} prompts, sigmas {sigmas}"
        )
    for s in sigmas:
        check_kernel(kernel_size, s, H, W)
    guide = _guide(denoiser, prompts, w, bands=frequency_bands(kernel_size, sigmas), reduction="sum")
    return _run(denoiser, pure_noise(denoiser, n, generator), guide, 0.0, step_size, callback)
