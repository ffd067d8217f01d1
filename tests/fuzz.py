"""A fuzzer of the browser's protocol: what a student's script can send to a served lab.

For each page it opens a session (tests/remote_client.py) and, round after round, reruns the page with random widget
states (the right and the wrong kind of value, out-of-range numbers, oversized strings, unknown widget ids, buttons
pressed) or sends one of the other client messages Streamlit accepts (clear_cache, load_git_info, stop_script,
app_heartbeat, set_run_on_save, file_urls_request, the debug ones). A page holds when none of its runs shows an
exception: neither Streamlit's nor the lab's "Something went wrong" (a clear message about the bad value is fine).

Used by tests/test_fuzz.py (a few rounds a page, seeded) and benchmarks/bench_fuzz.py (many, for minutes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from remote_client import RemoteClient
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

BROKEN = ("Something went wrong", "Traceback")  # what a page that did not hold shows
MESSAGES = (
    "clear_cache",
    "load_git_info",
    "stop_script",
    "app_heartbeat",
    "set_run_on_save",
    "debug_disconnect_websocket",
    "debug_shutdown_runtime",
    "file_urls_request",
)


def random_value(rng: random.Random) -> dict:
    """One WidgetState value of a random kind: numbers far out of range, NaN and infinities, huge and odd strings,
    arrays, JSON, bytes, a trigger."""
    kind = rng.choice(
        [
            "double_value",
            "int_value",
            "string_value",
            "bool_value",
            "json_value",
            "trigger_value",
            "double_array_value",
            "int_array_value",
            "string_array_value",
            "bytes_value",
        ]
    )
    if kind == "double_value":
        return {kind: rng.choice([-1e308, -1.0, 0.0, 0.5, 3.0, 1e9, 1e308, float("nan"), float("inf"), -float("inf")])}
    if kind == "int_value":
        return {kind: rng.choice([-(2**63), -1, 0, 1, 7, 10**6, 2**63 - 1])}
    if kind == "string_value":
        return {
            kind: rng.choice(
                [
                    "",
                    "3",
                    "a high quality photo",
                    "x" * 100_000,
                    "[link](https://example.org)",
                    "\x00\ud7ff",
                    "🌫️" * 50,
                    "../../etc/passwd",
                    "<script>alert(1)</script>",
                ]
            )
        }
    if kind == "bool_value":
        return {kind: rng.random() < 0.5}
    if kind == "json_value":
        return {
            kind: rng.choice(["{}", "[]", "null", '{"data": "data:image/png;base64,AAAA"}', "not json", "[" * 1000])
        }
    if kind == "trigger_value":
        return {kind: True}
    if kind == "bytes_value":
        return {kind: bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 16, 4096])))}
    return {kind: None}


@dataclass
class Fuzzer:
    url: str
    seed: int = 0
    broken: list[tuple[str, str]] = field(default_factory=list)  # (page, what it showed)
    rounds: int = 0

    def page(self, page: str, rounds: int, timeout: float = 180.0) -> None:
        """rounds of random input to one session of page; what breaks it is recorded in self.broken (a page that does
        not finish its first run within timeout among them: Part B 2's 300 steps are a minute or two of a busy CPU)."""
        rng = random.Random(f"{self.seed}:{page}")
        client = RemoteClient(self.url, page)
        try:
            client.open(timeout=timeout)
            self._check(page, client)
            for _ in range(rounds):
                self.rounds += 1
                if rng.random() < 0.2:
                    self._message(client, rng)
                    client.drain(0.2)
                    continue
                self._rerun(client, rng)
                try:
                    client._until_finished(timeout)
                except TimeoutError:
                    pass  # a stopped script, a refused message: the next rerun goes on
                self._check(page, client)
        except (ConnectionError, OSError, TimeoutError) as e:
            self.broken.append((page, f"{type(e).__name__}: {e}"))
        finally:
            try:
                client.close()
            except Exception:
                pass

    def _rerun(self, client: RemoteClient, rng: random.Random) -> None:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.page_name, state.page_script_hash = client.query, client.page, client.page_hash
        ids = list(client.ids.values()) + [f"$$ID-{rng.getrandbits(64):x}-unknown", "", "x" * 5000]
        for widget in rng.sample(ids, k=min(len(ids), rng.randint(1, 4))):
            value = random_value(rng)
            name, v = next(iter(value.items()))
            ws = WidgetState(id=widget)
            if name.endswith("_array_value"):
                getattr(ws, name).data.extend(
                    {
                        "double_array_value": [1e308, -1.0],
                        "int_array_value": [2**62, -5],
                        "string_array_value": ["", "x" * 10_000],
                    }[name]
                )
            else:
                setattr(ws, name, v)
            state.widget_states.widgets.append(ws)
        client.images, client.errors, client.progress, client.image_at = [], [], [], 0.0
        client.ws.send(msg.SerializeToString())

    @staticmethod
    def _message(client: RemoteClient, rng: random.Random) -> None:
        kind = rng.choice(MESSAGES)
        msg = BackMsg()
        if kind == "file_urls_request":
            msg.file_urls_request.request_id = "r"
            msg.file_urls_request.file_names.extend(["../../etc/passwd", "x" * 1000])
            msg.file_urls_request.session_id = "not-a-session"
        else:
            setattr(msg, kind, True)
        client.ws.send(msg.SerializeToString())

    def _check(self, page: str, client: RemoteClient) -> None:
        for error in client.exceptions + [e for e in client.errors if any(b in e for b in BROKEN)]:
            self.broken.append((page, error[:300]))
        client.exceptions.clear()
