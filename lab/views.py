"""Views for visual anagrams (1.8): a view transforms the image the model sees, its inverse maps the noise back.

A view must keep i.i.d. Gaussian noise i.i.d. Gaussian: an orthogonal map, in practice a pixel permutation (flips,
rotations, skew, patch and pixel permutations, jigsaw, inner circle, square hinge) or a negation [1]. Views that
fail on purpose (FAILURES: a blur, a white balance) are invertible but change
the noise's statistics, so the model is shown noise it was not trained on: the page says why. The inverse applies
to the noise estimate and to a learned variance; negation leaves the variance alone (a variance has no sign).

References:
    [1] Geng, Park & Owens, Visual Anagrams: Generating Multi-View Optical Illusions with Diffusion Models, CVPR 2024
        (its views: github.com/dangeng/visual_anagrams, views/; these are written from the paper's definitions).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class View:
    """One view: ``view(x)`` is what the model is shown, ``inverse(eps)`` brings its estimate back."""

    name: str
    square_only: bool = False  # rotations by 90 degrees (and the permutations built on them) need H == W

    def view(self, x: torch.Tensor) -> torch.Tensor:
        return _APPLY[self.name][0](x)

    def inverse(self, eps: torch.Tensor) -> torch.Tensor:
        return _APPLY[self.name][1](eps)

    def inverse_variance(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.name == "negate" else self.inverse(v)

    @property
    def fails(self) -> str | None:
        """Why this view cannot make an anagram (None: it can)."""
        return FAILURES.get(self.name)


def _rot90(k: int):
    return lambda x: torch.rot90(x, k, dims=(-2, -1))


# Pixel permutations: perm[i] is the flat index (y * W + x) of the pixel that lands at flat index i
def _permuted(make):
    """A (view, inverse) pair from make(H, W) -> perm, cached per size."""
    cached = functools.lru_cache(maxsize=16)(lambda H, W: _with_inverse(make(H, W)))

    def apply(x: torch.Tensor, which: int) -> torch.Tensor:
        H, W = x.shape[-2:]
        perm = cached(H, W)[which].to(x.device)
        return x.flatten(-2)[..., perm].view(x.shape)

    return (lambda x: apply(x, 0)), (lambda x: apply(x, 1))


def _with_inverse(perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    return perm, inv


def _skew_perm(H: int, W: int, factor: float = 1.5) -> torch.Tensor:
    """Column x rolls down by factor * (x - W/2) / W * H pixels (wrapping): a shear that stays a permutation."""
    idx = torch.arange(H * W).view(H, W)
    cols = [torch.roll(idx[:, x], round(factor * (x - W / 2) / W * H)) for x in range(W)]
    return torch.stack(cols, 1).flatten()


def _patch_perm(H: int, W: int, patch: int | None = None, seed: int = 0) -> torch.Tensor:
    """Square patches of patch pixels (default: a 4 x 4 grid of them, as the reference's 8 px at 64 px; 1: single
    pixels) shuffled by a fixed random permutation."""
    patch = patch or H // 4
    if H % patch or W % patch:
        raise ValueError(f"a patch permutation with {patch} px patches needs H and W divisible by {patch}, got {H}x{W}")
    idx = torch.arange(H * W).view(H // patch, patch, W // patch, patch).permute(0, 2, 1, 3).reshape(-1, patch, patch)
    order = torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))
    return idx[order].view(H // patch, W // patch, patch, patch).permute(0, 2, 1, 3).flatten()


def _jigsaw_perm(H: int, W: int, pieces: int = 4, seed: int = 0) -> torch.Tensor:
    """A 4 x 4 grid of square pieces, each moved to another place and turned by a random multiple of 90 degrees (the
    reference's pieces have tabs; square pieces keep what teaches: a permutation of rotated parts)."""
    p = H // pieces
    if H != W or H % pieces:
        raise ValueError(f"the jigsaw view needs a square image divisible by {pieces}, got {H}x{W}")
    g = torch.Generator().manual_seed(seed)
    tiles = torch.arange(H * W).view(pieces, p, pieces, p).permute(0, 2, 1, 3).reshape(-1, p, p)
    order, turns = torch.randperm(len(tiles), generator=g), torch.randint(0, 4, (len(tiles),), generator=g)
    moved = torch.stack([torch.rot90(tiles[i], int(k)) for i, k in zip(order, turns)])
    return moved.view(pieces, pieces, p, p).permute(0, 2, 1, 3).flatten()


def _disc(H: int, W: int) -> torch.Tensor:
    """The inner circle's pixels: within 3/8 of the side of the centre (the reference: radius 24 of 64 px)."""
    y, x = torch.meshgrid(torch.arange(H) - (H - 1) / 2, torch.arange(W) - (W - 1) / 2, indexing="ij")
    return (x**2 + y**2) < (0.375 * min(H, W)) ** 2


def _inner_circle_perm(H: int, W: int) -> torch.Tensor:
    """The disc turned by 180 degrees, the ring around it left: a permutation."""
    idx = torch.arange(H * W).view(H, W)
    return torch.where(_disc(H, W), torch.rot90(idx, 2), idx).flatten()


def _square_hinge_perm(H: int, W: int) -> torch.Tensor:
    """A 3 x 3 grid of squares, each turned by 90 degrees, alternately clockwise and counter-clockwise (the rows and
    columns left over when the side is not a multiple of 3 stay)."""
    idx = torch.arange(H * W).view(H, W)
    s = min(H, W) // 3
    for i in range(3):
        for j in range(3):
            block = idx[i * s : (i + 1) * s, j * s : (j + 1) * s]
            idx[i * s : (i + 1) * s, j * s : (j + 1) * s] = torch.rot90(block.clone(), -1 if (i + j) % 2 == 0 else 1)
    return idx.flatten()


# Failure views: invertible, but not orthogonal, so noise does not stay N(0, I)
def _blur_transfer(H: int, W: int, sigma: float = 0.7) -> torch.Tensor:
    """A circular Gaussian blur's transfer function on the (H, W) FFT grid (real, positive: its inverse exists)."""
    fy, fx = torch.fft.fftfreq(H, dtype=torch.float64), torch.fft.fftfreq(W, dtype=torch.float64)
    return torch.exp(-2 * math.pi**2 * sigma**2 * (fy[:, None] ** 2 + fx[None, :] ** 2))


def _blur(x: torch.Tensor, inverse: bool) -> torch.Tensor:
    h = _blur_transfer(*x.shape[-2:]).to(x.device)
    spectrum = torch.fft.fft2(x.double())
    return torch.fft.ifft2(spectrum / h if inverse else spectrum * h).real.to(x.dtype)


WHITE_BALANCE = (1.5, 1.0, 0.6)  # per-channel gains: a warm cast


def _white_balance(x: torch.Tensor, inverse: bool) -> torch.Tensor:
    if x.shape[-3] != 3:
        raise ValueError(f"the white balance view needs colour images (3 channels), got {x.shape[-3]}")
    gains = torch.tensor(WHITE_BALANCE, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return x / gains if inverse else x * gains


_APPLY = {  # name: (view, inverse); images are (..., C, H, W)
    "identity": (lambda x: x, lambda x: x),
    "flip": (lambda x: x.flip(-2), lambda x: x.flip(-2)),  # upside down, the course's anagram
    "hflip": (lambda x: x.flip(-1), lambda x: x.flip(-1)),  # mirror left-right
    "rotate_180": (_rot90(2), _rot90(2)),
    "rotate_cw": (_rot90(-1), _rot90(1)),  # 90 degrees clockwise
    "rotate_ccw": (_rot90(1), _rot90(-1)),  # 90 degrees counter-clockwise
    "transpose": (lambda x: x.transpose(-2, -1), lambda x: x.transpose(-2, -1)),
    "negate": (lambda x: -x, lambda x: -x),
    "skew": _permuted(_skew_perm),
    "patch_permute": _permuted(_patch_perm),
    "pixel_permute": _permuted(functools.partial(_patch_perm, patch=1)),
    "jigsaw": _permuted(_jigsaw_perm),
    "inner_circle": _permuted(_inner_circle_perm),
    "square_hinge": _permuted(_square_hinge_perm),
    "blur_failure": (lambda x: _blur(x, False), lambda x: _blur(x, True)),
    "white_balance_failure": (lambda x: _white_balance(x, False), lambda x: _white_balance(x, True)),
}
FAILURES = {  # why each failure view cannot make an anagram
    "blur_failure": "a blur averages neighbouring pixels: blurred noise has a smaller variance and correlated pixels, "
    "noise the model never saw, so it denoises the wrong noise level and the image stays a smear.",
    "white_balance_failure": "a white balance scales each channel: the noise's variance becomes 2.25, 1 and 0.36 per "
    "channel instead of 1, so the model mistakes how noisy each channel is and colours drift.",
}
SQUARE_ONLY = ("rotate_cw", "rotate_ccw", "transpose", "jigsaw", "inner_circle", "square_hinge")
VIEWS = {name: View(name, square_only=name in SQUARE_ONLY) for name in _APPLY}


def get_view(view: str | View, height: int | None = None, width: int | None = None) -> View:
    """The View called `view`; ValueError for an unknown name or a 90-degree view of a non-square image."""
    if isinstance(view, View):
        view = view.name
    if view not in VIEWS:
        raise ValueError(f"view must be one of {sorted(VIEWS)}, got {view!r}")
    v = VIEWS[view]
    if v.square_only and height is not None and height != width:
        raise ValueError(
            f"view {view!r} needs a square image, got {height}x{width}; use one of flip, hflip, rotate_180, negate"
        )
    return v
