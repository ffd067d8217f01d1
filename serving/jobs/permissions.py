"""Who may do what to a training run: a browser's owner id, its session and address (the caps), the lecturer."""

from __future__ import annotations

import re
from dataclasses import dataclass

LOOPBACK = ("127.0.0.1", "::1")
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")  # what submit names a run: a link's ?follow= is checked against it
OWNER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a browser's id (ui.identity.owner_id makes 22 random characters)


@dataclass(frozen=True)
class Caller:
    """Who asks: a browser's owner id (its runs), its session (a second cap, whatever owner it claims), and whether it
    is the lecturer (any run, the queue)."""

    owner: str
    session: str = ""
    lecturer: bool = False
    address: str = ""  # its network address (client_address; "" for this machine): a third cap


SERVER = Caller("", lecturer=True)  # the lab's own code (tools, tests, the CLI): may do anything


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str:
    """A browser's network address, for the caps a client cannot dodge by opening sessions: its TCP peer, or, when the
    peer is a trusted reverse proxy, the last address of X-Forwarded-For that is not a trusted proxy ("" for this very
    machine: a lecturer's own browser, a test). A header from any other peer is ignored (anyone can write one)."""
    peer = peer or "127.0.0.1"
    address = peer
    if peer in trusted and forwarded_for:
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            address = hop
            if hop not in trusted:
                break
    return "" if address in LOOPBACK else address[:64]


class NotAllowed(ValueError):
    """The caller may not do this to that run (not theirs, not shared with the room, not the lecturer)."""


class RunLimit(ValueError):
    """A browser asked for more runs than it may have queued or running at once."""


def may_control(job, by: Caller) -> bool:
    """Whether by may stop, resume or download job: its owner, the lecturer, anyone once the lecturer shared it."""
    return by.lecturer or (bool(by.owner) and by.owner == job.owner) or (job.shared and job.status != "damaged")


def require_control(job, by: Caller, what: str) -> None:
    """NotAllowed unless by may control job (may_control)."""
    if not may_control(job, by):
        raise NotAllowed(
            f"run {job.id} is not yours: only the browser that started it, or the lecturer, may {what} it. "
            "Follow it read-only, or start your own."
        )


def require_lecturer(by: Caller, what: str) -> None:
    """NotAllowed unless by is the lecturer."""
    if not by.lecturer:
        raise NotAllowed(f"only the lecturer may {what} (sign in as the lecturer on the Train live page).")
