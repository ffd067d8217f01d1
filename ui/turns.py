"""Page runs take turns: at most DIFFUSION_LAB_PAGE_RUNS scripts of this server run at once (default two per core).

Thirty browsers that open a page together start thirty script threads, and Python runs one of them at a time: each
then takes thirty times as long, and the thread that answers new browsers (Streamlit's event loop, which also sends
every picture) gets a thirty-first of the interpreter. With turns the others wait on a semaphore, which costs nothing,
with a line on their page that says so; a page waiting for a computation gives its turn up meanwhile (ui.progress), so
that a warmed page never waits for somebody's denoising. A turn not had within TURN_WAIT_S is not waited for longer.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator

import streamlit as st

from serving.settings import RoomSettings

TURN_WAIT_S = 15.0  # a page that waited this long for a turn runs anyway (a turn is a courtesy, never a lock)


class Turns:
    """At most n holders at once; each script-run thread holds one turn at most (turn), and may give it up for a
    while (away)."""

    def __init__(self, n: int, wait_s: float = TURN_WAIT_S):
        if n < 1:
            raise ValueError(f"page runs at once must be at least 1, got {n}")
        self.wait_s = wait_s
        self._free = threading.BoundedSemaphore(n)
        self._held = threading.local()
        self.waited = 0  # runs that had to wait for a turn (for the tests; counted without a lock: a gauge)

    def holds(self) -> bool:
        return getattr(self._held, "turn", False)

    @contextlib.contextmanager
    def turn(self, on_wait: Callable[[], Callable[[], None]] | None = None) -> Iterator[None]:
        """Hold a turn while the block runs. on_wait() is called when none is free (it shows a message, and returns
        what removes it once the turn is had)."""
        if self.holds():  # a turn inside a turn (a page that runs another's code): the one it holds
            yield
            return
        got = self._free.acquire(blocking=False)
        if not got:
            self.waited += 1
            undo = on_wait() if on_wait is not None else None
            got = self._free.acquire(timeout=self.wait_s)
            if undo is not None:
                undo()
        self._held.turn = got
        try:
            yield
        finally:
            self._give_back()

    @contextlib.contextmanager
    def away(self) -> Iterator[None]:
        """Give this run's turn up while the block waits (for a computation); take one again after it. A run that is
        stopped meanwhile (its user moved on: Streamlit raises in it) does not take one again."""
        if not self.holds():
            yield
            return
        self._give_back()
        yield  # an exception (the run stopped) goes on up without a turn
        self._held.turn = self._free.acquire(timeout=self.wait_s)

    def _give_back(self) -> None:
        if self.holds():
            self._held.turn = False
            self._free.release()


@st.cache_resource
def turns() -> Turns:
    """The server's turns (DIFFUSION_LAB_PAGE_RUNS; 0: two per core)."""
    return Turns(RoomSettings.from_env().page_runs or 2 * (os.cpu_count() or 1))


def waiting_line() -> Callable[[], None]:
    """A line on the page while it waits for its turn; returns what removes it."""
    line = st.empty()
    line.caption("⏳ The server is drawing other browsers' pages; yours is next.")
    return line.empty
