"""Settings of the PixNerd backend, and its status for the app's sidebar (without loading anything heavy).

PixNerd is not in diffusers and not on PyPI: its network comes from the user's checkout of its repository
(``git clone https://github.com/MCG-NJU/PixNerd``, named by ``DIFFUSION_LAB_PIXNERD_SOURCE``), its weights from the
hub's Lightning checkpoint or a local file (a .ckpt, or the .safetensors ``tools/convert_pixnerd.py`` writes), its
prompts from Qwen3 through transformers. ``serving.settings`` reads these from the environment, else from the
``[pixnerd]`` table of the config file, else the defaults; docs/operating.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import huggingface_hub
import torch
from huggingface_hub import constants as hub_constants

from models import sources
from models.embeddings import DEFAULT_PROMPTS, PromptEmbeddings
from models.pixnerd.errors import PixNerdNotConfigured
from models.sources import cache_variable, has_package, is_local, variable

MODEL_ID = "MCG-NJU/PixNerd-XXL-P16-T2I"  # the Fall 2026 course's model: 1.2 B, text-to-image, 512 px
CHECKPOINT = "model.ckpt"  # its file on the hub: a Lightning checkpoint, EMA weights under "ema_denoiser."
TEXT_ENCODER_ID = "Qwen/Qwen3-1.7B"
SOURCE_URL = "https://github.com/MCG-NJU/PixNerd"
TESTED_COMMIT = "6da060bd4b11a4a0ac2443a31b79701090e23c23"  # the checkout the lab is tested with (its MIT licence)
CLONE = f"git clone {SOURCE_URL} && git -C PixNerd checkout {TESTED_COMMIT[:7]}"
NETWORK_FILE = "src/models/transformer/pixnerd_t2i_heavydecoder.py"  # defines PixNerDiT, the T2I denoiser
CONFIG_FILE = "configs_t2i/inference_heavydecoder.yaml"  # its model.denoiser: class_path and init_args
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
WEIGHT_FILES = (CHECKPOINT, "model.safetensors")  # what a local folder may hold, in this order


@dataclass(frozen=True)
class PixNerdSettings:
    model: str | None = variable(
        "DIFFUSION_LAB_PIXNERD_MODEL",
        None,
        f"PixNerd's weights: {MODEL_ID} (the hub's "
        f"{CHECKPOINT}), a local .ckpt or .safetensors, or a folder with one; unset: PixNerd is off",
        "optional",
    )
    source: str | None = variable(
        "DIFFUSION_LAB_PIXNERD_SOURCE",
        None,
        f"the folder of your checkout of {SOURCE_URL} (its network code; `{CLONE}`)",
        "optional",
    )
    config: str = variable(
        "DIFFUSION_LAB_PIXNERD_CONFIG",
        CONFIG_FILE,
        "the checkout's YAML whose model.denoiser builds the network (relative to the checkout, or a path)",
        "path",
    )
    text_encoder: str | None = variable(
        "DIFFUSION_LAB_PIXNERD_TEXT_ENCODER",
        TEXT_ENCODER_ID,
        "Qwen3 for new prompts: a hub id or folder, or none (cached prompts only)",
        "optional",
    )
    device: str = variable(
        "DIFFUSION_LAB_PIXNERD_DEVICE",
        "auto",
        "PixNerd's device: auto (CUDA if there is one), cpu, cuda, cuda:1 ...",
        "device",
    )
    dtype: str = variable(
        "DIFFUSION_LAB_PIXNERD_DTYPE",
        "float32",
        "float32 (the course's) or bfloat16 (weights in bf16 under autocast: half the memory, on GPUs that have it)",
        "dtype",
    )
    batch_rows: int = variable(
        "DIFFUSION_LAB_PIXNERD_BATCH_ROWS",
        8,
        "most 512 px rows in one model call when the room batches browsers' loops (a multiple of 4)",
        "whole",
    )
    cache_dir: str = cache_variable()
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (field, "env VAR" / "file F"), for the UI


ENV = {f.name: f.metadata["env"] for f in fields(PixNerdSettings) if "env" in f.metadata}


def choose_device(setting: str = "auto") -> torch.device:
    """CUDA when available for "auto", else the CPU; an explicit setting as is (cuda without CUDA: not configured)."""
    return sources.choose_device(setting, ENV["device"], PixNerdNotConfigured)


def choose_dtype(setting: str, device: torch.device) -> torch.dtype:
    """The weights' dtype; bfloat16 only where the device runs it (every CPU; GPUs from Ampere on)."""
    dtype = DTYPES[setting]
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise PixNerdNotConfigured(
            f"{ENV['dtype']} is bfloat16, but {torch.cuda.get_device_name(device)} has no bfloat16.",
            f"set {ENV['dtype']}=float32 (the course's; 1.2 B parameters take about 4.5 GiB).",
        )
    return dtype


def cache_folder(cache_dir: str | Path, width: int = 2048, length: int = 128) -> Path:
    """Where PixNerd's prompt embeddings live: Qwen3's last hidden states, padded or cut to ``width``, ``length`` tokens."""
    return Path(cache_dir).expanduser() / "prompt-embeddings" / f"qwen3-l{length}-d{width}"


def checkout_commit(folder: Path) -> str | None:
    """The commit a git checkout is at (read from .git, no git needed); None where the folder is not a git checkout."""
    git = folder / ".git"
    if git.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = git.read_text().strip()
        git = (folder / text.removeprefix("gitdir:").strip()).resolve() if text.startswith("gitdir:") else git
    head = git / "HEAD"
    if not head.is_file():
        return None
    ref = head.read_text().strip()
    if not ref.startswith("ref:"):
        return ref
    name = ref.removeprefix("ref:").strip()
    for root in (git, Path((git / "commondir").read_text().strip()) if (git / "commondir").is_file() else git):
        root = root if root.is_absolute() else (git / root).resolve()
        if (root / name).is_file():
            return (root / name).read_text().strip()
        packed = root / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + name):
                    return line.split()[0]
    return None


def source_problem(source: str | None) -> str | None:
    """What is wrong with the checkout setting (None: it looks like PixNerd's checkout at the tested commit)."""
    fix_clone = f"run `{CLONE}` and set {ENV['source']} to the PixNerd folder it makes."
    if source is None:
        return f"{ENV['source']} is not set: PixNerd's network comes from your checkout of its repository. Fix: {fix_clone}"
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return f"{ENV['source']} names {folder.name!r}, which is not a folder here. Fix: {fix_clone}"
    if not (folder / NETWORK_FILE).is_file():
        return f"{folder.name!r} is not a checkout of {SOURCE_URL}: it has no {NETWORK_FILE}. Fix: {fix_clone}"
    commit = checkout_commit(folder)
    if commit is not None and commit != TESTED_COMMIT:
        return (
            f"the checkout is at commit {commit[:7]}; the lab is tested with {TESTED_COMMIT[:7]}. "
            f"Fix: `git -C {folder} checkout {TESTED_COMMIT[:7]}`."
        )
    return None


def config_path(settings: PixNerdSettings) -> Path:
    """The YAML that builds the network: the setting as a path, else relative to the checkout."""
    path = Path(settings.config).expanduser()
    return path if path.is_absolute() or settings.source is None else Path(settings.source).expanduser() / path


def local_weights(source: str) -> Path | None:
    """The local weights file a setting names: the file, or the first of WEIGHT_FILES in the folder; None: none there."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    return next((path / name for name in WEIGHT_FILES if (path / name).is_file()), None)


def _hub_cached(repo_id: str, filename: str) -> bool:
    return isinstance(huggingface_hub.try_to_load_from_cache(repo_id, filename), str)


@dataclass(frozen=True)
class PixNerdStatus:
    configured: bool  # weights are set
    ready: bool  # configured and nothing known to be missing (loading can still fail: network, memory)
    items: tuple[tuple[str, str], ...]  # (label, value) lines for the sidebar
    problems: tuple[str, ...]  # what is missing, each with its fix


def pixnerd_status(s: PixNerdSettings) -> PixNerdStatus:
    """What is configured, what is missing and the fix, for the UI; loads no model and makes no network call."""
    problems: list[str] = []
    if s.model is None:
        problems.append(
            f"PixNerd is off (the lab uses its bundled flow backends). Fix: set {ENV['model']} to {MODEL_ID} "
            f"(or a local .ckpt / .safetensors) and {ENV['source']} to your checkout of {SOURCE_URL}."
        )
        return PixNerdStatus(False, False, (("weights", "not set"),), tuple(problems))
    items: list[tuple[str, str]] = []
    if is_local(s.model):
        found = local_weights(s.model)
        if found is None:
            problems.append(
                f"{ENV['model']} names {Path(s.model).name!r}, which is neither a weights file nor a folder "
                f"with {' or '.join(WEIGHT_FILES)}. Fix: set it to {MODEL_ID} or to the file you downloaded."
            )
        items.append(
            (
                "weights",
                f"{Path(s.model).name} (local{', ' + found.name if found and found.name != Path(s.model).name else ''})",
            )
        )
    else:
        cached = _hub_cached(s.model, CHECKPOINT)
        if not cached and hub_constants.HF_HUB_OFFLINE:
            problems.append(
                f"{s.model} is not cached and HF_HUB_OFFLINE is set. Fix: run the lab once online, or "
                f"`hf download {s.model} {CHECKPOINT} --local-dir <folder>` elsewhere and set {ENV['model']} to the folder."
            )
        items.append(("weights", f"{s.model} (hub, {'cached' if cached else 'downloaded on first load'})"))

    problem = source_problem(s.source)
    if problem:
        problems.append(problem)
    else:
        commit = checkout_commit(Path(s.source).expanduser())
        items.append(
            ("network", f"{Path(s.source).name} (checkout{' at ' + commit[:7] if commit else ', not a git folder'})")
        )
        if not config_path(s).is_file():
            problems.append(
                f"{ENV['config']} names {s.config}, which is not in the checkout. Fix: set it to {CONFIG_FILE}."
            )

    try:
        device = choose_device(s.device)
        dtype = str(choose_dtype(s.dtype, device)).removeprefix("torch.")
    except PixNerdNotConfigured as e:
        device, dtype = torch.device("cpu"), s.dtype
        problems.append(str(e))
    slow = " (slow: minutes per picture at 512 px on a CPU)" if device.type == "cpu" else ""
    items.append(("device", f"{device}, {dtype}, {s.batch_rows} rows per model call{slow}"))
    if s.batch_rows % 4:
        problems.append(f"{ENV['batch_rows']} is {s.batch_rows}. Fix: set it to a multiple of 4 (4, 8, 16 ...).")

    encoder = s.text_encoder
    if encoder is not None and is_local(encoder) and not (Path(encoder).expanduser() / "config.json").is_file():
        problems.append(
            f"{ENV['text_encoder']} names {Path(encoder).name!r}, which has no config.json. Fix: set it to "
            f"{TEXT_ENCODER_ID}, a folder saved from it, or none."
        )
    elif (
        encoder is not None
        and not is_local(encoder)
        and hub_constants.HF_HUB_OFFLINE
        and not _hub_cached(encoder, "config.json")
    ):
        problems.append(
            f"{encoder} (the text encoder) is not cached and HF_HUB_OFFLINE is set. Fix: run the lab once "
            f"online, or set {ENV['text_encoder']} to a local folder of it."
        )
    if encoder is not None and not has_package("transformers"):
        problems.append("transformers is not installed; Qwen3 needs it. Fix: `pip install -r requirements.txt`.")
    items.append(
        ("text encoder", f"Qwen3 from {encoder}, loaded per new prompt" if encoder else "none: cached prompts only")
    )
    store = PromptEmbeddings(cache_dir=cache_folder(s.cache_dir))
    items.append(("prompt cache", f"{store.files()} prompts on disk"))
    if encoder is None and not all(p in store for p in DEFAULT_PROMPTS):
        problems.append(
            f"no text encoder and no cached embeddings of {DEFAULT_PROMPTS}. Fix: set {ENV['text_encoder']} "
            f"to {TEXT_ENCODER_ID} (or a folder of it) once, so the prompts are cached."
        )
    if s.sources:
        items.append(("set by", "; ".join(f"{name}: {where}" for name, where in s.sources)))
    return PixNerdStatus(True, not problems, tuple(items), tuple(problems))
