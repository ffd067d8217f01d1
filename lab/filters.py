"""Gaussian blur (the classical baseline of 1.2) and the frequency bands of factorized diffusion (1.9).

``gaussian_blur`` computes what torchvision's ``transforms.functional.gaussian_blur`` computes (a sampled,
normalised Gaussian, reflect padding), as one separable pass instead of a 2-D convolution; a long kernel (the
hybrids' 265 taps at 512 px) as two matrix products instead, a fifth of the time on a CPU.

References:
    [1] Geng et al., Factorized Diffusion: Perceptual Illusions by Noise Decomposition, ECCV 2024.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lab._checks import check_float, check_int


def default_sigma(kernel_size: int) -> float:
    """torchvision's sigma when none is given: 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8."""
    return 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8


def max_kernel_size(height: int, width: int) -> int:
    """The largest kernel reflect padding allows on an image: kernel_size // 2 must be < min(H, W)."""
    return 2 * min(height, width) - 1


def check_kernel(kernel_size, sigma, height: int, width: int) -> tuple[int, float]:
    """Validate an odd kernel size that fits the image, and a positive sigma (None: torchvision's default)."""
    limit = max_kernel_size(height, width)
    kernel_size = check_int("kernel_size", kernel_size, 1, limit)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, in [1, {limit}] for a {height}x{width} image, got {kernel_size}")
    sigma = default_sigma(kernel_size) if sigma is None else check_float("sigma", sigma, 0, None, strict_low=True)
    return kernel_size, sigma


def gaussian_kernel1d(kernel_size: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """exp(-x^2 / (2 sigma^2)) at x = -(k-1)/2 .. (k-1)/2, normalised to sum 1. Shape (k,)."""
    half = (kernel_size - 1) * 0.5
    x = torch.linspace(-half, half, steps=kernel_size, dtype=dtype, device=device)
    pdf = torch.exp(-0.5 * (x / sigma).pow(2))
    return pdf / pdf.sum()


# A blur of many taps is two matrix products (BLAS), not two depthwise convolutions: they cost H + W multiply-adds a
# pixel, the convolutions 2k. On one CPU thread: 1.9x faster at 512 px and 65 taps, 5.9x at 265, even at 1024 px and 65.
MATRIX_FROM = 64  # taps
MATRIX_PER_TAP = 16  # while H + W is at most this many times the taps


@functools.lru_cache(maxsize=8)  # a page blurs at the same size every step: its matrices are built once, not each step
def blur_matrix(n: int, kernel_size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n, n) M such that M @ v is v (length n) filtered by the 1-D Gaussian, reflect-padded: one axis of the blur.
    Built on the CPU (taps that reflect onto one pixel add up in a fixed order), then moved to device. Shared by the
    callers that ask for it: not to be modified."""
    k = gaussian_kernel1d(kernel_size, sigma, dtype=dtype)
    offsets = torch.arange(kernel_size) - kernel_size // 2
    source = (torch.arange(n)[:, None] + offsets).abs()  # (n, k): the pixel each tap reads
    source = torch.where(source > n - 1, 2 * (n - 1) - source, source)  # reflected at the far edge (k // 2 < n)
    M = torch.zeros(n, n, dtype=dtype).scatter_add_(1, source, k.expand(n, kernel_size))
    return M.to(device)


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: float | None = None) -> torch.Tensor:
    """Blur each channel of x (..., C, H, W) with a kernel_size x kernel_size Gaussian, reflect-padded."""
    if not isinstance(x, torch.Tensor) or x.ndim < 3 or not x.is_floating_point():
        raise ValueError(
            f"x must be a floating-point tensor of shape (..., C, H, W), got {getattr(x, 'shape', type(x))}"
        )
    H, W = x.shape[-2:]
    kernel_size, sigma = check_kernel(kernel_size, sigma, H, W)
    shape = x.shape
    x = x.reshape(-1, shape[-3], H, W)  # (B, C, H, W)
    if kernel_size >= MATRIX_FROM and H + W <= MATRIX_PER_TAP * kernel_size:  # columns, then rows: M_H x M_W^T
        M_H, M_W = (blur_matrix(n, kernel_size, sigma, x.dtype, x.device) for n in (H, W))
        return (M_H @ x @ M_W.T).reshape(shape)
    C = x.shape[1]
    k = gaussian_kernel1d(kernel_size, sigma, dtype=x.dtype, device=x.device)
    pad = kernel_size // 2
    x = F.pad(x, [pad, pad, pad, pad], mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(C, 1, 1, kernel_size), groups=C)  # rows
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(C, 1, kernel_size, 1), groups=C)  # columns
    return x.reshape(shape)


@dataclass(frozen=True)
class Band:
    """The part of a signal between two Gaussian blurs: blur(sigma_low_cut) - blur(sigma_high_cut), Sec. 3 [1].

    sigma None on a side means no blur there: Band(None, None) is the identity, Band(2.0, None) the high pass
    x - blur_2(x), Band(None, 2.0) the low pass blur_2(x).
    """

    kernel_size: int
    sigma_above: float | None  # frequencies kept start above this blur (None: from 0)
    sigma_below: float | None  # frequencies kept end below this blur (None: up to Nyquist)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        upper = x if self.sigma_below is None else gaussian_blur(x, self.kernel_size, self.sigma_below)
        if self.sigma_above is None:
            return upper
        return upper - gaussian_blur(x, self.kernel_size, self.sigma_above)


def frequency_bands(kernel_size: int = 33, sigmas: tuple[float, ...] = (2.0,)) -> list[Band]:
    """Split into len(sigmas) + 1 bands, low to high, that sum to the identity, Eq. (5) [1].

    sigmas are the cut-offs from low to high frequency, i.e. decreasing blur: (2.0,) gives the course's
    low pass / high pass pair; (4.0, 1.0) gives low / middle / high.
    """
    if not sigmas:
        raise ValueError("sigmas must hold at least one cut-off sigma, e.g. (2.0,)")
    sigmas = tuple(check_float("sigmas", s, 0, None, strict_low=True) for s in sigmas)
    if any(a <= b for a, b in zip(sigmas, sigmas[1:])):
        raise ValueError(f"sigmas must decrease (low-frequency cut-off first), got {sigmas}")
    edges = (None, *sigmas, None)
    # band i keeps what blur(edges[i+1]) has and blur(edges[i]) has not; blur(None) for the lowest is 0
    return [Band(kernel_size, edges[i], edges[i + 1]) for i in range(len(sigmas) + 1)]


def grey(x: torch.Tensor) -> torch.Tensor:
    """The grey part of (..., C, H, W): the mean over channels, in every channel."""
    return x.mean(-3, keepdim=True).expand_as(x)


def colour(x: torch.Tensor) -> torch.Tensor:
    """The colour part: x minus its grey part (zero for a grey image)."""
    return x - grey(x)


def colour_bands() -> list:
    """Grey and colour, the factorization of Factorized Diffusion's colour hybrids (Sec. 3 [1]): they sum to the identity."""
    return [grey, colour]
