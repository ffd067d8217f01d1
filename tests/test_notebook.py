"""The course notebook's Part A (Fall 2026, ``parta_updated.ipynb``) on the lab's models, offline.

The first half of this module is a student's solution written from the notebook's table of functions alone: it
imports nothing of the lab's implementation, only its model objects (lab.flow_model.FlowModel). The notebook's own
check cells then run, as the notebook writes them, on the lab's names (lab.flow) and on the student's, on toy
fields and on every bundled flow backend, a run trained by the lab and PixNerd's stand-in; and the student's
results agree with the lab's own functions on the same noise.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lab.flow_model import FlowModel

pytestmark = pytest.mark.usefixtures("one_thread")

# --- a student's solution, from the notebook's table (nothing of the lab's implementation)


def interpolate(image, noise, t):
    return (1 - t) * noise + t * image


def one_step_denoise(x, t, condition, predict_velocity):
    return x + (1 - t) * predict_velocity(x, t, condition)


@torch.inference_mode()
def velocity_diagnostics(x_t, t, clean_image, epsilon, condition, predict_velocity):
    predicted = (1 - t) * predict_velocity(x_t, t, condition)
    true = (1 - t) * (clean_image - epsilon)
    return predicted, true, (predicted - true).pow(2).mean(1).sqrt()


@torch.inference_mode()
def euler_sample(x_start, t_start, step_size, velocity):
    n = math.ceil(round((1 - t_start) / step_size, 9))
    x, states = x_start, [(t_start, x_start)]
    for k in range(n):
        t = t_start + k * step_size
        t_next = 1.0 if k == n - 1 else t_start + (k + 1) * step_size
        x = x + (t_next - t) * velocity(x, t)
        states.append((t_next, x))
    return x, states


def cfg_velocity(x, t, condition, w, predict_velocity, null_condition=""):
    v_c = predict_velocity(x, t, condition)
    return v_c + w * (v_c - predict_velocity(x, t, null_condition))


def edit(image, noise, t_start, condition, predict_velocity, w=7, step_size=0.02):
    return euler_sample(
        interpolate(image, noise, t_start),
        t_start,
        step_size,
        lambda x, t: cfg_velocity(x, t, condition, w, predict_velocity),
    )[0]


def rotate180(x):
    return torch.flip(x, (-2, -1))


def gaussian_blur(x, kernel, sigma):  # torchvision's, in plain torch (no torchvision on a CPU install)
    half = (kernel - 1) * 0.5
    k = torch.exp(-0.5 * (torch.linspace(-half, half, kernel) / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    C, pad = x.shape[1], kernel // 2
    x = F.pad(x, [pad] * 4, mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(C, 1, 1, kernel), groups=C)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(C, 1, kernel, 1), groups=C)


def lowpass(x, sigma=16.0):  # the notebook's, with the image size changed: sigma 16 at 512 px
    W = x.shape[-1]
    return gaussian_blur(x, 2 * round(16.5 * W / 64) + 1, sigma * W / 512)


def visual_anagrams(noise, condition_a, condition_b, predict_velocity, w=7, step_size=0.02):
    def v(x, t):
        a = cfg_velocity(x, t, condition_a, w, predict_velocity)
        b = rotate180(cfg_velocity(rotate180(x), t, condition_b, w, predict_velocity))
        return (a + b) / 2

    return euler_sample(noise, 0, step_size, v)[0]


def make_hybrids(noise, condition_a, condition_b, predict_velocity, w=7, step_size=0.02):
    def v(x, t):
        a = cfg_velocity(x, t, condition_a, w, predict_velocity)
        b = cfg_velocity(x, t, condition_b, w, predict_velocity)
        return lowpass(a) + b - lowpass(b)

    return euler_sample(noise, 0, step_size, v)[0]


STUDENT = dict(
    interpolate=interpolate,
    one_step_denoise=one_step_denoise,
    velocity_diagnostics=velocity_diagnostics,
    euler_sample=euler_sample,
    cfg_velocity=cfg_velocity,
    edit=edit,
    rotate180=rotate180,
    visual_anagrams=visual_anagrams,
    make_hybrids=make_hybrids,
)


def lab_names() -> dict:
    import lab.flow

    return {name: getattr(lab.flow, name) for name in STUDENT}


# --- the notebook's check cells, as it writes them (flow-005, flow-009, flow-011, flow-015, flow-023)


def notebook_checks(fn: dict, model: FlowModel, image: torch.Tensor, SEED: int = 180, H: float = 0.02) -> None:
    predict_velocity, device = model.predict_velocity, model.device
    condition, null_condition = model.encode("a high quality photo"), model.encode("")
    epsilon = model.noise(SEED)
    noisy = {t: fn["interpolate"](image, epsilon, t) for t in [0.25, 0.50, 0.75]}
    assert torch.equal(fn["interpolate"](image, epsilon, 0), epsilon)
    assert torch.equal(fn["interpolate"](image, epsilon, 1), image)

    v = predict_velocity(noisy[0.5], 0.5, condition)
    assert v.shape == image.shape and v.dtype == image.dtype and v.device == image.device
    assert torch.isfinite(v).all()
    one_step = {t: fn["one_step_denoise"](x, t, condition, predict_velocity) for t, x in noisy.items()}
    assert all(o.shape == image.shape for o in one_step.values())

    for t in (0.25, 0.5, 0.75):
        predicted, target, error = fn["velocity_diagnostics"](noisy[t], t, image, epsilon, condition, predict_velocity)
        assert predicted.shape == target.shape == image.shape and error.shape == (image.shape[0], *image.shape[-2:])

    calls = []

    def constant_v(x, t):
        calls.append(t)
        return torch.ones_like(x)

    toy = torch.zeros(1, 3, 4, 4, device=device)
    for start, step, expected in [(0, 0.02, 50), (0.5, 0.02, 25), (0.93, 0.02, 4)]:
        calls.clear()
        end, states = fn["euler_sample"](toy, start, step, constant_v)
        assert len(calls) == expected and states[-1][0] == 1
        assert torch.allclose(end, torch.full_like(toy, 1 - start), atol=1e-6)

    x = model.noise(SEED)
    assert torch.equal(
        fn["cfg_velocity"](x, 0.5, condition, 0, predict_velocity, null_condition), predict_velocity(x, 0.5, condition)
    )
    assert torch.equal(fn["rotate180"](fn["rotate180"](image)), image)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Every bundled flow backend, a class flow run the lab trained (a few steps: its interface, not its pictures)."""
    from lab.train import train
    from lab.train_config import PART_A_FLOW_BACKEND, course_config

    run = tmp_path_factory.mktemp("run")
    config = course_config(
        "flow", "class", D=4, batch_size=32, epochs=1, max_steps=3, sample_every=0, **PART_A_FLOW_BACKEND
    )
    list(train(config, run))
    return {
        "MNIST digits (flow)": FlowModel("MNIST digits (flow)"),
        "Emoji (colour, flow)": FlowModel("Emoji (colour, flow)"),
        "a trained run": FlowModel(run),
    }


@pytest.mark.parametrize("name", ["MNIST digits (flow)", "Emoji (colour, flow)", "a trained run"])
@pytest.mark.parametrize("names", ["lab", "student"])
def test_the_notebooks_checks_hold_on_every_flow_backend_through_the_labs_names_and_a_students(models, name, names):
    model = models[name]
    image = model.preprocess(
        model.to_pil(torch.rand(1, *model.image_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    )
    notebook_checks(lab_names() if names == "lab" else STUDENT, model, image.to(model.device))


def mse(x: torch.Tensor, x1: torch.Tensor) -> float:
    """Mean squared error of x (clamped to [-1, 1]) against x1."""
    return float((x.clamp(-1, 1) - x1).pow(2).mean())


def test_the_notebooks_checks_hold_on_toy_fields():
    """The cells' own fields and a model-free predict_velocity: "" is the null condition, as the course's adapter reads it."""
    field = lambda x, t, c: torch.full_like(x, 0.3) if c == "" else x * t + 1  # noqa: E731
    fn = lab_names()
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(fn["cfg_velocity"](x, 0.5, "a cat", 0, field), field(x, 0.5, "a cat"))
    for names in (fn, STUDENT):
        end, states = names["euler_sample"](torch.zeros(1, 3, 4, 4), 0.93, 0.02, lambda x, t: torch.ones_like(x))
        assert [round(t, 9) for t, _ in states] == [0.93, 0.95, 0.97, 0.99, 1.0] and states[-1][0] == 1


@pytest.mark.parametrize("name", ["MNIST digits (flow)", "Emoji (colour, flow)"])
def test_a_students_solution_agrees_with_the_labs_functions_on_the_same_noise(models, name):
    import lab.flow as flow

    model = models[name]
    den, pv = model.backend, model.predict_velocity
    digits = model.image_shape[0] == 1
    a, b = ("3", "7") if digits else ("a lithograph of a skull", "a lithograph of a waterfall")
    ca, cb = model.encode(a), model.encode(b)
    image = (model.noise(1) * 0.3).clamp(-1, 1)
    h = 0.1  # ten steps: the same loop as 0.02's, quicker
    close = lambda p, q: torch.allclose(p, q, atol=2e-4)  # noqa: E731  (batched calls and the Guide's A.4 round otherwise)

    ours = flow.edit(image, model.noise(180), 0.5, ca, pv, w=7, step_size=h)
    assert close(edit(image, model.noise(180), 0.5, ca, pv, w=7, step_size=h), ours)
    assert close(
        flow.edit_image(den, image, 0.5, a, 7, h, generator=180), ours
    )  # the page's function, on one batched call

    ours = flow.visual_anagrams(model.noise(181), ca, cb, pv, w=7, step_size=h)
    assert close(visual_anagrams(model.noise(181), ca, cb, pv, w=7, step_size=h), ours)
    assert close(flow.anagram_images(den, [a, b], w=7, step_size=h, generator=181), ours)

    ours = flow.make_hybrids(model.noise(182), ca, cb, pv, w=7, step_size=h)
    assert close(make_hybrids(model.noise(182), ca, cb, pv, w=7, step_size=h), ours)
    kernel, sigma = flow.hybrid_blur(model.image_shape[1])
    assert close(flow.hybrid_images(den, [a, b], kernel, (sigma,), w=7, step_size=h, generator=182), ours)

    x = model.noise(183)
    assert close(one_step_denoise(x, 0.25, ca, pv), flow.one_step_denoise(x, 0.25, ca, pv))
    assert close(flow.one_step(den, x, 0.25, a), flow.one_step_denoise(x, 0.25, ca, pv))
    samples = torch.cat(
        [euler_sample(model.noise(180 + i), 0, h, lambda x, t: cfg_velocity(x, t, ca, 7, pv))[0] for i in range(2)]
    )
    assert close(flow.sample(den, 2, a, 7, h, seeds=[180, 181]), samples)  # 1.6 / 2.1's sample i from noise(180 + i)


def test_the_model_object_reads_images_and_says_what_is_wrong(tmp_path):
    model = FlowModel("Emoji (colour, flow)")
    from PIL import Image

    Image.new("RGB", (90, 60), (255, 0, 0)).save(tmp_path / "red.png")
    x = model.load_input(tmp_path / "red.png")
    assert x.shape == (1, 3, 32, 32) and x.dtype == torch.float32 and torch.allclose(x[0, 0], torch.ones(32, 32))
    assert model.to_pil(x).size == (32, 32) and model.to_pil(x).getpixel((0, 0)) == (255, 0, 0)
    assert torch.equal(model.noise(180), torch.randn((1, 3, 32, 32), generator=torch.Generator().manual_seed(180)))
    with pytest.raises(ValueError, match="Set the image path"):
        model.load_input("  ")
    with pytest.raises(FileNotFoundError, match="Image not found"):
        model.load_input(tmp_path / "missing.png")
    with pytest.raises(ValueError, match=r"expected a state \(B, 3, 32, 32\)"):
        model.predict_velocity(torch.zeros(1, 3, 64, 64), 0.5, "")
    with pytest.raises(ValueError, match=r"flow time must be in \[0, 1\]"):
        model.predict_velocity(torch.zeros(1, 3, 32, 32), 1.5, "")
    with pytest.raises(ValueError, match="predicts noise"):
        FlowModel("MNIST digits")


@pytest.mark.parametrize("name", ["MNIST digits (flow)", "Emoji (colour, flow)"])
def test_the_model_beats_the_best_blur_of_the_sweep_on_images_it_knows_at_the_pages_defaults(name):
    """1.5's lesson, on every bundled flow backend at its pages' defaults (t = 0.5, h = 0.02, "a high quality photo", no
    CFG), over held-out images (the colour models': renderings of their names they did not train on) and seeds: one-step
    and Euler both land nearer the image than the best blur of the course's sweep (MSE, images in [-1, 1])."""
    import lab.fall2026 as fall2026
    import lab.flow as flow
    from lab.data import test_images
    from models.bundled import FLOW_BACKENDS, load_backend

    den = load_backend(name)
    images = test_images(FLOW_BACKENDS[name][1], den.image_shape)
    for i in range(4):
        x1 = images[i : i + 1]
        for seed in (180, 181):
            x_t = flow.noisy_row(x1, [fall2026.EULER_T], seed)
            blur = mse(flow.blur_sweep(x_t, fall2026.EULER_T, x1)[0], x1)
            one_step, euler = (
                mse(flow.one_step(den, x_t, fall2026.EULER_T), x1),
                mse(flow.sample_from(den, x_t, fall2026.EULER_T), x1),
            )
            assert one_step < blur and euler < blur, (name, i, seed, one_step, euler, blur)
