"""Why a course model cannot be used, as one exception type whose message names the fix; and what hub errors mean.

DeepFloyd IF (models.deepfloyd) and PixNerd (models.pixnerd) raise subclasses of ``BackendUnavailable`` for every
failure; the app catches that one type, shows the message with its fix, and keeps its bundled backends.
"""

from __future__ import annotations

from typing import Iterator

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
