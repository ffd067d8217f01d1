import json
from pathlib import Path

import pytest
import torch

from lab.filters import frequency_bands, gaussian_blur
from lab.views import VIEWS, get_view

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


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_every_view_is_inverted_and_permutes_or_negates(name):
    v = get_view(name)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(v.inverse(v.view(x)), x)
    assert torch.equal(v.view(x).abs().flatten().sort().values, x.abs().flatten().sort().values)  # keeps N(0, I)


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
