import json
from pathlib import Path

import pytest
import torch

from lab import filters
from lab.filters import frequency_bands, gaussian_blur
from lab.views import FAILURES, VIEWS, get_view

sys_path = Path(__file__).parent / "data"


def test_gaussian_blur_equals_torchvision():
    # frozen outputs of torchvision 0.28's own gaussian_blur (tests/data/make_torchvision_blur_reference.py)
    import data.make_torchvision_blur_reference as ref

    cases = json.loads((sys_path / "torchvision_gaussian_blur.json").read_text())["cases"]
    assert len(cases) == 4
    for case in cases:
        x = ref.make_input(case["shape"])
        expected = torch.tensor(case["output"]).reshape(case["shape"])
        got = gaussian_blur(x, case["kernel_size"], case["sigma"])
        assert torch.allclose(got, expected, atol=2e-6), (case["kernel_size"], case["sigma"])


LONG_KERNELS = [
    ((1, 3, 512, 512), 265, 16.0, torch.float32),
    ((2, 1, 40, 70), 79, 9.0, torch.float32),
    ((1, 2, 33, 65), 65, None, torch.float64),
    ((2, 2, 3, 40, 40), 79, 9.0, torch.float32),
]


@pytest.mark.parametrize("shape, kernel_size, sigma, dtype", LONG_KERNELS)
def test_a_long_kernel_blurs_as_two_matrix_products_equal_to_the_convolutions(
    shape, kernel_size, sigma, dtype, monkeypatch
):
    """The hybrids' 265 taps at 512 px, kernels that reach past the far edge (reflected), float64, more leading
    dimensions: the matrix products against the separable convolutions that match torchvision."""
    H, W = shape[-2:]
    assert kernel_size >= filters.MATRIX_FROM and H + W <= filters.MATRIX_PER_TAP * kernel_size  # the matrix path
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
    fast = gaussian_blur(x, kernel_size, sigma)
    monkeypatch.setattr(filters, "MATRIX_FROM", 10**9)  # the convolutions
    assert fast.dtype == dtype and torch.allclose(fast, gaussian_blur(x, kernel_size, sigma), atol=1e-6)


def test_blur_keeps_constants_and_smooths_noise():
    assert torch.allclose(gaussian_blur(torch.full((1, 3, 20, 20), 0.7), 33, 2.0), torch.full((1, 3, 20, 20), 0.7))
    noise = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    assert gaussian_blur(noise, 9, 2.0).std() < 0.3 * noise.std()


@pytest.mark.parametrize("sigmas", [(2.0,), (4.0, 1.0)])
def test_frequency_bands_sum_to_the_identity(sigmas):
    x = torch.randn(2, 3, 32, 32)
    bands = frequency_bands(33, sigmas)
    assert len(bands) == len(sigmas) + 1
    assert torch.allclose(sum(b(x) for b in bands), x, atol=1e-5)
    low, high = bands[0](x), bands[-1](x)
    assert torch.allclose(low, gaussian_blur(x, 33, sigmas[0]))
    assert torch.allclose(high, x - gaussian_blur(x, 33, sigmas[-1]))


@pytest.mark.parametrize("name", sorted(set(VIEWS) - set(FAILURES)))
@pytest.mark.parametrize("size", [8, 28, 32])
def test_every_view_is_inverted_and_permutes_or_negates(name, size):
    v = get_view(name)
    x = torch.randn(2, 3, size, size)
    assert torch.equal(v.inverse(v.view(x)), x)
    assert torch.equal(v.view(x).abs().flatten().sort().values, x.abs().flatten().sort().values)  # keeps N(0, I)
    if name not in ("identity", "negate"):  # a permutation of the pixels: every channel moved alike
        y = v.view(torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size).expand(1, 3, -1, -1))
        assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 0], y[:, 2])


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failure_views_invert_but_do_not_keep_noise_gaussian(name):
    v = get_view(name)
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(v.inverse(v.view(x)), x, atol=1e-4)  # invertible ...
    std = v.view(x).std(dim=(0, 2, 3))  # ... but N(0, I) in is not N(0, I) out
    assert (std - 1).abs().max() > 0.3, std
    assert v.fails and get_view("flip").fails is None


def test_new_views_do_what_their_names_say():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    skew = get_view("skew").view(x)[0, 0]
    assert torch.equal(skew.sort(0).values, x[0, 0])  # each column is rolled, not mixed with others
    assert not torch.equal(skew[:, 0], x[0, 0, :, 0]) and torch.equal(skew[:, 4], x[0, 0, :, 4])  # the middle stays
    patches = get_view("patch_permute").view(x)[0, 0]  # 2 x 2 patches moved whole
    for i in range(0, 8, 2):
        for j in range(0, 8, 2):
            p = patches[i : i + 2, j : j + 2]
            assert p[0, 1] == p[0, 0] + 1 and p[1, 0] == p[0, 0] + 8
    jig = get_view("jigsaw").view(x)[0, 0]  # 2 x 2 pieces, moved and turned
    pieces = {tuple(x[0, 0, i : i + 2, j : j + 2].flatten().tolist()) for i in range(0, 8, 2) for j in range(0, 8, 2)}
    turned = {
        tuple(torch.rot90(x[0, 0, i : i + 2, j : j + 2], k).flatten().tolist())
        for i in range(0, 8, 2)
        for j in range(0, 8, 2)
        for k in range(4)
    }
    got = [tuple(jig[i : i + 2, j : j + 2].flatten().tolist()) for i in range(0, 8, 2) for j in range(0, 8, 2)]
    assert all(g in turned for g in got) and len({tuple(sorted(g)) for g in got}) == len(pieces)
    circle = get_view("inner_circle").view(x)[0, 0]
    assert circle[0, 0] == x[0, 0, 0, 0] and circle[3, 3] == x[0, 0, 4, 4]  # corners stay, the centre turns 180
    hinge = get_view("square_hinge").view(torch.arange(81.0).view(1, 1, 9, 9))[0, 0]
    assert torch.equal(hinge[:3, :3], torch.rot90(torch.arange(81.0).view(9, 9)[:3, :3], -1))
    assert (get_view("pixel_permute").view(x) == x).float().mean() < 0.2  # almost every pixel moves


def test_views_do_what_their_names_say():
    x = torch.arange(4.0).view(1, 1, 2, 2)  # [[0, 1], [2, 3]]
    assert get_view("flip").view(x).flatten().tolist() == [2, 3, 0, 1]  # upside down
    assert get_view("rotate_cw").view(x).flatten().tolist() == [2, 0, 3, 1]
    assert get_view("rotate_ccw").view(x).flatten().tolist() == [1, 3, 0, 2]
    assert get_view("rotate_180").view(x).flatten().tolist() == [3, 2, 1, 0]
    assert get_view("negate").view(x).flatten().tolist() == [0, -1, -2, -3]
    v = torch.rand(1, 1, 2, 2)
    assert torch.equal(get_view("negate").inverse_variance(v), v)  # a variance has no sign
    assert torch.equal(get_view("flip").inverse_variance(v), v.flip(-2))
