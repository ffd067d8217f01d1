"""Test fixtures for PixNerd offline: the stand-in checkout (tests/data/pixnerd_standin: PixNerd's module path,
class and constructor, a tiny network), Lightning-style checkpoints of it, and a tiny Qwen3 saved as transformers does.

The real checkpoint and Qwen3-1.7B cannot be downloaded here (SPEC); these have the same layout (a Lightning
checkpoint's "state_dict" with "denoiser." and "ema_denoiser." keys, optimizer states beside it; a Qwen3Model folder
with its tokenizer), so models.pixnerd.loading reads them through the path a user's files take.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

STANDIN = Path(__file__).resolve().parent / "data" / "pixnerd_standin"
WORDS = (
    "a high quality photo of an old man oil painting people around campfire lithograph skull waterfalls waterfall rocket "
    "ship cat forest snowy mountain village horse"
).split()


def standin_network(seed: int = 0, **overrides):
    """The stand-in PixNerDiT with its config's arguments (overrides changed), random weights from seed."""
    import yaml

    from models.pixnerd.loading import network_class
    from models.pixnerd.settings import CONFIG_FILE

    args = yaml.safe_load((STANDIN / CONFIG_FILE).read_text())["model"]["denoiser"]["init_args"] | overrides
    torch.manual_seed(seed)
    return network_class(str(STANDIN))(**args).eval()


def save_lightning_checkpoint(
    path: Path, net, *, extra: dict | None = None, dtype=torch.bfloat16
) -> dict[str, torch.Tensor]:
    """A Lightning-style .ckpt of net (trained with precision bf16-true): "denoiser." holds other weights than the EMA
    ones under "ema_denoiser."; returns the EMA weights (what the lab must load)."""
    ema = {k: v.detach().to(dtype) for k, v in net.state_dict().items()}
    state = OrderedDict((f"denoiser.{k}", v + 1) for k, v in ema.items()) | OrderedDict(
        (f"ema_denoiser.{k}", v) for k, v in ema.items()
    )
    checkpoint = {
        "epoch": 2,
        "global_step": 60000,
        "pytorch-lightning_version": "2.5.0.post0",
        "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 3}}}},
        "optimizer_states": [
            {
                "state": {0: {"step": torch.tensor(60000.0), "exp_avg": torch.zeros(3)}},
                "param_groups": [{"lr": 1e-5, "betas": (0.9, 0.999), "weight_decay": 0.0, "params": [0]}],
            }
        ],
        "lr_schedulers": [],
    } | (extra or {})
    torch.save(checkpoint, path)
    return ema


def save_tiny_qwen3(folder: Path, hidden: int = 32) -> Path:
    """A 2-layer Qwen3Model (hidden size ``hidden``) and a word-level tokenizer over the course prompts' words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    vocab = {"<|endoftext|>": 0, "<unk>": 1} | {w: i + 2 for i, w in enumerate(WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<|endoftext|>", unk_token="<unk>").save_pretrained(
        folder
    )
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
    )
    Qwen3Model(config).eval().save_pretrained(folder)
    return folder
