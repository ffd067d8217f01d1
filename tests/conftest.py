"""Shared fixtures: a small, deterministic ``Denoiser`` that is cheap to call and counts its calls."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.schedules import make_alphas_cumprod  # noqa: E402
from models.backend import Denoiser  # noqa: E402


class ToyDenoiser(Denoiser):
    """The exact noise estimate for data that is one template image per class, plus a small random convolution
    with a position-dependent term so that no view is a symmetry of it. Samples stay bounded and land near the
    class template. Prompts "0".."K-1" are classes; "" and "a high quality photo" the null class (mean template)."""

    def __init__(
        self, shape=(3, 16, 16), T=1000, schedule="squaredcos_cap_v2", learned_variance=True, classes=4, wobble=0.1
    ):
        g = torch.Generator().manual_seed(0)
        C, H, W = shape
        out = 2 * C if learned_variance else C
        self.weight = torch.randn(out, C, 3, 3, generator=g) * 0.3
        self.class_emb = torch.randn(classes + 1, out, generator=g)
        templates = torch.rand(classes, C, H, W, generator=g) * 2 - 1
        self.templates = torch.cat([templates, templates.mean(0, keepdim=True)])  # (classes + 1, C, H, W)
        self.position = torch.randn(1, out, H, W, generator=g) * 0.2
        self.alphas_cumprod = make_alphas_cumprod(schedule, T)
        self.T, self.image_shape, self.classes, self.wobble = T, shape, classes, wobble
        self.variance_type = "learned_range" if learned_variance else "fixed_small"
        self.clip_x0 = None
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.calls: list[tuple[int, int]] = []  # (batch size, t) of every call

    def __call__(self, x_t, t, cond):
        self.calls.append((x_t.shape[0], t))
        h = torch.nn.functional.conv2d(x_t, self.weight, padding=1) * (1 + t / self.T)
        h = torch.tanh(h + self.class_emb[cond][:, :, None, None] + self.position)
        C = self.image_shape[0]
        alpha_bar = self.alphas_cumprod[t]
        eps = (x_t - alpha_bar.sqrt() * self.templates[cond]) / (1 - alpha_bar).sqrt() + self.wobble * h[:, :C]
        return (eps, h[:, C:]) if self.variance_type == "learned_range" else (eps, None)

    def encode(self, prompts):
        index = {"": self.classes, "a high quality photo": self.classes} | {str(k): k for k in range(self.classes)}
        for p in prompts:
            if p not in index:
                raise ValueError(f"unknown prompt {p!r}")
        return torch.tensor([index[p] for p in prompts])


@pytest.fixture
def toy():
    return ToyDenoiser()


@pytest.fixture
def toy_fixed():
    return ToyDenoiser(learned_variance=False)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and a busy machine can stall a second one (OpenMP barriers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny DeepFloyd IF stage I (UNet, T5, tokenizer, scheduler) saved in the diffusers layout."""
    from tiny_if import save_tiny_if

    return save_tiny_if(tmp_path_factory.mktemp("if") / "stage1")


@pytest.fixture(scope="session", autouse=True)
def components_scanned_once():
    """Streamlit's AppTest scans every installed package's metadata for v2 components on each run of a new AppTest
    (about 1 s here); what is installed does not change during the tests, so the first scan's result serves them all."""
    import functools

    from streamlit.components.v2 import manifest_scanner

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            manifest_scanner, "scan_component_manifests", functools.cache(manifest_scanner.scan_component_manifests)
        )
        yield


PAGE_SCRIPT = """
import runpy
import streamlit as st
from ui.shell import run_page
run_page(lambda: runpy.run_path({path!r}), {page!r}, url={url!r})
"""


@pytest.fixture
def image_rows(monkeypatch):
    """Every st.image call's row as (how many pictures, their width), the page still drawing them."""
    import streamlit as st

    rows, image = [], st.image
    monkeypatch.setattr(
        st,
        "image",
        lambda images, *a, width=None, **k: (
            rows.append((len(images) if isinstance(images, list) else 1, width)) or image(images, *a, width=width, **k)
        ),
    )
    return rows


def fits_projector(rows) -> bool:
    """No row wraps on a projector: n pictures and their gaps within the lecture width."""
    from ui.state import LECTURE_WIDTH

    return bool(rows) and all(n * (width + 12) <= LECTURE_WIDTH for n, width in rows)


def each_control_changes_the_picture(at, controls) -> None:
    """Move each (kind, key, new value) of a page in turn: no exception or error, and the pictures change each time."""
    for kind, key, value in controls:
        before = image_urls(at)
        assert before, "the page shows images"
        getattr(at, kind)(key=key).set_value(value).run()
        assert not at.exception and not at.error, (key, [e.value for e in at.error])
        assert image_urls(at) != before, f"moving {key} changed no picture"


def page_url(page: str) -> str | None:
    """A page file's address (ui.catalog), None for the Welcome page."""
    from ui.catalog import EDITIONS, PART_B

    return next((p.url for e in [*(e.pages for e in EDITIONS.values()), PART_B] for p in e if p.file == page), None)


def open_page(page: str, part: str = "part_a", query: dict | None = None):
    """AppTest of a page as Home.py runs it (sidebar, then the page inside run_page's error handling), at its address
    (a Part A page opens its edition).

    AppTest's switch_page would run the page file alone, without the router's sidebar. query: the URL's
    query parameters (a browser's owner id).
    """
    from streamlit.testing.v1 import AppTest

    script = PAGE_SCRIPT.format(path=str(ROOT / "app_pages" / part / page), page=page, url=page_url(page))
    at = AppTest.from_string(script, default_timeout=300)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def image_urls(at) -> list[str]:
    """The media URLs of every image on the page (they change when the pixels change)."""
    return [im.url for element in at.get("image") for im in element.proto.imgs]


# The room warms every page's default result in the background when the app starts (serving/room.py); tests that are
# not about warming would share their CPU with it, so it is off unless a test turns it on (servers inherit this).
os.environ.setdefault("DIFFUSION_LAB_WARM", "0")
# pytest -n N (pytest-xdist): N test processes share the machine's cores, each with its servers and training processes;
# each process takes its share of the cores for torch (a thread per core each would make 2N threads contend for N).
# A user's own OMP_NUM_THREADS stands (torch read it at import).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT") and "OMP_NUM_THREADS" not in os.environ:
    share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = str(share)  # the servers and training processes the tests start
    torch.set_num_threads(share)


# The longest test files (seconds of one file's tests, measured on the 2-core VM): with a file's tests kept on one
# process (--dist loadfile), a long file handed out last runs alone at the end while the other processes idle, so the
# longest go first (the longest-processing-time-first schedule); the rest keep their order. pytest-xdist orders the
# files by their count of tests unless told not to (--no-loadscope-reorder, in pyproject.toml's addopts).
LONGEST_FIRST = (  # measured (--durations=0, 3 processes on 2 cores): the Ray file ~13 min, the next ~6 min and less
    "test_cluster",
    "test_pages_partb",
    "test_pages_flow",
    "test_jobs",
    "test_bundled",
    "test_browser",
    "test_pages",
    "test_emoji",
    "test_room",
    "test_partb",
    "test_reliability",
    "test_room_safety",
    "test_live_protocol",
    "test_hostile",
    "test_partb_notebook",
    "test_pixnerd",
    "test_restart",
    "test_fuzz",
)


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a file's tests stay in their order


def pytest_xdist_auto_num_workers(config):
    """-n auto: three test processes per two cores. Much of a test here waits on something (a server starting, a
    training process, a browser's redraw), and two processes on two cores left a fifth of the machine idle: a third
    fills it (PYTEST_XDIST_AUTO_NUM_WORKERS sets the count instead)."""
    cores = os.cpu_count() or 1
    return int(os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", cores + cores // 2))


@pytest.fixture(scope="session", autouse=True)
def runs_folder(tmp_path_factory):
    """The runs the pages start go to a folder of this test process, never to the checkout's runs/jobs or a folder set
    in the shell: a second test process (pytest -n) would find that folder held by the first (RunsFolderBusy)."""
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIFFUSION_LAB_RUNS", str(runs))
        yield runs
