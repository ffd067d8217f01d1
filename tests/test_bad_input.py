"""Bad input gets a ValueError that names the parameter and what it allows."""

import pytest
import torch

import lab
from lab.diffusion import forward
from lab.filters import gaussian_blur
from lab.guidance import Guide
from lab.sampling import InpaintConstraint, denoise
from lab.schedules import make_alphas_cumprod, strided_timesteps
from lab.views import get_view

AC = make_alphas_cumprod("squaredcos_cap_v2", 1000)
TS = strided_timesteps()


def raises(match):
    return pytest.raises(ValueError, match=match)


@pytest.mark.parametrize(
    "x,match",
    [
        (torch.rand(3, 16, 16), r"x must have shape \(B, C, H, W\), got shape \(3, 16, 16\)"),
        (torch.rand(1, 1, 16, 16), r"x must have shape \(B, 3, 16, 16\), got \(1, 1, 16, 16\)"),
        (torch.rand(1, 3, 32, 32), r"x must have shape \(B, 3, 16, 16\)"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), r"x must have a floating-point dtype .* got torch.uint8"),
        ([[0.0]], r"x must be a torch.Tensor"),
    ],
)
def test_wrong_shape_or_dtype_of_x(toy, x, match):
    with raises(match):
        denoise(toy, x, TS, lab.plain(toy.encode(["1"])))


@pytest.mark.parametrize("t", [-1, 1000, 2.5, "500", torch.tensor([0, 1000])])
def test_t_out_of_range(t):
    with raises(r"t must (be an integer|hold integers) in \[0, 999\]"):
        forward(torch.rand(1, 3, 8, 8), t, AC)


@pytest.mark.parametrize("i_start", [-1, 34, 1.0])
def test_i_start_out_of_range(toy, i_start):
    with raises(r"i_start must be an integer in \[0, 33\]"):
        denoise(toy, torch.rand(1, 3, 16, 16), TS, lab.plain(toy.encode(["1"])), i_start=i_start)
    with raises(r"i_start must be an integer in \[0, 33\]"):
        lab.sdedit(toy, torch.rand(1, 3, 16, 16), i_start)


@pytest.mark.parametrize("timesteps", [[], [990, 990, 0], [0, 30], [1000, 0], [500.5, 0]])
def test_bad_timesteps(toy, timesteps):
    with raises(r"timesteps must"):
        denoise(toy, torch.rand(1, 3, 16, 16), timesteps, lab.plain(toy.encode(["1"])))


def test_empty_or_malformed_mask():
    x = torch.rand(1, 3, 16, 16)
    with raises(r"mask is empty: mark the pixels to fill in with 1"):
        InpaintConstraint(x, torch.zeros(16, 16), AC)
    with raises(r"mask must have shape \(16, 16\), \(1, 1, 16, 16\) or \(B, 1 or C, 16, 16\), got \(8, 8\)"):
        InpaintConstraint(x, torch.ones(8, 8), AC)
    with raises(r"mask values must lie in \[0, 1\]"):
        InpaintConstraint(x, torch.full((16, 16), 2.0), AC)
    with raises(r"mask must be a torch.Tensor"):
        InpaintConstraint(x, None, AC)


@pytest.mark.parametrize(
    "kernel_size,sigma,match",
    [
        (4, 1.0, r"kernel_size must be odd, in \[1, 31\] for a 16x16 image, got 4"),
        (33, 1.0, r"kernel_size must be an integer in \[1, 31\], got 33"),
        (0, 1.0, r"kernel_size must be an integer in \[1, 31\], got 0"),
        (5, 0.0, r"sigma must be a finite number > 0"),
        (5, float("nan"), r"sigma must be a finite number > 0"),
    ],
)
def test_bad_blur_kernel(kernel_size, sigma, match):
    with raises(match):
        gaussian_blur(torch.rand(1, 3, 16, 16), kernel_size, sigma)


def test_bad_hybrid_and_anagram_arguments(toy):
    with raises(r"kernel_size must be an integer in \[1, 31\], got 33"):
        lab.make_hybrids(toy, ["1", "2"])  # the course's kernel 33 does not fit a 16x16 image
    with raises(r"len\(prompts\) - 1 sigmas"):
        lab.make_hybrids(toy, ["1", "2", "3"], kernel_size=9, sigmas=(2.0,))
    with raises(r"sigmas must decrease"):
        lab.make_hybrids(toy, ["1", "2", "3"], kernel_size=9, sigmas=(1.0, 4.0))
    with raises(r"view must be one of \['blur_failure', 'flip', .*'transpose', 'white_balance_failure'\], got 'swirl'"):
        lab.visual_anagrams(toy, ["1", "2"], ("identity", "swirl"))
    with raises(r"patch permutation with 5 px patches needs H and W divisible by 5, got 20x24"):
        get_view("patch_permute").view(torch.zeros(1, 1, 20, 24))
    with raises(r"white balance view needs colour images"):
        get_view("white_balance_failure").view(torch.zeros(1, 1, 8, 8))
    with raises(r"prompts and views must pair up"):
        lab.visual_anagrams(toy, ["1", "2", "3"], ("identity", "flip"))
    with raises(r"view 'rotate_cw' needs a square image, got 16x8"):
        get_view("rotate_cw", 16, 8)
    with raises(r"scale must be a finite number >= 0"):
        lab.sample(toy, scale=-1.0)
    with raises(r"unknown prompt 'a cat'"):
        lab.sample(toy, prompt="a cat")
    with raises(r"views must have one view per condition \(2\), got 1"):
        Guide([toy.encode(["1"]), toy.encode(["2"])], views=["flip"])


def test_learned_variance_needs_a_model_that_has_one(toy_fixed):
    with raises(r"variance_type 'learned_range' needs a model with a variance output"):
        denoise(
            toy_fixed, torch.rand(1, 3, 16, 16), TS, lab.plain(toy_fixed.encode(["1"])), variance_type="learned_range"
        )
    with raises(r"variance_type must be one of \('fixed_small', 'learned_range'\)"):
        denoise(
            toy_fixed, torch.rand(1, 3, 16, 16), TS, lab.plain(toy_fixed.encode(["1"])), variance_type="fixed_large"
        )
