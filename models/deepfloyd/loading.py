"""Loading DeepFloyd IF the way users load it: stage I as a lab ``Denoiser``, T5 per new prompt, stage II.

Stage I comes from its hub id (gated: licence and token) or a local folder in the diffusers layout, through
diffusers' own ``IFPipeline.from_pretrained`` with the text encoder, safety checker and watermarker left out
(the course's way [1]). fp16 on CUDA, fp32 on a CPU with an ``IFSpeedWarning``; model CPU offload and attention
slicing as set. T5 is loaded only to encode prompts that are not cached, and freed after. Stage II
(``IFSuperResolutionPipeline``, 64 -> 256) is loaded on demand by the same rules. Every failure is an
``IFUnavailable`` whose message names the fix (``models.deepfloyd.errors``).

References:
    [1] CS180 Project 5 notebook; diffusers' DeepFloyd IF docs (IFPipeline, enable_model_cpu_offload).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import huggingface_hub
import torch
from diffusers import IFPipeline, IFSuperResolutionPipeline

from models.deepfloyd.denoiser import IFDenoiser
from models.deepfloyd.errors import (
    PINS,
    IFModelNotFound,
    IFNotConfigured,
    IFUnavailable,
    explain_load_error,
    missing_package,
    oom_guard,
)
from models.deepfloyd.settings import (
    ENV,
    STAGE1_IDS,
    STAGE2_IDS,
    IFSettings,
    choose_device,
    choose_dtype,
    has_package,
    is_local,
    text_encoder_source,
    tokenizer_loadable,
    use_offload,
)
from models.embeddings import DEFAULT_PROMPTS, PerCallEncoder, PromptEmbeddings, cache_folder
from models.failures import every_failure_explained

MAX_LENGTH = 77  # T5 tokens per prompt: IF's text encoder was trained with 77


class IFSpeedWarning(UserWarning):
    """DeepFloyd IF runs in fp32 on a CPU (fp16 cannot): minutes per image instead of seconds."""


def variant_for(source: str, dtype: torch.dtype, subfolder: str) -> str | None:
    """The weights variant to load: "fp16" for DeepFloyd's hub repos, else as the folder has it (fp16 on CUDA)."""
    if not is_local(source):
        return "fp16" if source.startswith("DeepFloyd/") else None  # half the download; upcast on a CPU
    files = [p.name for p in (Path(source).expanduser() / subfolder).glob("*.safetensors")]
    files += [p.name for p in (Path(source).expanduser() / subfolder).glob("*.bin")]
    has_fp16 = any(".fp16" in f for f in files)
    has_plain = any(".fp16" not in f for f in files)
    return "fp16" if has_fp16 and (dtype == torch.float16 or not has_plain) else None


def pipeline_kwargs(source: str, device: torch.device) -> dict:
    """``from_pretrained`` arguments: no text encoder, safety checker or watermarker; fp16 only on CUDA."""
    dtype = choose_dtype(device)
    kwargs = dict(
        text_encoder=None,
        tokenizer=None,
        safety_checker=None,
        watermarker=None,
        feature_extractor=None,
        requires_safety_checker=False,
        dtype=dtype,
        low_cpu_mem_usage=has_package("accelerate"),
    )
    variant = variant_for(source, dtype, "unet")
    return kwargs | ({"variant": variant} if variant else {})


def _check_folder(source: str, what: str, env: str, needs: Sequence[str]) -> None:
    folder = Path(source).expanduser()
    missing = [n for n in needs if not (folder / n).is_file()]
    if missing:
        raise IFModelNotFound(
            f"{folder} ({what}) is not a folder in the diffusers layout: it lacks {', '.join(missing)}.",
            f"set {env} to a hub id ({STAGE1_IDS[0]}, {STAGE2_IDS[0]}) or to a folder saved by diffusers' "
            f"save_pretrained or by `hf download <id> --local-dir <folder>`.",
        )


def _token_found() -> bool:
    return huggingface_hub.get_token() is not None


def _from_pretrained(cls, source: str, device: torch.device, what: str, env: str):
    """cls.from_pretrained(source, ...) with every failure explained as an IFUnavailable."""
    if is_local(source):
        _check_folder(source, what, env, ("model_index.json", "unet/config.json"))
        source = str(Path(source).expanduser())
        found = json.loads((Path(source) / "model_index.json").read_text()).get("_class_name")
        if found != cls.__name__:
            ids = STAGE1_IDS if cls is IFPipeline else STAGE2_IDS
            raise IFModelNotFound(
                f"{source} holds a {found}, not a DeepFloyd IF {what} ({cls.__name__}).",
                f"set {env} to a folder of {ids[0]} (or {', '.join(ids[1:])}).",
            )
    try:
        pipe = cls.from_pretrained(source, **pipeline_kwargs(source, device))
    except Exception as e:
        raise explain_load_error(e, source, what, env, token_found=_token_found()) from e
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _check_unet(pipe, stage: int, source: str, env: str, width: int | None = None) -> int:
    """The UNet must be stage I's (3 -> 6 channels) or stage II's (6 -> 6); returns its prompt-embedding width."""
    config = pipe.unet.config
    expected = (3, 6) if stage == 1 else (6, 6)
    text_width = config.encoder_hid_dim or config.cross_attention_dim
    if (config.in_channels, config.out_channels) != expected:
        ids = STAGE1_IDS if stage == 1 else STAGE2_IDS
        raise IFModelNotFound(
            f"{source} is not a DeepFloyd IF stage {'I' * stage} model: its UNet maps {config.in_channels} -> "
            f"{config.out_channels} channels, stage {'I' * stage} maps {expected[0]} -> {expected[1]}.",
            f"set {env} to {ids[0]} (or {', '.join(ids[1:])}) or a folder of that model.",
        )
    if width is not None and text_width != width:
        raise IFModelNotFound(
            f"{source} takes prompt embeddings of width {text_width}, stage I takes {width}.",
            f"use stage I and stage II of the same family ({STAGE1_IDS[0]} with {STAGE2_IDS[0]}).",
        )
    return text_width


def _place(pipe, device: torch.device, offload: bool, attention_slicing: bool, what: str) -> None:
    """Put the pipeline on the device, or set up model CPU offload to it; attention slicing if asked."""
    if attention_slicing:
        pipe.enable_attention_slicing()
    with oom_guard(f"moving {what} to {device}"):
        if not offload:
            pipe.to(device)
        elif not has_package("accelerate"):
            raise missing_package("accelerate", f"model CPU offload ({ENV['offload']}=on or auto on this GPU)")
        else:
            pipe.enable_model_cpu_offload(device=device)


class T5PromptEncoder(PerCallEncoder):
    """Prompts -> T5 embeddings (N, 77, D) as ``IFPipeline.encode_prompt(clean_caption=False)``; T5 loaded per call
    (before_load: stage I's offload) and freed after (T5-XXL is 9.5 GB in fp16)."""

    def load(self):
        """The tokenizer and the T5 encoder, on the device."""
        from transformers import AutoTokenizer, T5EncoderModel

        self.loads += 1
        variant = variant_for(self.source, self.dtype, "text_encoder")
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.source, subfolder="tokenizer")
            model = T5EncoderModel.from_pretrained(
                self.source, subfolder="text_encoder", dtype=self.dtype, **({"variant": variant} if variant else {})
            )
        except Exception as e:
            what, env = "the T5 text encoder", ENV["text_encoder"]
            raise explain_load_error(e, self.source, what, env, token_found=_token_found()) from e
        with oom_guard("loading the T5 text encoder"):
            return tokenizer, model.to(self.device).eval()

    def encode(self, tokenizer, model, prompts: Sequence[str]) -> torch.Tensor:
        """The embeddings (len(prompts), 77, D), on the CPU."""
        text = [p.lower().strip() for p in prompts]  # IF's preprocessing without clean_caption (bs4, ftfy)
        tokens = tokenizer(
            text,
            padding="max_length",
            max_length=MAX_LENGTH,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        with oom_guard("the T5 text encoder"):
            out = model(tokens.input_ids.to(self.device), attention_mask=tokens.attention_mask.to(self.device))[0]
        return out.cpu()


def _no_encoder_fix(source: str | None) -> str:
    """What to do about a new prompt when there is no usable T5."""
    pth = f"import the course's precomputed embeddings (.pth) with {ENV['embeddings']} (or the sidebar)"
    if source is None:
        return f"{pth}, or set {ENV['text_encoder']} to a folder or hub id with a T5 text encoder ({STAGE1_IDS[0]})."
    return f"{pth}, or `pip install {PINS['sentencepiece']}` so the T5 tokenizer in {source} can load."


@every_failure_explained("DeepFloyd IF stage I", ENV["model"], IFUnavailable)
def load_stage1(settings: IFSettings) -> IFDenoiser:
    """DeepFloyd IF stage I as a lab ``Denoiser``, prompts from the cache, the .pth, or T5 on demand."""
    if settings.model is None:
        ids = f"{STAGE1_IDS[0]} (or IF-I-L-v1.0, IF-I-M-v1.0)"
        raise IFNotConfigured("DeepFloyd IF is off.", f"set {ENV['model']} to {ids} or to a local folder.")
    device = choose_device(settings.device)
    dtype = choose_dtype(device)
    if device.type == "cpu":
        message = (
            "DeepFloyd IF on the CPU runs in fp32 (fp16 cannot run on a CPU): minutes per 64x64 image, and "
            "T5-XXL needs ~19 GB of RAM. A CUDA GPU runs it in fp16."
        )
        warnings.warn(message, IFSpeedWarning, stacklevel=2)
    offload = use_offload(settings.offload, device)
    pipe = _from_pretrained(IFPipeline, settings.model, device, "stage I", ENV["model"])
    width = _check_unet(pipe, 1, settings.model, ENV["model"])
    _place(pipe, device, offload, settings.attention_slicing, "stage I")
    source = text_encoder_source(settings)
    usable = source if source is not None and tokenizer_loadable(source) else None
    store = PromptEmbeddings(
        cache_dir=cache_folder(settings.cache_dir, width), width=width, no_encoder_fix=_no_encoder_fix(source)
    )
    sched = pipe.scheduler.config
    denoiser = IFDenoiser(
        pipe.unet,
        store,
        schedule=sched.beta_schedule,
        T=sched.num_train_timesteps,
        device=device,
        pipeline=pipe if offload else None,
    )
    if usable is not None:
        store.encoder = T5PromptEncoder(usable, device, dtype, before_load=denoiser.offload)
    if settings.embeddings is not None:
        try:
            store.import_pth(settings.embeddings)
        except (OSError, ValueError) as e:
            raise IFNotConfigured(
                f"{ENV['embeddings']}: {e}.", "point it to the course's .pth (a dict prompt -> tensor)."
            ) from e
    return denoiser


class IFUpsampler:
    """Stage II: 64x64 results -> 256x256, conditioned on the same prompt embeddings as stage I."""

    def __init__(self, pipe, embeddings: PromptEmbeddings, device: torch.device, before_run: Callable | None = None):
        self.pipe, self.embeddings, self.device = pipe, embeddings, torch.device(device)
        self.dtype = pipe.unet.dtype
        self.before_run = before_run  # moves stage I off the GPU when offloading
        size = pipe.unet.config.sample_size
        self.output_shape = (pipe.unet.config.in_channels // 2, size, size)  # (C, H, W) of the results

    @torch.no_grad()
    def __call__(
        self,
        images: torch.Tensor,
        prompt: str = DEFAULT_PROMPTS[1],
        negative_prompt: str = DEFAULT_PROMPTS[0],
        scale: float = 4.0,
        num_inference_steps: int = 50,
        noise_level: int = 250,
        generator=None,
    ) -> torch.Tensor:
        """Upsample images (B, C, h, w) in [-1, 1] to (B, C, H, W) in [-1, 1]; IF's defaults (CFG 4, noise 250)."""
        C = self.output_shape[0]
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != C:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a (B, {C}, h, w) tensor in [-1, 1], got {got}")
        cond, uncond = (
            e.unsqueeze(0).expand(images.shape[0], -1, -1).to(self.device, self.dtype)
            for e in self.embeddings.get_many([prompt, negative_prompt])
        )  # (B, L, D) each
        if self.before_run is not None:
            self.before_run()
        with oom_guard("stage II"):
            out = self.pipe(
                image=images.to(self.device, self.dtype),
                prompt_embeds=cond,
                negative_prompt_embeds=uncond,
                guidance_scale=scale,
                num_inference_steps=num_inference_steps,
                noise_level=noise_level,
                generator=generator,
                output_type="pt",
            ).images
        return out.float().clamp(-1, 1)


@every_failure_explained("DeepFloyd IF stage II", ENV["stage2"], IFUnavailable)
def load_stage2(settings: IFSettings, stage1: IFDenoiser) -> IFUpsampler:
    """Stage II from its hub id or folder, by stage I's rules, sharing stage I's prompt embeddings."""
    if settings.stage2 is None:
        fix = f"set {ENV['stage2']} to {STAGE2_IDS[0]} (or IF-II-M-v1.0) or to a local folder."
        raise IFNotConfigured("Stage II (upsampling to 256x256) is off.", fix)
    device = stage1.device
    offload = use_offload(settings.offload, device)
    pipe = _from_pretrained(IFSuperResolutionPipeline, settings.stage2, device, "stage II", ENV["stage2"])
    _check_unet(pipe, 2, settings.stage2, ENV["stage2"], width=stage1.embeddings.width)
    _place(pipe, device, offload, settings.attention_slicing, "stage II")
    return IFUpsampler(pipe, stage1.embeddings, device, before_run=stage1.offload)
