"""The Fall 2026 edition's Part A: the linear flow process in the one loop, the course's staff checks, and the Euler
step against diffusers' FlowMatchEulerDiscreteScheduler."""

import pytest
import torch

import lab
import lab.fall2026 as fall2026
import lab.flow as flow
from lab.guidance import Guide
from lab.processes import euler_times
from models.backend import Denoiser


class ToyFlow(Denoiser):
    """The exact velocity for data that is one template image per class: v(x_t, t) = (x1 - x_t) / (1 - t), x1 the
    class's template (the mean template for "" and the null prompt), plus a small position-dependent wobble so that no
    view is a symmetry of it. Prompts "0".."K-1"."""

    prediction = "velocity"
    row_timesteps = True

    def __init__(self, shape=(3, 16, 16), classes=4, wobble=0.0):
        g = torch.Generator().manual_seed(0)
        templates = torch.rand(classes, *shape, generator=g) * 2 - 1
        self.templates = torch.cat([templates, templates.mean(0, keepdim=True)])  # (classes + 1, C, H, W)
        self.position = torch.randn(1, *shape, generator=g) * wobble
        self.image_shape, self.classes = shape, classes
        self.device, self.dtype, self.clip_x0 = torch.device("cpu"), torch.float32, None
        self.calls: list[tuple[int, float]] = []

    def __call__(self, x_t, t, cond):
        self.calls.append((x_t.shape[0], t))
        t = t.view(-1, 1, 1, 1) if isinstance(t, torch.Tensor) else t
        return (self.templates[cond] - x_t) / (1 - t) + self.position, None

    def encode(self, prompts):
        index = {"": self.classes, "a high quality photo": self.classes} | {str(k): k for k in range(self.classes)}
        return torch.tensor([index[p] for p in prompts])


def test_interpolation_is_the_noise_at_0_and_the_image_at_1():
    g = torch.Generator().manual_seed(0)
    image, noise = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, torch.randn(2, 3, 8, 8, generator=g)
    assert torch.equal(flow.interpolate(image, noise, 0.0), noise)
    assert torch.equal(flow.interpolate(image, noise, 1.0), image)
    assert torch.allclose(flow.interpolate(image, noise, 0.25), 0.75 * noise + 0.25 * image)
    per_image = flow.interpolate(image, noise, torch.tensor([0.0, 1.0]))
    assert torch.equal(per_image[0], noise[0]) and torch.equal(per_image[1], image[1])
    row = flow.noisy_row(image[:1], fall2026.NOISY_TS, 3)  # one eps for every t: (x_t - t x1) / (1 - t) is the same eps
    eps = (row - torch.tensor(fall2026.NOISY_TS).view(-1, 1, 1, 1) * image[:1]) / (
        1 - torch.tensor(fall2026.NOISY_TS).view(-1, 1, 1, 1)
    )
    assert torch.allclose(eps[0], eps[1], atol=1e-5) and torch.allclose(eps[0], eps[2], atol=1e-5)
    with pytest.raises(ValueError, match=r"t must be a finite number >= 0 and <= 1"):
        flow.interpolate(image, noise, 1.5)


def test_euler_takes_50_updates_from_noise_and_25_from_the_halfway_input_at_the_courses_step():
    assert len(euler_times(0.0, 0.02)) == 50 and len(euler_times(0.5, 0.02)) == 25
    calls = []
    end, states = flow.euler_sample(
        torch.zeros(1, 1, 4, 4), 0.0, 0.02, lambda x, t: calls.append(t) or torch.ones_like(x)
    )
    assert len(calls) == 50 and len(states) == 51 and calls[0] == 0.0 and calls[-1] == pytest.approx(0.98)
    assert states[0] == (0.0, states[0][1]) and states[-1][0] == 1 and torch.equal(states[-1][1], end)  # (t, x) pairs
    toy = ToyFlow()
    flow.sample(toy, n=2, prompt="1", w=None)
    assert len(toy.calls) == 50


def test_a_start_at_093_shortens_the_last_of_four_steps_and_ends_exactly_at_1():
    times = euler_times(0.93, 0.02)
    assert times == pytest.approx([0.93, 0.95, 0.97, 0.99])
    calls = []
    _, states = flow.euler_sample(
        torch.zeros(1, 1, 2, 2), 0.93, 0.02, lambda x, t: calls.append(t) or torch.ones_like(x)
    )
    assert len(calls) == 4 and states[-1][0] == 1.0  # the last step goes to 1 exactly
    assert states[-1][0] - states[-2][0] == pytest.approx(0.01)  # shortened: 0.01, not 0.02


@pytest.mark.parametrize("t_start, h", [(0.0, 0.02), (0.5, 0.02), (0.93, 0.02), (0.1, 0.3)])
def test_euler_on_a_constant_field_lands_on_the_analytic_end_point(t_start, h):
    x0, v = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1)), torch.full((2, 3, 4, 4), 0.7)
    end, _ = flow.euler_sample(x0, t_start, h, lambda x, t: v)
    assert torch.allclose(end, x0 + (1 - t_start) * v, atol=1e-6)


def test_cfg_with_w_0_equals_the_conditional_velocity():
    g = torch.Generator().manual_seed(2)
    v_c, v_u = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    assert torch.equal(flow.guided_velocity(v_c, v_u, 0.0), v_c)
    assert torch.allclose(flow.guided_velocity(v_c, v_u, 7.0), v_c + 7 * (v_c - v_u))
    field = lambda x, t, c: v_u if c == "" else v_c + x * t  # noqa: E731  (the notebook's interface: a condition, "" the null one)
    x = torch.randn(2, 3, 4, 4, generator=g)
    assert torch.equal(flow.cfg_velocity(x, 0.5, "a cat", 0, field), field(x, 0.5, "a cat"))
    assert torch.allclose(flow.cfg_velocity(x, 0.5, "a cat", 7, field), 8 * field(x, 0.5, "a cat") - 7 * v_u)
    toy = ToyFlow(wobble=0.1)
    assert torch.allclose(
        flow.sample(toy, 2, "2", w=0.0, generator=5), flow.sample(toy, 2, "2", w=None, generator=5), atol=1e-6
    )
    assert not torch.allclose(
        flow.sample(toy, 2, "2", w=7.0, generator=5), flow.sample(toy, 2, "2", w=None, generator=5), atol=1e-3
    )


def test_rotating_twice_by_180_degrees_is_the_identity():
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    r = lab.get_view("rotate_180")
    assert torch.equal(r.view(r.view(x)), x) and torch.equal(r.inverse(r.view(x)), x)
    assert torch.equal(r.view(x), x.flip(-2).flip(-1))  # both axes
    assert torch.equal(flow.rotate180(flow.rotate180(x)), x) and torch.equal(flow.rotate180(x), r.view(x))


def test_sampling_the_exact_velocity_lands_on_the_data_and_an_edit_from_late_keeps_the_image():
    toy = ToyFlow()
    for cls in range(4):
        out = flow.sample(toy, n=3, prompt=str(cls), w=None, generator=cls)
        assert torch.allclose(out, toy.templates[cls].expand_as(out), atol=1e-4)
    edited = flow.edit_image(toy, toy.templates[:1], 0.5, prompt="0", w=None, generator=0)
    assert torch.allclose(edited, toy.templates[:1], atol=1e-4)
    x_t = flow.interpolate(toy.templates[:1], torch.randn(1, 3, 16, 16), 0.5)
    assert torch.allclose(flow.one_step(toy, x_t, 0.5, "0"), toy.templates[:1], atol=1e-5)


def test_anagrams_and_hybrids_combine_velocities_as_they_combine_noise_estimates():
    toy = ToyFlow(wobble=0.1)
    plain = flow.sample(toy, 1, "1", w=3.0, generator=4)
    same = flow.anagram_images(toy, ["1", "1"], ("identity", "identity"), 1, 3.0, generator=4)
    assert torch.allclose(same, plain, atol=1e-5)  # two identical terms: their mean is the plain velocity
    turned = flow.anagram_images(toy, ["1", "2"], n=1, w=3.0, generator=4)
    assert not torch.allclose(turned, plain, atol=1e-2)
    k, s = flow.hybrid_blur(16)
    assert k % 2 == 1 and s == pytest.approx(0.5)
    split = flow.hybrid_images(toy, ["1", "1"], generator=4, w=3.0, n=1)  # low + high pass of one velocity: itself
    assert torch.allclose(split, plain, atol=1e-4)


def test_a_flow_step_follows_diffusers_flow_match_euler_scheduler_over_a_whole_run():
    """diffusers' FlowMatchEulerDiscreteScheduler runs sigma = 1 - t from 1 (noise) to 0, its model predicting
    eps - x1 = -v: given the same velocities, its run is ours."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    times = euler_times(0.0, 0.02)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    scheduler.set_timesteps(sigmas=[1 - t for t in times])
    assert torch.allclose(scheduler.sigmas, torch.tensor([1 - t for t in times] + [0.0]), atol=1e-6)
    toy = ToyFlow(wobble=0.2)
    cond = toy.encode(["3"] * 2)
    x = torch.randn(2, *toy.image_shape, generator=torch.Generator().manual_seed(7))
    ours = lab.denoise(toy, x, times, Guide([cond]))
    theirs = x.clone()
    for i, timestep in enumerate(scheduler.timesteps):
        v, _ = toy(theirs, times[i], cond)
        theirs = scheduler.step(-v, timestep, theirs).prev_sample
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_flow_functions_refuse_a_ddpm_backend_with_what_to_use(toy):
    with pytest.raises(ValueError, match="Fall 2026.*predicts noise.*lab.sample"):
        flow.sample(toy, 1)
