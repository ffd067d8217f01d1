"""The colour backend: its prompt mapping, that it loads as a lab Denoiser, that the judge reads its
samples as their prompts, and that the Part A pages run on it."""

import pytest
import torch
from conftest import image_urls, open_page

import lab
from models.bundled import WEIGHTS, load_backend, load_classifier
from models.emoji_backend import nearest_name
from models.schedules import make_alphas_cumprod

BACKEND = "Emoji (colour)"


@pytest.fixture(scope="module")
def den():
    return load_backend(BACKEND)


@pytest.mark.parametrize(
    "prompt, name",
    [
        ("a photo of a dog", "dog face"),
        ("an oil painting of an old man", "old man"),
        ("people around a campfire", "fire"),
        ("an oil painting of people around a campfire", "fire"),
        ("a lithograph of waterfalls", "water wave"),
        ("a rocket ship", "rocket"),
        ("a lithograph of a skull", "skull"),
        ("a pencil", "pencil"),
        ("an oil painting of a snowy mountain village", "snow-capped mountain"),
        ("a man wearing a hat", "old man"),  # the subject comes first
        ("Top Hat", "top hat"),
        ("two cats", "cat face"),
        ("a cup of coffee", "hot beverage"),
        ("a cactus", "cactus"),
        ("three rockets", "rocket"),
    ],
)
def test_a_prompt_is_read_as_the_nearest_name_by_its_words(den, prompt, name):
    assert den.name_of(prompt) == name
    assert den.encode([prompt]).tolist() == [den.names.index(name)]


def test_the_null_prompts_are_the_null_class_and_a_prompt_that_names_nothing_says_what_to_do(den):
    assert den.encode(["", "a high quality photo", " A High Quality Photo "]).tolist() == [den.null_index] * 3
    assert den.name_of("") is None
    with pytest.raises(ValueError, match="names an emoji") as e:
        den.encode(["a quantum computer"])
    assert "old man" in str(e.value) and "empty" in str(e.value)  # some names, and the null option
    assert nearest_name("rocket", ["rocket"]) == 0


def test_a_page_of_text_that_names_nothing_is_not_echoed_back_whole():
    with pytest.raises(ValueError, match="names an emoji") as e:
        nearest_name("quantum " * 10_000, ["rocket", "old man"])
    assert len(str(e.value)) < 400 and "quantum quantum" in str(e.value) and "..." in str(e.value)


def test_the_backend_is_a_denoiser_as_the_others_are(den):
    from tools.emoji_data import NAMES

    assert isinstance(den, lab.Denoiser)
    assert den.image_shape == (3, 32, 32) and den.T == 1000 and den.variance_type == "fixed_small"
    assert torch.equal(den.alphas_cumprod, make_alphas_cumprod("squaredcos_cap_v2", 1000))  # DeepFloyd IF's schedule
    assert list(den.names) == list(NAMES)  # the data tool and the model agree on the names
    x = torch.randn(3, 3, 32, 32)
    eps, var = den(x, torch.tensor([10, 500, 990]), den.encode(["fire", "", "skull"]))
    assert eps.shape == x.shape and var is None
    assert torch.allclose(den(x[1:2], 500, den.encode([""]))[0], eps[1:2], atol=1e-4)  # rows at their own t
    card = (WEIGHTS / "parta_emoji.md").read_text()
    assert "parta_emoji.safetensors" in card and "read as DDPM" in card and "## Metrics" in card and "Apache" in card


def test_the_fall_2024_colour_backend_reads_a_flow_network_as_ddpm(den):
    """The colour DDPM backend is a flow network (parta_emoji.safetensors) read as DDPM: its noise at (x_t, t) implies
    the clean image the same file's velocity implies at the same point of the path (x_tau = x_t / (a + s), tau = a /
    (a + s)): (x_t - s eps) / a = x_tau + (1 - tau) v, at every row's timestep."""
    from models.bundled import emoji_denoiser
    from models.emoji_unet import load_emoji_file

    model, meta = load_emoji_file(WEIGHTS / "parta_emoji.safetensors")
    flow = emoji_denoiser(model, meta)  # the file as it was trained
    assert meta["train"]["objective"] == "flow" and flow.prediction == "velocity" and den.prediction == "epsilon"
    assert all(torch.equal(a, b) for a, b in zip(den.unet.state_dict().values(), flow.unet.state_dict().values()))
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1, torch.randn(3, 3, 32, 32, generator=g)
    t, cond = torch.tensor([30, 480, 960]), den.encode(["skull", "", "rocket"])
    abar = den.alphas_cumprod[t].view(-1, 1, 1, 1)
    a, s = abar.sqrt(), (1 - abar).sqrt()
    x_t = a * x0 + s * eps
    noise, _ = den(x_t, t, cond)
    tau = a / (a + s)
    v, _ = flow(x_t / (a + s), tau.flatten(), cond)
    assert torch.allclose((x_t - s * noise) / a, x_t / (a + s) + (1 - tau) * v, atol=1e-3)


def test_the_judge_reads_cfg_samples_as_their_names(den):
    """A small sample of the card's figure: 2 CFG samples (gamma 3, the pages' default on this backend) of 8 names
    spread over the list; the card reports every name."""
    judge = load_classifier("emoji")
    assert judge.names == den.names
    picks = list(range(0, len(den.names), len(den.names) // 8))[:8]
    x = torch.cat([lab.sample(den, 2, den.names[k], den.cfg_scale, generator=k) for k in picks])
    read = judge((x.clamp(-1, 1) + 1) / 2).argmax(1)
    wanted = torch.tensor(picks).repeat_interleave(2)
    assert (read == wanted).float().mean() >= 0.7  # the card: 99 % of 464 at gamma 3, [den.names[k] for k in read]


@pytest.mark.parametrize("page", ["a7_0_sdedit.py", "a8_anagrams.py", "a9_hybrids.py"])
def test_part_a_pages_run_on_the_colour_backend_with_the_courses_prompts(page):
    at = open_page(page)
    at.selectbox(key="backend").set_value(BACKEND).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.text_input  # free text, read as a name
    assert any("read as" in c.value for c in at.caption)
    assert image_urls(at)
    if page == "a9_hybrids.py":  # the colour split: grey from one prompt, colour from the other
        before = image_urls(at)
        at.radio(key="hybrid_split").set_value("colour").run()
        assert not at.exception and not at.error and image_urls(at) != before
    if page == "a8_anagrams.py":  # a failure view says why it fails
        at.selectbox(key="anagram_view").set_value("blur (fails on purpose)").run()
        assert not at.exception and any("cannot make an anagram" in w.value for w in at.warning)


def test_a_prompt_that_names_nothing_gets_a_message_not_a_traceback():
    at = open_page("a7_3_text.py")
    at.selectbox(key="backend").set_value(BACKEND).run()
    at.text_input(key="text_prompt").set_value("a quantum computer").run()
    assert not at.exception
    assert any("names an emoji" in e.value for e in at.error)


@pytest.mark.parametrize(
    "page, kind, keys",
    [
        ("a8_anagrams.py", "anagram", ("anagram_p1", "anagram_p2")),
        ("a9_hybrids.py", "hybrid", ("hybrid_far", "hybrid_near")),
    ],
)
def test_a_pair_this_model_draws_is_one_click_away_and_reads_as_both(den, page, kind, keys):
    """The course's anagram and hybrid read as both in 0 of 20 seeds on this model; tools/search_illusions.py found
    pairs of names that do (den.illusions). A button sets the page to a pair; the judge reads that pair's picture as
    both of its names in most of a few seeds (the card: of 20)."""
    from tools.judge_emoji import anagram_rate, hybrid_rate

    first, second, both = den.illusions[kind][0]
    assert both >= 10  # of 20 seeds, as found
    at = open_page(page)
    at.selectbox(key="backend").set_value(BACKEND).run()
    before = image_urls(at)
    at.button(key=f"{kind}_pair_0").click().run()
    assert not at.exception and not at.error
    assert [at.text_input(key=k).value for k in keys] == [first, second]
    assert image_urls(at) != before
    judge, seeds = load_classifier("emoji"), range(4)
    rate = (
        anagram_rate(den, judge, (first, second), seeds=seeds)
        if kind == "anagram"
        else hybrid_rate(den, judge, (first, second), 2.0, seeds=seeds)
    )
    assert rate[2] >= 0.5, rate  # read as both in 2 of 4 seeds at least (the course's pair: 0 of 20)


def test_the_pages_open_on_the_gamma_this_model_is_judged_best_at_and_another_backend_on_its_own():
    """γ 3 is where this model is judged best (99 %; 97 % at the course's γ 7, its card): the pages open on
    the backend's default γ, and switching the backend in the sidebar resets γ to the new one's."""
    at = open_page("a6_cfg.py")
    assert at.slider(key="cfg_gamma").value == 7.0
    at.selectbox(key="backend").set_value(BACKEND).run()
    assert not at.exception and at.slider(key="cfg_gamma").value == 3.0
    at.slider(key="cfg_gamma").set_value(5.0).run()
    at.selectbox(key="backend").set_value("MNIST digits").run()
    assert not at.exception and at.slider(key="cfg_gamma").value == 7.0


def test_the_colour_flow_card_says_what_its_weights_file_holds_and_how_it_was_distilled(den):
    """The shipped colour flow model is a distilled network (models/weights/parta_emoji_flow.md): the card's Model line
    and its runs are what the weights file's own config and training record say, written by the card tool."""
    from models.emoji_unet import load_emoji_file
    from tools.judge_emoji import FLOW_BACKEND, distilled, image_gflop, network

    flow = load_backend(FLOW_BACKEND)
    train = load_emoji_file(WEIGHTS / "parta_emoji_flow.safetensors")[1]["train"]
    card = (WEIGHTS / "parta_emoji_flow.md").read_text()
    assert f"- Model: {network(flow)}," in card and "no attention" in network(flow)
    runs = distilled(train, "--objective flow ", "parta_emoji_flow.md")
    assert all(line in card for line in runs)
    assert "--teacher teacher.safetensors" in runs[-2] and f"--arch {train['arch']}" in runs[-2]  # the last run taught
    assert train["teacher_train"]["steps_done"] > 0 and train["arch"] != "attn"
    assert image_gflop(flow.unet) < 0.25  # a fraction of the attention network's 0.50 GFLOP (parta_emoji.md before)


def test_the_fall_2024_colour_card_says_what_its_own_network_is_and_how_it_was_distilled(den):
    """The Fall 2024 colour backend reads its own flow network (parta_emoji.safetensors) as DDPM: its card's Model line
    and runs are what that file's config and training record say (a run stopped at a checkpoint says so)."""
    from models.emoji_unet import load_emoji_file
    from tools.judge_emoji import distilled, network

    train = load_emoji_file(WEIGHTS / "parta_emoji.safetensors")[1]["train"]
    card = (WEIGHTS / "parta_emoji.md").read_text()
    assert f"read as DDPM: {network(den)}." in card and train["objective"] == "flow"
    runs = distilled(train, "--objective flow ", "parta_emoji.md", teacher_card="parta_emoji_flow.md")
    assert all(line in card for line in runs) and f"--arch {train['arch']}" in runs[-2]
    assert ("stopped after that checkpoint" in runs[-2]) == (train["steps_done"] < train["steps"])


def test_a_network_on_pixel_blocks_is_a_unet_call_and_its_file_round_trips(tmp_path):
    """ARCHS["s2d_head"]: the UNet runs on 2 x 2 pixel blocks, a head at the full size adds its correction (zero as it
    starts: the network without it, whose weights it can start from); called and saved as a UNet2DModel is."""
    from models.emoji_unet import build, load_emoji_file, save_emoji_file, unet_config

    torch.manual_seed(0)
    blocks = build(unet_config(3, arch="s2d")).eval()
    config = unet_config(3, arch="s2d_head")
    net = build(config).eval()
    missing, unexpected = net.load_state_dict(blocks.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("head.") for k in missing)
    x, t, c = torch.randn(2, 3, 32, 32), torch.tensor([10.0, 900.0]), torch.tensor([0, 3])
    with torch.no_grad():
        out = net(x, t, class_labels=c).sample
        assert out.shape == x.shape and net.config.sample_size == 32
        assert (net.unet.config.sample_size, net.unet.config.in_channels, net.unet.config.out_channels) == (16, 12, 12)
        assert torch.equal(out, blocks(x, t, class_labels=c).sample)  # the head starts at zero
        torch.nn.init.normal_(net.head[2].weight, std=0.1)
        out = net(x, t, class_labels=c).sample
        save_emoji_file(tmp_path / "s2d.safetensors", net, config, {"names": ["a", "b", "c"]}, dtype=torch.float32)
        again, meta = load_emoji_file(tmp_path / "s2d.safetensors")
        assert torch.equal(again(x, t, class_labels=c).sample, out) and meta["names"] == ["a", "b", "c"]
        last = again.to(memory_format=torch.channels_last)
        fed = x.contiguous(memory_format=torch.channels_last)
        assert (last(fed, t, class_labels=c).sample - out).abs().max() < 1e-4


def test_the_course_unet_as_a_colour_network_is_a_unet_call_whose_null_name_is_the_course_no_class(tmp_path):
    """ARCHS["course"]: the course's UNet at 32 px with 3 channels behind UNet2DModel's call; the timestep over T is
    the course's t, a name index its one-hot, the null index its zero vector; its file round-trips, and a server's copy
    (BatchNorm folded, channels_last) agrees with it."""
    from models.emoji_backend import EmojiDenoiser
    from models.emoji_unet import build, load_emoji_file, save_emoji_file, unet_config

    torch.manual_seed(0)
    config = unet_config(3, arch="course")
    net = build(config)
    net.train()(torch.randn(16, 3, 32, 32), torch.rand(16) * 1000, class_labels=torch.randint(0, 4, (16,)))
    net.eval()  # BatchNorm's statistics moved: folding them is not a no-op
    x, t, c = torch.randn(3, 3, 32, 32), torch.tensor([0.0, 400.0, 1000.0]), torch.tensor([0, 2, 3])
    with torch.no_grad():
        out = net(x, t, class_labels=c).sample
        onehot = torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 0, 0]])
        assert torch.equal(out, net.net(x, t / 1000, onehot)) and out.shape == x.shape
        assert torch.equal(net(x, t).sample, net.net(x, t / 1000, torch.zeros(3, 3)))  # no labels: the null name
        save_emoji_file(tmp_path / "course.safetensors", net, config, {"names": ["a", "b", "c"]}, dtype=torch.float32)
        again, meta = load_emoji_file(tmp_path / "course.safetensors")
        assert torch.equal(again(x, t, class_labels=c).sample, out) and again.config.sample_size == 32
        den = EmojiDenoiser(again, meta["names"], objective="flow")
        exact, _ = den(x, t / 1000, c)
        served, _ = den.for_inference()(x, t / 1000, c)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in den.for_inference().unet.modules())
        assert torch.equal(exact, out) and (served - exact).abs().max() < 1e-4


def test_the_course_unet_conditioned_at_every_level_is_the_course_unet_plus_its_modulations():
    """ARCHS["course_every"]: the name and t also scale and shift the encoder's first and last level and the decoder's
    last, (1 + c) h + t; with those zero it is the course network with the same weights, and a server copy agrees."""
    from models.emoji_unet import build, unet_config
    from models.unet import inference_copy

    torch.manual_seed(0)
    every, plain = build(unet_config(3, arch="course_every")).eval(), build(unet_config(3, arch="course")).eval()
    plain.load_state_dict(every.state_dict(), strict=False)
    x, t, c = torch.randn(3, 3, 32, 32), torch.tensor([0.0, 400.0, 1000.0]), torch.tensor([0, 2, 3])
    with torch.no_grad():
        out = every(x, t, class_labels=c).sample
        assert (out - plain(x, t, class_labels=c).sample).abs().max() > 1e-3  # the modulations act
        assert (out - every(x, t, class_labels=torch.tensor([1, 2, 3])).sample)[0].abs().max() > 1e-4  # the name
        served = inference_copy(every)(x.contiguous(memory_format=torch.channels_last), t, class_labels=c).sample
        assert (served - out).abs().max() < 1e-4
        for fc in [*every.c_at.values(), *every.t_at.values()]:
            torch.nn.init.zeros_(fc[2].weight), torch.nn.init.zeros_(fc[2].bias)
        assert torch.allclose(every(x, t, class_labels=c).sample, plain(x, t, class_labels=c).sample, atol=1e-6)


def test_the_colour_flow_samples_are_as_smooth_as_the_renderings_they_learnt():
    """What the judge does not see and a projected page does: speckle in flat colour (a network on 2 x 2 pixel blocks
    measured 1.4x the renderings' high frequencies, docs/performance.md). The shipped model stays within 1.25x."""
    from tools.judge_emoji import grain

    shipped = str(WEIGHTS / "parta_emoji_flow.safetensors")
    measured = grain([shipped], per_name=2, names=range(0, 58, 4))  # 30 samples of 15 names
    assert measured[shipped] < 1.25 * measured["renderings"], measured


def test_a_ddpm_network_trained_on_v_gives_the_noise():
    """A DDPM colour network may predict v = sqrt(abar) eps - sqrt(1 - abar) x0 (tools/train_emoji.py --prediction v):
    the backend still gives the noise, eps = sqrt(abar) v + sqrt(1 - abar) x_t. A network whose output is the true v of
    (x0, eps) gives back that eps at every row's timestep, also batched at different timesteps as a server calls it."""
    from models.emoji_backend import EmojiDenoiser

    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1, torch.randn(3, 3, 32, 32, generator=g)
    t = torch.tensor([0, 500, 999])
    abar = make_alphas_cumprod("squaredcos_cap_v2", 1000)[t].view(-1, 1, 1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    v = abar.sqrt() * eps - (1 - abar).sqrt() * x0

    class TrueV(torch.nn.Module):  # what a perfectly trained network outputs for these rows
        config = type("Config", (), {"sample_size": 32})()

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, timesteps, class_labels=None):
            assert torch.equal(x, x_t) and torch.equal(timesteps.long(), t)
            return type("Out", (), {"sample": v})()

    den = EmojiDenoiser(TrueV(), ["a", "b"], output="v")
    got, _ = den(x_t, t, torch.tensor([0, 1, 2]))
    assert den.prediction == "epsilon" and (got - eps).abs().max() < 1e-4
    with pytest.raises(ValueError, match="takes a network"):
        EmojiDenoiser(TrueV(), ["a", "b"], objective="flow", output="v")
