"""The protocol fuzzer (tests/fuzz.py) on a server started as the README starts it: a few seeded rounds on every page of
both editions and Part B, with a training run started and a result computed before. It holds when no page shows an
exception, a fresh browser is answered within 2 s afterwards, and the run and the result are still there.
benchmarks/bench_fuzz.py runs it for minutes."""

from __future__ import annotations

import time

from fuzz import Fuzzer
from remote_client import RemoteClient
from test_browser import serve_app

from ui import catalog

PAGES = ["", *(p.url for e in catalog.EDITIONS.values() for p in e.pages), *(p.url for p in catalog.PART_B)]


def test_random_and_wrong_protocol_input_on_every_page_breaks_nothing(tmp_path):
    log, runs = tmp_path / "computed.log", tmp_path / "runs"
    env = {"DIFFUSION_LAB_RUNS": str(runs), "DIFFUSION_LAB_WARM": "0", "DIFFUSION_LAB_COMPUTE_LOG": str(log)}
    with serve_app(env) as (url, _):
        with RemoteClient(url, "a7_sdedit") as before:
            assert before.images and not before.errors
        owner = RemoteClient(url, "b4_train", cookies="diffusion_lab_owner=fuzz-owner")
        owner.open()
        # 3 epochs (213 steps): it trains while the first pages' rounds run (50 epochs kept a core busy all the test)
        owner.start_quick_run(3)
        (run,) = [d.name for d in runs.iterdir() if d.is_dir() and (d / "owner.json").exists()]
        owner.close()
        fuzzer = Fuzzer(url, seed=180)
        for page in PAGES:
            fuzzer.page(page, rounds=3)
        assert not fuzzer.broken, fuzzer.broken
        assert fuzzer.rounds == 3 * len(PAGES)
        t0 = time.time()
        with RemoteClient(url, "") as fresh:
            assert not fresh.errors and time.time() - t0 < 2.0
        computed = len(log.read_text().splitlines())
        with RemoteClient(url, "a7_sdedit") as after:  # the result: still the room's, not computed again
            assert after.images == before.images
        assert len(log.read_text().splitlines()) == computed
        with RemoteClient(url, "b4_train", cookies="diffusion_lab_owner=fuzz-owner") as back:
            assert back.shows(f"run `{run}`") and not back.errors
