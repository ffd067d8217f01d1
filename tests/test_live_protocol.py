"""The training page over the browser's own protocol (tests/remote_client.py: no browser, nothing painted): the
form starts a run on a real `streamlit run Home.py`, the page's fragment is rerun every 0.5 s as the browser
reruns it, and the curve that arrives grows step by step to the run's last step, then the page says it is done."""

import json

from remote_client import RemoteClient
from test_browser import serve_app


def test_the_training_page_streams_a_growing_loss_curve_to_a_watching_client(tmp_path):
    runs = tmp_path / "jobs"
    with (
        serve_app({"DIFFUSION_LAB_RUNS": str(runs), "DIFFUSION_LAB_WARM": "0"}) as (url, _),
        RemoteClient(url, "b4_train", "owner=protocol") as client,
    ):
        assert "Choose a recipe (and change what you like) and press Start" in " ".join(client.texts)
        client.start_quick_run(1)
        client.watch(lambda c: c.shows("· done"), 300)
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    logged = [json.loads(line)["step"] for line in (run_dir / "history.jsonl").read_text().splitlines()]
    shown = [step for _, step in client.chart_ends()]  # the curve's last step, per redraw
    assert client.reruns >= 5, "the page's fragment was not rerun while the run trained"
    assert len(set(shown)) >= 3, f"the curve did not grow while the run trained: {shown}"
    assert shown == sorted(shown) and shown[-1] == logged[-1] == 71  # 4,500 digits, batch 64: 71 steps in an epoch


def test_a_page_whose_run_waits_in_the_queue_redraws_less_often_until_its_run_starts(tmp_path):
    env = {"DIFFUSION_LAB_RUNS": str(tmp_path / "jobs"), "DIFFUSION_LAB_MAX_JOBS": "1", "DIFFUSION_LAB_WARM": "0"}
    with (
        serve_app(env) as (url, _),
        RemoteClient(url, "b4_train", "owner=first") as first,
        RemoteClient(url, "b4_train", "owner=second") as second,
    ):
        first.start_quick_run(1)
        first.watch(lambda c: c.shows("· running"), 60)
        second.start_quick_run(1)
        assert second.shows("queued, position 1") and list(second.auto.values()) == [2.0]
        assert list(first.auto.values()) == [0.5]
        second.watch(lambda c: c.shows("· running") and list(c.auto.values()) == [0.5], 300)  # first's run has ended
        second.watch(lambda c: len(c.chart_ends()) >= 2, 60)  # and its curve is drawn at the running pace
