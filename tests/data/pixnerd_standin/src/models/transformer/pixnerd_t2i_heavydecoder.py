"""A stand-in for MCG-NJU/PixNerd's text-to-image network, for the lab's offline tests (not PixNerd's code).

Same module path, class name, constructor and call as the real ``PixNerDiT`` (src/models/transformer/
pixnerd_t2i_heavydecoder.py at the tested commit): ``PixNerDiT(in_channels, num_groups, hidden_size, ...)``,
``forward(x (B, C, H, W), t (B,), y (B, txt_max_length, txt_embed_dim)) -> (B, C, H, W)``, and the attributes the lab
reads (in_channels, txt_embed_dim, txt_max_length). Inside, a tiny MLP over patch means, cheap at 512 px: random
weights, real plumbing (the velocity depends on x, t and every token of y).
"""

import torch
import torch.nn as nn


class PixNerDiT(nn.Module):
    def __init__(
        self,
        in_channels=4,
        num_groups=12,
        hidden_size=1152,
        decoder_hidden_size=64,
        num_encoder_blocks=18,
        num_decoder_blocks=4,
        num_text_blocks=4,
        patch_size=2,
        txt_embed_dim=1024,
        txt_max_length=100,
        weight_path=None,
        load_ema=False,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, in_channels
        self.hidden_size, self.patch_size = hidden_size, patch_size
        self.txt_embed_dim, self.txt_max_length = txt_embed_dim, txt_max_length
        self.decoder_patch_scaling_h = self.decoder_patch_scaling_w = 1.0
        self.s_embedder = nn.Linear(in_channels, hidden_size)
        self.t_embedder = nn.Sequential(nn.Linear(1, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))
        self.y_embedder = nn.Linear(txt_embed_dim, hidden_size)
        self.y_pos_embedding = nn.Parameter(torch.randn(1, txt_max_length, hidden_size) * 0.02)
        self.blocks = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(num_encoder_blocks))
        self.final_layer = nn.Linear(hidden_size, 2 * in_channels)  # per patch: a colour, and a share of the gain on x

    def forward(self, x, t, y):
        B, C, H, W = x.shape
        p = self.patch_size
        tokens = nn.functional.avg_pool2d(x, p).flatten(2).transpose(1, 2)  # (B, N, C): each patch's mean
        y = self.y_embedder(y) + self.y_pos_embedding.to(y.dtype)
        c = self.t_embedder(t.view(-1, 1).to(tokens.dtype)) + y.mean(1)  # (B, hidden)
        s = self.s_embedder(tokens) + c[:, None]
        for block in self.blocks:
            s = s + torch.tanh(block(s))
        out = self.final_layer(s).transpose(1, 2).reshape(B, 2 * C, H // p, W // p)  # (B, 2C, h, w)
        h, w = H // p, W // p
        colour = out[:, :C, :, None, :, None].expand(B, C, h, p, w, p).reshape(B, C, H, W)  # each patch's colour
        gain = torch.sigmoid(out[:, C:].mean((1, 2, 3))).view(B, 1, 1, 1)
        return colour - gain * x  # towards a patchy picture of the prompt, from where x is
