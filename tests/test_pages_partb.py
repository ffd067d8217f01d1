"""AppTest for the Part B pages: bundled results, and a tiny live run started, watched, stopped and resumed."""

import time
from dataclasses import replace

import conftest
import pytest
from conftest import image_urls
from streamlit.testing.v1 import AppTest


def open_page(page: str) -> AppTest:
    return conftest.open_page(page, "part_b")


def test_denoiser_page_shows_the_courses_results_and_the_digit_slider_changes_them():
    at = open_page("b1_denoiser.py")
    before = image_urls(at)
    assert len(before) >= 10 and at.get("plotly_chart")  # the training loss
    at.slider(key="b1_digit").set_value(3).run()
    assert not at.exception and image_urls(at) != before


def test_generators_page_cfg_slider_changes_the_samples():
    at = open_page("b2_generators.py")
    assert at.selectbox(key="b2_model").value.startswith("DDPM, class")
    assert at.get("plotly_chart")  # the training loss
    before = image_urls(at)
    # fewer steps: a third of the sampling for what follows
    at.select_slider(key="b2_steps_ddpm_class").set_value(10).run()
    assert not at.exception and image_urls(at) != before
    before = image_urls(at)
    at.slider(key="b2_gamma").set_value(1.0).run()
    assert not at.exception and image_urls(at) != before
    at.selectbox(key="b2_model").set_value("flow matching, time-conditioned").run()  # it opens on its own course steps
    assert not at.exception and not at.error and at.select_slider(key="b2_steps_flow_time").value == 50
    at.selectbox(key="b2_model").set_value("flow matching, class-conditioned")  # (not run: 300 steps are a minute here)
    assert at.select_slider(key="b2_steps_flow_time").value == 50


def test_the_generators_page_offers_the_better_unet_with_what_it_changes_and_how_it_was_judged():
    at = open_page("b2_generators.py")
    at.selectbox(key="b2_model").set_value("flow matching, time-conditioned, the better UNet (CS280A)").run()
    assert not at.exception and not at.error
    assert at.select_slider(key="b2_steps_flow_time").value == 50  # the course's steps for a time-conditioned model
    assert "CS280A · A better time-conditioned UNet" in [h.value for h in at.subheader]
    said = " ".join(m.value for m in at.markdown)
    assert "GroupNorm" in said and "| course, D 64 |" in said and "| better, D 32 |" in said  # the comparison's rows
    assert len(image_urls(at)) >= 4  # the samples, the GIF, the figures after the course's epochs


def test_the_generators_page_of_fall_2026_opens_on_the_class_conditioned_flow_model_at_the_courses_300_steps(
    monkeypatch,
):
    """The course samples its class-conditioned flow model with 300 Euler steps (time-conditioned: 50); the page opened
    on DDPM at 50 and stopped at 100. Its samples come from the room: computed once for the server, joined after."""
    from serving import generators
    from ui.state import room

    asked, sample = [], generators.sample
    monkeypatch.setattr(
        generators,
        "sample",
        lambda model, config, gamma, steps, *a, **k: (
            asked.append((config["condition"], steps)) or sample(model, config, gamma, 5, *a, **k)
        ),
    )
    room.clear()
    try:
        check_the_generators_defaults(asked)
    finally:
        room.clear()  # its results were sampled with 5 steps: no later test sees them


def check_the_generators_defaults(asked):
    from ui.state import room

    at = conftest.open_page("b2_generators.py", "part_b", query={"edition": "2026"})
    assert (
        at.selectbox(key="b2_model").value == "flow matching, class-conditioned"
        and at.select_slider(key="b2_steps_flow_class").value == 300
    )
    assert asked == [("class", 300)] and image_urls(at)
    assert "Fall 2025 and Fall 2026" in at.markdown[0].value and "γ - 1" in at.slider(key="b2_gamma").help
    computed = room().queue.counts["computed"]
    again = conftest.open_page(
        "b2_generators.py", "part_b", query={"edition": "2026"}
    )  # another browser: the same picture
    assert image_urls(again) == image_urls(at) and room().queue.counts["computed"] == computed and len(asked) == 1
    again.selectbox(key="b2_model").set_value("flow matching, time-conditioned").run()
    assert again.select_slider(key="b2_steps_flow_time").value == 50 and asked[-1] == ("time", 50)
    assert (
        conftest.open_page("b2_generators.py", "part_b").selectbox(key="b2_model").value.startswith("DDPM, class")
    )  # Fall 2024


def test_the_generators_progress_counts_the_samplers_steps_and_a_room_that_leaves_stops_it():
    import torch

    from lab.train import initial_model
    from lab.train_config import course_config
    from serving import generators
    from serving.queue import Cancelled, Progress

    threads = torch.get_num_threads()
    for experiment, condition, steps in [("flow", "class", 300), ("flow", "time", 50), ("ddpm", "class", 30)]:
        config = course_config(experiment, condition, D=8).to_dict()
        progress = Progress()
        out = generators.sample(
            initial_model(course_config(experiment, condition, D=8)).eval(), config, 5.0, steps, 0, progress, 1
        )
        assert progress.done == progress.total == generators.sampling_steps(config, steps) and out.images.shape == (
            40,
            1,
            28,
            28,
        )
        assert 25 <= len(out.frames) <= 31 and out.nbytes > out.images.nbytes  # the GIF's
    flow = course_config("flow", "class", D=8)
    model, config = initial_model(flow).eval(), flow.to_dict()
    left = Progress(abandoned=lambda: left.done >= 10)  # nobody waits any more after 10 steps
    with pytest.raises(Cancelled):
        generators.sample(model, config, 5.0, 300, 0, left, 1)
    assert left.done == 10
    warm = Progress(wanted=lambda: False)  # the warm-up's: stops when the room is busy and nobody waits for it
    with pytest.raises(Cancelled):
        generators.sample(model, config, 5.0, 300, 0, warm, 1, stop=lambda: warm.done >= 3)
    assert warm.done == 3 and torch.get_num_threads() == threads  # the worker's own thread count is given back


def test_the_denoiser_page_draws_the_pure_noise_loss_curve():
    at = open_page("b1_denoiser.py")
    keys = [chart.proto.id for chart in at.get("plotly_chart")]
    assert len(keys) == 2  # the denoiser's and 1.2.3's pure-noise curve


def test_the_generators_grid_has_a_labelled_column_per_class():
    import numpy as np
    import torch

    from ui.partb import class_columns, labelled_grid

    x = (
        torch.arange(10).repeat_interleave(4).float().view(40, 1, 1, 1).expand(40, 1, 28, 28) / 9
    )  # sample of class k: k / 9
    picture = labelled_grid(class_columns(x, 4), [str(k) for k in range(10)])
    assert picture.shape[1] > 2 * picture.shape[0]  # 4 rows of 10 columns, not a 10-row column
    head, body = picture[:22], picture[22:, :, 0].astype(int)
    cell = (picture.shape[1] - 8) // 10
    for k in range(10):  # column k: class k's samples, under a label
        column = body[8:-8, 8 + k * cell + 20]
        assert np.all(np.abs(column[column != 255] - round(k / 9 * 255)) <= 1)
        assert (head[:, 8 + k * cell : 8 + (k + 1) * cell] < 128).any()


def test_the_log_scale_loss_axis_reads_in_plain_numbers():
    from ui.training import loss_figure

    fig = loss_figure(list(range(100)), [0.9 * 0.96**i for i in range(100)], True, "r")
    assert fig.layout.yaxis.type == "log"
    assert list(fig.layout.yaxis.ticktext) == ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2"]
    assert fig.layout.yaxis.tickvals[2] == 0.05


@pytest.mark.parametrize("log_scale", [True, False])
def test_the_loss_figure_built_without_validation_is_the_validated_figure(log_scale):
    import plotly.graph_objects as go

    from ui.training import loss_figure

    steps, losses = list(range(1, 1500)), [1 / s for s in range(1, 1500)]
    fast = loss_figure(steps, losses, log_scale, "run-1")
    checked = go.Figure(fast.to_dict())  # validated: a misspelt or retired property raises here
    assert fast.to_plotly_json() == checked.to_plotly_json()
    assert len(fast.data[0].x) <= 601 and fast.data[0].x[-1] == 1499  # thinned, the last step kept
    assert fast.layout.yaxis.type == ("log" if log_scale else "linear") and fast.layout.uirevision == "run-1"


@pytest.fixture
def runs(tmp_path, monkeypatch):
    from ui.state import manager

    monkeypatch.setenv("DIFFUSION_LAB_RUNS", str(tmp_path))
    manager.clear()
    yield tmp_path
    manager.clear()  # its running runs checkpoint and no queued one starts: nothing trains on into later tests


def rerun_until(at: AppTest, predicate, timeout=180):
    end = time.time() + timeout
    while time.time() < end:
        at.run()
        assert not at.exception, at.exception
        if predicate(at):
            return at
        time.sleep(0.5)
    raise AssertionError("timed out")


def owner_of(at: AppTest) -> str:
    assert "owner" not in at.query_params  # a browser's id is never in its address bar
    return at.session_state["owner"]


def start_tiny_run(epochs: int, experiment: str | None = None) -> AppTest:
    """The training page with a tiny run (D = 8, batch 256) started from its form, as a user starts one."""
    at = open_page("b4_train.py")
    assert [
        b for b in at.get("download_button") if b.key == "export_results"
    ]  # no run yet: the page waits, the export stays
    at.selectbox(key="train_recipe").set_value("lecture quick run").run()
    if experiment:
        at.selectbox(key="train_exp").set_value(experiment)
    at.select_slider(key="train_D").set_value(8)
    at.number_input(key="train_epochs").set_value(epochs)
    at.select_slider(key="train_batch").set_value(256)
    at.button[0].click().run()  # Start
    return at


def test_training_page_starts_a_run_whose_curve_grows_and_stops_and_resumes(runs):
    from ui.state import manager

    at = start_tiny_run(3)
    assert not at.exception
    job = manager().jobs(owner_of(at))[0]
    rerun_until(at, lambda a: len(job.steps) >= 3 and a.get("plotly_chart"))
    first = len(job.steps)
    rerun_until(at, lambda a: len(job.steps) > first)  # the curve grows
    at.button(key="train_stop").click().run()
    rerun_until(at, lambda a: job.status == "stopped")
    stopped_at = len(job.steps)
    assert stopped_at < job.total_steps
    at.button(key="train_resume").click().run()
    rerun_until(at, lambda a: job.status == "done", timeout=300)
    assert job.steps[-1]["step"] == job.total_steps > stopped_at
    assert (runs / job.id / "history.jsonl").exists()


def test_a_follow_link_shows_the_run_live_and_cannot_stop_it(runs):
    from ui.state import manager

    at = start_tiny_run(1)  # the lecturer starts a run
    job = manager().jobs(owner_of(at))[0]
    assert any(f"follow={job.id}" in c.value for c in at.caption)  # the link the page gives
    room = conftest.open_page("b4_train.py", "part_b", query={"follow": job.id})
    rerun_until(room, lambda a: a.get("plotly_chart"))  # the room sees the run's curve
    assert any(job.id in i.value for i in room.info)
    assert not room.button and not room.get("form")  # nothing to press
    assert [b.key for b in room.get("download_button")] == ["export_results"]  # but the sidebar's export
    assert room.session_state["owner"] != owner_of(at)  # the follower is not the lecturer
    assert manager().jobs(owner_of(at))[0].status in ("queued", "running", "done")
    stale = AppTest.from_string(
        conftest.PAGE_SCRIPT.format(path=str(conftest.ROOT / "app_pages/part_b/b4_train.py"), page="b4", url="b4_train")
    )
    stale.query_params["follow"] = "20200101-000000-abcdef"
    stale.run(timeout=120)
    assert any("There is no run 20200101-000000-abcdef" in e.value for e in stale.error) and not stale.exception


def test_a_finished_part_a_backend_joins_the_sidebar_and_drives_the_part_a_pages(runs):
    from models.bundled import BACKENDS
    from ui.state import TRAINED_PREFIX as RUN_PREFIX
    from ui.state import manager

    at = start_tiny_run(1, "Part A backend")
    owner = owner_of(at)
    job = manager().jobs(owner)[0]
    assert (job.config.experiment, job.config.condition, job.config.T, job.config.signed) == (
        "ddpm",
        "class",
        1000,
        True,
    )
    page = conftest.open_page("a5_sample.py", query={"owner": owner})
    assert RUN_PREFIX + job.id not in page.selectbox(key="backend").options  # not before it has finished
    rerun_until(at, lambda a: job.status == "done")

    page = conftest.open_page("a5_sample.py", query={"owner": owner})
    assert page.selectbox(key="backend").options[len(BACKENDS)] == RUN_PREFIX + job.id  # after the bundled ones
    bundled = image_urls(page)
    page.selectbox(key="backend").set_value(RUN_PREFIX + job.id).run()
    assert not page.exception and not page.error, [e.value for e in page.error]
    assert image_urls(page) != bundled  # sampled by the run's model
    page.selectbox(key="sample_prompt").set_value("7").run()  # its classes are the prompts
    assert not page.exception and not page.error
    other = conftest.open_page("a5_sample.py", query={"owner": "somebody-else"})
    assert RUN_PREFIX + job.id not in other.selectbox(key="backend").options  # each browser sees its own runs


def test_a_course_ddpm_run_is_refused_as_a_part_a_backend_with_the_reason():
    from models.bundled import course_backend, load_course_model

    model, train = load_course_model("ddpm_class")
    with pytest.raises(ValueError, match="T = 1000"):
        course_backend(model, train)


def test_a_browser_past_its_run_limit_is_told_what_to_do_and_its_runs_go_on(runs, monkeypatch):
    from ui.state import manager

    monkeypatch.setenv("DIFFUSION_LAB_RUNS_PER_BROWSER", "1")
    manager.clear()
    at = open_page("b4_train.py")
    at.selectbox(key="train_recipe").set_value("lecture quick run").run()
    at.select_slider(key="train_D").set_value(8)
    at.number_input(key="train_epochs").set_value(50)
    at.button[0].click().run()  # Start: the first run
    at.button[0].click().run()  # Start again, while it is queued or running
    assert not at.exception and not at.error
    assert any(
        "already has 1 run queued or running, the most one browser may have at once on this server is 1" in w.value
        for w in at.warning
    ), [w.value for w in at.warning]
    (job,) = manager().jobs(owner_of(at))  # one run, going on
    assert not job.finished


def test_resume_takes_the_new_learning_rate_and_the_buttons_and_runs_shown_follow_at_once(runs):
    """Resume showed "running" with Stop still disabled until a reload, and a second Start kept showing the first run."""
    from ui.state import manager

    at = start_tiny_run(20)
    first = manager().jobs(owner_of(at))[0]
    rerun_until(at, lambda a: len(first.steps) >= 2)
    at.button(key="train_stop").click().run()
    rerun_until(at, lambda a: first.status == "stopped")
    stopped_at = first.steps[-1]["step"]
    at.select_slider(key=f"resume_lr_{first.id}").set_value(1e-4)  # as a diverged run's message advises
    at.button(key="train_resume").click().run()
    assert not at.exception and first.status in ("queued", "running")
    assert not at.button(key="train_stop").disabled and at.button(key="train_resume").disabled  # in this very run
    rerun_until(at, lambda a: first.steps[-1]["step"] > stopped_at + 1)
    assert first.config.lr == 1e-4 and first.steps[-1]["lr"] == pytest.approx(1e-4)  # the new rate, from the resume on
    at.button[0].click().run()  # a second Start
    second = manager().jobs(owner_of(at))[0]
    assert second.id != first.id and at.selectbox(key="train_pick").value == second.id  # the page shows the new run


def test_messages_for_the_browser_name_runs_not_the_servers_paths(runs):
    from serving.settings import ROOT
    from ui.messages import for_browser

    error = f"CheckpointError: {runs.resolve()}/20261123-101010-abcdef/checkpoints/epoch_001/state.json has no 'epoch'"
    assert (
        for_browser(error)
        == "CheckpointError: run 20261123-101010-abcdef: checkpoints/epoch_001/state.json has no 'epoch'"
    )
    assert (
        for_browser(f"{ROOT}/models/weights/parta_mnist.safetensors is missing")
        == "models/weights/parta_mnist.safetensors is missing"
    )


def test_train_lives_unet_control_trains_the_better_unet_where_it_is_chosen():
    from lab.train_config import course_config
    from models.unet import CourseUNet
    from ui.recipes import RECIPES, form_config

    for name, recipe in RECIPES.items():
        assert recipe.values["train_unet"] == "course", name  # every recipe trains the course's UNet
        better = form_config(recipe.values | {"train_unet": "better"}, checkpoint_every_s=None).validate()
        assert better.unet == "better" and better == replace(form_config(recipe.values, None), unet="better")
        model = CourseUNet(better.unet_config())
        assert model.config.norm == "group" and model.config.time_features == 32, name
    assert course_config("flow", "class").unet == "course"


@pytest.mark.parametrize("edition", ["2024", "2026"])
def test_train_live_opens_on_the_courses_recipe_of_the_edition_and_its_scheduler_is_a_control(
    runs, edition, monkeypatch
):
    """The form opened on a lecture's quick settings (D 16, lr 3e-3, clipping, passes over 4,500 digits), with no
    scheduler control; the course's recipe (Fall 2025 and 2026: D 64, batch 64, Adam 1e-2, ExponentialLR, no clipping,
    10 epochs of 60,000 images) was nowhere. Opening the page starts its training processes' fork server."""
    from test_jobs import lab_fork_servers, wait_for

    from ui.state import manager

    monkeypatch.setenv("LAB_TEST_FRESH_ENVIRONMENT", str(runs))  # an environment no fork server has yet
    before = lab_fork_servers()
    at = conftest.open_page("b4_train.py", "part_b", query={"edition": edition})
    wait_for(lambda: lab_fork_servers() - before, 60)  # started as the page opened, before any Start
    flow = edition == "2026"
    assert at.selectbox(key="train_recipe").value.startswith(
        "course recipe, " + ("Fall 2025 and 2026" if flow else "Fall 2024")
    )
    assert at.selectbox(key="train_method").value == ("flow matching" if flow else "DDPM")
    assert (at.select_slider(key="train_D").value, at.select_slider(key="train_batch").value) == (
        64,
        64 if flow else 128,
    )
    assert (
        at.select_slider(key="train_lr").value == (1e-2 if flow else 1e-3)
        and at.selectbox(key="train_clip").value == "none"
    )
    assert any("hours on a quiet 2-core CPU" in c.value for c in at.caption)  # what it costs here, said before Start
    assert at.selectbox(key="train_unet").value == "course"  # the course's UNet; CS280A's better one a choice
    at.selectbox(key="train_schedule").set_value("constant")  # 2.6: no scheduler
    at.button[0].click().run()  # Start
    assert not at.exception and not at.error
    (job,) = manager().jobs(owner_of(at))
    c = job.config
    assert (c.experiment, c.condition, c.D, c.batch_size, c.epoch_images, c.grad_clip, c.lr_schedule) == (
        "flow" if flow else "ddpm",
        "class",
        64,
        64 if flow else 128,
        60_000,
        None,
        "constant",
    )
    assert c.snapshot_epochs == ((1, 5, 10) if flow else (5, 20)) and c.p_uncond == 0.1
    rerun_until(at, lambda a: job.total_steps is not None)
    assert job.total_steps == 9_380  # the course's 10 x 938 (flow) or 20 x 469 (DDPM) steps
    manager().stop(job.id)  # (the server: the fixture would stop it too)
    at.selectbox(key="train_recipe").set_value("lecture quick run").run()
    assert (
        at.select_slider(key="train_D").value,
        at.selectbox(key="train_epoch_size").value,
        at.selectbox(key="train_clip").value,
    ) == (16, "one pass over the data", "1.0")
