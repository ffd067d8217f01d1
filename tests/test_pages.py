"""AppTest for every page on the bundled backend: no exception, and moving a control changes what it shows."""

import pytest
from conftest import ROOT, each_control_changes_the_picture, fits_projector, image_urls, open_page
from streamlit.testing.v1 import AppTest

from ui import catalog
from ui.shell import router_pages

PART_A = [page.file for page in catalog.PART_A]
# page: its controls as (kind, key, a new value), the design card's (t, i_start, gamma, blur kernel and sigma) wherever
# the page has their idea; None: the page has no control whose output AppTest can see
CONTROLS = {
    "a0_sampling.py": [("select_slider", "sampling_steps", (5, 20)), ("slider", "sampling_gamma", 2.0)],
    "a1_forward.py": [("slider", "forward_t", 900)],
    "a2_blur.py": [("slider", "blur_kernel", 9), ("slider", "blur_sigma", 3.0)],
    "a3_one_step.py": [("slider", "one_step_t", 100)],
    "a4_iterative.py": [
        ("slider", "iterative_i_start", 20),
        ("slider", "iterative_blur_kernel", 9),
        ("slider", "iterative_blur_sigma", 4.0),
    ],
    "a5_sample.py": [("slider", "sample_n", 3)],
    "a6_cfg.py": [("slider", "cfg_gamma", 2.0)],
    "a7_0_sdedit.py": [
        ("slider", "test_image_Test image", 3),
        ("slider", "sdedit_i_start", 5),
        ("slider", "sdedit_gamma", 2.0),
    ],
    "a7_1_inputs.py": None,  # uploads and drawings: tests/test_browser.py draws on the canvas and moves these
    "a7_2_inpaint.py": [("radio", "inpaint_mask", "left half"), ("slider", "inpaint_gamma", 2.0)],
    "a7_3_text.py": [("selectbox", "text_prompt", "3"), ("slider", "text_i_start", 3), ("slider", "text_gamma", 2.0)],
    "a8_anagrams.py": [
        ("selectbox", "anagram_view", "rotate 180"),
        ("slider", "anagram_gamma", 2.0),
        ("radio", "anagram_n", 3),
    ],
    "a9_hybrids.py": [
        ("slider", "hybrid_sigma", 4.0),
        ("slider", "hybrid_kernel", 9),
        ("slider", "hybrid_gamma", 2.0),
        ("radio", "hybrid_bands", 3),
    ],
}


def test_every_part_a_page_is_listed_and_exists():
    assert sorted(PART_A) == sorted(CONTROLS)
    assert all((ROOT / "app_pages" / "part_a" / p).exists() for p in PART_A)


def test_home_opens_on_the_welcome_page_with_the_sidebar():
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=300).run()
    assert not at.exception
    assert at.title[0].value == "Diffusion Lab"
    assert at.selectbox(key="backend").value == "MNIST digits"


def test_the_router_makes_its_pages_once_and_each_run_routes_its_own_copies(monkeypatch):
    """Streamlit resolves a page's path when an st.Page is made (~2.8 ms of each run for thirty pages): the router
    makes them once per server, and every run gets copies (st.navigation marks the page it runs on its own objects, so
    that two browsers' runs never share one); a page opened by its address and a switch to the twin still route."""
    from streamlit.navigation.page import StreamlitPage

    from ui.shell import _made_pages

    made = []
    init = StreamlitPage.__init__
    monkeypatch.setattr(StreamlitPage, "__init__", lambda self, *a, **k: (made.append(self), init(self, *a, **k))[1])
    _made_pages.clear()
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=300).run()
    first = len(made)
    assert not at.exception and first == 1 + sum(len(e.pages) for e in catalog.EDITIONS.values()) + len(catalog.PART_B)
    at.switch_page("app_pages/part_a/a6_cfg.py").run()
    assert not at.exception and at.slider(key="cfg_gamma").value == 7.0
    again = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=300).run()  # another browser
    assert not again.exception and len(made) == first  # none made again
    runs = [router_pages(ROOT) for _ in range(2)]
    assert all(runs[0][url] is not runs[1][url] and runs[0][url]._page == runs[1][url]._page for url in runs[0])


@pytest.mark.parametrize("page", sorted(CONTROLS))
def test_page_runs_and_each_of_its_controls_changes_the_output(page):
    at = open_page(page)
    if CONTROLS[page] is None:
        assert at.info, "the page should say what to do first"
        return
    each_control_changes_the_picture(at, CONTROLS[page])


def test_lecture_mode_and_seed_apply_to_every_page():
    at = open_page("a5_sample.py")
    before = image_urls(at)
    at.number_input(key="seed").set_value(1).run()
    assert not at.exception and image_urls(at) != before
    at.toggle(key="lecture").set_value(True).run()
    assert not at.exception
    assert not [s for s in at.slider if s.key == "sample_n"]  # fewer controls in lecture mode


@pytest.mark.parametrize("page", ["a7_0_sdedit.py", "a4_iterative.py", "a0_sampling.py"])
def test_a_lecture_link_opens_lecture_mode_with_rows_that_fit_a_projector(page, image_rows):
    at = open_page(page, query={"lecture": "1"})
    assert at.toggle(key="lecture").value
    assert fits_projector(image_rows), image_rows  # no row wraps (4 + 1)
    assert max(width for _, width in image_rows) >= 224  # and the pictures are large
    assert {"gamma", "i_start", "kernel", "sigma"} & {s.key.split("_")[-1] for s in at.slider}  # the design card stays


def test_three_view_anagrams_show_the_image_through_each_view_and_three_band_hybrids_take_three_prompts():
    at = open_page("a8_anagrams.py")
    at.radio(key="anagram_n").set_value(3).run()
    assert not at.exception and not at.error
    main = at.get("image")[0].proto.imgs
    assert [im.caption.split(":")[0] for im in main] == ["as is", "flip (upside down)", "rotate 180"]
    at.selectbox(key="anagram_view3").set_value("flip (upside down)").run()
    assert any("share a view" in w.value for w in at.warning)  # two prompts through one view: said, not hidden
    at = open_page("a9_hybrids.py")
    at.radio(key="hybrid_bands").set_value(3).run()
    assert not at.exception and not at.error and at.selectbox(key="hybrid_middle").value
    at.slider(key="hybrid_sigma2").set_value(3.0).run()  # not below sigma (2.0): said, and sigma / 2 used
    assert any("must be smaller" in w.value for w in at.warning) and not at.exception


def test_deepfloyd_if_not_configured_says_so_and_the_lab_keeps_working(monkeypatch):
    monkeypatch.delenv("DIFFUSION_LAB_IF_MODEL", raising=False)
    at = open_page("a5_sample.py")
    at.selectbox(key="backend").set_value("DeepFloyd IF").run()
    assert not at.exception
    assert any("DeepFloyd IF is not ready" in e.value and "DIFFUSION_LAB_IF_MODEL" in e.value for e in at.error)
    assert image_urls(at)  # the page still works, on the bundled MNIST backend


@pytest.mark.parametrize("page", ["a7_0_sdedit.py", "a8_anagrams.py", "a9_hybrids.py", "a7_2_inpaint.py"])
def test_pages_run_on_deepfloyd_if_loaded_from_a_local_folder(tmp_path_factory, monkeypatch, page):
    from tiny_if import save_tiny_if

    from ui.state import if_backend

    folder = tmp_path_factory.getbasetemp() / "tiny_if"
    if not (folder / "model_index.json").exists():
        save_tiny_if(folder, stage=1)
    monkeypatch.setenv("DIFFUSION_LAB_IF_MODEL", str(folder))
    monkeypatch.setenv("DIFFUSION_LAB_CACHE", str(tmp_path_factory.getbasetemp() / "if_cache"))
    if_backend.clear()
    at = open_page(page)
    at.selectbox(key="backend").set_value("DeepFloyd IF").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.text_input  # IF takes free-text prompts
    assert image_urls(at)


def test_the_sampling_page_upsamples_with_deepfloyd_if_stage_two_where_it_is_set(tmp_path_factory, monkeypatch):
    """The course's optional part: stage I's samples, then stage II's 256 px of each (here tiny stages, as loaded)."""
    from tiny_if import save_tiny_if

    from ui.state import if_backend, if_upsampler

    base = tmp_path_factory.getbasetemp()
    for stage, folder in ((1, base / "tiny_if"), (2, base / "tiny_if_stage2")):
        if not (folder / "model_index.json").exists():
            save_tiny_if(folder, stage=stage)
    monkeypatch.setenv("DIFFUSION_LAB_IF_MODEL", str(base / "tiny_if"))
    monkeypatch.setenv("DIFFUSION_LAB_CACHE", str(base / "if_cache"))
    if_backend.clear()
    at = open_page("a0_sampling.py")
    at.selectbox(key="backend").set_value("DeepFloyd IF").run()
    assert (
        not at.exception and not at.error and not [t for t in at.toggle if t.key == "sampling_stage2"]
    )  # not set: no toggle
    monkeypatch.setenv("DIFFUSION_LAB_IF_STAGE2", str(base / "tiny_if_stage2"))
    if_upsampler.clear()
    at.select_slider(key="sampling_steps").set_value((5, 10)).run()
    at.toggle(key="sampling_stage2").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = [im.caption for e in at.get("image") for im in e.proto.imgs]
    assert (
        captions.count("5 steps, stage II") == 3 and captions.count("10 steps") == 3
    )  # each prompt's row, then upsampled
