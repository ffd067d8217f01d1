"""Shared by the Part B pages: bundled and trained models, cached sampling, display of [0, 1] images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import streamlit as st
import torch
from PIL import Image

from lab.checkpoint import load_trained
from lab.data import load_dataset
from lab.generate import class_grid, ddpm_sample, flow_sample
from lab.images import grid, to_uint8
from lab.schedules import make_alphas_cumprod
from lab.train import read_history
from models.bundled import PROMPTS, WEIGHTS, load_course_model
from models.course_backend import CourseDenoiser
from ui.common import crisp, settings
from ui.results import download_row
from ui.training import loss_figure, manager, owner_id

GENERATORS = {"ddpm_class": "DDPM, class-conditioned", "ddpm_time": "DDPM, time-conditioned",
              "flow_class": "flow matching, class-conditioned", "flow_time": "flow matching, time-conditioned"}  # fmt: skip


@st.cache_resource(show_spinner="Loading the model ...")
def bundled_model(stem: str):
    return load_course_model(stem)


@st.cache_resource(show_spinner="Loading the run ...")
def run_model(run_dir: str):
    model, config = load_trained(run_dir)
    return model, config


@st.cache_data(show_spinner=False)
def heldout() -> torch.Tensor:
    data = load_dataset("mnist", "heldout")
    return data.as_float()[data.interleaved()[:50]]  # one of each digit in turn


def generator_choices() -> dict[str, tuple[str, dict]]:
    """Bundled generators, then this browser's finished DDPM / flow-matching runs: label -> (source, config)."""
    out = {label: (stem, bundled_model(stem)[1]) for stem, label in GENERATORS.items()}
    for job in manager().jobs(owner_id()):
        if job.status == "done" and job.config.experiment in ("ddpm", "flow"):
            out[f"your run {job.id} ({job.config.experiment}, {job.config.condition})"] = (str(job.run_dir), job.config.to_dict())
    return out


@st.cache_data(show_spinner="Sampling ...", max_entries=64)
def sample_model(source: str, gamma: float, steps: int, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Samples in [0, 1] of a bundled stem or a run folder, and every few steps of the trajectory (for the GIF)."""
    model, config = bundled_model(source) if not Path(source).is_dir() else run_model(source)
    classes = config["condition"] == "class"
    labels = class_grid(10, 4) if classes else None
    low = -1.0 if config.get("signed") else 0.0
    frames = []
    g = torch.Generator().manual_seed(seed)
    record = lambda step: frames.append(((step["x"] - low) / (1 - low)).clamp(0, 1))  # noqa: E731
    if config["experiment"] == "ddpm":
        den = CourseDenoiser(model, make_alphas_cumprod(config["schedule"], config["T"]), PROMPTS[config["dataset"]] if classes else ())
        images = ddpm_sample(den, labels, 40, gamma, max(1, config["T"] // steps), g, record)
    else:
        images = flow_sample(model, labels, 40, steps, gamma, g, record)
    keep = frames[:: max(1, len(frames) // 30)] + [frames[-1]]
    return ((images - low) / (1 - low)).clamp(0, 1), keep


GENERATOR_GAMMA, GENERATOR_STEPS = 5.0, {"ddpm": 30}  # the generators page's defaults (flow: its T Euler steps)


def default_steps(config: dict) -> int:
    return GENERATOR_STEPS.get(config["experiment"], config["T"])


def warm_generators(seed: int) -> None:
    """The generators page's first picture (its first model, default gamma and steps) into the cache, so that a room
    opening the page is served at once (ui/room.py calls it at server start)."""
    stem = next(iter(GENERATORS))
    sample_model(stem, GENERATOR_GAMMA, default_steps(bundled_model(stem)[1]), seed)


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
        draw.text((2 * scale + (i + 0.5) * cell, head - 4), name[:12], fill="black", font=ImageFont.load_default(size=16), anchor="ms")
    return np.asarray(out)


def show01(x: torch.Tensor, captions: list[str] | None, nrow: int | None = None) -> None:
    """Images in [0, 1]: a row of separate images, or one grid with nrow per row."""
    size = settings().size
    if nrow is None:
        frames = list(to_uint8(x))
        st.image([crisp(im, size) for im in frames], caption=captions, width=size)
        download_row(frames, captions)
    else:
        g = grid(x, nrow)
        st.image(crisp(g, g.shape[1] * 4), width=min(900, g.shape[1] * 4))
        download_row([g], None)
