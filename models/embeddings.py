"""Prompt embeddings by prompt text: in memory, cached on disk (safetensors), encoded on demand.

DeepFloyd IF is conditioned on T5-XXL embeddings (L=77 tokens x D=4096). T5-XXL is too big to keep next to the
UNet on a small GPU, which is why the course ships a ``.pth`` of precomputed embeddings (a dict prompt -> tensor).
``PromptEmbeddings`` behaves like that dict and adds:
- a disk cache, one safetensors file per prompt (its text in the file's metadata), so a lecture machine encodes
  each prompt once, across sessions and processes;
- an optional encoder (prompts -> (N, L, D)), called only for prompts found neither in memory nor on disk; it
  also tops up the always-available prompts "" and "a high quality photo" in the same call;
- ``import_pth`` for the course's file (read with ``torch.load(weights_only=True)``: tensors only, no pickle code).
"""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from models.backend import NULL_PROMPTS as DEFAULT_PROMPTS  # the course's unconditional prompt and its "null" prompt
from models.deepfloyd.errors import IFNoTextEncoder
from models.failures import NoTextEncoder

Encoder = Callable[[Sequence[str]], torch.Tensor]  # prompts -> (len(prompts), L, D)


def cache_folder(cache_dir: str | Path, width: int) -> Path:
    """Where embeddings of width D live: every DeepFloyd IF stage shares T5-XXL (D = 4096), so they share a folder."""
    return Path(cache_dir).expanduser() / "prompt-embeddings" / f"t5-d{width}"


def as_rows(prompt: str, embedding: torch.Tensor, width: int | None = None) -> torch.Tensor:
    """One prompt's embedding as (L, D), from (L, D) or (1, L, D); ValueError for anything else."""
    if not isinstance(embedding, torch.Tensor) or not embedding.is_floating_point():
        raise ValueError(f"the embedding of {prompt!r} must be a float tensor, got {type(embedding).__name__}")
    if embedding.ndim == 3 and embedding.shape[0] == 1:
        embedding = embedding[0]
    if embedding.ndim != 2:
        raise ValueError(
            f"the embedding of {prompt!r} must have shape (L, D) or (1, L, D), got {tuple(embedding.shape)}"
        )
    if width is not None and embedding.shape[-1] != width:
        raise ValueError(
            f"the embedding of {prompt!r} has width {embedding.shape[-1]}, but this model takes {width} "
            "(DeepFloyd IF: T5-XXL, 4096; PixNerd: Qwen3, 2048); were these embeddings made for another model?"
        )
    return embedding.detach().cpu().contiguous()


class PromptEmbeddings(Mapping[str, torch.Tensor]):
    """Prompt -> T5 embedding (L, D): memory, then the disk cache, then (``get_many`` only) the encoder."""

    def __init__(
        self,
        embeddings: Mapping[str, torch.Tensor] | None = None,
        *,
        cache_dir: str | Path | None = None,
        encoder: Encoder | None = None,
        width: int | None = None,
        no_encoder_fix: str = "import the course's precomputed embeddings (.pth) or enable a T5 text encoder.",
        no_encoder_error: type[NoTextEncoder] = IFNoTextEncoder,
        max_memory: int = 256,
        max_files: int = 2048,
    ):
        self.width = width  # D, checked on every embedding added; None: any
        self.folder = None if cache_dir is None else Path(cache_dir).expanduser()  # one .safetensors per prompt
        self.encoder = encoder  # called for prompts with no embedding; None: unknown prompts raise IFNoTextEncoder
        self.no_encoder_fix = no_encoder_fix  # what IFNoTextEncoder tells the user to do
        self.no_encoder_error = no_encoder_error  # its type (PixNerd's: PixNerdNoTextEncoder)
        self.max_memory, self.max_files = max_memory, max_files  # least recently used out first, the defaults never
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()  # least recently used first
        self._encoding = threading.Lock()  # one encoder load at a time: a server computes several requests at once
        for prompt, embedding in (embeddings or {}).items():
            self.add(prompt, embedding, persist=False)

    def _path(self, prompt: str) -> Path:
        return self.folder / f"{hashlib.sha256(prompt.encode()).hexdigest()[:32]}.safetensors"

    def _on_disk(self) -> dict[str, Path]:
        """Prompt -> file of every embedding in the disk cache (reads only the files' headers)."""
        if self.folder is None or not self.folder.is_dir():
            return {}
        found = {}
        for path in sorted(self.folder.glob("*.safetensors")):
            try:
                with safe_open(str(path), "pt") as f:
                    prompt = (f.metadata() or {}).get("prompt")
            except Exception:  # a partly written or foreign file: not ours to use
                continue
            if prompt is not None and path == self._path(prompt):
                found[prompt] = path
        return found

    def _lookup(self, prompt: str) -> torch.Tensor | None:
        """From memory, else from the disk cache (kept in memory after); None if neither has it."""
        if prompt in self._memory:
            self._memory.move_to_end(prompt)
            return self._memory[prompt]
        path = None if self.folder is None else self._path(prompt)
        if path is None or not path.is_file():
            return None
        try:
            self._remember(prompt, as_rows(prompt, load_file(str(path))["embedding"], self.width))
            os.utime(path)  # used now: the disk cache's least recently used go first
        except Exception:  # a damaged file, or one made for another width: encode again
            return None
        return self._memory[prompt]

    def _remember(self, prompt: str, rows: torch.Tensor) -> None:
        """Keep rows in memory; the least recently used beyond max_memory leave it (the defaults stay)."""
        self._memory[prompt] = rows
        self._memory.move_to_end(prompt)
        others = [p for p in self._memory if p not in DEFAULT_PROMPTS]
        for old in others[: max(0, len(others) - self.max_memory)]:
            del self._memory[old]

    def files(self) -> int:
        """Embeddings in the disk cache (files counted, none opened)."""
        return (
            0 if self.folder is None or not self.folder.is_dir() else sum(1 for _ in self.folder.glob("*.safetensors"))
        )

    def _prune_disk(self) -> None:
        """The least recently used files beyond max_files leave the disk cache (the defaults' stay)."""
        paths = sorted(self.folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
        keep = {self._path(p) for p in DEFAULT_PROMPTS}
        others = [p for p in paths if p not in keep]
        for path in others[: max(0, len(others) - self.max_files)]:
            path.unlink(missing_ok=True)

    def __contains__(self, prompt: object) -> bool:
        return isinstance(prompt, str) and self._lookup(prompt) is not None

    def __getitem__(self, prompt: str) -> torch.Tensor:
        embedding = self._lookup(prompt) if isinstance(prompt, str) else None
        if embedding is None:
            raise KeyError(prompt)
        return embedding

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._memory) | set(self._on_disk())))

    def __len__(self) -> int:
        return len(set(self._memory) | set(self._on_disk()))

    def add(self, prompt: str, embedding: torch.Tensor, persist: bool = True) -> None:
        """Keep prompt's embedding (L, D) or (1, L, D) in memory and, with persist and a cache folder, on disk."""
        if not isinstance(prompt, str):
            raise ValueError(f"prompts must be strings, got {type(prompt).__name__}")
        rows = as_rows(prompt, embedding, self.width)
        self._remember(prompt, rows)
        if persist and self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self._path(prompt).with_suffix(".tmp")
            save_file({"embedding": rows}, str(tmp), metadata={"prompt": prompt})
            tmp.replace(self._path(prompt))  # atomic: a reader never sees half a file
            self._prune_disk()

    def get_many(self, prompts: Sequence[str]) -> list[torch.Tensor]:
        """The embeddings (L, D) of the prompts, encoding the missing ones (and missing defaults) in one call."""
        with self._encoding:  # a second caller waits, then finds what the first encoded
            found = {p: self._lookup(p) for p in dict.fromkeys(prompts)}
            found |= self._encode_missing([p for p, rows in found.items() if rows is None])
        return [found[p] for p in prompts]

    def _encode_missing(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Encode prompts (and the defaults, if missing) in one call; their rows (kept, within the bounds)."""
        missing = list(dict.fromkeys(prompts))
        if missing:
            if self.encoder is None:
                known = ", ".join(repr(p) for p in self) or "none"
                raise self.no_encoder_error(
                    f"No embedding for prompt {missing[0]!r} and no text encoder to make one; "
                    f"prompts with embeddings: {known}.",
                    self.no_encoder_fix,
                )
            batch = missing + [p for p in DEFAULT_PROMPTS if p not in self and p not in missing]
            embeddings = self.encoder(batch)  # (N, L, D)
            if embeddings.shape[0] != len(batch):
                raise RuntimeError(f"the encoder returned {embeddings.shape[0]} embeddings for {len(batch)} prompts")
            for prompt, embedding in zip(batch, embeddings):
                self.add(prompt, embedding)
            return {p: as_rows(p, e, self.width) for p, e in zip(batch, embeddings)}
        return {}

    def import_pth(self, path: str | Path) -> list[str]:
        """Add (and cache on disk) every embedding of a course ``.pth``: a dict prompt -> (L, D) or (1, L, D) tensor."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"no embeddings file at {path}: point to the course's .pth (a dict prompt -> tensor)"
            )
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)  # tensors and containers only
        except Exception as e:
            raise ValueError(f"{path} is not a torch file of plain tensors (a dict prompt -> tensor): {e}") from e
        if not isinstance(data, dict) or not data or not all(isinstance(k, str) for k in data):
            raise ValueError(f"{path} must hold a non-empty dict from prompt text to tensor, got {type(data).__name__}")
        rows = {prompt: as_rows(prompt, embedding, self.width) for prompt, embedding in data.items()}  # check all first
        for prompt, embedding in rows.items():
            self.add(prompt, embedding)
        return sorted(rows)


class PerCallEncoder:
    """A course model's text encoder (T5-XXL, Qwen3: 7-10 GB) loaded for each call and freed after, so that it never
    stays on the device beside the image model. A subclass gives ``load() -> (tokenizer, model)`` (counting
    ``loads``) and ``encode(tokenizer, model, prompts)`` -> the embeddings on the CPU."""

    def __init__(self, source: str, device, dtype: torch.dtype, before_load: Callable | None = None):
        self.source, self.device, self.dtype = source, torch.device(device), dtype
        self.before_load = before_load  # frees the device first (the image model's offload)
        self.loads = 0  # how many times the encoder was loaded

    def load(self):
        raise NotImplementedError

    def encode(self, tokenizer, model, prompts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        if self.before_load is not None:
            self.before_load()
        tokenizer, model = self.load()
        try:
            return self.encode(tokenizer, model, prompts)
        finally:
            del model
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
