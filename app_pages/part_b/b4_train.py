"""Train a UNet live: a background job with a live Plotly loss curve, samples every N steps and every epoch, Stop and Resume."""

from functools import partial

import streamlit as st

from serving.jobs import RunLimit
from ui.identity import caller
from ui.messages import page_waits
from ui.recipes import (
    COURSE_EPOCH,
    EXPERIMENTS,
    FORM_KEYS,
    PASS,
    RECIPES,
    UNET_CHOICES,
    apply_recipe,
    form_config,
    open_recipe,
)
from ui.state import checkpoint_every_s, cuda_elsewhere, manager, settings
from ui.training import command, follow_link, lecturer_panel, live_view, my_runs_link, owner_offer

st.title("Train live")
st.markdown(
    "Runs train in the background: leave the page, refresh, come back; the run goes on. "
    "The server trains a limited number of runs at once and queues the rest."
)
st.caption(
    "Finished DDPM and flow-matching runs appear on the Part B generators page; a finished **Part A backend** "
    "(class-conditioned DDPM with T = 1000 and DeepFloyd IF's schedule) also joins the sidebar's Backend list "
    "of the Fall 2024 edition and drives every Part A page; a **Part A backend (Fall 2026, flow)** (class-"
    "conditioned flow matching of images in [-1, 1]) joins the Fall 2026 edition's."
)
m = manager()
m.warm_up()  # its training processes' fork server: Start then answers in under a second
if follow_link():  # a room following the lecturer's run: the run, live, and no buttons
    page_waits()
me = caller()
owner_offer()
lecturer_panel(me)
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
open_recipe(settings().edition)
recipe = st.selectbox(
    "Recipe",
    list(RECIPES),
    key="train_recipe",
    on_change=apply_recipe,
    args=("train_recipe",),
    help="fills the settings below; change any of them before Start",
)
if recipe in RECIPES:
    st.caption(RECIPES[recipe].note)
with st.form("train_form"):
    c = st.columns(3)
    c[0].selectbox("Experiment", EXPERIMENTS, key="train_exp")
    c[1].selectbox(
        "Method",
        ["flow matching", "DDPM"],
        key="train_method",
        help="a Part A backend is DDPM (Fall 2024); Part A backend (Fall 2026, flow) flow matching",
    )
    c[2].selectbox("Dataset", ["mnist", "fashion_mnist"], key="train_dataset")
    c = st.columns(6)
    c[0].select_slider("D", [8, 16, 32, 64, 128], key="train_D")
    c[1].number_input("Epochs", 1, 200, key="train_epochs")
    c[2].selectbox(
        "Epoch",
        [COURSE_EPOCH, PASS],
        key="train_epoch_size",
        help="the course's epoch is MNIST's 60,000 training digits; the bundled set has 4,500, so a course "
        "epoch is 13.3 shuffled passes over them (Fashion-MNIST's 60,000: one pass either way)",
    )
    c[3].select_slider("Batch", [32, 64, 128, 256], key="train_batch")
    c[4].selectbox(
        "UNet",
        list(UNET_CHOICES),
        format_func=UNET_CHOICES.get,
        key="train_unet",
        help="the course's, or CS280A's better one: GroupNorm instead of BatchNorm, t as sinusoidal features "
        "(D a multiple of 8; its bundled model and how it was judged: Part B 2's generators page)",
    )
    device_col = c[5]
    c = st.columns(4)
    c[0].select_slider("Learning rate", LEARNING_RATES, key="train_lr")
    c[1].selectbox(
        "LR schedule",
        ["exponential", "constant"],
        key="train_schedule",
        help="exponential: the course's ExponentialLR, lr x 0.1 ** (1 / epochs) after each epoch (a tenth "
        "of it by the end); constant: the course's 2.6, no scheduler",
    )
    c[2].selectbox("Gradient clip", ["none", "1.0"], key="train_clip", help="max gradient norm (the course: none)")
    c[3].select_slider(
        "Preview every",
        [0, 20, 50, 100, 200],
        format_func=lambda n: f"{n} steps" if n else "never",
        key="train_sample_steps",
        help="a row of samples, one per class, every this many steps (a grid comes after every epoch)",
    )
    elsewhere = cuda_elsewhere()  # a GPU of the Ray cluster that trains the runs, though this machine has none
    gpus = st.session_state.get("device") == "cuda" or elsewhere
    device = device_col.selectbox("Device", ["cpu", "cuda"] if gpus else ["cpu"], key="train_device")
    start = st.form_submit_button("Start", type="primary")
if start:
    values = {key: st.session_state.get(key) for key in FORM_KEYS} | {"train_device": device}
    config = form_config(values, checkpoint_every_s=checkpoint_every_s(), cuda_elsewhere=elsewhere)
    try:
        st.session_state["train_pick"] = m.submit(me, config).id  # the page shows the run just started
    except RunLimit as e:
        st.warning(str(e))

jobs = m.jobs(me.owner)
if not jobs:
    st.info(
        "Choose a recipe (and change what you like) and press Start. The lecture quick run (class-conditioned flow "
        "matching, D = 16) draws a preview row (a sample of each digit) every 50 steps and a grid after every epoch: "
        "the first picture about 13 s in, then one every 7-10 s; strokes at first, digits by the second or third "
        "epoch (under a minute); after 5 epochs an independent classifier reads 92-96 % of them right. 5 epochs take "
        "about 1.5 minutes on a quiet 2-core CPU (98 s measured with the previews, 86 s without: set Preview every "
        "to never); a server busy with a room, or other runs, takes longer."
    )
    page_waits()
ids = [j.id for j in jobs]
if st.session_state.get("train_pick") not in ids:
    st.session_state["train_pick"] = ids[0]
job = m.get(st.selectbox("Run", ids, key="train_pick"))
log_scale = st.toggle("Log scale", True, key="train_log")
if job.status in ("stopped", "failed"):  # what a resume may change (a diverged run's message says: lower the rate)
    r = st.columns(2)
    r[0].select_slider(
        "Learning rate from here on", sorted({*LEARNING_RATES, job.config.lr}), job.config.lr, key=f"resume_lr_{job.id}"
    )
    r[1].number_input("Epochs in all", 1, 200, job.config.epochs, key=f"resume_epochs_{job.id}")


def resume(job) -> None:
    command(
        m.resume,
        job.id,
        me,
        lr=st.session_state[f"resume_lr_{job.id}"],
        epochs=int(st.session_state[f"resume_epochs_{job.id}"]),
    )


c = st.columns(3)  # callbacks run before the page: the buttons are drawn in the run's new state
c[0].button("Stop", disabled=job.finished, key="train_stop", on_click=command, args=(m.stop, job.id, me))
c[1].button(
    "Resume",
    disabled=job.status not in ("stopped", "failed"),
    key="train_resume",
    on_click=resume,
    args=(job,),
    help="goes on from the last checkpoint (or starts again if there is none) with the settings above",
)
c[2].download_button(
    "Download the run (zip)",
    partial(m.zip_artefacts, job.id, me) if job.finished else b"",
    f"{job.id}.zip",
    disabled=not job.finished,
    key="train_zip",
)  # (zipped on click, not on every rerun)
if "train_message" in st.session_state:
    st.warning(st.session_state.pop("train_message"))


live_view(job, log_scale)
st.caption(
    f"Read-only link for the room (they see this run live and cannot stop it): [follow run {job.id}](./b4_train?follow={job.id})"
)
my_runs_link(me.owner)
