"""The ``Denoiser`` protocol the sampling loop takes (defined beside the backends that implement it: models.backend)."""

from models.backend import Denoiser

__all__ = ["Denoiser"]
