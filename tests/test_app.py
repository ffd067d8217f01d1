"""Every page runs without an exception, and moving a slider changes what it shows."""

from streamlit.testing.v1 import AppTest

from conftest import ROOT


def test_home_runs_and_the_t_slider_changes_the_noisy_image():
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Diffusion Lab"
    before = at.get("image")[0].proto.imgs[1].url
    at.slider[0].set_value(900).run()
    assert not at.exception
    assert at.get("image")[0].proto.imgs[1].url != before
