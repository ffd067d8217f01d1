"""Part B of the Fall 2025 and Fall 2026 course (flow matching on MNIST) by the notebook's names (``partb.ipynb``).

The blocks and UNets are the lab's network (models.unet) under the course's constructor signatures: a bundled
checkpoint loads into them (``from_bundled``); the forward and sampling functions are thin entry points over the lab's
training loss (lab.train.loss_fn's flow matching) and its one loop (lab.generate.flow_sample). Pixels in [0, 1]; flow
time from noise (0) to data (1); the target velocity x_1 - x_0. Part B's CFG is u = u_u + gamma (u_c - u_u), gamma 5
(Part A's is v_c + w (v_c - v_u): w = gamma - 1).

    TimeConditionalUNet(in_channels, num_classes, num_hiddens).forward(x, t)
    ClassConditionalUNet(in_channels, num_classes, num_hiddens).forward(x, c, t, mask=None)
    time_fm_forward(unet, x_1, num_ts) -> loss        time_fm_sample(unet, img_wh, num_ts, seed=0) -> images
    class_fm_forward(unet, x_1, c, p_uncond, num_ts)  class_fm_sample(unet, c, img_wh, num_ts, guidance_scale=5.0, seed=0)

References: [1] Lipman et al., Flow Matching for Generative Modeling, 2023 (the course's Algorithms B.1-B.4).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab._checks import check_float, check_int
from lab.generate import flow_sample, one_hot
from models.bundled import load_course_model
from models.unet import CourseUNet, UNetConfig, conv, conv_block, down_block, fc_block, up_block

# --- the blocks, by the notebook's names (each the lab's: the same layers, the same state_dict keys)


class Conv(nn.Sequential):
    """Conv2d(k3, s1, p1) + BatchNorm + GELU: channels change, size kept."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(*conv(in_channels, out_channels))


class DownConv(nn.Sequential):
    """Conv2d(k3, s2, p1) + BatchNorm + GELU: halves H and W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(*down_block(in_channels, out_channels)[:3])


class UpConv(nn.Sequential):
    """ConvTranspose2d(k4, s2, p1) + BatchNorm + GELU: doubles H and W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(*up_block(in_channels, out_channels)[:3])


class Flatten(nn.Sequential):
    """AvgPool2d(7) + GELU: 7x7 -> 1x1."""

    def __init__(self):
        super().__init__(nn.AvgPool2d(7), nn.GELU())


class Unflatten(nn.Sequential):
    """ConvTranspose2d(k7, s7, p0) + BatchNorm + GELU: 1x1 -> 7x7."""

    def __init__(self, in_channels: int):
        super().__init__(nn.ConvTranspose2d(in_channels, in_channels, 7, 7, 0), nn.BatchNorm2d(in_channels), nn.GELU())


class ConvBlock(nn.Sequential):
    """Conv, Conv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(*conv_block(in_channels, out_channels))


class DownBlock(nn.Sequential):
    """DownConv, ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(*down_block(in_channels, out_channels))


class UpBlock(nn.Sequential):
    """UpConv, ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(*up_block(in_channels, out_channels))


class FCBlock(nn.Sequential):
    """Linear + GELU, Linear."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(*fc_block(in_channels, out_channels))


# --- the UNets


class _Course(CourseUNet):
    @classmethod
    def from_bundled(cls, stem: str):
        """The bundled model (models/weights/STEM.safetensors: flow_time, flow_class ...) in this class, in eval mode."""
        model, train = load_course_model(stem)
        c = model.config
        unet = cls(c.in_channels, c.num_classes or 10, c.D) if cls is not UnconditionalUNet else cls(c.in_channels, c.D)
        if unet.config != c:
            raise ValueError(f"{stem} is a {c} UNet, not a {cls.__name__}: pick the class its card names")
        unet.load_state_dict(model.state_dict())
        return unet.eval()


class UnconditionalUNet(_Course):
    """The course's UNet without conditioning (1.1, the single-step denoiser): forward(x)."""

    def __init__(self, in_channels: int, num_hiddens: int):
        super().__init__(UNetConfig(D=num_hiddens, in_channels=in_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


class TimeConditionalUNet(_Course):
    """2.1: the UNet with flow time t (N,) in [0, 1] multiplying its bottleneck and first up block (num_classes is the
    notebook's signature's: unused)."""

    def __init__(self, in_channels: int, num_classes: int, num_hiddens: int):
        super().__init__(UNetConfig(D=num_hiddens, in_channels=in_channels, time="mul"))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return super().forward(x, t)


class ClassConditionalUNet(_Course):
    """2.4: the UNet with flow time t (N,) and a class c (N,) int64; mask (N,): where it is 0 the class is dropped (the
    one-hot vector all zeros: what CFG's unconditional estimate sees)."""

    def __init__(self, in_channels: int, num_classes: int, num_hiddens: int):
        super().__init__(UNetConfig(D=num_hiddens, in_channels=in_channels, time="mul", num_classes=num_classes))

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, t: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        onehot = one_hot(c.long(), self.config.num_classes).to(x.device)
        if mask is not None:
            onehot = onehot * mask.to(onehot).view(-1, 1)
        return super().forward(x, t, onehot)


# --- forward (the loss) and sampling, Algorithms B.1-B.4


def _flow_loss(unet: CourseUNet, x_1: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
    """|| u(x_t, t) - (x_1 - x_0) ||^2 with x_0 ~ N(0, I), t ~ U[0, 1], x_t = (1 - t) x_0 + t x_1 (as lab.train's)."""
    x_0 = torch.randn_like(x_1)
    t = torch.rand(x_1.shape[0], device=x_1.device)
    x_t = (1 - t.view(-1, 1, 1, 1)) * x_0 + t.view(-1, 1, 1, 1) * x_1
    return F.mse_loss(CourseUNet.forward(unet, x_t, t, onehot), x_1 - x_0)


def time_fm_forward(unet: TimeConditionalUNet, x_1: torch.Tensor, num_ts: int) -> torch.Tensor:
    """Algorithm B.1: the flow-matching loss of a batch x_1 (N, C, H, W) of clean images in [0, 1] (num_ts: the
    notebook's signature's; training draws t from [0, 1])."""
    unet.train()
    check_int("num_ts", num_ts, 1, None)
    return _flow_loss(unet, x_1, None)


@torch.inference_mode()
def time_fm_sample(
    unet: TimeConditionalUNet,
    img_wh: tuple[int, int],
    num_ts: int,
    seed: int = 0,
    n: int = 40,
    frames: list | None = None,
) -> torch.Tensor:
    """Algorithm B.2: n images (n, C, H, W) in [0, 1] by num_ts Euler steps from noise (a generator seeded with seed);
    frames, if given, gets each step's images (the denoising's animation)."""
    unet.eval()
    _check_size(unet, img_wh)
    callback = None if frames is None else (lambda step: frames.append(step["x"].clamp(0, 1)))
    images = flow_sample(
        _LabCall(unet), None, n, num_ts, generator=torch.Generator().manual_seed(seed), callback=callback
    )
    return images.clamp(0, 1)


def class_fm_forward(
    unet: ClassConditionalUNet, x_1: torch.Tensor, c: torch.Tensor, p_uncond: float, num_ts: int
) -> torch.Tensor:
    """Algorithm B.3: the loss of a batch with its classes c (N,), each dropped with probability p_uncond (for CFG)."""
    unet.train()
    check_int("num_ts", num_ts, 1, None)
    keep = (torch.rand(len(c), device=c.device) >= check_float("p_uncond", p_uncond, 0, 1)).to(x_1.dtype)
    onehot = one_hot(c.long(), unet.config.num_classes).to(x_1.device) * keep.view(-1, 1)
    return _flow_loss(unet, x_1, onehot)


@torch.inference_mode()
def class_fm_sample(
    unet: ClassConditionalUNet,
    c: torch.Tensor,
    img_wh: tuple[int, int],
    num_ts: int,
    guidance_scale: float = 5.0,
    seed: int = 0,
    frames: list | None = None,
) -> torch.Tensor:
    """Algorithm B.4: one image per class of c (N,) in [0, 1], num_ts Euler steps with CFG u_u + gamma (u_c - u_u)
    (both estimates in one batched call per step); frames, if given, gets each step's images (the animation)."""
    unet.eval()
    _check_size(unet, img_wh)
    callback = None if frames is None else (lambda step: frames.append(step["x"].clamp(0, 1)))
    images = flow_sample(
        _LabCall(unet), c.long(), len(c), num_ts, guidance_scale, torch.Generator().manual_seed(seed), callback
    )
    return images.clamp(0, 1)


class _LabCall(nn.Module):
    """A notebook UNet called as the lab's loop calls a UNet: (x, t, one-hot c or None)."""

    def __init__(self, unet: CourseUNet):
        super().__init__()
        self.unet, self.config = unet, unet.config

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return CourseUNet.forward(self.unet, x, t, c)


def _check_size(unet: CourseUNet, img_wh: tuple[int, int]) -> None:
    if tuple(img_wh) != (28, 28):
        raise ValueError(
            f"the course's UNet draws 28 x 28 images (its bottleneck pools 7 x 7), got img_wh {tuple(img_wh)}"
        )


class TimeConditionalFM(nn.Module):
    """The notebook's wrapper: forward(x) the loss, sample(img_wh, seed) the images; num_ts 50."""

    def __init__(self, unet: TimeConditionalUNet, num_ts: int = 50, img_hw: tuple[int, int] = (28, 28)):
        super().__init__()
        self.unet, self.num_ts, self.img_hw = unet, num_ts, img_hw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return time_fm_forward(self.unet, x, self.num_ts)

    @torch.inference_mode()
    def sample(self, img_wh: tuple[int, int], seed: int = 0) -> torch.Tensor:
        return time_fm_sample(self.unet, img_wh, self.num_ts, seed)


class ClassConditionalFM(nn.Module):
    """The notebook's wrapper: forward(x, c) the loss, sample(c, img_wh, guidance_scale, seed); num_ts 300, p_uncond 0.1."""

    def __init__(
        self, unet: ClassConditionalUNet, num_ts: int = 300, p_uncond: float = 0.1, img_hw: tuple[int, int] = (28, 28)
    ):
        super().__init__()
        self.unet, self.num_ts, self.p_uncond, self.img_hw = unet, num_ts, p_uncond, img_hw

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return class_fm_forward(self.unet, x, c, self.p_uncond, self.num_ts)

    @torch.inference_mode()
    def sample(
        self, c: torch.Tensor, img_wh: tuple[int, int], guidance_scale: float = 5.0, seed: int = 0
    ) -> torch.Tensor:
        return class_fm_sample(self.unet, c, img_wh, self.num_ts, guidance_scale, seed)
