"""AppTest for every Fall 2026 (flow) page on the bundled flow backends: no exception, each design-card control
changes what it shows, and the edition follows the page, the link and the sidebar."""

import pytest
from conftest import ROOT, each_control_changes_the_picture, fits_projector, image_urls, open_page

from ui import catalog

FLOW = [page.file for page in catalog.PART_A_FLOW]
# page: its controls as (kind, key, a new value): the design card's (t, the start time, w, blur kernel and sigma, the
# step size h) wherever the page has their idea
CONTROLS = {
    "f1_1_noisy.py": [("select_slider", "noisy_t", 0.9)],
    "f1_2_blur.py": [("slider", "flow_blur_kernel", 9), ("slider", "flow_blur_sigma", 3.0)],
    "f1_3_one_step.py": [("select_slider", "flow_one_step_t", 0.1)],
    "f1_4_velocity.py": [("selectbox", "velocity_prompt", "3"), ("slider", "part1_test_image", 2)],
    "f1_5_euler.py": [
        ("select_slider", "euler_h", 0.25),
        ("slider", "euler_blur_kernel", 9),
        ("slider", "euler_blur_sigma", 4.0),
    ],
    "f1_6_sample.py": [("slider", "flow_sample_n", 3), ("select_slider", "flow_sample_h", 0.1)],
    "f2_1_cfg.py": [("slider", "flow_cfg_w", 2.0)],
    "f3_1_edit.py": [
        ("slider", "edit_test_image", 3),
        ("select_slider", "edit_test_start", 0.5),
        ("slider", "edit_test_w", 2.0),
    ],
    "f3_2_text.py": [
        ("slider", "text_test_image", 2),
        ("selectbox", "flow_text_prompt", "3"),
        ("select_slider", "flow_text_start", 0.1),
        ("slider", "flow_text_w", 2.0),
    ],
    "f3_3_anagrams.py": [
        ("selectbox", "flow_anagram_view", "flip (upside down)"),
        ("slider", "flow_anagram_w", 2.0),
        ("radio", "flow_anagram_n", 3),
    ],
    "f3_4_hybrids.py": [
        ("slider", "flow_hybrid_sigma", 2.0),
        ("slider", "flow_hybrid_kernel", 9),
        ("slider", "flow_hybrid_w", 2.0),
        ("radio", "flow_hybrid_bands", 3),
    ],
}


def open_flow_page(page: str, query: dict | None = None):
    return open_page(page, "part_a_flow", query)


def test_every_flow_page_is_listed_exists_and_has_a_twin():
    assert sorted(FLOW) == sorted(CONTROLS)
    assert all((ROOT / "app_pages" / "part_a_flow" / p).exists() for p in FLOW)
    for edition in catalog.EDITIONS.values():
        for page in edition.pages:
            twin = catalog.TWINS[page.url]
            assert catalog.EDITION_OF[twin] != catalog.EDITION_OF[page.url], page.url


@pytest.mark.parametrize("page", sorted(CONTROLS))
def test_flow_page_runs_on_the_flow_backend_and_each_of_its_controls_changes_the_output(page):
    at = open_flow_page(page)
    assert (
        at.selectbox(key="edition").value == "2026" and at.selectbox(key="flow_backend").value == "MNIST digits (flow)"
    )
    each_control_changes_the_picture(at, CONTROLS[page])


def test_the_velocity_page_shows_its_error_maps_on_one_scale():
    at = open_flow_page("f1_4_velocity.py")
    (chart,) = at.get("plotly_chart")
    import json

    spec = json.loads(chart.proto.spec)
    heatmaps = [trace for trace in spec["data"] if trace["type"] == "heatmap"]
    assert len(heatmaps) == 3 and all(trace["coloraxis"] == "coloraxis" for trace in heatmaps)  # one colour scale
    top = max(max(max(row) for row in trace["z"]) for trace in heatmaps)
    assert spec["layout"]["coloraxis"]["cmin"] == 0 and spec["layout"]["coloraxis"]["cmax"] == pytest.approx(top)


def test_euler_sampling_says_the_mse_of_each_method_and_a_larger_step_takes_fewer_updates():
    at = open_flow_page("f1_5_euler.py")
    captions = [im.caption for e in at.get("image") for im in e.proto.imgs]
    assert any(c.startswith("Euler: MSE") for c in captions) and any(c.startswith("one-step: MSE") for c in captions)
    assert any("25 updates of h = 0.02" in h.value for h in at.subheader)
    at.select_slider(key="euler_h").set_value(0.25).run()
    assert any("2 updates of h = 0.25" in h.value for h in at.subheader)


def test_a_link_opens_the_edition_and_each_edition_keeps_its_own_backend():
    welcome = open_page("welcome.py", "home", query={"edition": "2026"})
    assert welcome.selectbox(key="edition").value == "2026"
    assert welcome.selectbox(key="flow_backend").options == ["MNIST digits (flow)", "Emoji (colour, flow)", "PixNerd"]
    assert "Fall 2026" in welcome.markdown[0].value
    at = open_page("a6_cfg.py")  # a Fall 2024 page opens its edition
    assert at.selectbox(key="edition").value == "2024" and at.selectbox(key="backend").value == "MNIST digits"
    assert "DeepFloyd IF" in at.selectbox(key="backend").options


def test_switching_the_edition_in_the_sidebar_goes_to_the_same_idea_in_the_other_edition():
    """On a real server (st.switch_page needs the router): from 1.7 SDEdit, picking Fall 2026 opens 3.1's editing, on
    the flow backend, and back."""
    from remote_client import RemoteClient
    from test_browser import serve_app

    with serve_app({"DIFFUSION_LAB_WARM": "0"}) as (url, _), RemoteClient(url, "a7_sdedit") as client:
        assert client.shows("The more noise (smaller i_start)") and not client.errors
        client.choose("Edition", "Fall 2026 · flow matching (PixNerd)")
        assert client.shows("The earlier the start time") and not client.errors and client.images
        client.choose("Edition", "Fall 2024 · DDPM (DeepFloyd IF)")
        assert client.shows("The more noise (smaller i_start)") and not client.errors


def test_the_digit_flow_models_anagram_and_hybrid_defaults_show_their_effect_not_a_free_one():
    """The Fall 2026 pages' defaults on the digit flow backend (serving.defaults.FLOW_CLASS_PICKS): the judge reads both
    prompts, and the effect is not one the rotation or the blur gives a plain sample of the other prompt anyway."""
    import lab
    import lab.flow as flow
    from lab.filters import gaussian_blur
    from lab.metrics import predict
    from models.bundled import load_backend, load_classifier
    from serving.defaults import flow_hybrid_blur, flow_prompts

    den, judge = load_backend("MNIST digits (flow)").for_inference(), load_classifier("mnist")
    read = lambda x: predict(judge, (x + 1) / 2)[0]  # noqa: E731
    turn = lab.get_view("rotate_180")
    first, second = flow_prompts("anagram", den)[:2]
    x = flow.anagram_images(den, [first, second], n=8, generator=0)
    plain = flow.anagram_images(den, [first] * 2, ("identity", "identity"), n=8, generator=0)
    assert ((read(x) == int(first)) & (read(turn.view(x)) == int(second))).float().mean() >= 0.75
    assert (read(turn.view(plain)) == int(second)).float().mean() <= 0.25
    far, near = flow_prompts("hybrid", den)[:2]
    k, s = flow_hybrid_blur(den)
    x = flow.hybrid_images(den, [far, near], k, (s,), 8, generator=0)
    plain = flow.anagram_images(den, [near] * 2, ("identity", "identity"), n=8, generator=0)
    assert ((read(gaussian_blur(x, k, s)) == int(far)) & (read(x) == int(near))).float().mean() >= 0.5
    assert (read(gaussian_blur(plain, k, s)) == int(far)).float().mean() <= 0.25


@pytest.mark.parametrize("page", ["f3_1_edit.py", "f1_5_euler.py"])
def test_a_lecture_link_sizes_the_flow_pages_rows_for_a_projector_and_the_export_keeps_them(page, image_rows):
    from ui.results import KEY

    at = open_flow_page(page, query={"lecture": "1"})
    assert at.toggle(key="lecture").value
    assert fits_projector(image_rows), image_rows
    exported = at.session_state[KEY]
    assert list(exported) == [f"Fall 2026 · {page}"] and len(next(iter(exported.values()))) >= 2  # its rows, by edition


@pytest.mark.parametrize(
    "page, part, key, scale, inert",
    [("f3_1_edit.py", "part_a_flow", "edit_test", "w", 0.0), ("a7_0_sdedit.py", "part_a", "sdedit", "gamma", 1.0)],
)
def test_an_edit_with_the_null_prompt_on_a_class_backend_says_guidance_changes_nothing(page, part, key, scale, inert):
    from lab.course import DEFAULT_PROMPT

    def notes(at):
        return [c.value for c in at.caption if "coincide" in c.value]

    at = open_page(page, part)
    assert at.selectbox(key=f"{key}_prompt").options and not notes(at)  # a class picked: guidance acts
    at.selectbox(key=f"{key}_prompt").set_value(DEFAULT_PROMPT).run()
    assert not at.exception and len(notes(at)) == 1 and "Pick a class" in notes(at)[0]
    at.slider(key=f"{key}_{scale}").set_value(inert).run()  # no guidance at all: nothing to warn about
    assert not at.exception and not notes(at)


@pytest.mark.parametrize(
    "page, kind, keys",
    [
        ("f3_3_anagrams.py", "anagram", ("flow_anagram_p1", "flow_anagram_p2")),
        ("f3_4_hybrids.py", "hybrid", ("flow_hybrid_far", "flow_hybrid_near")),
    ],
)
def test_a_pair_the_colour_flow_model_draws_is_one_click_away_at_the_w_it_was_judged_at(page, kind, keys):
    """The page opens on the course's prompts (read as names); the judge found pairs of names the flow emoji model's
    illusions read as both in (at w 7, the course's); a
    button sets the page to the pair and to that w (the page opens on the model's own default), and a few seeds of
    that pair read as both."""
    from lab.flow import CFG_W
    from models.bundled import load_backend, load_classifier
    from tools.judge_emoji import anagram_rate, hybrid_rate

    den = load_backend("Emoji (colour, flow)")
    first, second, both = den.illusions[kind][0]
    assert both >= 10  # of 20 seeds, as found
    at = open_flow_page(page, query={"backend": "Emoji (colour, flow)"})
    assert at.selectbox(key="flow_backend").value == "Emoji (colour, flow)" and not at.error
    if kind == "anagram":  # the page opens on the course's prompts, read as the names they mean
        assert at.text_input(key="flow_anagram_p1").value == "an oil painting of an old man"
        assert any("read as **old man**" in c.value for c in at.caption)
    assert at.slider(key=f"flow_{kind}_w").value == den.cfg_scale != CFG_W  # its own default: the button must move it
    before = image_urls(at)
    at.button(key=f"flow_{kind}_pair_0").click().run()
    assert not at.exception and not at.error
    assert [at.text_input(key=k).value for k in keys] == [first, second] and at.slider(
        key=f"flow_{kind}_w"
    ).value == CFG_W
    assert image_urls(at) != before
    judge, seeds = load_classifier("emoji"), range(3)
    rate = (anagram_rate if kind == "anagram" else hybrid_rate)(den, judge, (first, second), seeds=seeds)
    assert rate[2] >= 0.6, rate  # read as both in 2 of 3 seeds at least (found: 17-20 of 20)


def test_the_course_asks_for_an_image_of_your_own_on_1_1_to_1_5_and_one_given_on_a_page_is_kept_for_the_others():
    """An upload (here put where the upload widget keeps it: AppTest cannot send a file; tests/test_browser.py does) is
    what 1.1 works on, and 1.3, opened next in the same browser, opens on it; a test image stays one click away."""
    import torch
    from conftest import PAGE_SCRIPT, page_url
    from streamlit.testing.v1 import AppTest

    from ui.inputs import SOURCES

    mine = torch.linspace(-1, 1, 28 * 28).view(1, 1, 28, 28)
    at = open_flow_page("f1_1_noisy.py")
    assert at.radio(key="part1_source").options == list(SOURCES) and at.radio(key="part1_source").value == "test image"
    before = image_urls(at)
    at.session_state["own_images"] = {"part1": {"source": "upload", "upload": mine}}
    at.radio(key="part1_source").set_value("upload").run()
    assert not at.exception and not at.error and image_urls(at) != before
    assert any("Your upload from before" in c.value for c in at.caption)
    assert any(im.caption == "your upload" for e in at.get("image") for im in e.proto.imgs)
    for page in ("f1_2_blur.py", "f1_3_one_step.py", "f1_4_velocity.py", "f1_5_euler.py"):
        other = AppTest.from_string(
            PAGE_SCRIPT.format(path=str(ROOT / "app_pages" / "part_a_flow" / page), page=page, url=page_url(page)),
            default_timeout=300,
        )
        other.session_state["own_images"] = at.session_state["own_images"]  # the same browser, on the next page
        other.run()
        assert not other.exception and not other.error, page
        assert other.radio(key="part1_source").value == "upload", page
        assert any(im.caption.startswith("your upload") for e in other.get("image") for im in e.proto.imgs), page


def test_blur_runs_the_courses_sweep_and_shows_the_best_blur_per_t_beside_a_blur_of_your_own():
    import lab.flow as flow

    at = open_flow_page("f1_2_blur.py")
    captions = [im.caption for e in at.get("image") for im in e.proto.imgs]
    best = [c for c in captions if ": σ " in c and ", MSE " in c]
    assert [c.split(":")[0] for c in best] == ["t = 0.25", "t = 0.50", "t = 0.75"]
    sweep = flow.sweep_blurs(28)
    assert [round(s * 512 / 28, 6) for s, _ in sweep] == [1, 2, 4, 8, 16]  # the course's sigmas, scaled to 28 px
    assert at.slider(key="flow_blur_sigma").max >= sweep[-1][0]  # your blur reaches the sweep's top
    assert any("The course's sweep" in h.value for h in at.subheader)


def test_euler_measures_mse_on_the_courses_scale_beside_the_staffs_figures():
    at = open_flow_page("f1_5_euler.py")
    table = next(m.value for m in at.markdown if "MSE against the image" in m.value)
    assert "[-1, 1]" in table and "0.0242" in table and "0.0085" in table and "0.0100" in table and "staff" in table
    here = table.split("| here")[1].split("\n")[0]
    euler, one_step, blur = (float(v) for v in here.split("|")[1:4])
    assert one_step < blur and euler < blur  # the lesson, on the page's default image


@pytest.mark.parametrize("page", ["f1_6_sample.py", "f2_1_cfg.py"])
def test_sample_i_is_drawn_from_the_seed_plus_i_as_the_notebooks_noise(page):
    import torch

    import lab.flow as flow
    from models.bundled import load_backend
    from serving.requests import Request, compute

    at = open_flow_page(page)
    captions = [im.caption for e in at.get("image") for im in e.proto.imgs]
    assert [f"seed {180 + i}" for i in range(5)] == captions[:5]
    den = load_backend("MNIST digits (flow)")

    def sample(seed, n):  # as the page asks: image i from noise(seed + i)
        seeds = range(seed, seed + n)
        return Request.of(
            flow.sample, "MNIST digits (flow)", "cpu", n=n, prompt="3", w=2.0, step_size=0.25, seeds=seeds
        )

    two, alone = compute(sample(180, 2), den).images, compute(sample(181, 1), den).images
    assert torch.allclose(two[1:], alone, atol=1e-5)  # sample 1 of seed 180 is sample 0 of seed 181: noise(181)
    assert torch.equal(
        flow.seeded_noise(den, [181]), torch.randn((1, 1, 28, 28), generator=torch.Generator().manual_seed(181))
    )


@pytest.mark.parametrize(
    "page, kind, keys",
    [
        ("f3_3_anagrams.py", "anagram", ("flow_anagram_p1", "flow_anagram_p2")),
        ("f3_4_hybrids.py", "hybrid", ("flow_hybrid_far", "flow_hybrid_near")),
    ],
)
def test_the_courses_two_pairs_are_offered_as_it_spells_them_and_a_backend_says_what_it_cannot_draw(page, kind, keys):
    from lab.fall2026 import COURSE_PAIRS as FLOW_COURSE_PAIRS

    at = open_flow_page(page, query={"backend": "Emoji (colour, flow)"})
    (first, second), (third, fourth) = FLOW_COURSE_PAIRS[kind]
    if kind == "anagram":  # the emoji model has no horse: the village / horse button is off, and says why
        assert at.button(key=f"flow_{kind}_course_1").disabled and any(
            'no name for "a lithograph of a horse"' in c.value for c in at.caption
        )
    else:  # cat / forest: a cat face and an evergreen tree
        at.button(key=f"flow_{kind}_course_1").click().run()
        assert [at.text_input(key=k).value for k in keys] == [third, fourth] and not at.error
    at.button(key=f"flow_{kind}_course_0").click().run()
    assert [at.text_input(key=k).value for k in keys] == [first, second] and not at.exception and not at.error
    digits = open_flow_page(page)  # a backend of classes says the course's pairs need free text
    assert any("need a model of free text" in c.value for c in digits.caption)
