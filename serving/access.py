"""Who may sign in as the lecturer: the key's attempts slowed down, a key too short to keep refused, an e-mail trusted
only once its identity provider has verified it. No Streamlit here (ui.state asks)."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import OrderedDict

log = logging.getLogger("diffusion_lab")
MIN_KEY_CHARS = 12  # a shorter lecturer key is refused: a room could guess it
FIRST_WAIT_S, MOST_WAIT_S = 1.0, 60.0  # after a wrong key: 1, 2, 4 ... up to 60 s before the next try is checked
TRACKED = 10_000  # addresses and sessions remembered (the oldest forgotten first)


class KeyTooShort(ValueError):
    """The server's lecturer key is too short to be safe: the lecturer's sign-in is off until a longer one is set."""


class Attempts:
    """Wrong lecturer keys, per network address and per session: after n wrong keys in a row from either, the next
    attempt is checked only once 2^(n-1) s have passed (at most MOST_WAIT_S); every wrong key is logged. A right key
    clears both records."""

    def __init__(self, now=time.monotonic):
        self.now, self._lock = now, threading.Lock()
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # "address:..."/"session:..." -> (n, last)

    def wait_s(self, *who: str) -> float:
        """Seconds before an attempt of who (its address, its session) is checked; 0: now."""
        with self._lock:
            waits = [self._wait(*self._failures[w]) for w in who if w in self._failures]
        return max([0.0, *waits])

    def _wait(self, n: int, last: float) -> float:
        return max(0.0, last + min(FIRST_WAIT_S * 2 ** (n - 1), MOST_WAIT_S) - self.now())

    def check(self, typed: str, expected: str | None, *who: str) -> bool:
        """Whether typed is the lecturer's key (constant-time), recording a wrong one against who. KeyTooShort: the
        server's key is too short to be checked at all. ValueError: who must wait (wait_s) first."""
        if not expected:
            return False
        if len(expected) < MIN_KEY_CHARS:
            log.error(
                "the lecturer key is shorter than %d characters: the lecturer's sign-in is off until a longer one is set",
                MIN_KEY_CHARS,
            )
            raise KeyTooShort(
                f"The server's lecturer key is too short (fewer than {MIN_KEY_CHARS} characters) to be safe "
                "in a room: sign-in with it is off. Set a longer DIFFUSION_LAB_LECTURER_KEY (or lecturer_key in "
                ".streamlit/secrets.toml) and restart the server."
            )
        wait = self.wait_s(*who)
        if wait > 0:
            raise ValueError(f"Too many wrong keys: try again in {wait:.0f} s.")
        ok = hmac.compare_digest(typed.encode(), expected.encode())
        with self._lock:
            for w in who:
                if ok:
                    self._failures.pop(w, None)
                    continue
                n = self._failures.pop(w, (0, 0.0))[0] + 1
                self._failures[w] = (n, self.now())
                while len(self._failures) > TRACKED:
                    self._failures.popitem(last=False)
        if not ok:
            log.warning("a wrong lecturer key from %s", ", ".join(who) or "an unknown browser")
        return ok


def verified_email(user) -> str | None:
    """The e-mail of a logged-in user (st.user) that its identity provider says it verified; None otherwise (an
    unverified e-mail could be anyone's: a lecturer is never recognised by one)."""
    try:
        if not user.is_logged_in or user.get("email_verified") not in (True, "true"):
            return None
        email = user.get("email")
    except (AttributeError, KeyError):
        return None
    return email if isinstance(email, str) else None
