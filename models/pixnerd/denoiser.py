"""PixNerd's text-to-image denoiser as a lab velocity backend: the Fall 2026 course's Part A model.

The network is the user's checkout's ``PixNerDiT`` (models.pixnerd.loading builds it), called as PixNerd calls it,
``net(x, t, y)``: x (B, 3, 512, 512) in [-1, 1], t (B,) in [0, 1] with 0 noise and 1 the image, y (B, 128, 2048)
Qwen3 embeddings; it returns the velocity v = x1 - eps (B, 3, 512, 512). Prompts are looked up by text in a
``PromptEmbeddings`` store (memory, disk cache, Qwen3 on demand). bfloat16: the weights in bf16 under autocast, the
inputs and the velocity in float32, as PixNerd's own app runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from models.backend import Denoiser
from models.embeddings import PromptEmbeddings
from models.pixnerd.errors import oom_guard

IMAGE_SIZE = 512  # the resolution PixNerd-XXL-P16-T2I was fine-tuned at (its decoder's patch scaling is 1 there)


class PixNerdDenoiser(Denoiser):
    """A PixNerd-architecture network with its prompt embeddings, as a ``lab.Denoiser`` predicting velocity."""

    prediction = "velocity"
    row_timesteps = True  # t is a (B,) tensor in PixNerd: the room batches loops at different t into one call

    def __init__(
        self,
        net: torch.nn.Module,
        embeddings: Mapping[str, torch.Tensor],
        *,
        size: int = IMAGE_SIZE,
        autocast: torch.dtype | None = None,
        batch_rows: int | None = None,
    ):
        self.net = net.eval()
        self.embeddings = embeddings if isinstance(embeddings, PromptEmbeddings) else PromptEmbeddings(embeddings)
        self.image_shape = (net.in_channels, size, size)
        param = next(net.parameters())
        self.device, self.dtype = param.device, torch.float32  # x_t and the velocity stay float32
        self.autocast = autocast  # torch.bfloat16: the weights are bf16 and run under autocast; None: as they are
        self.batch_rows = batch_rows  # most rows per model call when a server batches loops (512 px rows are large)

    def __call__(self, x_t: torch.Tensor, t, cond: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The velocity (B, C, H, W) of x_t at t (a number, or one per row: (B,)) under Qwen3 embeddings cond (B, L, D)."""
        B = x_t.shape[0]
        t_in = (
            t.to(self.device, torch.float32)
            if isinstance(t, torch.Tensor)
            else torch.full((B,), float(t), device=self.device)
        )
        with torch.no_grad(), oom_guard(f"PixNerd on a batch of {B}"):
            with torch.autocast(
                self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None
            ):
                v = self.net(x_t.to(self.device, torch.float32), t_in, cond.to(self.device, self.net_dtype))
        return v.float(), None

    @property
    def net_dtype(self) -> torch.dtype:
        return next(self.net.parameters()).dtype

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """The embeddings of the prompts (len(prompts), L, D); ValueError (PixNerdNoTextEncoder) for one it cannot make."""
        return torch.stack(self.embeddings.get_many(list(prompts))).to(self.device)
