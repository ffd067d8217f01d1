"""Test fixtures: tiny DeepFloyd-IF-architecture pipelines, built offline from configs, saved in the diffusers layout.

The real weights cannot be downloaded here (SPEC); these folders have the same layout and component classes
(``IFPipeline``: UNet, T5 encoder, T5 tokenizer, DDPMScheduler; ``IFSuperResolutionPipeline``: the same plus
the image-noising scheduler), so ``models.deepfloyd.loading`` loads them through exactly the code path that a
user's local folder takes. Random weights: the outputs are noise-like, the shapes and the plumbing are real.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DDPMScheduler, IFPipeline, IFSuperResolutionPipeline, UNet2DConditionModel
from transformers import T5Config, T5EncoderModel, T5Tokenizer

from models.deepfloyd.denoiser import IF_SCHEDULER_CONFIG

WORDS = (
    "a high quality photo of dog an oil painting snowy mountain village man wearing hat rocket ship old people "
    "around campfire lithograph skull waterfalls the amalfi coast pencil"
).split()  # the course's prompts' words; any other word is <unk>
# stage II-style schedulers: the image-noising one (adds noise_level to the upscaled image) and the sampling one
IF_II_NOISING_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "variance_type": "fixed_small",
}
IF_II_SCHEDULER_CONFIG = IF_SCHEDULER_CONFIG | {"thresholding": True, "sample_max_value": 1.0}


def tiny_unet_config(sample_size: int = 64, text_dim: int = 64) -> dict:
    """A tiny UNet2DConditionModel config of DeepFloyd IF's architecture, for tests and benchmarks (SPEC)."""
    return dict(
        sample_size=sample_size,
        in_channels=3,
        out_channels=6,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        cross_attention_dim=32,
        encoder_hid_dim=text_dim,
        attention_head_dim=8,
        addition_embed_type="text",
        addition_embed_type_num_heads=2,
        cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift",
        act_fn="gelu",
    )


def tiny_tokenizer() -> T5Tokenizer:
    """A T5 (Unigram) tokenizer over the course prompts' words: <pad> 0, </s> 1, <unk> 2, as T5's."""
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)] + [("\u2581" + w, -1.0) for w in WORDS]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_t5(vocab_size: int, width: int = 64) -> T5EncoderModel:
    """A 2-layer T5 v1.1-style encoder (gated GELU) with hidden size ``width`` (the UNet's encoder_hid_dim)."""
    config = T5Config(
        vocab_size=vocab_size,
        d_model=width,
        d_kv=16,
        d_ff=2 * width,
        num_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
    )
    return T5EncoderModel(config).eval()


def tiny_stage2_unet_config(sample_size: int = 64, text_dim: int = 64) -> dict:
    """Stage II's UNet, tiny: 6 input channels (x_t and the upscaled image), noise level as a class embedding."""
    return tiny_unet_config(sample_size, text_dim) | dict(in_channels=6, class_embed_type="timestep")


def save_tiny_if(
    folder: str | Path, stage: int = 1, sample_size: int = 32, text_encoder: bool = True, seed: int = 0
) -> Path:
    """Save a tiny stage I (stage=1) or stage II (stage=2) pipeline to folder, as ``save_pretrained`` lays it out."""
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer() if text_encoder else None
    encoder = tiny_t5(len(tokenizer)) if text_encoder else None
    common = dict(
        tokenizer=tokenizer,
        text_encoder=encoder,
        safety_checker=None,
        feature_extractor=None,
        watermarker=None,
        requires_safety_checker=False,
    )
    if stage == 1:
        unet = UNet2DConditionModel(**tiny_unet_config(sample_size)).eval()
        pipe = IFPipeline(unet=unet, scheduler=DDPMScheduler(**IF_SCHEDULER_CONFIG), **common)
    elif stage == 2:
        unet = UNet2DConditionModel(**tiny_stage2_unet_config(sample_size)).eval()
        pipe = IFSuperResolutionPipeline(
            unet=unet,
            scheduler=DDPMScheduler(**IF_II_SCHEDULER_CONFIG),
            image_noising_scheduler=DDPMScheduler(**IF_II_NOISING_CONFIG),
            **common,
        )
    else:
        raise ValueError(f"stage must be 1 or 2, got {stage}")
    pipe.save_pretrained(folder)
    return Path(folder)
