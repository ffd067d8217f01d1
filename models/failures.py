"""Why a course model cannot be used, as one exception type whose message names the fix; and what hub errors mean.

DeepFloyd IF (models.deepfloyd) and PixNerd (models.pixnerd) raise subclasses of ``BackendUnavailable`` for every
failure; the app catches that one type, shows the message with its fix, and keeps its bundled backends.
"""

from __future__ import annotations

import contextlib
import functools
import traceback
from collections.abc import Callable, Iterator

import torch

OFFLINE_WORDS = ("not fully cached", "connect to", "offline", "cannot reach", "couldn't connect", "cached files")


class BackendUnavailable(RuntimeError):
    """A course model cannot be used as configured; ``problem`` says why, ``fix`` what to do. The lab keeps working."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem} Fix: {fix}")
        self.problem, self.fix = problem, fix


class NoTextEncoder(BackendUnavailable, ValueError):
    """A prompt has no embedding and no text encoder can make one; a ValueError, as ``Denoiser.encode`` promises."""


def causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and its causes and contexts (diffusers and transformers re-raise hub errors as OSError ... from the hub's)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack += [e.__cause__, e.__context__]


def is_offline(exc: BaseException) -> bool:
    """Whether exc (or one of its causes) says the hub cannot be reached and the files are not in the local cache."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    for e in causes(exc):
        if isinstance(e, (OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError, TimeoutError)):
            return True
        if isinstance(e, OSError) and any(s in str(e).lower() for s in OFFLINE_WORDS):
            return True
    return False


def every_failure_explained(what: str, env: str, error: type[BackendUnavailable]):
    """Decorator: anything a loader raises that is not yet an ``error`` becomes one (the app catches one type)."""

    def wrap(load):
        @functools.wraps(load)
        def explained(*args, **kwargs):
            try:
                return load(*args, **kwargs)
            except error:
                raise
            except Exception as e:
                fix = f"check {env} and the other settings the sidebar shows; the server log has the traceback."
                raise error(f"Loading {what} failed: {type(e).__name__}: {e}", fix) from e

        return explained

    return wrap


def out_of_memory(error: type[BackendUnavailable], what: str, fix: str) -> BackendUnavailable:
    """The ``error`` for a CUDA out-of-memory in ``what``, after emptying the CUDA cache (the rest of the lab goes on)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return error(f"CUDA ran out of memory in {what}; the GPU memory it held is released.", fix)


@contextlib.contextmanager
def guarding_memory(what: str, explain: Callable[[str], BackendUnavailable]) -> Iterator[None]:
    """torch.OutOfMemoryError inside the block becomes explain(what), the memory it held released."""
    try:
        yield
    except torch.OutOfMemoryError as e:
        # the failed call's frames hold its tensors (and a model being loaded) as long as the error lives
        traceback.clear_frames(e.__traceback__)
        raise explain(what) from e
