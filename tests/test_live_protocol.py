"""The training page over the browser's own protocol (tests/remote_client.py: no browser, nothing painted): the
form starts a run on a real `streamlit run Home.py`, the page's fragment is rerun every 0.5 s as the browser
reruns it, and the curve that arrives grows step by step to the run's last step, then the page says it is done."""

import json

from remote_client import RemoteClient
from test_browser import serve_app


def test_the_training_page_streams_a_growing_loss_curve_to_a_watching_client(tmp_path):
    runs = tmp_path / "jobs"
    with serve_app({"DIFFUSION_LAB_RUNS": str(runs)}) as (url, _), RemoteClient(url, "b4_train", "owner=protocol") as client:
        assert "Choose settings and press Start" in " ".join(client.texts)
        client.set_int("Epochs", 1)
        client.press("Start")
        client.watch_until("· done", 300)
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    logged = [json.loads(line)["step"] for line in (run_dir / "history.jsonl").read_text().splitlines()]
    shown = [step for _, step in client.chart_ends()]  # the curve's last step, per redraw
    assert client.reruns >= 5, "the page's fragment was not rerun while the run trained"
    assert len(set(shown)) >= 3, f"the curve did not grow while the run trained: {shown}"
    assert shown == sorted(shown) and shown[-1] == logged[-1] == 71  # 4,500 digits, batch 64: 71 steps in an epoch
