"""Why PixNerd is unavailable, as exceptions whose message names the fix (models.failures.BackendUnavailable).

No checkout or the wrong one, a checkpoint that is not PixNerd's or holds more than tensors, weights not found,
offline and not cached, no text encoder for a new prompt, CUDA out of memory: each its own type, so the tests and
the sidebar can tell them apart; the app catches ``BackendUnavailable`` and keeps its bundled backends.
"""

from __future__ import annotations

import torch

from models import failures
from models.failures import BackendUnavailable, NoTextEncoder, causes, is_offline

MEMORY_FIX = (
    "set DIFFUSION_LAB_PIXNERD_DTYPE=bfloat16 (half the memory), or DIFFUSION_LAB_PIXNERD_BATCH_ROWS=4 (fewer "
    "rows per model call), or free the GPU of other processes (nvidia-smi)."
)


class PixNerdUnavailable(BackendUnavailable):
    """PixNerd cannot be used as configured; ``problem`` says why, ``fix`` what to do."""


class PixNerdNotConfigured(PixNerdUnavailable):
    """PixNerd is off, or a setting has a value the backend cannot use."""


class PixNerdSourceError(PixNerdUnavailable):
    """The checkout of MCG-NJU/PixNerd is missing, is another repository, or its network does not build as expected."""


class PixNerdWeightsError(PixNerdUnavailable):
    """The weights are not there, not PixNerd's (keys or shapes), or the checkpoint holds Python objects besides tensors."""


class PixNerdNotCached(PixNerdUnavailable):
    """The hub cannot be reached and the checkpoint or Qwen3 is not in the local cache."""


class PixNerdOutOfMemory(PixNerdUnavailable):
    """CUDA ran out of memory; the memory it held is released, so the rest of the lab keeps working."""


class PixNerdNoTextEncoder(PixNerdUnavailable, NoTextEncoder):
    """A prompt has no cached embedding and no Qwen3 can make one (a ValueError, as ``Denoiser.encode`` promises)."""


def out_of_memory(what: str) -> PixNerdOutOfMemory:
    return failures.out_of_memory(PixNerdOutOfMemory, what, MEMORY_FIX)


def oom_guard(what: str):
    """torch.OutOfMemoryError inside the block becomes PixNerdOutOfMemory, the memory it held released."""
    return failures.guarding_memory(what, out_of_memory)


def explain_hub_error(exc: BaseException, source: str, what: str, env: str, download: str) -> PixNerdUnavailable:
    """Why fetching ``what`` from ``source`` (the setting ``env``) failed; download: the command that gets it elsewhere."""
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    if isinstance(exc, PixNerdUnavailable):
        return exc
    chain = list(causes(exc))
    if any(isinstance(e, torch.OutOfMemoryError) for e in chain):
        return out_of_memory(what)
    for e in chain:
        if isinstance(e, RepositoryNotFoundError) or (
            isinstance(e, EntryNotFoundError) and not isinstance(e, LocalEntryNotFoundError)
        ):
            return PixNerdWeightsError(
                f"{source} ({what}) was not found on the hub (a wrong id, or a file it lacks).",
                f"set {env} to its hub id or to a local copy.",
            )
    if is_offline(exc):
        return PixNerdNotCached(
            f"The Hugging Face hub cannot be reached and {source} ({what}) is not in the local cache.",
            f"run the lab once online to download it, or run `{download}` on a machine that is online, "
            f"copy the folder here and set {env} to it.",
        )
    return PixNerdUnavailable(
        f"Loading {what} from {source} failed: {type(exc).__name__}: {exc}",
        f"check {env} and the other settings the sidebar shows; the server log has the traceback.",
    )
