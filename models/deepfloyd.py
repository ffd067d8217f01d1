"""DeepFloyd IF stage I as a lab ``Denoiser``: the course's Part A model.

The UNet is called as the course calls it, ``unet(x_t, t, encoder_hidden_states=prompt_embeds)``, and
returns (B, 6, H, W): channels 0-2 the noise estimate, 3-5 the variance output of the "learned_range"
scheduler (SPEC). Prompts are T5 embeddings, looked up by prompt text.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from lab.schedules import make_alphas_cumprod

# DeepFloyd IF stage I's scheduler, as diffusers converts it (SPEC)
IF_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "variance_type": "learned_range",
    "prediction_type": "epsilon",
    "thresholding": True,
    "dynamic_thresholding_ratio": 0.95,
    "sample_max_value": 1.5,
}


def tiny_unet_config(sample_size: int = 64, text_dim: int = 64) -> dict:
    """A tiny UNet2DConditionModel config of DeepFloyd IF's architecture, for tests and benchmarks (SPEC)."""
    return dict(
        sample_size=sample_size, in_channels=3, out_channels=6, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        cross_attention_dim=32, encoder_hid_dim=text_dim, attention_head_dim=8, addition_embed_type="text",
        addition_embed_type_num_heads=2, cross_attention_norm="group_norm", resnet_time_scale_shift="scale_shift",
        act_fn="gelu",
    )  # fmt: skip


class IFDenoiser:
    """An IF-architecture UNet (6 output channels) with its prompt embeddings, as a ``lab.Denoiser``."""

    variance_type = "learned_range"
    clip_x0 = None  # the course's loop neither clips nor thresholds x0_hat

    def __init__(self, unet, embeddings: Mapping[str, torch.Tensor], schedule: str = "squaredcos_cap_v2", T: int = 1000):
        self.unet = unet.eval()
        self.embeddings = dict(embeddings)  # prompt -> (L, D) or (1, L, D) T5 embedding
        self.alphas_cumprod = make_alphas_cumprod(schedule, T)
        self.T = T
        C = unet.config.in_channels
        if unet.config.out_channels != 2 * C:
            raise ValueError(f"an IF UNet returns noise and variance, 2 x {C} channels; this one has {unet.config.out_channels}")
        self.image_shape = (C, unet.config.sample_size, unet.config.sample_size)
        param = next(unet.parameters())
        self.device, self.dtype = param.device, param.dtype

    def __call__(self, x_t: torch.Tensor, t: int, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """eps and variance output, each (B, C, H, W): the UNet's channels split in two."""
        with torch.no_grad():
            out = self.unet(x_t.to(self.dtype), t, encoder_hidden_states=cond, return_dict=False)[0]  # (B, 2C, H, W)
        eps, variance = out.split(self.image_shape[0], dim=1)
        return eps, variance

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """The embeddings of the prompts, (len(prompts), L, D); ValueError names a prompt that has none."""
        missing = [p for p in prompts if p not in self.embeddings]
        if missing:
            known = ", ".join(repr(p) for p in sorted(self.embeddings))
            raise ValueError(f"no embedding for prompt {missing[0]!r}; prompts with embeddings: {known}")
        rows = [self.embeddings[p].reshape(-1, *self.embeddings[p].shape[-2:]) for p in prompts]
        return torch.cat(rows).to(self.device, self.dtype)
