"""Schedules: a model's alpha_bar (``alphas_cumprod``, from ``models.schedules``) and the course's strided timesteps."""

from __future__ import annotations

from lab._checks import check_int
from models.schedules import SCHEDULES, cosine_betas, linear_betas, make_alphas_cumprod

__all__ = ["SCHEDULES", "cosine_betas", "linear_betas", "make_alphas_cumprod", "strided_timesteps"]


def strided_timesteps(T: int = 1000, stride: int = 30) -> list[int]:
    """The course's strided timesteps: the largest multiple of stride below T, down to 0 (990, 960, ..., 0)."""
    check_int("T", T, 1, None)
    check_int("stride", stride, 1, T)
    start = (T - 1) // stride * stride
    return list(range(start, -1, -stride))
