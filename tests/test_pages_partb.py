"""AppTest for the Part B pages: bundled results, and a tiny live run started, watched, stopped and resumed."""

import time

import pytest
from streamlit.testing.v1 import AppTest

import conftest
from conftest import image_urls

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
    at.select_slider(key="b2_steps").set_value(10).run()  # fewer steps: a third of the sampling for what follows
    assert not at.exception and image_urls(at) != before
    before = image_urls(at)
    at.slider(key="b2_gamma").set_value(1.0).run()
    assert not at.exception and image_urls(at) != before
    at.selectbox(key="b2_model").set_value("flow matching, time-conditioned").run()  # 10 steps are one of its choices too
    assert not at.exception and not at.error and at.select_slider(key="b2_steps").value == 10


def test_the_generators_grid_has_a_labelled_column_per_class():
    import numpy as np
    import torch

    from ui.partb import class_columns, labelled_grid

    x = torch.arange(10).repeat_interleave(4).float().view(40, 1, 1, 1).expand(40, 1, 28, 28) / 9  # sample of class k: k / 9
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
    assert [b for b in at.get("download_button") if b.key == "export_results"]  # no run yet: the page waits, the export stays
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
    stale = AppTest.from_string(conftest.PAGE_SCRIPT.format(path=str(conftest.ROOT / "app_pages/part_b/b4_train.py"), page="b4", url="b4_train"))
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
    assert (job.config.experiment, job.config.condition, job.config.T, job.config.signed) == ("ddpm", "class", 1000, True)
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
    at.select_slider(key="train_D").set_value(8)
    at.number_input(key="train_epochs").set_value(50)
    at.button[0].click().run()  # Start: the first run
    at.button[0].click().run()  # Start again, while it is queued or running
    assert not at.exception and not at.error
    assert any("already has 1 run queued or running, the most one browser may have at once on this server is 1" in w.value for w in at.warning), [w.value for w in at.warning]
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
    assert for_browser(error) == "CheckpointError: run 20261123-101010-abcdef: checkpoints/epoch_001/state.json has no 'epoch'"
    assert for_browser(f"{ROOT}/models/weights/parta_mnist.safetensors is missing") == "models/weights/parta_mnist.safetensors is missing"
