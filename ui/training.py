"""The training page's parts: a run's live view (status, loss curve, metrics, samples), its failure advice, and the
read-only follow link."""

from __future__ import annotations

import math
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from serving.jobs import Job
from ui.messages import for_browser
from ui.state import manager


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average, as TensorBoard smooths a curve."""
    out, last = [], None
    for v in values:
        last = v if last is None else weight * last + (1 - weight) * v
        out.append(last)
    return out


def loss_figure(steps: list[int], losses: list[float], log_scale: bool, revision: str, points: int = 600) -> go.Figure:
    """Loss per step and smoothed (at most `points` of each drawn: a redraw stays cheap however long the run);
    revision keeps the user's zoom across redraws of the same curve. Built from plain dicts without Plotly's
    validation (10 ms -> 1 ms a redraw; tests/test_pages_partb.py checks it equals the validated figure)."""
    smoothed = smooth(losses)
    if len(steps) > points:
        keep = [*range(0, len(steps) - 1, len(steps) // points + 1), len(steps) - 1]
        steps, losses, smoothed = [steps[i] for i in keep], [losses[i] for i in keep], [smoothed[i] for i in keep]
    traces = [dict(type="scatter", x=steps, y=losses, mode="lines", name="per step", line=dict(width=1, color="rgba(99,110,250,0.35)")),
              dict(type="scatter", x=steps, y=smoothed, mode="lines", name="smoothed", line=dict(width=3, color="rgb(99,110,250)"))]  # fmt: skip
    yaxis = dict(title=dict(text="loss"), type="log" if log_scale else "linear")
    if log_scale:  # ticks at 1, 2, 5 x 10^k labelled as numbers (Plotly's own: "2", "5" digits, or 10^-2 exponents)
        yaxis |= log_ticks([v for v in losses if v > 0])
    layout = dict(height=320, margin=dict(l=10, r=10, t=30, b=10), xaxis=dict(title=dict(text="step")),
                  yaxis=yaxis, legend=dict(orientation="h"), uirevision=revision)  # fmt: skip
    return go.Figure(data=traces, layout=layout, _validate=False)


def log_ticks(values: list[float]) -> dict:
    """tickvals / ticktext of a log axis over values: 1, 2 and 5 times powers of ten, written as plain numbers."""
    if not values:
        return {}
    lo, hi = min(values), max(values)
    ticks = [m * 10.0**e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if lo / 2.5 <= t <= hi * 2.5]
    return dict(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])


def job_view(job: Job, log_scale: bool) -> None:
    """Status, curve, stats and the latest samples of one run (redrawn by the page's fragment)."""
    m = manager()
    position = m.queue_position(job.id)
    label = f"queued, position {position}" if position else job.status
    st.markdown(f"**{job.config.experiment} ({job.config.condition}), D = {job.config.D}** · run `{job.id}` · {label}")
    if job.error:
        st.error(for_browser(failure_advice(job, m.checkpoint_step(job.id))))
    elif job.status == "stopped" and not m.has_checkpoint(job.id):
        st.info("This run stopped before its first checkpoint: Resume starts it again from its settings.")
    if job.steps:
        last = job.steps[-1]
        eta = job.eta_seconds()
        c = st.columns(4)
        c[0].metric("step", f"{last['step']} / {job.total_steps}")
        c[1].metric("learning rate", f"{last['lr']:.2g}")
        c[2].metric("images / s", f"{job.images_per_s():.0f}")
        c[3].metric("ETA", "-" if eta is None or job.finished else f"{eta / 60:.1f} min")
    if job.steps or not job.finished:  # drawn empty while it waits: the browser loads Plotly before the first step comes
        curve = loss_figure([s["step"] for s in job.steps], [s["loss"] for s in job.steps], log_scale, job.id)
        st.plotly_chart(curve, key=f"curve_{job.id}")
    if job.samples_png and Path(job.samples_png).exists():
        st.image(str(job.samples_png), caption=f"samples {job.samples_label}", width=420)


def failure_advice(job: Job, step: int | None) -> str:
    """What a failed run's page says: what happened and what to do, by what failed (step: of its latest checkpoint)."""
    if "training process" in job.error:  # killed, out of memory, or died without a word: the settings are not to blame
        kept = f"its last checkpoint, at step {step}, is kept: Resume goes on from there" if step is not None else \
            "it had no checkpoint yet: Resume starts it again"  # fmt: skip
        return f"The run stopped: {job.error}. {kept[0].upper()}{kept[1:]}."
    return f"The run failed: {job.error}. Change the settings (a lower learning rate?) and resume or start again."


def redraw_every(job: Job) -> float | None:
    """A running run's curve is redrawn every 0.5 s (a logged step is on the chart within a second); a run queued
    behind others only waits, so its page asks every 2 s (a room of waiting pages costs the training little)."""
    m = manager()
    if job.finished:
        return None
    return 2.0 if job.status == "queued" and len(m.running()) >= m.max_running else 0.5


def live_view(job: Job, log_scale: bool) -> None:
    """job_view, redrawn at the run's pace; when the pace changes (the run started or ended) the page reruns."""
    pace = redraw_every(job)

    @st.fragment(run_every=pace)
    def live() -> None:
        job_view(job, log_scale)
        if redraw_every(job) != pace:
            st.rerun()  # redraw the buttons; poll at the new pace

    live()


def follow_link() -> bool:
    """?follow=<run id>: the run shown live, read-only (no Start, Stop or Resume, no owner id in the URL); True if
    this page is such a link (drawn here), False for a user's own page."""
    run_id = st.query_params.get("follow")
    if not run_id:
        return False
    try:
        job = manager().get(run_id)
    except ValueError:
        st.error(f"There is no run {run_id!r} on this server (the link may be old, or the run was removed). "
                 "Ask for a new link, or open Train live without it to train your own.")  # fmt: skip
        return True
    st.info(f"You are following run {job.id} read-only: it trains on the server, you see it live.")
    live_view(job, st.toggle("Log scale", True, key="follow_log"))
    return True

