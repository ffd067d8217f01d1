"""Settings of the DeepFloyd IF backend, and its status for the app's sidebar (without loading anything heavy).

``IFSettings`` declares each setting with its environment variable (``serving.settings`` reads them, from the
environment, else from the ``[deepfloyd]`` table of a TOML config file, else the default; docs/operating.md lists
them). The hub token is never a setting: huggingface_hub reads HF_TOKEN or the token saved by ``hf auth login``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import huggingface_hub
import torch
from huggingface_hub import constants as hub_constants

from models import sources
from models.deepfloyd.errors import LOGIN, PINS, IFModelNotFound, IFNotConfigured, model_page
from models.embeddings import DEFAULT_PROMPTS, PromptEmbeddings, cache_folder
from models.sources import cache_variable, has_package, is_local, variable

STAGE1_IDS = ("DeepFloyd/IF-I-XL-v1.0", "DeepFloyd/IF-I-L-v1.0", "DeepFloyd/IF-I-M-v1.0")
STAGE2_IDS = ("DeepFloyd/IF-II-L-v1.0", "DeepFloyd/IF-II-M-v1.0")
OFFLOAD_BELOW_GIB = 24  # "auto" offloads on GPUs with less memory: stage I XL (8.6 GB) + T5-XXL (9.5 GB) fp16


@dataclass(frozen=True)
class IFSettings:
    model: str | None = variable(
        "DIFFUSION_LAB_IF_MODEL",
        None,
        "stage I: DeepFloyd/IF-I-XL-v1.0 (or IF-I-L-v1.0, "
        "IF-I-M-v1.0), or a local folder in the diffusers layout; unset: IF is off",
        "optional",
    )
    stage2: str | None = variable(
        "DIFFUSION_LAB_IF_STAGE2",
        None,
        "stage II (64 -> 256 px, the sampling page's optional "
        "upsampling): DeepFloyd/IF-II-L-v1.0 (or IF-II-M-v1.0) or a folder; unset: off",
        "optional",
    )
    text_encoder: str | None = variable(
        "DIFFUSION_LAB_IF_TEXT_ENCODER",
        "auto",
        "where T5 comes from: auto (stage I's source), a hub id or folder, or none (cached and imported prompts only)",
        "optional",
    )
    embeddings: str | None = variable(
        "DIFFUSION_LAB_IF_EMBEDDINGS",
        None,
        "a course .pth of precomputed prompt embeddings (a dict prompt -> tensor), imported at load",
        "optional",
    )
    device: str = variable(
        "DIFFUSION_LAB_DEVICE", "auto", "IF's device: auto (CUDA if there is one), cpu, cuda, cuda:1 ...", "device"
    )
    offload: str = variable(
        "DIFFUSION_LAB_IF_OFFLOAD", "auto", "model CPU offload: auto (on for GPUs under 24 GiB), on, off", "auto_on_off"
    )
    attention_slicing: bool = variable(
        "DIFFUSION_LAB_IF_ATTENTION_SLICING",
        False,
        "compute attention in slices: less memory, slower (on / off)",
        "on_off",
    )
    cache_dir: str = cache_variable()
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (field, "env VAR" / "file F"), for the UI


ENV = {f.name: f.metadata["env"] for f in fields(IFSettings) if "env" in f.metadata}  # field -> its variable


def choose_device(setting: str = "auto") -> torch.device:
    """The compute device: CUDA when available for "auto", else the CPU; an explicit setting as is."""
    return sources.choose_device(setting, ENV["device"], IFNotConfigured)


def choose_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA, as DeepFloyd IF runs; fp32 anywhere else (fp16 cannot run on a CPU)."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32


def use_offload(setting: str, device: torch.device) -> bool:
    """Whether to use model CPU offload: only on CUDA; "auto" for GPUs with less than OFFLOAD_BELOW_GIB."""
    if torch.device(device).type != "cuda" or setting == "off":
        return False
    if setting == "on":
        return True
    return torch.cuda.get_device_properties(device).total_memory < OFFLOAD_BELOW_GIB * 2**30


@dataclass(frozen=True)
class IFStatus:
    configured: bool  # a stage I is set
    ready: bool  # configured and nothing known to be missing (loading can still fail: network, memory)
    items: tuple[tuple[str, str], ...]  # (label, value) lines for the sidebar
    problems: tuple[str, ...]  # what is missing, each with its fix


def _hub_cached(repo_id: str) -> bool:
    """Whether the repo's pipeline index and UNet config are in the local hub cache (no network)."""
    files = ("model_index.json", "unet/config.json")
    return all(isinstance(huggingface_hub.try_to_load_from_cache(repo_id, f), str) for f in files)


def _text_width(source: str) -> int:
    """The UNet's prompt-embedding width: from a local folder's unet/config.json, else T5-XXL's 4096."""
    config = Path(source).expanduser() / "unet" / "config.json"
    if is_local(source) and config.is_file():
        unet = json.loads(config.read_text())
        return unet.get("encoder_hid_dim") or unet.get("cross_attention_dim") or 4096
    return 4096


def text_encoder_source(settings: IFSettings) -> str | None:
    """Where T5 comes from: the setting, or stage I's source when it has a text encoder; None: none."""
    source = settings.model if settings.text_encoder == "auto" else settings.text_encoder
    if source is None or not is_local(source):
        return source
    folder = Path(source).expanduser()
    if settings.text_encoder == "auto" and not (folder / "text_encoder" / "config.json").is_file():
        return None  # e.g. the course's download without T5: prompts come from the cache or a .pth
    missing = [n for n in ("text_encoder/config.json", "tokenizer/tokenizer_config.json") if not (folder / n).is_file()]
    if missing:
        raise IFModelNotFound(
            f"{folder} has no T5 text encoder in the diffusers layout (it lacks {', '.join(missing)}).",
            f"set {ENV['text_encoder']} to auto, none, {STAGE1_IDS[0]}, or a folder with text_encoder/ and tokenizer/.",
        )
    return str(folder)


def tokenizer_loadable(source: str) -> bool:
    """False when a local T5 tokenizer is a bare spiece.model (as DeepFloyd's) and sentencepiece is not installed.

    A hub tokenizer is tried (True): if it needs sentencepiece, loading it raises IFMissingPackage.
    """
    if has_package("sentencepiece") or not is_local(source):
        return True
    return (Path(source).expanduser() / "tokenizer" / "tokenizer.json").is_file()


def _problem(problems: list[str], problem: str, fix: str) -> None:
    problems.append(f"{problem} Fix: {fix}")


def _describe(source: str, label: str, env: str, problems: list[str]) -> str:
    """One stage's line for the UI; what is missing for it goes to problems."""
    if is_local(source):
        folder = Path(source).expanduser()
        if not (folder / "model_index.json").is_file() or not (folder / "unet" / "config.json").is_file():
            _problem(
                problems,
                f"{label}: the folder {folder.name!r} is not in the diffusers layout (model_index.json, unet/).",
                f"set {env} to a folder saved by save_pretrained or `hf download <id> --local-dir <folder>`.",
            )
        return f"{folder.name} (a local folder)"  # its name only: the page shows no server path
    cached = _hub_cached(source)
    if not cached and hub_constants.HF_HUB_OFFLINE:
        _problem(
            problems,
            f"{label}: {source} is not cached and HF_HUB_OFFLINE is set.",
            f"run the lab once online, or set {env} to a local folder.",
        )
    elif not cached and huggingface_hub.get_token() is None:
        _problem(
            problems,
            f"{label}: {source} is gated and no Hugging Face token was found.",
            f"accept the licence at {model_page(source)}, then {LOGIN}.",
        )
    return f"{source} (hub, {'cached' if cached else 'downloaded on first load'})"


def if_status(s: IFSettings) -> IFStatus:
    """What is configured, what is missing and the fix, for the UI; loads no model and makes no network call."""
    items: list[tuple[str, str]] = []
    problems: list[str] = []
    if s.model is None:
        _problem(
            problems,
            "DeepFloyd IF is off (the lab uses its bundled backend).",
            f"set {ENV['model']} to {STAGE1_IDS[0]} (or IF-I-L-v1.0, IF-I-M-v1.0) or to a local folder.",
        )
        return IFStatus(False, False, (("stage I", "not set"),), tuple(problems))
    items.append(("stage I", _describe(s.model, "stage I", ENV["model"], problems)))
    items.append(("stage II", "off" if s.stage2 is None else _describe(s.stage2, "stage II", ENV["stage2"], problems)))

    try:
        device = choose_device(s.device)
    except IFNotConfigured as e:
        device = torch.device("cpu")
        problems.append(str(e))
    dtype = str(choose_dtype(device)).removeprefix("torch.")
    items.append(
        ("device", f"{device}, {dtype}" + (" (slow: fp16 cannot run on a CPU)" if device.type == "cpu" else ""))
    )
    offload = use_offload(s.offload, device)
    items.append(
        ("memory", f"offload {'on' if offload else 'off'}, attention slicing {'on' if s.attention_slicing else 'off'}")
    )
    if offload and not has_package("accelerate"):
        _problem(
            problems,
            "model CPU offload needs accelerate.",
            f"`pip install {PINS['accelerate']}`, or set {ENV['offload']}=off.",
        )

    try:
        encoder = text_encoder_source(s)
    except IFModelNotFound as e:
        encoder = None
        problems.append(str(e))
    hub_tokenizer = encoder is not None and not is_local(encoder)  # DeepFloyd's: a bare spiece.model
    if encoder is not None and not has_package("sentencepiece") and (hub_tokenizer or not tokenizer_loadable(encoder)):
        _problem(
            problems,
            "the T5 tokenizer (spiece.model) needs sentencepiece.",
            f"`pip install {PINS['sentencepiece']}`, or import the course's .pth.",
        )
    items.append(
        (
            "text encoder",
            f"T5 from {encoder}, loaded per new prompt" if encoder else "none: cached and imported prompts only",
        )
    )

    store = PromptEmbeddings(cache_dir=cache_folder(s.cache_dir, _text_width(s.model)))
    items.append(("prompt cache", f"{store.files()} prompts on disk"))  # counted, not opened; no server path
    if s.embeddings is not None and not Path(s.embeddings).expanduser().is_file():
        _problem(
            problems,
            f"{ENV['embeddings']} names {Path(s.embeddings).name}, which does not exist.",
            "point it to the course's .pth.",
        )
    elif encoder is None and s.embeddings is None and not all(p in store for p in DEFAULT_PROMPTS):
        _problem(
            problems,
            f"no text encoder and no cached embeddings of {DEFAULT_PROMPTS}.",
            f"set {ENV['embeddings']} to the course's .pth, or {ENV['text_encoder']} to a model with T5.",
        )
    if s.sources:
        items.append(("set by", "; ".join(f"{name}: {where}" for name, where in s.sources)))
    return IFStatus(True, not problems, tuple(items), tuple(problems))
