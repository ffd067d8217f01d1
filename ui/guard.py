"""What a browser may ask of a served lab beyond running its pages.

Streamlit accepts a few messages from any client that act on the whole server, not on the sender's page: ``clear_cache``
empties every ``st.cache_data`` and ``st.cache_resource`` of the process (the developer menu's "Clear cache"; a script
can send it without the menu), and ``load_git_info`` runs git on the server's checkout. A room shares those caches (its
results, the models), and one student's message must not cost the room its work or the server its CPU: both are
refused here, with a line in the server's log. The room and the job manager do not live in Streamlit's caches at all
(ui.state), so nothing a client sends can make a second one.
"""

from __future__ import annotations

import logging

from streamlit.runtime.app_session import AppSession

log = logging.getLogger("diffusion_lab")


def _refuse(what: str):
    def handler(session: AppSession, *args) -> None:
        log.warning("a browser (session %s) asked the server to %s: refused (a room shares the server)", session.id, what)

    handler.refused = True
    return handler


def install() -> None:
    """Refuse the server-wide client messages (idempotent; the app calls it as it starts)."""
    if not getattr(AppSession._handle_clear_cache_request, "refused", False):
        AppSession._handle_clear_cache_request = _refuse("clear every cache")
        AppSession._handle_git_information_request = _refuse("read its git repository")
