"""What a browser may ask of a served lab beyond running its pages, and what it may send as a widget's value.

Streamlit accepts a few messages from any client that act on the whole server, not on the sender's page: ``clear_cache``
empties every ``st.cache_data`` and ``st.cache_resource`` of the process (the developer menu's "Clear cache"; a script
can send it without the menu), and ``load_git_info`` runs git on the server's checkout. A room shares those caches (its
results, the models), and one student's message must not cost the room its work or the server its CPU: both are
refused here, with a line in the server's log. The room and the job manager do not live in Streamlit's caches at all
(ui.state), so nothing a client sends can make a second one.

A widget's value arrives as the client wrote it: Streamlit deserializes whatever kind of value it finds (a string for
a slider, NaN for a number, a JSON array nested a thousand deep) and the widget's code raises on it, in the router or
the sidebar as well as in a page (tests/fuzz.py found them on every page). A value of another kind than the widget's,
or one its deserializer cannot read, is dropped here: the widget keeps its default, as for a widget the browser does
not know yet.
"""

from __future__ import annotations

import logging

from streamlit.runtime.app_session import AppSession
from streamlit.runtime.state.common import unpack_widget_state_value
from streamlit.runtime.state.session_state import SessionState

log = logging.getLogger("diffusion_lab")


def _refuse(what: str):
    def handler(session: AppSession, *args) -> None:
        log.warning(
            "a browser (session %s) asked the server to %s: refused (a room shares the server)", session.id, what
        )

    handler.refused = True
    return handler


KIND = {
    "int_value": "number",
    "double_value": "number",
    "int_array_value": "numbers",
    "double_array_value": "numbers",
}  # a
# number input declares double_value and a browser sends an int for whole numbers: kinds that stand for one another
STATEFUL = ("file_uploader_state_value", "chat_input_value")  # kinds whose deserializer must run once: not tried here


def acceptable(metadata, state) -> bool:
    """Whether a widget state the browser sent is one the widget can take: its own kind of value (or a cleared one),
    which its deserializer reads without raising."""
    sent = state.WhichOneof("value")
    if sent is None or metadata.value_type is None:
        return True
    if KIND.get(sent, sent) != KIND.get(metadata.value_type, metadata.value_type):
        return False
    if sent in STATEFUL:
        return True
    try:
        metadata.deserializer(unpack_widget_state_value(state))
    except Exception as e:
        log.info(
            "a browser sent widget %s a value it cannot take (%s: %s)", metadata.id, type(e).__name__, str(e)[:100]
        )
        return False
    return True


def _checked(on_rerun):
    """SessionState.on_script_will_rerun, given only the widget states this session's widgets can take: those of a
    widget the session has drawn, of its kind, that its deserializer reads. The rest are dropped before Streamlit
    compares, deserializes or maps them (a widget then keeps its value, as a disabled widget's does): an id the session
    never drew (an empty one, one that names a key it has not) broke its session state's bookkeeping."""

    def checked(session_state: SessionState, fresh_widget_states=None, **kwargs):
        if fresh_widget_states is not None:
            known = session_state._new_widget_state.widget_metadata
            keep = [w for w in fresh_widget_states.widgets if w.id in known and acceptable(known[w.id], w)]
            if len(keep) != len(fresh_widget_states.widgets):
                dropped = len(fresh_widget_states.widgets) - len(keep)
                log.info("dropped %d widget value(s) a browser sent that no widget of its session can take", dropped)
                del fresh_widget_states.widgets[:]
                fresh_widget_states.widgets.extend(keep)
        return on_rerun(session_state, fresh_widget_states, **kwargs)

    checked.checked = True
    return checked


def install() -> None:
    """Refuse the server-wide client messages and widget values of the wrong kind (idempotent; the app calls it as it
    starts)."""
    if not getattr(AppSession._handle_clear_cache_request, "refused", False):
        AppSession._handle_clear_cache_request = _refuse("clear every cache")
        AppSession._handle_git_information_request = _refuse("read its git repository")
    if not getattr(SessionState.on_script_will_rerun, "checked", False):
        SessionState.on_script_will_rerun = _checked(SessionState.on_script_will_rerun)
