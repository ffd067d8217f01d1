"""Shared by the Part B pages: the models a page offers (bundled and this browser's runs), held-out digits, loss
curves, and display of [0, 1] images and labelled class grids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from lab.data import load_dataset
from lab.images import grid, to_uint8
from lab.train import read_history
from models.bundled import WEIGHTS
from serving.defaults import GENERATORS
from serving.generators import Samples
from ui.display import crisp
from ui.identity import owner_id, session_id
from ui.progress import waited
from ui.results import download_row
from ui.state import bundled_model, generator_job, manager, room, settings
from ui.training import loss_figure, smooth


@st.cache_data(show_spinner=False)
def heldout() -> torch.Tensor:
    data = load_dataset("mnist", "heldout")
    return data.as_float()[data.interleaved()[:50]]  # one of each digit in turn


def generator_choices() -> dict[str, tuple[str, dict]]:
    """Bundled generators, then this browser's finished DDPM / flow-matching runs: label -> (source, config)."""
    out = {label: (stem, bundled_model(stem)[1]) for stem, label in GENERATORS.items()}
    for job in manager().jobs(owner_id()):
        if job.status == "done" and job.config.experiment in ("ddpm", "flow"):
            out[f"your run {job.id} ({job.config.experiment}, {job.config.condition})"] = (
                str(job.run_dir),
                job.config.to_dict(),
            )
    return out


def generator_samples(source: str, gamma: float, steps: int, seed: int) -> Samples:
    """The generators page's samples and GIF frames, from the room (computed once for the whole server, joined by
    whoever asks meanwhile, kept in its store), a bar showing the steps while they are computed."""
    ticket = room().queue.submit_all([generator_job(source, gamma, steps, seed)], session_id())
    return waited(ticket, "sampling", st.empty() if not ticket[0].done() else None)[0]


def loss_curve(source: str, log_scale: bool = True) -> None:
    """The training loss of a bundled model (models/weights/STEM_loss.json) or of a run folder (history.jsonl)."""
    bundled = WEIGHTS / f"{source}_loss.json"
    if (Path(source) / "history.jsonl").is_file():
        rows = read_history(source)
        data = {"step": [r["step"] for r in rows], "loss": [r["loss"] for r in rows]}
    elif bundled.is_file():
        data = json.loads(bundled.read_text())
    else:
        st.caption("(no loss history for this model)")
        return
    st.plotly_chart(loss_figure(data["step"], data["loss"], log_scale, source), key=f"loss_{source}")


def class_columns(x: torch.Tensor, per_class: int) -> torch.Tensor:
    """Samples ordered class by class (class_grid) -> ordered so that a grid of one row per sample has a column per class."""
    return x.reshape(-1, per_class, *x.shape[1:]).transpose(0, 1).reshape(x.shape)


def labelled_grid(x: torch.Tensor, names: list[str], scale: int = 4) -> np.ndarray:
    """Images in [0, 1] in columns (one per name, as class_columns orders them), enlarged scale times, each column
    headed by its name: the course's figure with its labels, as wide as a projector rather than 10 rows tall."""
    from PIL import ImageDraw, ImageFont

    g = grid(x, len(names))
    g = np.asarray(Image.fromarray(crisp(g, g.shape[1] * scale)).convert("RGB"))
    head = 22
    out = Image.new("RGB", (g.shape[1], g.shape[0] + head), "white")
    out.paste(Image.fromarray(g), (0, head))
    draw, cell = ImageDraw.Draw(out), (g.shape[1] - 2 * scale) / len(names)
    for i, name in enumerate(names):
        draw.text(
            (2 * scale + (i + 0.5) * cell, head - 4),
            name[:12],
            fill="black",
            font=ImageFont.load_default(size=16),
            anchor="ms",
        )
    return np.asarray(out)


def show01(x: torch.Tensor, captions: list[str] | None, nrow: int | None = None) -> None:
    """Images in [0, 1]: a row of separate images, or one grid with nrow per row."""
    size = settings().size
    if nrow is None:
        frames = list(to_uint8(x))
        st.image([crisp(im, size) for im in frames], caption=captions, width=size, output_format="PNG")
        download_row(frames, captions)
    else:
        g = grid(x, nrow)
        st.image(crisp(g, g.shape[1] * 4), width=min(900, g.shape[1] * 4), output_format="PNG")
        download_row([g], None)


SCHEDULER_RUNS = {"flow_class": "ExponentialLR (the course's)", "flow_class_constant": "no scheduler: a constant lr"}


BETTER_COMPARED = WEIGHTS / "flow_time_better_compare.md"  # tools/compare_unets.py's table


def better_unet() -> None:
    """CS280A's better time-conditioned UNet: what it changes and how the bundled judge reads it against the course's."""
    st.subheader("CS280A · A better time-conditioned UNet")
    st.markdown(
        "The course's UNet with two changes (models/unet.py): **GroupNorm** instead of BatchNorm, so an image is "
        "normalised by its own features, the same in training and in sampling at every t (BatchNorm's running "
        "statistics average over all t), and **t as 32 sinusoidal features** instead of one number into the "
        "FCBlocks; at D 32, a quarter of the course's FLOPs."
    )
    if BETTER_COMPARED.is_file():
        st.markdown(
            "Judged by the bundled classifier (FID against the held-out digits: lower is better; confident: the "
            "share of samples it reads as one digit above 90 %), trained side by side on one 2-core CPU, one thread "
            "each:\n\n" + BETTER_COMPARED.read_text()
        )


def without_scheduler() -> None:
    """The course's 2.6: the class-conditioned flow model trained with and without ExponentialLR (bundled pictures at
    epochs 1, 5 and 10 side by side, both loss curves on one plot, each judged by the bundled classifier)."""
    cards = {stem: WEIGHTS / f"{stem}_metrics.json" for stem in SCHEDULER_RUNS}
    if not all(card.is_file() for card in cards.values()):
        return
    metrics = {stem: json.loads(card.read_text()) for stem, card in cards.items()}
    lr = metrics["flow_class_constant"]["lr"]
    st.subheader("2.6 · Without the learning-rate scheduler")
    st.markdown(
        f"The same model, data and epochs, trained twice: with the course's ExponentialLR (lr 1e-2 falling to "
        f"1e-3 over 10 epochs) and with a constant lr of {lr:g} instead, picked by a short sweep (its table is on "
        "models/weights/flow_class_constant.md). Each picture: 4 samples of each digit, 50 Euler steps, γ 5; the "
        "accuracy is the share of 400 such samples the bundled classifier reads as the digit asked for."
    )
    for epoch in metrics["flow_class"]["epochs"]:
        cols = st.columns(len(SCHEDULER_RUNS))
        for col, (stem, label) in zip(cols, SCHEDULER_RUNS.items()):
            judged = metrics[stem]["epochs"].get(epoch)
            png = WEIGHTS / f"{stem}_epoch_{int(epoch):03d}.png"
            if png.is_file() and judged:
                col.image(
                    str(png),
                    caption=f"{label}, epoch {epoch}: {judged['accuracy']:.1%} read right, FID {judged['fid']:.1f}",
                )
    curves = {label: json.loads((WEIGHTS / f"{stem}_loss.json").read_text()) for stem, label in SCHEDULER_RUNS.items()}
    log_scale = st.toggle("Log scale", True, key="b2_sched_log")
    figure = go.Figure()
    for label, data in curves.items():  # smoothed: the per-step losses of two runs drawn over each other are a blur
        figure.add_trace(go.Scatter(x=data["step"], y=smooth(data["loss"], 0.98), mode="lines", name=label))
    figure.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="step",
        yaxis_title="loss (smoothed)",
        yaxis_type="log" if log_scale else "linear",
        legend=dict(orientation="h"),
    )
    st.plotly_chart(figure, key="b2_sched_curves")
