"""The course's UNet for 28x28 images (Part B), with optional time and class conditioning.

    1@28 -ConvBlock-> D@28 -DownBlock-> D@14 -DownBlock-> 2D@7 -Flatten-> 2D@1 -Unflatten-> 2D@7
    cat 2D@7 skip -> 4D@7 -UpBlock-> D@14; cat D@14 skip -> 2D@14 -UpBlock-> D@28;
    cat D@28 skip -> 2D@28 -ConvBlock-> D@28 -Conv2d(3, 1, 1)-> 1@28

(at the course's 28 px; config.size, a multiple of 4, scales each: the colour backends' 32 px pools 8 x 8)

Conditioning modulates the unflattened bottleneck (width 2D) and the first up block's output (width D):
time only, DDPM (Fall 2024): ``h + t1``, ``u + t2``; time only, flow matching (Fall 2025): ``h * t1``, ``u * t2``;
class and time (both): ``c1 * h + t1``, ``c2 * u + t2``, with c a one-hot vector, all zeros for "no class" (CFG).

Two departures a config may ask for (the CS280A "better time-conditioned UNet"; the course's are the defaults):
GroupNorm instead of BatchNorm (``norm="group"``: BatchNorm's running statistics average the features over every t, so
a sampling step at one t is normalised by the mean of all of them; GroupNorm normalises each image as it is), and t
fed to the FCBlocks as sinusoidal features (``time_features``) instead of the one number.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@dataclass(frozen=True)
class UNetConfig:
    D: int = 64  # hidden width; the course uses 128 for the single-step denoiser, 64 for DDPM / flow matching
    in_channels: int = 1  # image channels (MNIST, Fashion-MNIST: 1)
    time: str = "none"  # "none", "add" (DDPM) or "mul" (flow matching): how t modulates the bottleneck
    num_classes: int = 0  # 0: no class input; else one-hot classes (zero vector: unconditional)
    norm: str = "batch"  # "batch" (the course's BatchNorm) or "group" (GroupNorm, GROUPS groups)
    time_features: int = 0  # 0: t itself into the FCBlocks (the course's); F (even): F sinusoidal features of t
    size: int = 28  # the images' side (a multiple of 4): the bottleneck pools the size / 4 of the second DownBlock

    def to_dict(self) -> dict:
        return asdict(self)


GROUPS = 8  # GroupNorm's groups (D and 2D are multiples of it at the widths the lab trains)


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation after each convolution: the course's BatchNorm, or GroupNorm."""
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.GroupNorm(GROUPS, channels)


def conv(cin: int, cout: int, norm: str = "batch") -> nn.Sequential:
    """Conv = Conv2d(k3, s1, p1) + BN + GELU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), norm_layer(norm, cout), nn.GELU())


def conv_block(cin: int, cout: int, norm: str = "batch") -> nn.Sequential:
    """ConvBlock = Conv, Conv."""
    return nn.Sequential(conv(cin, cout, norm), conv(cout, cout, norm))


def down_block(cin: int, cout: int, norm: str = "batch") -> nn.Sequential:
    """DownBlock = DownConv (Conv2d k3 s2 p1 + BN + GELU), ConvBlock: halves H and W."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), norm_layer(norm, cout), nn.GELU(), conv_block(cout, cout, norm))


def up_block(cin: int, cout: int, norm: str = "batch") -> nn.Sequential:
    """UpBlock = UpConv (ConvTranspose2d k4 s2 p1 + BN + GELU), ConvBlock: doubles H and W."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1), norm_layer(norm, cout), nn.GELU(), conv_block(cout, cout, norm)
    )


def time_features(t: torch.Tensor, count: int) -> torch.Tensor:
    """(B, 1) t in [0, 1] -> (B, count) sinusoids sin(f t), cos(f t) at count / 2 frequencies from 1 to 1000."""
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), count // 2, device=t.device, dtype=t.dtype))
    return torch.cat([torch.sin(t * freqs), torch.cos(t * freqs)], dim=1)


def fc_block(fin: int, fout: int) -> nn.Sequential:
    """FCBlock = Linear(fin, fout) + GELU, Linear(fout, fout)."""
    return nn.Sequential(nn.Linear(fin, fout), nn.GELU(), nn.Linear(fout, fout))


class CourseUNet(nn.Module):
    """The course's UNet; ``forward(x, t=None, c=None)`` with t (B,) in [0, 1] and c (B, num_classes) one-hot."""

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        if config.time not in ("none", "add", "mul"):
            raise ValueError(f"time must be 'none', 'add' or 'mul', got {config.time!r}")
        if config.num_classes and config.time == "none":
            raise ValueError("a class-conditioned UNet is also time-conditioned: set time to 'add' or 'mul'")
        if config.norm not in ("batch", "group") or (config.norm == "group" and config.D % GROUPS):
            raise ValueError(f"norm must be 'batch' or 'group' (with D a multiple of {GROUPS}), got {config.norm!r}")
        if config.size < 4 or config.size % 4:
            raise ValueError(f"size must be a multiple of 4, got {config.size}")
        if config.time_features < 0 or config.time_features % 2:
            raise ValueError(f"time_features must be 0 or an even count, got {config.time_features}")
        self.config = config
        D, C, norm = config.D, config.in_channels, config.norm
        self.conv_in = conv_block(C, D, norm)
        self.down1, self.down2 = down_block(D, D, norm), down_block(D, 2 * D, norm)
        k = config.size // 4  # the course's 7 at 28 px
        self.flatten = nn.Sequential(nn.AvgPool2d(k), nn.GELU())
        self.unflatten = nn.Sequential(nn.ConvTranspose2d(2 * D, 2 * D, k, k, 0), norm_layer(norm, 2 * D), nn.GELU())
        self.up1, self.up2 = up_block(4 * D, D, norm), up_block(2 * D, D, norm)
        self.conv_out = nn.Sequential(conv_block(2 * D, D, norm), nn.Conv2d(D, C, 3, 1, 1))
        if config.time != "none":
            t_in = config.time_features or 1
            self.t1, self.t2 = fc_block(t_in, 2 * D), fc_block(t_in, D)
        if config.num_classes:
            self.c1, self.c2 = fc_block(config.num_classes, 2 * D), fc_block(config.num_classes, D)

    def time_input(self, t: torch.Tensor) -> torch.Tensor:
        """t (B,) as the FCBlocks take it: (B, 1), or (B, F) sinusoidal features (config.time_features)."""
        t = t.view(-1, 1)
        return time_features(t, self.config.time_features) if self.config.time_features else t

    def _modulate(self, h: torch.Tensor, t_emb: torch.Tensor, c_emb: torch.Tensor | None) -> torch.Tensor:
        """c * h + t with a class; else h + t (DDPM) or h * t (flow matching). Embeddings (B, F) -> (B, F, 1, 1)."""
        t_emb = t_emb[..., None, None]
        if c_emb is not None:
            return c_emb[..., None, None] * h + t_emb
        return h + t_emb if self.config.time == "add" else h * t_emb

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        s1 = self.conv_in(x)  # (B, D, 28, 28)
        s2 = self.down1(s1)  # (B, D, 14, 14)
        s3 = self.down2(s2)  # (B, 2D, 7, 7)
        h = self.unflatten(self.flatten(s3))  # (B, 2D, 1, 1) -> (B, 2D, 7, 7)
        if cfg.time != "none":
            t = self.time_input(t.to(x.dtype))
            c = c.to(x.dtype) if cfg.num_classes else None
            h = self._modulate(h, self.t1(t), self.c1(c) if cfg.num_classes else None)
        u = self.up1(torch.cat([h, s3], 1))  # (B, D, 14, 14)
        if cfg.time != "none":
            u = self._modulate(u, self.t2(t), self.c2(c) if cfg.num_classes else None)
        u = self.up2(torch.cat([u, s2], 1))  # (B, D, 28, 28)
        return self.conv_out(torch.cat([u, s1], 1))  # (B, C, 28, 28)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy for inference with every BatchNorm that follows a (transposed) convolution folded into it (eval mode).

    Equal to the model up to fp32 rounding (~1e-6): a fast path, not the exact one.
    """
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                seq[i + 1] = nn.Identity()
    return model


def memory_format_of(model: nn.Module) -> torch.memory_format:
    """channels_last if the model's convolutions are (inference_copy), else contiguous: the layout to feed it in
    (oneDNN converts an input of the other layout on every call, ~7 % of the D 64 UNet's time at batch 80)."""
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.shape[1] > 1]
    last = weights and weights[0].is_contiguous(memory_format=torch.channels_last) and not weights[0].is_contiguous()
    return torch.channels_last if last else torch.contiguous_format


def inference_copy(model: nn.Module) -> nn.Module:
    """The copy a server computes with: BatchNorm folded (fold_batchnorm) and channels_last, oneDNN's fast layout
    (1.2-1.5x fewer ms per image on a CPU; equal to the model up to fp32 rounding, not bit for bit)."""
    return fold_batchnorm(model).to(memory_format=torch.channels_last)
