"""Train live's form: its recipes (the course's, Fall 2024 and Fall 2025/2026, and a lecture's quick run) as the
form's values, what each costs, and the run the form asks for (form_config)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from lab.train_config import COURSE, PART_A_BACKEND, PART_A_FLOW_BACKEND, TrainConfig, course_config


@dataclass(frozen=True)
class Recipe:
    """Settings of the Train live form (widget key -> value) and what they cost, said under the recipe's name."""

    values: dict
    note: str


def course_recipe(experiment: str, method: str) -> dict:
    """The course's class-conditioned recipe (lab.train_config.COURSE) as the form's values: its D, batch, lr, epochs of 60,000
    images, ExponentialLR, no clipping."""
    c = COURSE[experiment]
    return dict(
        train_exp="class-conditioned",
        train_method=method,
        train_dataset="mnist",
        train_D=c["D"],
        train_epochs=c["epochs"],
        train_epoch_size=COURSE_EPOCH,
        train_batch=c["batch_size"],
        train_lr=c["lr"],
        train_schedule="exponential",
        train_clip="none",
        train_sample_steps=200,
        train_unet="course",
    )


PART_A, PART_A_FLOW = "Part A backend", "Part A backend (Fall 2026, flow)"
EXPERIMENTS = ["class-conditioned", "time-conditioned", "single-step denoiser", PART_A, PART_A_FLOW]
COURSE_EPOCH, PASS = "60,000 images (the course's)", "one pass over the data"
UNET_CHOICES = {"course": "the course's", "better": "better (CS280A: GroupNorm, sinusoidal t)"}  # TrainConfig.unet


def form_config(values: dict, checkpoint_every_s: float | None = 60.0, cuda_elsewhere: bool = False) -> TrainConfig:
    """The run the Train live form asks for (values: widget key -> value, as RECIPES writes them): the course's settings
    of its experiment with the form's changes, grids after every epoch and at the course's snapshot epochs."""
    experiment, method, epochs = values["train_exp"], values["train_method"], int(values["train_epochs"])
    exp = (
        "denoiser"
        if experiment == "single-step denoiser"
        else "ddpm"
        if experiment == PART_A or (method == "DDPM" and experiment != PART_A_FLOW)
        else "flow"
    )
    condition = None if exp == "denoiser" else "time" if experiment == "time-conditioned" else "class"
    extra = {PART_A: PART_A_BACKEND, PART_A_FLOW: PART_A_FLOW_BACKEND}.get(experiment, {})
    snapshots = tuple(e for e in COURSE[exp]["snapshot_epochs"] if e <= epochs)  # the epochs the course shows
    clip = values["train_clip"]
    return course_config(
        exp,
        condition,
        D=values["train_D"],
        epochs=epochs,
        batch_size=values["train_batch"],
        lr=values["train_lr"],
        lr_schedule=values["train_schedule"],
        dataset=values["train_dataset"],
        device=values.get("train_device", "cpu"),
        grad_clip=None if clip == "none" else float(clip),
        epoch_images=60_000 if values["train_epoch_size"] == COURSE_EPOCH else 0,
        snapshot_epochs=snapshots,
        sample_every=1,
        sample_every_steps=values["train_sample_steps"],
        checkpoint_every_s=checkpoint_every_s,
        cuda_elsewhere=cuda_elsewhere,
        unet=values.get("train_unet", "course"),
        **extra,
    )


# Times: steps at the s/step benchmarks/bench_train.py --recipes measured on a 2-core AMD EPYC without bf16 (docs/performance.md)
RECIPES = {
    "course recipe, Fall 2025 and 2026 (flow matching)": Recipe(
        course_recipe("flow", "flow matching"),
        "The course's: D 64, batch 64, Adam 1e-2 with ExponentialLR (a tenth of it by the end), no clipping, 10 epochs of "
        "60,000 images (9,380 steps), the class dropped 10 % of the time. About 3.5 hours on a quiet 2-core CPU without "
        "bf16 (1.4 s a step), under half that on one that computes bf16, minutes on a GPU; samples after epochs 1, 5 "
        "and 10, as the course shows them.",
    ),
    "course recipe, Fall 2024 (DDPM)": Recipe(
        course_recipe("ddpm", "DDPM"),
        "The course's: D 64, batch 128, Adam 1e-3 with ExponentialLR, no clipping, 20 epochs of 60,000 images (9,380 "
        "steps), T = 300. About 6 hours on a quiet 2-core CPU without bf16 (2.3 s a step), minutes on a GPU; samples "
        "after epochs 5 and 20.",
    ),
    "lecture quick run": Recipe(
        dict(
            train_exp="class-conditioned",
            train_method="flow matching",
            train_dataset="mnist",
            train_D=16,
            train_epochs=10,
            train_epoch_size=PASS,
            train_batch=64,
            train_lr=3e-3,
            train_schedule="exponential",
            train_clip="1.0",
            train_sample_steps=50,
            train_unet="course",
        ),
        "Small enough for a lecture: D 16, lr 3e-3 with gradient clipping, 10 passes over the 4,500 bundled digits (710 "
        "steps). Digits by the second or third pass (under a minute); about 2 minutes in all on a quiet 2-core CPU "
        "(0.14 s a step, and the previews).",
    ),
}
FORM_KEYS = tuple(RECIPES["lecture quick run"].values)  # the form's widgets a recipe fills (form_config reads them)
EDITION_RECIPE = {
    "2026": "course recipe, Fall 2025 and 2026 (flow matching)",
    "2024": "course recipe, Fall 2024 (DDPM)",
}


def apply_recipe(key: str = "train_recipe") -> None:
    """Fill the form with the recipe chosen (the recipe box's on_change)."""
    recipe = RECIPES.get(st.session_state.get(key))
    if recipe is not None:  # (a value the box cannot hold, sent by a script, changes nothing)
        st.session_state.update(recipe.values)


def open_recipe(edition: str) -> None:
    """A browser's first view of the form: the course's recipe of the sidebar's edition."""
    if st.session_state.get("train_recipe") not in RECIPES:
        st.session_state["train_recipe"] = EDITION_RECIPE[edition]
        apply_recipe()
