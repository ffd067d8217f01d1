"""The colour backends' network: diffusers' UNet2DModel with class embeddings, sized for 32 px on a 2-core CPU.

Three levels, one ResNet layer per block, a learned embedding per name plus one for "no name" (the last index: CFG's
null class); the widths and attention are ARCHS' and each weights file names its own (its config travels in the file).
tools/train_emoji.py trains it; models/emoji_backend.py makes it a lab Denoiser.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from diffusers import UNet2DModel
from safetensors.torch import save_file

from models.files import CheckpointError, atomic_file, read_safetensors

SIZE = 32


# The networks: "attn" (32, 64, 64 channels, self-attention at 8 px: 1.1 M parameters, 0.50 GFLOP per image, ~7.6 ms on
# a 2-core CPU); "fast" (16, 32, 64, no attention: 0.18 GFLOP, ~2.7 ms in a server's batch of 20, 1.7x the digit UNet's:
# GroupNorm and SiLU, docs/performance.md), distilled from attn for the Fall 2026 colour model (parta_emoji_flow.md)
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
}


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


def build(config: dict) -> UNet2DModel:
    return UNet2DModel(**config)


def save_emoji_file(
    path: str | os.PathLike, model: UNet2DModel, config: dict, metadata: dict, dtype=torch.float16
) -> None:
    """Weights in dtype, the UNet2DModel config and metadata as JSON, in one safetensors file, atomically."""
    tensors = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {"unet2d": json.dumps(config)} | {k: json.dumps(v) for k, v in metadata.items()}
    atomic_file(Path(path), lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_emoji_file(path: str | os.PathLike) -> tuple[UNet2DModel, dict]:
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
