"""Who this browser is: its secret owner id (a cookie, never in the address bar), its session, its network address,
whether it is the lecturer (a key, or the university's login); as a ``Caller`` for the job manager."""

from __future__ import annotations

import secrets

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError
from streamlit.runtime.scriptrunner import get_script_run_ctx

from serving.access import Attempts, verified_email
from serving.jobs import OWNER_ID, Caller
from serving.jobs.permissions import client_address
from serving.settings import TrainingSettings

OWNER_COOKIE = "diffusion_lab_owner"
COOKIE_DAYS = 180


def owner_id() -> str:
    """This browser's secret id (its runs are the runs of this id), never in the address bar: kept in the session and
    in a cookie, so that a refresh or a new tab finds its runs again while a projector shows nothing of it. A "link to
    my runs" (?owner=, which its user copies on purpose: my_runs_link) brings it to another browser; it is taken out of
    the address bar at once."""
    cookie = st.context.cookies.get(OWNER_COOKIE)
    cookie = cookie if isinstance(cookie, str) and OWNER_ID.fullmatch(cookie) else None  # (AppTest has no cookies)
    link = st.query_params.get("owner")
    if link is not None:
        del st.query_params["owner"]
        mine = st.session_state.get("owner") or cookie
        if OWNER_ID.fullmatch(link) and mine in (None, link):  # a browser with no runs of its own takes the link's
            st.session_state["owner"] = link
        elif OWNER_ID.fullmatch(link):  # never replaced by a link: the Train live page offers the switch (switch_owner)
            st.session_state["owner_offer"] = link
    owner = st.session_state.get("owner") or cookie or secrets.token_urlsafe(16)
    st.session_state["owner"] = owner
    if cookie != owner and st.session_state.get("owner_cookie") != owner:  # once per session: the browser keeps it
        st.session_state["owner_cookie"] = owner
        st.iframe(  # same-origin: it sets the app's cookie
            f"<script>document.cookie = '{OWNER_COOKIE}={owner}; path=/; max-age={COOKIE_DAYS * 86400}; "
            "SameSite=Strict';</script>",
            height=1,
        )
    return owner


def switch_owner() -> None:
    """Take the id of the ?owner= link this browser opened (owner_id keeps its own until its user asks for this)."""
    offer = st.session_state.pop("owner_offer", None)
    if offer is not None:
        st.session_state["owner"] = offer


def session_id() -> str | None:
    """This browser tab's session (the room's per-session bounds), None outside a page run."""
    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def lecturer_key() -> str | None:
    """The lecturer's key: DIFFUSION_LAB_LECTURER_KEY, else lecturer_key in .streamlit/secrets.toml; None: no key."""
    key = TrainingSettings.from_env().lecturer_key
    if key:
        return key
    try:
        return str(st.secrets["lecturer_key"]) if "lecturer_key" in st.secrets else None
    except (FileNotFoundError, KeyError, StreamlitSecretNotFoundError):  # no secrets file
        return None


ATTEMPTS = Attempts()  # the server's record of wrong lecturer keys (per address and session; serving.access)


def sign_in(key: str) -> bool:
    """This session is the lecturer's if key is the lecturer's key (constant time; wrong keys slow this address and
    session down and are logged). ValueError (KeyTooShort among them): what to tell the user instead."""
    where = address()  # "" for this machine: only its session is slowed (whoever is on the server could read the key)
    ok = ATTEMPTS.check(key, lecturer_key(), f"session:{session_id()}", *([f"address:{where}"] if where else []))
    if ok:
        st.session_state["lecturer"] = True
    return ok


def is_lecturer() -> bool:
    """Signed in with the lecturer's key, or logged in (st.login) as one of DIFFUSION_LAB_LECTURERS."""
    if st.session_state.get("lecturer"):
        return True
    lecturers = TrainingSettings.from_env().lecturers
    try:  # an e-mail its provider has not verified: nobody's
        return bool(lecturers) and verified_email(st.user) in lecturers
    except StreamlitSecretNotFoundError:  # no identity provider configured
        return False


def caller() -> Caller:
    """Who this browser is to the job manager: its owner id, its session, whether it is the lecturer, its address."""
    return Caller(owner_id(), session_id() or "", is_lecturer(), address())


def address() -> str:
    """This browser's network address (serving.jobs.permissions.client_address: behind a trusted proxy, the one it forwards)."""
    headers = st.context.headers
    return client_address(
        st.context.ip_address,
        headers.get("X-Forwarded-For") if headers else None,
        TrainingSettings.from_env().trusted_proxies,
    )
