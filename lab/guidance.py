"""Combiners of noise estimates: plain, classifier-free guidance (A.4), views (1.8), frequency bands (1.9).

A ``Guide`` turns one step's x_t into one batched model input, and the model's batched outputs back into
one noise estimate (and variance). Every term k has a condition c_k, a view V_k and a band filter F_k:

    eps = reduce_k F_k(V_k^-1(eps_u,k + scale * (eps_c,k - eps_u,k))),   eps_.,k = model(V_k(x_t), c_.)

with eps_u the unconditional estimate (CFG, Eq. A.4) and reduce the mean (anagrams [1]) or the sum
(factorized diffusion, hybrids [2]). The variance is the mean of the conditional variances, each mapped
back by its view. Evaluations that are the same view under the same condition are made once.

References:
    [1] Geng, Park & Owens, Visual Anagrams, CVPR 2024.   [2] Geng et al., Factorized Diffusion, ECCV 2024.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from lab._checks import check_float
from lab.views import View, get_view

IDENTITY = get_view("identity")
REDUCTIONS = ("mean", "sum")


class Guide:
    """One step's noise estimate from one batched model call: terms (cond, view, band), optional CFG, a reduction."""

    def __init__(
        self,
        conds: Sequence[torch.Tensor],
        *,
        uncond: torch.Tensor | None = None,
        scale: float = 1.0,
        views: Sequence[View | str] | None = None,
        bands: Sequence[Callable[[torch.Tensor], torch.Tensor]] | None = None,
        reduction: str | None = None,
    ):
        if len(conds) == 0:
            raise ValueError("conds must hold at least one condition (from denoiser.encode)")
        K = len(conds)
        views = [IDENTITY] * K if views is None else [get_view(v) for v in views]
        if len(views) != K:
            raise ValueError(f"views must have one view per condition ({K}), got {len(views)}")
        if bands is not None and len(bands) != K:
            raise ValueError(f"bands must have one band per condition ({K}), got {len(bands)}")
        reduction = reduction or ("sum" if bands is not None else "mean")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.scale = check_float("scale", scale, 0, None)
        self.views, self.bands, self.reduction = views, bands, reduction
        self.guided = uncond is not None

        # the distinct (view, condition) evaluations, and for each term the index of its cond / uncond one
        self.evals: list[tuple[View, torch.Tensor]] = []
        self.cond_index = [self._index(v, c) for v, c in zip(views, conds)]
        self.uncond_index = [self._index(v, uncond) for v in views] if self.guided else None

    def _index(self, view: View, cond: torch.Tensor) -> int:
        for i, (v, c) in enumerate(self.evals):
            if v == view and c.dtype == cond.dtype and c.shape == cond.shape and torch.equal(c, cond):
                return i
        self.evals.append((view, cond))
        return len(self.evals) - 1

    @property
    def num_evals(self) -> int:
        """Images the model sees per image of x_t, per step."""
        return len(self.evals)

    def inputs(self, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batched model input: every evaluation's view of x_t and its condition, (E*B, C, H, W) and (E*B, ...)."""
        B = x_t.shape[0]
        for _, c in self.evals:
            if c.shape[0] not in (1, B):
                raise ValueError(f"each condition must have 1 or B={B} rows, got shape {tuple(c.shape)}")
        x_in = torch.cat([v.view(x_t) for v, _ in self.evals])
        c_in = torch.cat([c.expand(B, *c.shape[1:]) for _, c in self.evals])
        return x_in, c_in

    def combine(self, eps: torch.Tensor, variance: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reduce the model's (E*B, C, H, W) outputs to one eps (B, C, H, W) and variance, as in the module docstring."""
        E = self.num_evals
        eps = eps.unflatten(0, (E, -1))  # (E, B, C, H, W)
        variance = None if variance is None else variance.unflatten(0, (E, -1))  # (E, B, C, H, W)
        terms, variances = [], []
        for k, view in enumerate(self.views):
            e = eps[self.cond_index[k]]
            if self.guided:
                e_u = eps[self.uncond_index[k]]
                e = e_u + self.scale * (e - e_u)  # CFG, Eq. A.4
            e = view.inverse(e)
            terms.append(e if self.bands is None else self.bands[k](e))
            if variance is not None:
                variances.append(view.inverse_variance(variance[self.cond_index[k]]))
        eps = torch.stack(terms).sum(0) if self.reduction == "sum" else torch.stack(terms).mean(0)
        variance = torch.stack(variances).mean(0) if variances else None
        return eps, variance


def plain(cond: torch.Tensor) -> Guide:
    """The model's estimate under one condition."""
    return Guide([cond])


def cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> Guide:
    """Classifier-free guidance eps_u + scale (eps_c - eps_u), Eq. A.4, with the conditional variance."""
    return Guide([cond], uncond=uncond, scale=scale)


def anagram(conds: Sequence[torch.Tensor], views: Sequence[View | str], uncond=None, scale: float = 1.0) -> Guide:
    """Mean over views of V_k^-1(guided estimate of V_k(x_t) under c_k), Eq. (3) [1]."""
    return Guide(conds, uncond=uncond, scale=scale, views=views, reduction="mean")


def factorized(conds: Sequence[torch.Tensor], bands: Sequence[Callable], uncond=None, scale: float = 1.0) -> Guide:
    """Sum over bands of F_k(guided estimate under c_k), Eq. (5) [2]: a hybrid image for low/high pass bands."""
    return Guide(conds, uncond=uncond, scale=scale, bands=bands, reduction="sum")
