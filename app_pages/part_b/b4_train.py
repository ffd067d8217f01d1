"""Train a UNet live: a background job with a live Plotly loss curve, samples every N steps and every epoch, Stop and Resume."""

from functools import partial

import streamlit as st

from lab.train import PART_A_BACKEND, PART_A_FLOW_BACKEND, course_config
from serving.jobs import RunLimit
from ui.messages import page_waits
from ui.state import caller, checkpoint_every_s, cuda_elsewhere, manager
from ui.training import command, follow_link, lecturer_panel, live_view, my_runs_link, owner_offer

st.title("Train live")
st.markdown("Runs train in the background: leave the page, refresh, come back; the run goes on. "
            "The server trains a limited number of runs at once and queues the rest.")  # fmt: skip
st.caption("Finished DDPM and flow-matching runs appear on the Part B generators page; a finished **Part A backend** "
           "(class-conditioned DDPM with T = 1000 and DeepFloyd IF's schedule) also joins the sidebar's Backend list "
           "of the Fall 2024 edition and drives every Part A page; a **Part A backend (Fall 2026, flow)** (class-"
           "conditioned flow matching of images in [-1, 1]) joins the Fall 2026 edition's.")  # fmt: skip
m = manager()
if follow_link():  # a room following the lecturer's run: the run, live, and no buttons
    page_waits()
me = caller()
owner_offer()
lecturer_panel(me)
PART_A = "Part A backend"
PART_A_FLOW = "Part A backend (Fall 2026, flow)"
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
EXPERIMENTS = ["class-conditioned", "time-conditioned", "single-step denoiser", PART_A, PART_A_FLOW]
with st.form("train_form"):
    c = st.columns(3)
    experiment = c[0].selectbox("Experiment", EXPERIMENTS, key="train_exp")
    method = c[1].selectbox("Method", ["flow matching", "DDPM"], key="train_method", help="a Part A backend is DDPM (Fall 2024); Part A backend (Fall 2026, flow) flow matching")
    dataset = c[2].selectbox("Dataset", ["mnist", "fashion_mnist"], key="train_dataset")
    c = st.columns(6)
    D = c[0].select_slider("D", [8, 16, 32, 64, 128], 16, key="train_D")
    epochs = c[1].number_input("Epochs", 1, 200, 10, key="train_epochs")
    batch = c[2].select_slider("Batch", [32, 64, 128, 256], 64, key="train_batch")
    lr = c[3].select_slider("Learning rate", LEARNING_RATES, 3e-3, key="train_lr")
    every = c[5].select_slider("Preview every", [0, 20, 50, 100, 200], 50, format_func=lambda n: f"{n} steps" if n else "never",
                               key="train_sample_steps", help="a row of samples, one per class, every this many steps (a grid comes after every epoch)")  # fmt: skip
    elsewhere = cuda_elsewhere()  # a GPU of the Ray cluster that trains the runs, though this machine has none
    gpus = st.session_state.get("device") == "cuda" or elsewhere
    device = c[4].selectbox("Device", ["cpu", "cuda"] if gpus else ["cpu"], key="train_device")
    start = st.form_submit_button("Start", type="primary")
if start:
    exp = "denoiser" if experiment == "single-step denoiser" else "ddpm" if experiment == PART_A or (method == "DDPM" and experiment != PART_A_FLOW) else "flow"
    condition = None if exp == "denoiser" else "time" if experiment == "time-conditioned" else "class"
    extra = {PART_A: PART_A_BACKEND, PART_A_FLOW: PART_A_FLOW_BACKEND}.get(experiment, {})
    config = course_config(exp, condition, D=D, epochs=int(epochs), batch_size=batch, lr=lr, dataset=dataset, device=device,
                           grad_clip=1.0, snapshot_epochs=(), sample_every=1, sample_every_steps=every, checkpoint_every_s=checkpoint_every_s(),
                           cuda_elsewhere=elsewhere, **extra)  # fmt: skip
    try:
        st.session_state["train_pick"] = m.submit(me, config).id  # the page shows the run just started
    except RunLimit as e:
        st.warning(str(e))

jobs = m.jobs(me.owner)
if not jobs:
    st.info("Choose settings and press Start. With these defaults (class-conditioned flow matching, D = 16) a preview row "
            "(a sample of each digit) is drawn every 50 steps and a grid after every epoch: the first picture about 13 s "
            "in, then one every 7-10 s; strokes at first, digits by the second or third epoch (under a minute); after 5 "
            "epochs an independent classifier reads 92-96 % of them right. 5 epochs take about 1.5 minutes on a quiet "
            "2-core CPU (98 s measured with the previews, 86 s without: set Preview every to never); a server busy with "
            "a room, or other runs, takes longer.")  # fmt: skip
    page_waits()
ids = [j.id for j in jobs]
if st.session_state.get("train_pick") not in ids:
    st.session_state["train_pick"] = ids[0]
job = m.get(st.selectbox("Run", ids, key="train_pick"))
log_scale = st.toggle("Log scale", True, key="train_log")
if job.status in ("stopped", "failed"):  # what a resume may change (a diverged run's message says: lower the rate)
    r = st.columns(2)
    r[0].select_slider("Learning rate from here on", sorted({*LEARNING_RATES, job.config.lr}), job.config.lr, key=f"resume_lr_{job.id}")
    r[1].number_input("Epochs in all", 1, 200, job.config.epochs, key=f"resume_epochs_{job.id}")


def resume(job) -> None:
    command(m.resume, job.id, me, lr=st.session_state[f"resume_lr_{job.id}"], epochs=int(st.session_state[f"resume_epochs_{job.id}"]))


c = st.columns(3)  # callbacks run before the page: the buttons are drawn in the run's new state
c[0].button("Stop", disabled=job.finished, key="train_stop", on_click=command, args=(m.stop, job.id, me))
c[1].button("Resume", disabled=job.status not in ("stopped", "failed"), key="train_resume", on_click=resume, args=(job,),
            help="goes on from the last checkpoint (or starts again if there is none) with the settings above")  # fmt: skip
c[2].download_button("Download the run (zip)", partial(m.zip_artefacts, job.id, me) if job.finished else b"", f"{job.id}.zip",
                     disabled=not job.finished, key="train_zip")  # fmt: skip  (zipped on click, not on every rerun)
if "train_message" in st.session_state:
    st.warning(st.session_state.pop("train_message"))


live_view(job, log_scale)
st.caption(f"Read-only link for the room (they see this run live and cannot stop it): [follow run {job.id}](./b4_train?follow={job.id})")
my_runs_link(me.owner)
