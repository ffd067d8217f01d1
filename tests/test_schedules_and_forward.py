import pytest
import torch
from diffusers import DDPMScheduler

from lab.diffusion import CLEAN, add_noise, estimate_x0, forward
from lab.schedules import make_alphas_cumprod, strided_timesteps


@pytest.mark.parametrize("schedule,T", [("linear", 300), ("linear", 1000), ("squaredcos_cap_v2", 1000)])
def test_alphas_cumprod_equal_diffusers(schedule, T):
    reference = DDPMScheduler(num_train_timesteps=T, beta_schedule=schedule).alphas_cumprod
    assert torch.equal(make_alphas_cumprod(schedule, T), reference)


def test_strided_timesteps_are_the_courses():
    assert strided_timesteps() == list(range(990, -1, -30))
    assert strided_timesteps()[10] == 690  # i_start = 10 of 1.4
    assert strided_timesteps(300, 10) == list(range(290, -1, -10))
    assert strided_timesteps(1000, 1) == list(range(999, -1, -1))


def test_forward_at_t0_is_the_identity_up_to_the_first_beta():
    # alphas_cumprod[0] = 1 - beta_0 < 1 in both course schedules, so t = 0 is the clean image only up to
    # noise of std sqrt(beta_0) (0.0065 for IF's cosine schedule); CLEAN (alpha_bar = 1) is exactly it.
    ac = make_alphas_cumprod("squaredcos_cap_v2", 1000)
    x0 = torch.rand(4, 3, 8, 8) * 2 - 1
    eps = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x_t = forward(x0, 0, ac, torch.Generator().manual_seed(0))
    assert torch.equal(x_t, ac[0].sqrt() * x0 + (1 - ac[0]).sqrt() * eps)
    assert (x_t - x0).abs().max() < 6 * (1 - ac[0]).sqrt() + 1e-4
    assert torch.equal(add_noise(x0, CLEAN, ac, eps), x0)


def test_forward_has_the_marginal_of_eq_a1():
    ac = make_alphas_cumprod("squaredcos_cap_v2", 1000)
    x0 = torch.full((20000, 1, 2, 2), 0.5)
    for t in (250, 500, 750):
        x_t = forward(x0, t, ac, torch.Generator().manual_seed(t))
        assert abs(x_t.mean() - ac[t].sqrt() * 0.5) < 0.01
        assert abs(x_t.var() - (1 - ac[t])) < 0.01


def test_forward_per_image_timesteps_and_one_step_inversion():
    ac = make_alphas_cumprod("linear", 300)
    x0 = torch.rand(3, 1, 28, 28)
    t = torch.tensor([0, 150, 299])
    eps = torch.randn_like(x0)
    x_t = add_noise(x0, t, ac, eps)
    for i in range(3):
        assert torch.allclose(x_t[i], add_noise(x0[i : i + 1], int(t[i]), ac, eps[i : i + 1])[0])
        assert torch.allclose(estimate_x0(x_t[i : i + 1], int(t[i]), ac, eps[i : i + 1])[0], x0[i], atol=1e-4)
    assert torch.allclose(
        forward(x0, t, ac, torch.Generator().manual_seed(1)), forward(x0, t, ac, torch.Generator().manual_seed(1))
    )
