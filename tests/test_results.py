"""A download under every row of pictures, and "Export my results": a zip whose HTML page opens offline and holds this
browser's results page by page, with the settings that made each."""

import io
import json
import re
import zipfile

import numpy as np
import pytest
from conftest import open_page
from PIL import Image

from ui.results import KEY, Shown, export_zip, row_png


def downloads(at) -> list:
    return [e for e in at.get("download_button")]


@pytest.mark.parametrize("page", ["a1_forward.py", "a4_iterative.py", "a7_0_sdedit.py", "a9_hybrids.py"])
def test_every_row_of_pictures_has_a_download(page):
    at = open_page(page)
    rows = [e for e in at.get("image") if len(e.proto.imgs) >= 1]
    assert rows and len(downloads(at)) >= len(rows)


def test_a_downloaded_row_holds_every_picture_with_its_caption():
    frames = [np.full((28, 28), v, np.uint8) for v in (0, 128, 255)]
    png = Image.open(io.BytesIO(row_png(frames, ["a", "b", "c"], px=64)))
    assert png.width == 3 * 64 + 2 * 8 and png.height > 64  # three pictures side by side, captions under them
    pixels = np.asarray(png.convert("L"))
    assert pixels[10, 10] == 0 and pixels[10, 72 + 10] == 128 and pixels[10, 144 + 10] == 255
    assert (pixels[66:, :64] < 128).any()  # a caption was drawn under the first picture


def test_export_holds_the_pages_visited_with_their_settings_and_opens_offline():
    results = {}
    for page, settings in (("a7_0_sdedit.py", ("sdedit_gamma", 3.0)), ("a9_hybrids.py", ("hybrid_sigma", 4.0))):
        at = open_page(page)
        at.slider(key=settings[0]).set_value(settings[1]).run()
        results |= at.session_state[KEY]
    assert list(results) == ["a7_0_sdedit.py", "a9_hybrids.py"]
    blob = export_zip(results, order=["a9_hybrids.py", "a7_0_sdedit.py"])  # the course's order, given by the app
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        html = z.read("index.html").decode()
        listing = json.loads(z.read("settings.json"))
        pngs = [n for n in z.namelist() if n.endswith(".png")]
        assert all(Image.open(io.BytesIO(z.read(n))).format == "PNG" for n in pngs)
    assert html.index("a9_hybrids.py") < html.index("a7_0_sdedit.py")
    sdedit = listing["a7_0_sdedit.py"]
    assert len(pngs) == sum(len(rows) for rows in listing.values()) >= 4
    first = next(iter(sdedit.values()))
    assert first["settings"]["gamma"] == "3" and first["settings"]["backend"] == "MNIST digits"
    assert {"prompt", "i_start", "seed"} <= set(first["settings"])
    assert listing["a9_hybrids.py"][next(iter(listing["a9_hybrids.py"]))]["settings"]["sigma"] == "4"
    sources = re.findall(r"(?:src|href)=['\"]([^'\"]+)", html)
    assert sources and all(
        s.startswith("data:image/png;base64,") for s in sources
    )  # nothing to fetch: it opens offline
    assert "<script" not in html


def test_export_escapes_what_a_user_typed():
    shown = Shown([np.zeros((8, 8), np.uint8)], ["<b>x</b>"], {"prompt": "<script>alert(1)</script>"})
    with zipfile.ZipFile(io.BytesIO(export_zip({"page <i>": {"row": shown}}, []))) as z:
        html = z.read("index.html").decode()
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "<i>" not in html


def test_a_page_waiting_for_input_still_offers_the_export():
    at = open_page("a7_2_inpaint.py")
    at.radio(key="inpaint_source").set_value("upload").run()  # nothing uploaded yet: the page waits
    assert not at.exception and not at.get("image")
    assert [b for b in downloads(at) if b.key == "export_results"], "the sidebar's export is gone"
