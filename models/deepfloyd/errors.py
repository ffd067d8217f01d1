"""Why DeepFloyd IF is unavailable, as exceptions whose message names the fix.

Every failure of the IF backend is an ``IFUnavailable`` (a models.failures.BackendUnavailable), so the app catches one type and keeps
its bundled backend. Loading errors of diffusers, transformers and huggingface_hub are translated by
``explain_load_error``: a gated repo (licence not accepted, no token: HTTP 401/403), no such repo or folder,
offline and not cached (the OSError diffusers raises), a missing package, CUDA out of memory.

References:
    [1] DeepFloyd IF on the Hugging Face hub: https://huggingface.co/DeepFloyd/IF-I-XL-v1.0 (licence, access).
    [2] huggingface_hub.errors: GatedRepoError, RepositoryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError.
"""

from __future__ import annotations

import torch
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
)

from models import failures
from models.failures import BackendUnavailable, NoTextEncoder, causes, is_offline

HUB = "https://huggingface.co"
LOGIN = (
    "run `hf auth login` (or `huggingface-cli login`) or set HF_TOKEN to a read token from "
    "https://huggingface.co/settings/tokens"
)
OFFLOAD_FIX = (
    "set DIFFUSION_LAB_IF_OFFLOAD=on (model CPU offload, needs `pip install accelerate`), or "
    "DIFFUSION_LAB_IF_ATTENTION_SLICING=on, or make fewer images at a time, or use a smaller stage I "
    "(DeepFloyd/IF-I-L-v1.0, IF-I-M-v1.0)."
)
PINS = {"accelerate": "accelerate==1.15.0", "sentencepiece": "sentencepiece==0.2.3"}  # tested versions


class IFUnavailable(BackendUnavailable):
    """DeepFloyd IF cannot be used as configured; ``problem`` says why, ``fix`` what to do. The lab keeps working."""


class IFNotConfigured(IFUnavailable):
    """No stage I (or stage II) is set, or a setting has a value the backend does not understand."""


class IFAccessDenied(IFUnavailable):
    """The hub refused the gated repo: licence not accepted, no token, or a token without access (HTTP 401/403)."""


class IFModelNotFound(IFUnavailable):
    """No such repo on the hub, or the local folder is not in the diffusers layout."""


class IFNotCached(IFUnavailable):
    """The hub cannot be reached (offline) and the model is not (fully) in the local cache."""


class IFMissingPackage(IFUnavailable):
    """An optional package the chosen option needs is not installed (accelerate for offload, sentencepiece for T5)."""


class IFOutOfMemory(IFUnavailable):
    """CUDA ran out of memory; the GPU cache is emptied, so the rest of the lab keeps working."""


class IFNoTextEncoder(IFUnavailable, NoTextEncoder):
    """A prompt has no embedding and no T5 text encoder can make one; a ValueError, as ``encode`` promises."""


def model_page(repo_id: str) -> str:
    """The hub page of a repo, where its licence is accepted."""
    return f"{HUB}/{repo_id}"


def _status(exc: BaseException) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None)


def explain_load_error(exc: BaseException, source: str, what: str, env: str, *, token_found: bool) -> IFUnavailable:
    """Why loading ``what`` (e.g. "stage I") from ``source`` (the setting ``env``) failed, as an IFUnavailable."""
    if isinstance(exc, IFUnavailable):
        return exc
    chain = list(causes(exc))
    page = model_page(source)
    for e in chain:
        if isinstance(e, torch.OutOfMemoryError):
            return out_of_memory(what)
    for e in chain:  # access first: a gated repo is also "not found" to the hub client
        refused = (
            isinstance(e, HfHubHTTPError) and not isinstance(e, RepositoryNotFoundError) and _status(e) in (401, 403)
        )
        if isinstance(e, GatedRepoError) or refused:
            if not token_found:
                return IFAccessDenied(
                    f"{source} ({what}) is a gated model and no Hugging Face token was found.",
                    f"accept the licence at {page} while logged in to the hub, then {LOGIN}.",
                )
            return IFAccessDenied(
                f"The hub refused your token for {source} ({what}): its licence is not accepted for this account, "
                "or the token has no read access.",
                f"open {page}, accept the licence with the account the token belongs to, and check the token "
                "at https://huggingface.co/settings/tokens (or log in again).",
            )
    for e in chain:
        remote_missing = isinstance(e, EntryNotFoundError) and not isinstance(e, LocalEntryNotFoundError)
        if isinstance(e, RepositoryNotFoundError) or remote_missing:
            login = "" if token_found else f"; if the id is right, log in first: {LOGIN}"
            return IFModelNotFound(
                f"{source} ({what}) was not found on the hub (a wrong id, a private repo, or a file it lacks).",
                f"set {env} to DeepFloyd/IF-I-XL-v1.0 (or IF-I-L-v1.0, IF-I-M-v1.0; stage II: "
                f"DeepFloyd/IF-II-L-v1.0) or to a local folder in the diffusers layout{login}.",
            )
    if is_offline(exc):
        return IFNotCached(
            f"The Hugging Face hub cannot be reached and {source} ({what}) is not fully in the local cache.",
            f"run the lab once online (with the licence accepted at {page} and a token) to download it, or run "
            f"`hf download {source} --local-dir <folder>` on a machine that is online, copy the folder here and "
            f"set {env} to it.",
        )
    for e in chain:  # transformers without sentencepiece falls back to tiktoken and complains about that
        if any(s in str(e).lower() for s in ("sentencepiece", "tiktoken")):
            return missing_package("sentencepiece", "the T5 tokenizer of DeepFloyd IF (spiece.model)")
        if isinstance(e, ImportError) and e.name:
            return missing_package(e.name.split(".")[0], f"loading {what}")
    return IFUnavailable(
        f"Loading {what} from {source} failed: {type(exc).__name__}: {exc}",
        f"check {env} (a hub id, or a folder saved by diffusers' save_pretrained); the traceback has the details.",
    )


def missing_package(package: str, needed_for: str) -> IFMissingPackage:
    """The error for a package that is not installed."""
    pin = PINS.get(package, package)
    return IFMissingPackage(f"{package} is not installed; {needed_for} needs it.", f"`pip install {pin}`.")


def out_of_memory(what: str) -> IFOutOfMemory:
    """The error for a CUDA out-of-memory in ``what``, after emptying the CUDA cache."""
    return failures.out_of_memory(IFOutOfMemory, what, OFFLOAD_FIX)


def oom_guard(what: str):
    """Turn torch.OutOfMemoryError inside the block into ``IFOutOfMemory``, the memory it held released."""
    return failures.guarding_memory(what, out_of_memory)
