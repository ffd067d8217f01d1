"""A page's requests through the room: ``ask(lab.sdedit, x0, 10, prompt, gamma, generator=seed)`` is the notebook's
call on the sidebar's backend; ``results`` gives what the room computes for them, with a progress bar that says how
many requests of other browsers are ahead of them, then the steps of theirs."""

from __future__ import annotations

from serving.requests import Request, Result
from ui.identity import session_id
from ui.state import backend, room, settings
from ui.turns import turns

POLL_S = 0.2  # a waiting page redraws its bar this often (each redraw lets Streamlit stop it when its user moves on)


def ask(fn, *args, **kwargs) -> Request:
    """The request for the course function fn(den, *args, **kwargs) on the sidebar's backend and device."""
    s = settings()
    return Request.of(fn, s.backend, s.device, *args, **kwargs)


def result(request: Request, bar=None) -> Result:
    """request's result (see results)."""
    return results([request], bar)[0]


def results(requests: list[Request], bar=None) -> list[Result]:
    """The requests' results, computed together by the room's queue (or joined, or from its store).

    The bar shows how many requests are ahead of this page's, then the steps of its own. A page that reruns (its
    user moved a control) or closes stops waiting: its requests are released, and dropped if nobody else waits.
    """
    tickets = room().submit(requests, backend, session_id())
    what = ", ".join(dict.fromkeys(r.what for r in requests)) + (
        f" ({len(set(requests))} runs)" if len(set(requests)) > 1 else ""
    )
    return waited(tickets, what, bar)


def waited(tickets: list, what: str, bar=None) -> list:
    """The tickets' results, the bar showing the requests ahead and then the steps (see results); released at the end."""
    try:
        if any(not t.done() for t in tickets):
            with turns().away():  # a page that waits for the model lets another draw meanwhile (ui/turns.py)
                while waiting := [t for t in tickets if not t.done()]:
                    if bar is not None:
                        bar.progress(*status(tickets, what))  # also where Streamlit stops this run when its page reruns
                    waiting[0].wait(POLL_S)
        if bar is not None:
            bar.empty()
        return [t.result() for t in tickets]
    finally:
        for t in tickets:
            t.release()


def status(tickets, what: str = "denoising") -> tuple[float, str]:
    """(fraction done, text) of a page's requests: its place in line while none runs, else what runs and its steps."""
    progress = [t.progress() for t in tickets]
    done = sum(p.total if t.done() else p.done for t, p in zip(tickets, progress))
    total = sum(p.total for p in progress)
    if not any(p.done for p in progress):
        ahead = [p for p in (t.position() for t in tickets) if p is not None]
        if ahead and min(ahead) > 0:
            n = min(ahead)
            return 0.0, f"waiting: {n} request{'s' if n > 1 else ''} of other browsers ahead of yours"
    return (done / total if total else 0.0), f"{what}: step {done} of {total}" if total else f"{what}: starting"
