"""Views for visual anagrams (1.8): a view transforms the image the model sees, its inverse maps the noise back.

A view must keep i.i.d. Gaussian noise i.i.d. Gaussian (a pixel permutation or a negation [1]); blurs and
colour changes fail by design. The inverse applies to the noise estimate and to a learned variance;
negation leaves the variance alone (a variance has no sign).

References:
    [1] Geng, Park & Owens, Visual Anagrams: Generating Multi-View Optical Illusions with Diffusion Models, CVPR 2024.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class View:
    """One view: ``view(x)`` is what the model is shown, ``inverse(eps)`` brings its estimate back."""

    name: str
    square_only: bool = False  # rotations by 90 degrees need H == W

    def view(self, x: torch.Tensor) -> torch.Tensor:
        return _APPLY[self.name][0](x)

    def inverse(self, eps: torch.Tensor) -> torch.Tensor:
        return _APPLY[self.name][1](eps)

    def inverse_variance(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.name == "negate" else self.inverse(v)


def _rot90(k: int):
    return lambda x: torch.rot90(x, k, dims=(-2, -1))


_APPLY = {  # name: (view, inverse); images are (..., C, H, W)
    "identity": (lambda x: x, lambda x: x),
    "flip": (lambda x: x.flip(-2), lambda x: x.flip(-2)),  # upside down, the course's anagram
    "hflip": (lambda x: x.flip(-1), lambda x: x.flip(-1)),  # mirror left-right
    "rotate_180": (_rot90(2), _rot90(2)),
    "rotate_cw": (_rot90(-1), _rot90(1)),  # 90 degrees clockwise
    "rotate_ccw": (_rot90(1), _rot90(-1)),  # 90 degrees counter-clockwise
    "transpose": (lambda x: x.transpose(-2, -1), lambda x: x.transpose(-2, -1)),
    "negate": (lambda x: -x, lambda x: -x),
}
VIEWS = {name: View(name, square_only=name in ("rotate_cw", "rotate_ccw", "transpose")) for name in _APPLY}


def get_view(view: str | View, height: int | None = None, width: int | None = None) -> View:
    """The View called `view`; ValueError for an unknown name or a 90-degree view of a non-square image."""
    if isinstance(view, View):
        view = view.name
    if view not in VIEWS:
        raise ValueError(f"view must be one of {sorted(VIEWS)}, got {view!r}")
    v = VIEWS[view]
    if v.square_only and height is not None and height != width:
        raise ValueError(f"view {view!r} needs a square image, got {height}x{width}; use one of flip, hflip, rotate_180, negate")
    return v
