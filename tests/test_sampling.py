"""Properties of the one loop, on a toy denoiser."""

import pytest
import torch
from conftest import ToyDenoiser

import lab
import lab.filters as lab_filters
from lab.diffusion import CLEAN, add_noise
from lab.guidance import Guide
from lab.sampling import denoise
from lab.schedules import strided_timesteps

TS = strided_timesteps(1000, 30)


def run(denoiser, guide, seed=0, n=2, **kw):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *denoiser.image_shape, generator=g)
    return denoise(denoiser, x, TS, guide, generator=g, **kw)


@pytest.mark.parametrize("learned_variance", [True, False])
def test_sampling_with_the_exact_noise_estimate_lands_on_the_data(learned_variance):
    # data = one template per class, and the exact eps of that data: step A.3 must walk to the template
    toy = ToyDenoiser(learned_variance=learned_variance, wobble=0.0)
    for cls in range(4):
        out = lab.sample(toy, n=3, prompt=str(cls), scale=None, generator=cls)
        assert torch.allclose(out, toy.templates[cls].expand_as(out), atol=1e-4)
    noisy = lab.forward(toy.templates[:1], 690, toy, generator=0)
    assert torch.allclose(lab.iterative_denoise(toy, noisy, 10, prompt="0", generator=0), toy.templates[:1], atol=1e-4)


@pytest.mark.parametrize("fixture", ["toy", "toy_fixed"])
def test_cfg_with_scale_1_equals_the_conditional_estimate(fixture, request):
    toy = request.getfixturevalue(fixture)
    plain = run(toy, lab.plain(toy.encode(["1"])))
    guided = run(toy, lab.cfg(toy.encode(["1"]), toy.encode([""]), scale=1.0))
    assert torch.allclose(guided, plain, atol=1e-5)
    assert not torch.allclose(run(toy, lab.cfg(toy.encode(["1"]), toy.encode([""]), scale=7.0)), plain, atol=1e-2)


def test_anagram_with_identity_views_equals_plain_sampling(toy):
    c, u = toy.encode(["2"]), toy.encode([""])
    expected = run(toy, lab.cfg(c, u, 7.0))
    assert torch.allclose(run(toy, lab.anagram([c, c], ["identity", "identity"], u, 7.0)), expected, atol=1e-5)
    # a real anagram is not plain sampling, and each view sees the image through itself
    flipped = run(toy, lab.anagram([c, toy.encode(["3"])], ["identity", "flip"], u, 7.0))
    assert not torch.allclose(flipped, expected, atol=1e-2)


def test_anagram_view_sees_the_transformed_image(toy):
    # one term with view V: the model is shown V(x_t) and its estimate mapped back by V^-1
    c = toy.encode(["1"])
    x = torch.randn(1, *toy.image_shape, generator=torch.Generator().manual_seed(3))
    for name in ("flip", "rotate_cw", "negate"):
        v = lab.get_view(name)
        guide = Guide([c], views=[name])
        x_in, c_in = guide.inputs(x)
        eps, var = guide.combine(*toy(x_in, 500, c_in))
        ref_eps, ref_var = toy(v.view(x), 500, c)
        assert torch.equal(eps, v.inverse(ref_eps))
        assert torch.equal(var, v.inverse_variance(ref_var))


def test_hybrid_of_one_prompt_equals_plain_sampling(toy):
    c, u = toy.encode(["0"]), toy.encode([""])
    expected = run(toy, lab.cfg(c, u, 7.0))
    for sigmas in [(2.0,), (4.0, 1.0)]:
        bands = lab.frequency_bands(9, sigmas)
        assert torch.allclose(run(toy, lab.factorized([c] * len(bands), bands, u, 7.0)), expected, atol=1e-5)
    hybrid = run(toy, lab.factorized([c, toy.encode(["3"])], lab.frequency_bands(9, (2.0,)), u, 7.0))
    assert not torch.allclose(hybrid, expected, atol=1e-2)


def test_colour_hybrid_splits_grey_from_colour(toy):
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    grey, colour = lab_filters.colour_bands()
    assert torch.allclose(grey(x) + colour(x), x, atol=1e-6) and torch.allclose(
        colour(grey(x)), torch.zeros_like(x), atol=1e-6
    )
    same = lab.colour_hybrids(toy, ["1", "1"], 1, 7.0, generator=0)
    assert torch.allclose(same, lab.sample(toy, 1, "1", 7.0, generator=0), atol=1e-5)  # one prompt: plain sampling
    mixed = lab.colour_hybrids(toy, ["1", "2"], 1, 7.0, generator=0)
    # the grey part follows prompt 1's, the colour part prompt 2's (the toy lands near its class templates)
    assert (lab_filters.grey(mixed) - lab_filters.grey(same)).abs().mean() < (
        lab_filters.grey(mixed) - lab_filters.grey(lab.sample(toy, 1, "2", 7.0, generator=0))
    ).abs().mean()
    with pytest.raises(ValueError, match="two prompts"):
        lab.colour_hybrids(toy, ["1"], 1, 7.0)


def test_each_step_is_one_batched_model_call(toy):
    c1, c2, u = toy.encode(["1"]), toy.encode(["2"]), toy.encode([""])
    guides = {
        "plain": (lab.plain(c1), 1),
        "cfg": (lab.cfg(c1, u, 7.0), 2),
        "anagram": (lab.anagram([c1, c2], ["identity", "flip"], u, 7.0), 4),  # each view needs its own uncond
        "hybrid": (lab.factorized([c1, c2], lab.frequency_bands(9), u, 7.0), 3),  # both bands share one uncond
    }
    for name, (guide, evals) in guides.items():
        toy.calls.clear()
        run(toy, guide, n=3)
        assert [b for b, _ in toy.calls] == [3 * evals] * len(TS), name
        assert [t for _, t in toy.calls] == TS


def test_i_start_callback_and_trajectory(toy):
    seen = []
    x = torch.randn(1, *toy.image_shape)
    out = denoise(
        toy,
        x,
        TS,
        lab.plain(toy.encode(["1"])),
        i_start=10,
        callback=seen.append,
        generator=torch.Generator().manual_seed(0),
    )
    assert [s["t"] for s in seen] == TS[10:]
    assert [s["t_prev"] for s in seen] == TS[11:] + [CLEAN]
    assert seen[0]["x_t"] is x and torch.equal(seen[-1]["x"], out)
    assert all(torch.equal(a["x"], b["x_t"]) for a, b in zip(seen, seen[1:]))
    assert set(seen[0]) == {"i", "t", "t_prev", "x_t", "x0_hat", "x"}


def test_inpainting_keeps_the_known_pixels(toy):
    x_orig = torch.rand(2, *toy.image_shape) * 2 - 1
    mask = torch.zeros(16, 16)
    mask[4:12, 4:12] = 1  # fill in the middle
    seed = 5
    seen = []
    out = lab.inpaint(toy, x_orig, mask, prompt="1", scale=7.0, generator=seed, callback=seen.append)
    # replay the generator: x_T, then per step the step's noise and the constraint's noise (none at CLEAN)
    g = torch.Generator().manual_seed(seed)
    torch.randn(x_orig.shape, generator=g)
    keep = mask == 0
    for s in seen:
        if s["t_prev"] == CLEAN:
            expected = x_orig
        else:
            torch.randn(x_orig.shape, generator=g)  # the step's v_sigma
            expected = add_noise(x_orig, s["t_prev"], toy.alphas_cumprod, torch.randn(x_orig.shape, generator=g))
        assert torch.allclose(s["x"][..., keep], expected[..., keep], atol=1e-6), s["t"]
    assert torch.equal(out[..., keep], x_orig[..., keep])
    assert not torch.allclose(out[..., ~keep], x_orig[..., ~keep], atol=0.1)


def test_same_generator_same_output_with_another_run_interleaved(toy):
    c, u = toy.encode(["1"]), toy.encode([""])
    alone = lab.sdedit(
        toy, torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(9)), 5, "1", 7.0, generator=1
    )

    def meddle(_):  # another user's run, and the global RNG, between every two steps
        lab.sample(toy, n=1, prompt="2", generator=2, timesteps=[500, 250, 0])
        torch.randn(10)

    torch.manual_seed(123)
    interleaved = lab.sdedit(
        toy,
        torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(9)),
        5,
        "1",
        7.0,
        generator=1,
        callback=meddle,
    )
    assert torch.equal(alone, interleaved)
    assert not torch.equal(
        alone,
        lab.sdedit(toy, torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(9)), 5, "1", 7.0, generator=2),
    )
    del c, u


def test_course_entry_points_run_and_have_the_backend_shape(toy):
    im = torch.rand(1, 3, 16, 16) * 2 - 1
    x_t = lab.forward(im, 690, toy, generator=0)
    assert lab.one_step_denoise(toy, x_t, 690).shape == im.shape
    assert lab.iterative_denoise(toy, x_t, 10, generator=0).shape == im.shape
    assert lab.iterative_denoise_cfg(toy, x_t, 10, generator=0).shape == im.shape
    assert lab.sample(toy, n=5, generator=0).shape == (5, 3, 16, 16)
    assert lab.visual_anagrams(toy, ["1", "2"], ("identity", "rotate_cw"), generator=0).shape == (1, 3, 16, 16)
    assert lab.make_hybrids(toy, ["1", "2", "3"], kernel_size=9, sigmas=(4.0, 1.0), generator=0).shape == (1, 3, 16, 16)
    # the course's 1.4 starting point: denoising from i_start = 10 moves the estimate towards the data
    assert torch.equal(
        lab.iterative_denoise(toy, x_t, 10, generator=0), lab.iterative_denoise(toy, x_t, 10, generator=0)
    )
