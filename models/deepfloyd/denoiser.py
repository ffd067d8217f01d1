"""DeepFloyd IF stage I as a lab ``Denoiser``: the course's Part A model.

The UNet is called as the course calls it, ``unet(x_t, t, encoder_hidden_states=prompt_embeds)``, and
returns (B, 6, H, W): channels 0-2 the noise estimate, 3-5 the variance output of the "learned_range"
scheduler (SPEC). Prompts are T5 embeddings, looked up by prompt text in a ``PromptEmbeddings`` store (memory,
disk cache, T5 on demand; ``models.embeddings``). Loading the real model: ``models.deepfloyd.loading``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from models.backend import Denoiser
from models.deepfloyd.errors import oom_guard
from models.embeddings import PromptEmbeddings
from models.schedules import make_alphas_cumprod

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


class IFDenoiser(Denoiser):
    """An IF-architecture UNet (6 output channels) with its prompt embeddings, as a ``lab.Denoiser``."""

    variance_type = "learned_range"
    clip_x0 = None  # the course's loop neither clips nor thresholds x0_hat

    def __init__(
        self,
        unet,
        embeddings: Mapping[str, torch.Tensor],
        schedule: str = "squaredcos_cap_v2",
        T: int = 1000,
        *,
        device: torch.device | None = None,
        pipeline=None,
    ):
        self.unet = unet.eval()
        # prompt -> (L, D) or (1, L, D) T5 embedding; a PromptEmbeddings store is kept as is (disk cache, T5)
        self.embeddings = embeddings if isinstance(embeddings, PromptEmbeddings) else PromptEmbeddings(embeddings)
        self.alphas_cumprod = make_alphas_cumprod(schedule, T)
        self.T = T
        C = unet.config.in_channels
        if unet.config.out_channels != 2 * C:
            raise ValueError(
                f"an IF UNet returns noise and variance, 2 x {C} channels; this one has {unet.config.out_channels}"
            )
        self.image_shape = (C, unet.config.sample_size, unet.config.sample_size)
        param = next(unet.parameters())
        # under model CPU offload the weights wait on the CPU and run on the execution device
        self.device, self.dtype = torch.device(device) if device is not None else param.device, param.dtype
        self.pipeline = pipeline  # the diffusers pipeline whose offload hooks own the UNet; None: no offload

    def __call__(self, x_t: torch.Tensor, t: int, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """eps and variance output, each (B, C, H, W): the UNet's channels split in two."""
        with torch.no_grad(), oom_guard(f"the DeepFloyd IF UNet on a batch of {x_t.shape[0]}"):
            x_t, cond = x_t.to(self.device, self.dtype), cond.to(self.device, self.dtype)
            out = self.unet(x_t, t, encoder_hidden_states=cond, return_dict=False)[0]  # (B, 2C, H, W)
        eps, variance = out.split(self.image_shape[0], dim=1)
        return eps, variance

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """The embeddings of the prompts, (len(prompts), L, D); ValueError (IFNoTextEncoder) for one it cannot make."""
        rows = self.embeddings.get_many(list(prompts))  # each (L, D)
        return torch.stack(rows).to(self.device, self.dtype)

    def prepare(self, prompts: Sequence[str]) -> None:
        """Embed all prompts not yet cached in one T5 load; the course functions encode one prompt at a time."""
        self.embeddings.get_many(list(prompts))

    def offload(self) -> None:
        """Move the UNet off the GPU until its next call, when model CPU offload is on (before T5 or stage II)."""
        if self.pipeline is not None:
            self.pipeline.maybe_free_model_hooks()
