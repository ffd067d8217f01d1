"""The training page's parts: a run's live view (status, loss curve, metrics, samples), its failure advice, the
read-only follow link (with the controls of a run the lecturer shared), the lecturer's panel and the link to my runs."""

from __future__ import annotations

import math
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from serving.jobs import RUN_ID, Caller, Job
from serving.settings import TrainingSettings
from ui.identity import caller, lecturer_key, sign_in, switch_owner
from ui.messages import for_browser, plain
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
    traces = [
        dict(
            type="scatter",
            x=steps,
            y=losses,
            mode="lines",
            name="per step",
            line=dict(width=1, color="rgba(99,110,250,0.35)"),
        ),
        dict(
            type="scatter",
            x=steps,
            y=smoothed,
            mode="lines",
            name="smoothed",
            line=dict(width=3, color="rgb(99,110,250)"),
        ),
    ]
    yaxis = dict(title=dict(text="loss"), type="log" if log_scale else "linear")
    if log_scale:  # ticks at 1, 2, 5 x 10^k labelled as numbers (Plotly's own: "2", "5" digits, or 10^-2 exponents)
        yaxis |= log_ticks([v for v in losses if v > 0])
    layout = dict(
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(title=dict(text="step")),
        yaxis=yaxis,
        legend=dict(orientation="h"),
        uirevision=revision,
    )
    return go.Figure(data=traces, layout=layout, _validate=False)


def log_ticks(values: list[float]) -> dict:
    """tickvals / ticktext of a log axis over values: 1, 2 and 5 times powers of ten, written as plain numbers."""
    if not values:
        return {}
    lo, hi = min(values), max(values)
    ticks = [
        m * 10.0**e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)
    ]
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
    elif job.note:
        st.info(plain(for_browser(f"The server {job.note}.")))
    elif job.status == "stopped" and not m.has_checkpoint(job.id):
        st.info("This run stopped before its first checkpoint: Resume starts it again from its settings.")
    if job.steps:
        last = job.steps[-1]
        eta = job.eta_seconds()
        c = st.columns(5)
        c[0].metric("step", f"{last['step']} / {job.total_steps}")
        c[1].metric(
            "epoch",
            f"{last['epoch']:.2f} / {job.config.epochs}",
            help="the course's epochs: 60,000 images each, drawn from passes over the bundled digits"
            if job.config.epoch_images
            else "passes over the data",
        )
        c[2].metric("learning rate", f"{last['lr']:.2g}", help=lr_by_epoch(job.config))
        c[3].metric("images / s", f"{job.images_per_s():.0f}")
        c[4].metric("ETA", "-" if eta is None or job.finished else f"{eta / 60:.1f} min")
    if (
        job.steps or not job.finished
    ):  # drawn empty while it waits: the browser loads Plotly before the first step comes
        curve = loss_figure([s["step"] for s in job.steps], [s["loss"] for s in job.steps], log_scale, job.id)
        st.plotly_chart(curve, key=f"curve_{job.id}")
    if job.samples_png and Path(job.samples_png).exists():
        st.image(str(job.samples_png), caption=f"samples {job.samples_label}", width=420)
    snapshots = [(e, job.run_dir / "samples" / f"epoch_{e:03d}.png") for e in job.config.snapshot_epochs]
    if any(png.is_file() for _, png in snapshots):  # the course's figures: samples after the epochs it shows
        st.caption("Samples after the epochs the course shows")
        for col, (epoch, png) in zip(st.columns(len(snapshots)), snapshots):
            if png.is_file():
                col.image(str(png), caption=f"after epoch {epoch}")


def lr_by_epoch(config) -> str:
    """The learning rate of each epoch, as the run's schedule sets it (ExponentialLR: stepped once per epoch)."""
    gamma = 0.1 ** (1 / config.epochs) if config.lr_schedule == "exponential" else 1.0
    rates = ", ".join(f"{config.lr * gamma**k:.2g}" for k in range(min(config.epochs, 20)))
    return f"{config.lr_schedule} schedule; by epoch: {rates}{' ...' if config.epochs > 20 else ''}"


def failure_advice(job: Job, step: int | None) -> str:
    """What a failed run's page says: what happened and what to do, by what failed (step: of its latest checkpoint)."""
    if job.status == "damaged":
        return job.error[0].upper() + job.error[1:]
    if "training process" in job.error:  # killed, out of memory, or died without a word: the settings are not to blame
        kept = (
            f"its last checkpoint, at step {step}, is kept: Resume goes on from there"
            if step is not None
            else "it had no checkpoint yet: Resume starts it again"
        )
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
    """?follow=<run id>: the run shown live, read-only (no Start, Stop or Resume, no owner id in the URL; Stop and
    Resume where the lecturer shared the run's controls with the room); True if this page is such a link (drawn here),
    False for a user's own page. The id is checked against a run id's pattern and never drawn as markdown."""
    run_id = st.query_params.get("follow")
    if not run_id:
        return False
    if not RUN_ID.fullmatch(run_id):
        st.error(
            "This link does not name a run (a run's link ends in ?follow= and an id such as 20261202-101500-a1b2c3). "
            "Ask for the link again, or open Train live without it to train your own."
        )
        return True
    try:
        job = manager().get(run_id)
    except ValueError:
        st.error(
            f"There is no run {run_id} on this server (the link may be old, or the run was removed). "
            "Ask for a new link, or open Train live without it to train your own."
        )
        return True
    if job.shared:
        st.info(f"The lecturer shared run {job.id} with the room: anyone following it may stop and resume it.")
        run_controls(job, caller(), "follow")
    else:
        st.info(f"You are following run {job.id} read-only: it trains on the server, you see it live.")
    live_view(job, st.toggle("Log scale", True, key="follow_log"))
    return True


def command(action, *args, **kwargs) -> None:
    """A button's callback: the job manager's refusal (not yours, a limit) becomes the page's message."""
    try:
        action(*args, **kwargs)
    except ValueError as e:  # NotAllowed, RunLimit, a run that is not in that state
        st.session_state["train_message"] = str(e)


def run_controls(job: Job, by: Caller, key: str) -> None:
    """Stop and Resume of a shared run (a follower's) or any run (the lecturer's)."""
    m = manager()
    c = st.columns(2)
    c[0].button("Stop", disabled=job.finished, key=f"{key}_stop_{job.id}", on_click=command, args=(m.stop, job.id, by))
    c[1].button(
        "Resume",
        disabled=job.status not in ("stopped", "failed"),
        key=f"{key}_resume_{job.id}",
        on_click=command,
        args=(m.resume, job.id, by),
    )
    if "train_message" in st.session_state:
        st.warning(st.session_state.pop("train_message"))


def lecturer_panel(by: Caller) -> None:
    """The lecturer's sign-in (with the key, or Streamlit's own login where one is configured) and, once signed in,
    every run of the server: stop any, start a queued one next, share a run's controls with the room, remove a finished
    one, clear the queue."""
    m = manager()
    if not by.lecturer:
        key, login = lecturer_key(), bool(TrainingSettings.from_env().lecturers)
        if key or login:
            with st.expander("Lecturer"):
                if login:  # Streamlit's own login, with the identity provider of secrets.toml's [auth]
                    st.button("Log in as the lecturer", key="lecturer_login", on_click=st.login)
                if key:
                    with st.form("lecturer_sign_in"):
                        typed = st.text_input("Lecturer key", type="password", max_chars=200)
                        if st.form_submit_button("Sign in"):
                            try:
                                if sign_in(typed):
                                    st.rerun()
                                st.error("That is not the lecturer's key.")
                            except ValueError as e:  # too many wrong keys (wait), or the server's key is too short
                                st.error(str(e))
        return
    with st.expander("Lecturer: the room's runs", expanded=True):
        queued = m.queued()
        st.caption(
            f"{len(m.running())} running, {len(queued)} queued. You may stop any run, start a queued run next, and "
            "share a run's Stop and Resume with the room (its follow link then shows them)."
        )
        st.button(
            "Clear the queue", disabled=not queued, key="lecturer_clear", on_click=command, args=(m.clear_queue, by)
        )
        for job in m.all_jobs(by)[:50]:
            position = m.queue_position(job.id)
            c = st.columns([4, 1, 1, 1, 1])
            c[0].text(
                f"{job.id} · {job.config.experiment} D={job.config.D} · {f'queued {position}' if position else job.status}"
            )
            c[1].button(
                "⏹ Stop",
                disabled=job.finished,
                key=f"lecturer_stop_{job.id}",
                on_click=command,
                args=(m.stop, job.id, by),
            )
            c[2].button(
                "⏫ Next",
                disabled=position is None,
                key=f"lecturer_next_{job.id}",
                on_click=command,
                args=(m.move_first, job.id, by),
            )
            c[3].button(
                "Unshare" if job.shared else "Share",
                key=f"lecturer_share_{job.id}",
                on_click=command,
                args=(m.share, job.id, not job.shared, by),
            )
            c[4].button(
                "🗑 Remove",
                disabled=not job.finished,
                key=f"lecturer_remove_{job.id}",
                on_click=command,
                args=(m.remove, job.id, by),
            )
        if "train_message" in st.session_state:
            st.warning(st.session_state.pop("train_message"))


def owner_offer() -> None:
    """A ?owner= link opened in a browser that has runs of its own: say so, and switch only when asked."""
    if "owner_offer" not in st.session_state:
        return
    st.info(
        "You opened a link to another browser's runs. This browser keeps its own runs unless you switch: after the "
        "switch it shows the link's runs, and runs you start belong to them."
    )
    c1, c2 = st.columns(2)
    c1.button("Switch to the link's runs", key="owner_switch", on_click=switch_owner)
    c2.button("Keep my runs", key="owner_keep", on_click=st.session_state.pop, args=("owner_offer", None))


def my_runs_link(owner: str) -> None:
    """A link that opens this browser's runs in another browser, shown only when asked for (it is the key to them: a
    projector should not show it)."""
    if st.button(
        "Show a link to my runs",
        key="my_runs_link",
        help="to open your runs on another device; whoever has it can stop your runs, so do not project or share it",
    ):
        st.warning("Whoever opens this link can stop and resume your runs: keep it to yourself.")
        st.code(f"./b4_train?owner={owner}", language=None)
