"""The colour backends' network: diffusers' UNet2DModel with class embeddings, sized for 32 px on a 2-core CPU.

Three levels, one ResNet layer per block, a learned embedding per name plus one for "no name" (the last index: CFG's
null class); the widths and attention are ARCHS' and each weights file names its own (its config travels in the file).
tools/train_emoji.py trains it; models/emoji_backend.py makes it a lab Denoiser.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from diffusers.models.unets.unet_2d import UNet2DOutput
from safetensors.torch import save_file

from models.files import CheckpointError, atomic_file, read_safetensors
from models.unet import CourseUNet, UNetConfig, fc_block

SIZE = 32


# The networks: "attn" (32, 64, 64 channels, self-attention at 8 px: 1.1 M parameters, 0.50 GFLOP per image, ~7.6 ms on
# a 2-core CPU), the teacher; "fast" (16, 32, 64, no attention: 0.18 GFLOP, ~2.7 ms in a server's batch of 20, 1.7x the
# digit UNet's: GroupNorm and SiLU), the Fall 2026 colour model's; "s2d" (the UNet on 2 x 2 pixel blocks at 16-8-4 px:
# 0.08 GFLOP); "course_every" (the course's UNet, below), the Fall 2024 colour model's (read as DDPM): both distilled
# from attn (parta_emoji_flow.md, parta_emoji.md; the measurements: docs/performance.md)
ARCHS = {
    "attn": dict(
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    ),
    "fast": dict(  # 3x faster an image than attn; from the data it loses ~5 points at w 7, distilled ~2 (performance.md)
        block_out_channels=(16, 32, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "UpBlock2D"),
    ),
    "small": dict(  # fast's widths with attn's attention at 8 px: 2.2x faster an image than attn
        block_out_channels=(16, 32, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    ),
    "s2d": dict(  # the UNet at 16-8-4 px on 2 x 2 pixel blocks (12 channels), no attention: 0.08 GFLOP an image
        space_to_depth=2,
        block_out_channels=(24, 48, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "UpBlock2D"),
        add_attention=False,
    ),
}
ARCHS["s2d_head"] = dict(ARCHS["s2d"], head=16)  # s2d with a full-size head against the blocks' grain
# the course's UNet (models.unet.CourseUNet, D 32 like the digit backends', BatchNorm a server folds into the
# convolutions) with 3 channels and a one-hot of the names: no GroupNorm, no per-block embeddings
ARCHS["course"] = dict(course_unet=dict(D=32, time_features=32, timesteps=1000))
ARCHS["course_every"] = dict(course_unet=dict(D=32, time_features=32, timesteps=1000, every_level=True))


def unet_config(num_names: int, size: int = SIZE, arch: str = "attn") -> dict:
    """UNet2DModel keyword arguments for num_names names (+1 embedding for the null class), network arch of ARCHS."""
    return dict(
        sample_size=size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        norm_num_groups=8,
        num_class_embeds=num_names + 1,
        **ARCHS[arch],
    )


class SpaceToDepthUNet(torch.nn.Module):
    """A UNet2DModel run on f x f pixel blocks: (B, C, H, W) -> (B, C f^2, H / f, W / f) in (pixel_unshuffle), back
    by pixel_shuffle; the same call and output as UNet2DModel's, at a quarter of the positions for f = 2. With "head"
    channels, two 3 x 3 convolutions at the full size (of the output and the input) add a correction: the blocks alone
    leave a grain of their size in flat colour (docs/performance.md); the head starts at zero."""

    def __init__(self, config: dict):
        super().__init__()
        f = self.factor = config["space_to_depth"]
        inner = {k: v for k, v in config.items() if k not in ("space_to_depth", "head")}
        inner |= dict(
            sample_size=config["sample_size"] // f,
            in_channels=config["in_channels"] * f * f,
            out_channels=config["out_channels"] * f * f,
        )
        self.unet = UNet2DModel(**inner)
        self.config = type(self.unet.config)(**dict(self.unet.config, sample_size=config["sample_size"]))
        self.head = None
        if config.get("head"):
            c_in, c_out, width = config["in_channels"], config["out_channels"], config["head"]
            self.head = torch.nn.Sequential(
                torch.nn.Conv2d(c_in + c_out, width, 3, padding=1),
                torch.nn.SiLU(),
                torch.nn.Conv2d(width, c_out, 3, padding=1),
            )
            torch.nn.init.zeros_(self.head[2].weight)
            torch.nn.init.zeros_(self.head[2].bias)

    def forward(self, x: torch.Tensor, t, class_labels=None) -> UNet2DOutput:
        h = F.pixel_unshuffle(x, self.factor)
        if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            h = h.contiguous(memory_format=torch.channels_last)  # the layout the caller chose for the convolutions
        out = F.pixel_shuffle(self.unet(h, t, class_labels=class_labels).sample, self.factor)
        if self.head is not None:
            out = out + self.head(torch.cat([out, x], dim=1))
        return UNet2DOutput(sample=out)


class CourseNameUNet(torch.nn.Module):
    """The course's UNet behind UNet2DModel's call, (x, timestep, class_labels) -> UNet2DOutput: the timestep divided by
    config["course_unet"]["timesteps"] (a flow model's t * T back to t in [0, 1]), the name index one-hot (the null
    index, CFG's no name, all zeros: the course's "no class"). Its BatchNorm is folded into the convolutions in a
    server's copy (models.unet.inference_copy), where UNet2DModel pays GroupNorm on every call."""

    def __init__(self, config: dict):
        super().__init__()
        course = config["course_unet"]
        self.num_names = config["num_class_embeds"] - 1
        self.timesteps = course["timesteps"]
        self.net = CourseUNet(
            UNetConfig(
                D=course["D"],
                in_channels=config["in_channels"],
                time="mul",
                num_classes=self.num_names,
                time_features=course["time_features"],
                size=config["sample_size"],
            )
        )
        self.config = SimpleNamespace(**config)
        self.every_level = course.get("every_level", False)
        if self.every_level:  # the name and t also at the encoder's first and last level and the decoder's last
            D, t_in = course["D"], course["time_features"] or 1
            widths = {"top": D, "bottom": 2 * D, "out": D}
            self.t_at = torch.nn.ModuleDict({k: fc_block(t_in, w) for k, w in widths.items()})
            self.c_at = torch.nn.ModuleDict({k: fc_block(self.num_names, w) for k, w in widths.items()})

    def forward(self, x: torch.Tensor, t, class_labels=None) -> UNet2DOutput:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0]) / self.timesteps
        if class_labels is None:
            class_labels = torch.full((x.shape[0],), self.num_names, device=x.device)
        c = F.one_hot(class_labels.long(), self.num_names + 1)[:, : self.num_names].to(x.dtype)
        if not self.every_level:
            return UNet2DOutput(sample=self.net(x, t, c))
        net, features = self.net, self.net.time_input(t)

        def at(where: str, h: torch.Tensor) -> torch.Tensor:  # (1 + c) h + t: the identity while they are small
            return h * (1 + self.c_at[where](c)[..., None, None]) + self.t_at[where](features)[..., None, None]

        s1 = at("top", net.conv_in(x))
        s2 = net.down1(s1)
        s3 = at("bottom", net.down2(s2))
        h = net._modulate(net.unflatten(net.flatten(s3)), net.t1(features), net.c1(c))
        u = net.up1(torch.cat([h, s3], 1))
        u = net.up2(torch.cat([net._modulate(u, net.t2(features), net.c2(c)), s2], 1))
        return UNet2DOutput(sample=net.conv_out(torch.cat([at("out", u), s1], 1)))


def build(config: dict) -> UNet2DModel | SpaceToDepthUNet | CourseNameUNet:
    if config.get("course_unet"):
        return CourseNameUNet(config)
    return SpaceToDepthUNet(config) if config.get("space_to_depth") else UNet2DModel(**config)


def save_emoji_file(
    path: str | os.PathLike, model: UNet2DModel | SpaceToDepthUNet, config: dict, metadata: dict, dtype=torch.float16
) -> None:
    """Weights in dtype, the UNet2DModel config and metadata as JSON, in one safetensors file, atomically."""
    tensors = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {"unet2d": json.dumps(config)} | {k: json.dumps(v) for k, v in metadata.items()}
    atomic_file(Path(path), lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_emoji_file(path: str | os.PathLike) -> tuple[UNet2DModel | SpaceToDepthUNet, dict]:
    """(UNet2DModel in float32, eval mode; its metadata decoded) of a file save_emoji_file wrote."""
    state, metadata = read_safetensors(path)
    try:
        meta = {k: json.loads(v) for k, v in metadata.items()}
        config = meta.pop("unet2d")
        model = build(config)
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (KeyError, TypeError, RuntimeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} does not hold the colour backend's UNet2DModel: {e}") from e
    return model.eval(), meta
