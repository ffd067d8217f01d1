"""A Streamlit client that speaks the browser's protocol but draws nothing: the stand-in for a student's browser on
another machine, so that a benchmark on one machine measures what the server pays for a watched page and not what a
browser pays to paint it.

It does what the browser's app does with the messages that matter here: opens the page (BackMsg rerun_script),
presses a form's submit button with chosen widget values, changes a widget and reruns the page as the browser does
(`change`, timed: when the last image of the run arrived, when the run ended), and reruns a fragment every `interval`
seconds when the server asks for it (ForwardMsg auto_rerun), until what the caller waits for shows up.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import connect

CONNECT_TIMEOUT_S = 10.0  # a websocket handshake slower than this fails, as a browser gives up and shows "Connecting"


@dataclass
class RemoteClient:
    """One session of `url`'s page `page`, with `query` as its query string."""

    url: str
    page: str
    query: str = ""
    widgets: dict[str, WidgetState] = field(default_factory=dict)  # label -> the state sent back on every rerun
    ids: dict[str, str] = field(default_factory=dict)  # label -> widget id, as the page's elements say
    texts: list[str] = field(default_factory=list)  # markdown and alerts (st.info, st.error...) of the latest run
    charts: list[tuple[float, str]] = field(default_factory=list)  # (arrival time, Plotly spec) of every chart received
    auto: dict[str, float] = field(default_factory=dict)  # fragment id -> its rerun interval
    running: bool = False  # as the browser, no fragment rerun is asked for while a run is going on
    reruns: int = 0  # fragment reruns asked for
    page_hash: str = ""  # the page's script hash (st.navigation says it), sent back as the browser does
    images: list[str] = field(default_factory=list)  # media URLs of the latest run's images (named by their bytes)
    image_at: float = 0.0  # arrival time of the latest run's last image
    errors: list[str] = field(default_factory=list)  # error alerts and exceptions of the latest run
    progress: list[str] = field(default_factory=list)  # progress bars' texts of the latest run, in order
    cookies: str = ""  # the Cookie header the browser sends (its cookies for the server)
    address: str = ""  # the query string the page put in the address bar (page_info_changed), "" if it set none
    received: list[str] = field(
        default_factory=list
    )  # every text any element of any run carried (what a browser could show)
    headers: dict[str, str] = field(
        default_factory=dict
    )  # more headers of the websocket's handshake (X-Forwarded-For ...)
    exceptions: list[str] = field(default_factory=list)  # every exception element any run showed (uncaught by the page)
    run_timeout: float = 120.0  # seconds each run of the page (open, change, choose, rerun, press) waits to finish
    # unless the call is given its own

    def __enter__(self) -> RemoteClient:
        self.opened = self.open()
        return self

    def open(self, timeout: float | None = None) -> dict:
        """Connect and run the page, as a browser opening its URL; the run's times (see `change`)."""
        sent = time.time()
        self._connect()
        return self._timed(sent, timeout)

    def open_until(self, until, timeout: float = 120.0) -> None:
        """Connect and start the page's run, reading what it sends until `until(self)` holds; the run may go on."""
        self._connect()
        end = time.time() + timeout
        while not until(self):
            if time.time() > end:
                raise TimeoutError(
                    f"the page {self.page} did not get there in {timeout:.0f} s; its bars said {self.progress}"
                )
            self._read(0.1)

    def close(self) -> None:
        """Leave, as a browser tab that is closed."""
        self.ws.close()

    def _connect(self) -> None:
        headers = ({"Cookie": self.cookies} if self.cookies else {}) | self.headers or None
        started = time.time()
        self.ws = connect(
            self.url.replace("http", "ws", 1) + "/_stcore/stream",
            subprotocols=["streamlit"],
            max_size=None,
            ping_interval=None,
            additional_headers=headers,
            open_timeout=CONNECT_TIMEOUT_S,
        )  # as the browser: Streamlit has its own heartbeat
        self.connect_s = (
            time.time() - started
        )  # the websocket handshake: how long the server took to answer a new browser
        self._rerun()

    def __exit__(self, *exc) -> None:
        self.close()

    def _rerun(self, fragment_id: str = "", trigger: str | None = None) -> None:
        if not fragment_id:
            self.images, self.errors, self.progress, self.image_at = [], [], [], 0.0
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.page_name, state.page_script_hash = self.query, self.page, self.page_hash
        state.fragment_id, state.is_auto_rerun = fragment_id, bool(fragment_id)
        state.widget_states.widgets.extend(self.widgets.values())
        if trigger is not None:
            state.widget_states.widgets.add(id=self.ids[trigger], trigger_value=True)
        self.ws.send(msg.SerializeToString())

    def _read(self, timeout: float) -> ForwardMsg | None:
        try:
            data = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        msg = ForwardMsg()
        msg.ParseFromString(data)
        kind = msg.WhichOneof("type")
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            self.received.append(str(element))
            what = element.WhichOneof("type") or ""
            part = getattr(element, what, None)
            if getattr(part, "label", None) and getattr(part, "id", None):  # a widget
                self.ids[part.label] = part.id
            if what in ("markdown", "alert"):
                self.texts.append(part.body)
            if what == "alert" and part.format == part.ERROR or what == "exception":
                self.errors.append(part.body if what == "alert" else f"{part.type}: {part.message}")
            if what == "exception":  # Streamlit's own: an exception no page code caught
                self.exceptions.append(f"{part.type}: {part.message}")
            elif what == "imgs":
                self.images += [im.url for im in part.imgs]
                self.image_at = time.time()
            elif what == "progress":
                self.progress.append(part.text)
            elif what == "plotly_chart":
                self.charts.append((time.time(), part.spec))
        elif kind == "page_info_changed":  # the address bar: a browser's next rerun sends this query string
            self.address = self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            self.auto[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind in ("stop_auto_rerun", "navigation"):  # a full run (st.navigation runs in each) drops old fragments
            self.auto.clear()
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
        elif kind == "session_status_changed":
            self.running = msg.session_status_changed.script_is_running
        elif kind == "new_session":
            self.texts.clear()
        return msg

    def _until_finished(self, timeout: float | None = None) -> None:
        timeout = self.run_timeout if timeout is None else timeout
        end = time.time() + timeout
        while time.time() < end:
            msg = self._read(end - time.time())
            if msg is not None and msg.WhichOneof("type") == "script_finished":
                if msg.script_finished == msg.FINISHED_EARLY_FOR_RERUN:  # a newer run of this session goes on
                    continue
                return
        raise TimeoutError(f"the page {self.page} did not finish a run in {timeout:.0f} s")

    def _timed(self, sent: float, timeout: float | None) -> dict:
        self._until_finished(timeout)
        end = time.time()
        return {"sent": sent, "last_image": (self.image_at or end) - sent, "finished": end - sent}

    def change(self, label: str, value: float, timeout: float | None = None) -> dict:
        """Change a number input or a float slider and wait for the page's rerun, as the browser reruns it after a
        change. Returns {"sent", "last_image": seconds to the run's last image (to its end if it showed none),
        "finished": seconds to the end of the run}."""
        self.widgets[label] = WidgetState(id=self.ids[label], double_value=value)
        sent = time.time()
        self._rerun()
        return self._timed(sent, timeout)

    def send(self, kind: str, **fields) -> None:
        """Send a BackMsg of another kind than a rerun, as a script that speaks the protocol may: "clear_cache",
        "load_git_info", "stop_script", "app_heartbeat", "set_run_on_save" (fields: its value)..."""
        msg = BackMsg()
        if fields or kind in ("set_run_on_save",):
            value = fields.get("value", True)
            setattr(msg, kind, value)
        else:
            setattr(msg, kind, True)
        self.ws.send(msg.SerializeToString())

    def change_nowait(self, label: str, value: float) -> None:
        """Change a number input or a float slider and send the rerun without waiting for it (a user clicking on)."""
        self.widgets[label] = WidgetState(id=self.ids[label], double_value=value)
        self._rerun()

    def drain(self, seconds: float) -> None:
        """Read what the server sends for this long (a browser that keeps its tab open)."""
        end = time.time() + seconds
        while time.time() < end:
            self._read(max(0.01, end - time.time()))

    def set_text(self, label: str, value: str) -> None:
        self.widgets[label] = WidgetState(id=self.ids[label], string_value=value)

    def chart_ends(self) -> list[tuple[float, float]]:
        """(arrival time, last x of its first trace) of each chart received that had points: how far a curve went."""
        traces = [(t, json.loads(spec)["data"]) for t, spec in self.charts]
        return [(t, data[0]["x"][-1]) for t, data in traces if data and data[0].get("x")]

    def choose(self, label: str, option: str, timeout: float | None = None) -> dict:
        """Choose an option of a selectbox (by its shown text) and wait for the page's rerun (see change)."""
        self.widgets[label] = WidgetState(id=self.ids[label], string_value=option)
        sent = time.time()
        self._rerun()
        return self._timed(sent, timeout)

    def rerun(self, timeout: float | None = None) -> dict:
        """Rerun the page with the widgets' values set so far (set_text, set_int), as the browser does after a change."""
        sent = time.time()
        self._rerun()
        return self._timed(sent, timeout)

    def set_int(self, label: str, value: int) -> None:
        self.widgets[label] = WidgetState(id=self.ids[label], int_value=value)

    def press(self, label: str) -> None:
        """Press a button (a form's submit button sends the form's widgets with it) and wait for the run's end."""
        self._rerun(trigger=label)
        self._until_finished()

    def start_quick_run(self, epochs: int) -> None:
        """On Train live: choose the lecture quick run (the form opens on the course's hours-long recipe), set its
        epochs, press Start, as a student in a lecture does."""
        self.choose("Recipe", "lecture quick run")
        self.set_int("Epochs", epochs)
        self.press("Start")

    def shows(self, text: str) -> bool:
        """Whether a markdown or alert of the latest run contains text."""
        return any(text in t for t in self.texts)

    def watch(self, until, timeout: float) -> None:
        """Rerun the page's fragments as the browser does until `until(self)` holds (checked after each message)."""
        end, due = time.time() + timeout, {}
        while time.time() < end:
            if until(self):
                return
            now = time.time()
            for fragment_id, interval in list(self.auto.items()):
                if now >= due.setdefault(fragment_id, now + interval) and not self.running:
                    self.texts.clear()
                    self._rerun(fragment_id)
                    self.running, self.reruns, due[fragment_id] = True, self.reruns + 1, now + interval
            self._read(max(0.01, min([d - time.time() for d in due.values()] + [0.5])))
            due = {f: d for f, d in due.items() if f in self.auto}
        raise TimeoutError(f"the page did not get there in {timeout:.0f} s; it last showed {self.texts}")
