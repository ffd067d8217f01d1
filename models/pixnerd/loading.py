"""Loading PixNerd the way its own code does, without running anything from its checkpoint.

1. The network class comes from the user's checkout of MCG-NJU/PixNerd (``DIFFUSION_LAB_PIXNERD_SOURCE``):
   ``src.models.transformer.pixnerd_t2i_heavydecoder.PixNerDiT``, built with the ``model.denoiser.init_args`` of the
   checkout's ``configs_t2i/inference_heavydecoder.yaml`` (read with yaml.safe_load), on the meta device (no 4.5 GiB of
   random weights first).
2. The weights: the hub's Lightning ``model.ckpt`` (or a local .ckpt) read with ``torch.load(weights_only=True)``,
   tensors and plain containers only; its EMA weights are the ``ema_denoiser.`` keys (the upstream app's
   ``load_model``), taken strictly: a missing, extra or misshapen key is an error, not a warning. A .safetensors
   written by ``tools/convert_pixnerd.py`` holds the same keys without the prefix.
3. Prompts: Qwen3 (``Qwen/Qwen3-1.7B``) through transformers, as PixNerd's ``Qwen3TextEncoder``: right-padded to 128
   tokens, the last hidden state padded or cut to 2,048 wide; loaded only to encode prompts not cached yet, freed
   after; embeddings cached on disk per prompt (models.embeddings).

Every failure is a ``PixNerdUnavailable`` whose message names the fix (models.pixnerd.errors).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import yaml

from models.embeddings import PerCallEncoder, PromptEmbeddings
from models.failures import every_failure_explained
from models.pixnerd.denoiser import IMAGE_SIZE, PixNerdDenoiser
from models.pixnerd.errors import (
    PixNerdNotConfigured,
    PixNerdNoTextEncoder,
    PixNerdSourceError,
    PixNerdUnavailable,
    PixNerdWeightsError,
    explain_hub_error,
    oom_guard,
)
from models.pixnerd.settings import (
    CHECKPOINT,
    CLONE,
    ENV,
    MODEL_ID,
    NETWORK_FILE,
    TEXT_ENCODER_ID,
    PixNerdSettings,
    cache_folder,
    choose_device,
    choose_dtype,
    config_path,
    local_weights,
    source_problem,
)
from models.sources import is_local

MODULE, CLASS = NETWORK_FILE.removesuffix(".py").replace("/", "."), "PixNerDiT"
PREFIXES = ("ema_denoiser.", "denoiser.")  # the EMA weights first (the course's); "_orig_mod." of torch.compile after
ALLOWED_GLOBALS: list = []  # globals a checkpoint may hold besides torch's defaults (tensors, OrderedDict, dtypes)


# --- the network, from the user's checkout


def network_class(source: str) -> type:
    """PixNerDiT from the checkout: its folder goes first on sys.path, so ``src.`` is the checkout's package."""
    problem = source_problem(source)
    if problem:
        raise PixNerdSourceError(*problem.split(" Fix: ", 1))
    folder = str(Path(source).expanduser().resolve())
    loaded = sys.modules.get("src")
    where = [str(Path(p).resolve().parent) for p in getattr(loaded, "__path__", [])]
    if loaded is not None and folder not in where:
        raise PixNerdSourceError(
            "another package named src is already imported in this server, so the checkout's cannot be.",
            f"restart the server (with {ENV['source']} set to one checkout).",
        )
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(MODULE)
    except ImportError as e:
        raise PixNerdSourceError(
            f"The checkout's {NETWORK_FILE} does not import: {e}.",
            f"`pip install {e.name}` if it names a package, else check out the tested commit: `{CLONE}`.",
        ) from e
    if not hasattr(module, CLASS):
        raise PixNerdSourceError(
            f"The checkout's {NETWORK_FILE} has no {CLASS}.", f"check out the tested commit: `{CLONE}`."
        )
    return getattr(module, CLASS)


def network_arguments(settings: PixNerdSettings) -> dict:
    """model.denoiser.init_args of the checkout's config (its class_path must be PixNerDiT's)."""
    path = config_path(settings)
    if not path.is_file():
        raise PixNerdSourceError(
            f"{ENV['config']} names {path.name}, which is not in the checkout.",
            f"set {ENV['config']} to configs_t2i/inference_heavydecoder.yaml (the default).",
        )
    try:
        denoiser = yaml.safe_load(path.read_text())["model"]["denoiser"]
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise PixNerdSourceError(
            f"{path.name} is not a PixNerd config with model.denoiser ({e}).",
            f"set {ENV['config']} to configs_t2i/inference_heavydecoder.yaml (the default).",
        ) from e
    if denoiser.get("class_path") != f"{MODULE}.{CLASS}":
        raise PixNerdSourceError(
            f"{path.name} builds {denoiser.get('class_path')}, not the text-to-image {CLASS}.",
            f"set {ENV['config']} to configs_t2i/inference_heavydecoder.yaml (the default).",
        )
    return dict(denoiser.get("init_args") or {})


def build_network(settings: PixNerdSettings, *, device: str | torch.device = "meta") -> torch.nn.Module:
    """The checkout's PixNerDiT with its config's arguments; on the meta device by default (no weights allocated)."""
    cls, kwargs = network_class(settings.source), network_arguments(settings)
    try:
        with torch.device(device):
            return cls(**kwargs)
    except TypeError as e:
        raise PixNerdSourceError(
            f"The checkout's {CLASS} does not take the config's arguments: {e}.",
            f"check out the tested commit and its config: `{CLONE}`.",
        ) from e


# --- the weights, without unpickling code


def weights_file(settings: PixNerdSettings) -> Path:
    """The local weights file: the setting's file or folder, else the hub's checkpoint (downloaded once, then cached)."""
    if is_local(settings.model):
        found = local_weights(settings.model)
        if found is None:
            raise PixNerdWeightsError(
                f"{ENV['model']} names {Path(settings.model).name!r}: no such file, nor a folder with "
                f"{CHECKPOINT} or model.safetensors.",
                f"set {ENV['model']} to {MODEL_ID} or to the file you downloaded.",
            )
        return found
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(settings.model, CHECKPOINT))
    except Exception as e:
        raise explain_hub_error(
            e,
            settings.model,
            "PixNerd's checkpoint",
            ENV["model"],
            f"hf download {settings.model} {CHECKPOINT} --local-dir <folder>",
        ) from e


def read_checkpoint(path: Path, allowed: Sequence = ()) -> Mapping[str, torch.Tensor]:
    """A checkpoint's tensors by key: a .safetensors as is; a .ckpt / .pt through torch.load(weights_only=True) (no code
    from the file runs), its "state_dict" if it has one. allowed: globals to accept besides torch's defaults."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        with torch.serialization.safe_globals([*ALLOWED_GLOBALS, *allowed]):
            try:
                checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:  # the legacy (non-zip) format cannot be memory-mapped
                if "mmap" not in str(e):
                    raise
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:  # not a checkpoint torch can read at all
            names = []
        if not names:
            raise PixNerdWeightsError(
                f"{path.name} cannot be read as a checkpoint: {type(e).__name__}: {e}",
                f"download it again, or set {ENV['model']} to another copy.",
            ) from e
        raise PixNerdWeightsError(
            f"{path.name} holds Python objects besides tensors ({', '.join(names)}), and the lab does not run code from a "
            "checkpoint.",
            f"if you trust the file, convert it once: `python -m tools.convert_pixnerd {path} model.safetensors "
            + " ".join(f"--allow {n}" for n in names)
            + f"` and set {ENV['model']} to model.safetensors.",
        ) from e
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, Mapping):
        raise PixNerdWeightsError(
            f"{path.name} holds no state dict (a {type(checkpoint).__name__}).",
            f"set {ENV['model']} to PixNerd's model.ckpt ({MODEL_ID}).",
        )
    return state


def denoiser_weights(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's weights by its own key names: the EMA ones ("ema_denoiser."), else the trained ones ("denoiser."),
    else the keys as they are (a converted file); torch.compile's "_orig_mod." taken off."""
    prefix = next((p for p in PREFIXES if any(k.startswith(p) for k in state)), "")
    weights = {
        k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix) and isinstance(v, torch.Tensor)
    }
    return {k.replace("_orig_mod.", ""): v for k, v in weights.items()}


def load_weights(net: torch.nn.Module, weights: Mapping[str, torch.Tensor], name: str) -> torch.nn.Module:
    """The weights into net (built on the meta device: assigned, not copied), strictly, in float32."""
    own = net.state_dict()
    missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    wrong = sorted(k for k in set(own) & set(weights) if tuple(own[k].shape) != tuple(weights[k].shape))
    if missing or extra or wrong:
        said = "; ".join(
            f"{label} {len(keys)} (e.g. {keys[0]})"
            for label, keys in (("missing", missing), ("unexpected", extra), ("misshapen", wrong))
            if keys
        )
        raise PixNerdWeightsError(
            f"{name} is not the weights of this network ({said}).",
            f"use {MODEL_ID}'s {CHECKPOINT} with the checkout's configs_t2i/inference_heavydecoder.yaml "
            f"(or the config it was trained with, in {ENV['config']}).",
        )
    net.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True, assign=True)
    unset = [k for k, v in [*net.named_parameters(), *net.named_buffers()] if v.is_meta]
    if unset:  # a tensor the network makes but does not save: this loader does not know the checkout's network
        raise PixNerdSourceError(
            f"The checkout's {CLASS} has tensors no checkpoint sets ({unset[0]} ...).",
            f"check out the tested commit: `{CLONE}`.",
        )
    return net


# --- Qwen3, per new prompt


class Qwen3PromptEncoder(PerCallEncoder):
    """Prompts -> (N, length, width) as PixNerd's Qwen3TextEncoder: right-padded tokens, the last hidden state padded
    with zeros or cut to ``width``; Qwen3 loaded per call and freed after (Qwen3-1.7B is 6.8 GB in float32)."""

    def __init__(
        self,
        source: str,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        width: int = 2048,
        length: int = 128,
        before_load: Callable | None = None,
    ):
        super().__init__(source, device, dtype, before_load)
        self.width, self.length = width, length

    def load(self):
        from transformers import AutoTokenizer, Qwen3Model

        self.loads += 1
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.source, padding_side="right")
            model = Qwen3Model.from_pretrained(self.source, dtype=self.dtype)
        except Exception as e:
            local = f"hf download {self.source} --local-dir <folder>"
            raise explain_hub_error(e, self.source, "the Qwen3 text encoder", ENV["text_encoder"], local) from e
        with oom_guard("loading the Qwen3 text encoder"):
            return tokenizer, model.to(self.device).eval()

    def encode(self, tokenizer, model, prompts: Sequence[str]) -> torch.Tensor:
        """The embeddings (len(prompts), length, width), float32 on the CPU."""
        tokens = tokenizer(
            list(prompts), truncation=True, max_length=self.length, padding="max_length", return_tensors="pt"
        )
        with oom_guard("the Qwen3 text encoder"):
            y = model(input_ids=tokens.input_ids.to(self.device), attention_mask=tokens.attention_mask.to(self.device))[
                0
            ]
        y = y[:, :, : self.width].float().cpu()
        return torch.nn.functional.pad(y, (0, self.width - y.shape[2]))  # PixNerd pads narrower models with zeros


# --- the backend


@every_failure_explained("PixNerd", ENV["model"], PixNerdUnavailable)
def load_pixnerd(settings: PixNerdSettings, *, random_weights: bool = False) -> PixNerdDenoiser:
    """PixNerd as a lab velocity backend, from the checkout's code, the checkpoint's EMA weights and Qwen3 on demand.
    random_weights: the architecture with its initial weights, no checkpoint (benchmarks of speed and memory)."""
    if settings.model is None and not random_weights:
        raise PixNerdNotConfigured(
            "PixNerd is off.", f"set {ENV['model']} to {MODEL_ID} and {ENV['source']} to your checkout."
        )
    device = choose_device(settings.device)
    dtype = choose_dtype(settings.dtype, device)
    if random_weights:
        net = build_network(settings, device="cpu")
    else:
        net = build_network(settings)
        path = weights_file(settings)
        load_weights(net, denoiser_weights(read_checkpoint(path)), path.name)
    with oom_guard(f"moving PixNerd to {device}"):
        net = net.to(device, dtype)
    width, length = net.txt_embed_dim, net.txt_max_length
    store = PromptEmbeddings(
        cache_dir=cache_folder(settings.cache_dir, width, length),
        width=width,
        no_encoder_fix=f"set {ENV['text_encoder']} to {TEXT_ENCODER_ID} (or a folder of it), so new prompts can be encoded.",
        no_encoder_error=PixNerdNoTextEncoder,
    )
    if settings.text_encoder is not None:
        store.encoder = Qwen3PromptEncoder(settings.text_encoder, device, dtype, width, length)  # bf16 as PixNerd's own
    return PixNerdDenoiser(
        net,
        store,
        size=IMAGE_SIZE,
        autocast=torch.bfloat16 if dtype == torch.bfloat16 else None,
        batch_rows=settings.batch_rows,
    )
