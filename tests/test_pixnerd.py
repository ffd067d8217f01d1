"""PixNerd loaded the way a user loads it: their checkout's network (here the stand-in with PixNerd's module path and
constructor), a Lightning checkpoint's EMA weights read without unpickling code, Qwen3 per new prompt, prompt
embeddings cached on disk; every failure a PixNerdUnavailable that names the fix; every Fall 2026 page on it at 512 px."""

import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import image_urls, open_page
from tiny_pixnerd import STANDIN, save_lightning_checkpoint, save_tiny_qwen3, standin_network

import lab.flow as flow
from models.failures import BackendUnavailable
from models.pixnerd import loading
from models.pixnerd.errors import (
    PixNerdNotCached,
    PixNerdNotConfigured,
    PixNerdNoTextEncoder,
    PixNerdOutOfMemory,
    PixNerdSourceError,
    PixNerdWeightsError,
)
from models.pixnerd.settings import MODEL_ID, TESTED_COMMIT, pixnerd_status
from serving.settings import pixnerd_settings

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A Lightning checkpoint of the stand-in network and a tiny Qwen3 (hidden 32: padded to the network's 48)."""
    base = tmp_path_factory.mktemp("pixnerd")
    net = standin_network()
    ema = save_lightning_checkpoint(base / "model.ckpt", net)
    return {"ckpt": base / "model.ckpt", "ema": ema, "qwen": save_tiny_qwen3(base / "qwen3"), "base": base}


def settings_for(files, cache, **env):
    """Settings as a user sets them: environment variables only; the CPU even where a GPU is."""
    environ = {
        "DIFFUSION_LAB_PIXNERD_MODEL": str(files["ckpt"]),
        "DIFFUSION_LAB_PIXNERD_SOURCE": str(STANDIN),
        "DIFFUSION_LAB_PIXNERD_TEXT_ENCODER": str(files["qwen"]),
        "DIFFUSION_LAB_PIXNERD_DEVICE": "cpu",
        "DIFFUSION_LAB_CACHE": str(cache),
        "DIFFUSION_LAB_CONFIG": str(cache / "none.toml"),
    }
    return pixnerd_settings(environ | env)


def test_loads_the_ema_weights_of_the_lightning_checkpoint_and_predicts_the_networks_velocity(files, tmp_path):
    den = loading.load_pixnerd(settings_for(files, tmp_path))
    assert (
        den.prediction == "velocity" and den.image_shape == (3, 512, 512) and den.row_timesteps and den.batch_rows == 8
    )
    state = den.net.state_dict()
    assert state.keys() == files["ema"].keys()
    assert all(torch.equal(state[k], v.float()) for k, v in files["ema"].items())  # the EMA ones, not "denoiser."
    reference = standin_network()
    reference.load_state_dict({k: v.float() for k, v in files["ema"].items()})
    x, cond = torch.randn(2, 3, 512, 512), den.encode(["a photo of a dog", ""])
    v, variance = den(x, torch.tensor([0.25, 0.75]), cond)
    assert variance is None and torch.allclose(v, reference(x, torch.tensor([0.25, 0.75]), cond), atol=1e-6)
    v_scalar, _ = den(x, 0.25, cond)
    assert torch.allclose(v_scalar[0], v[0], atol=1e-6)  # a number t is every row's t


def test_the_course_functions_run_on_it_with_the_courses_defaults(files, tmp_path):
    den = loading.load_pixnerd(settings_for(files, tmp_path))
    assert flow.hybrid_blur(den.image_shape[1]) == (265, 16.0)  # the course's kernel and sigma at 512 px
    x = flow.sample(den, n=1, step_size=0.25, generator=0)
    assert x.shape == (1, 3, 512, 512) and torch.isfinite(x).all()
    hybrid = flow.hybrid_images(
        den, ["a lithograph of a skull", "a lithograph of waterfalls"], step_size=0.5, generator=0
    )
    assert hybrid.shape == (1, 3, 512, 512) and torch.isfinite(hybrid).all()


def test_bfloat16_runs_the_weights_in_bf16_under_autocast_and_stays_near_float32(files, tmp_path):
    full = loading.load_pixnerd(settings_for(files, tmp_path))
    half = loading.load_pixnerd(settings_for(files, tmp_path, DIFFUSION_LAB_PIXNERD_DTYPE="bfloat16"))
    assert half.net_dtype == torch.bfloat16 and half.dtype == torch.float32
    x, cond = torch.randn(1, 3, 512, 512), full.encode(["a rocket ship"])
    v32, v16 = full(x, 0.5, cond)[0], half(x, 0.5, cond)[0]
    assert v16.dtype == torch.float32 and (v16 - v32).abs().mean() < 0.05 * v32.abs().mean()


def test_qwen3_is_loaded_only_for_prompts_not_seen_and_its_embeddings_are_cached_on_disk(files, tmp_path):
    den = loading.load_pixnerd(settings_for(files, tmp_path))
    encoder = den.embeddings.encoder
    rows = den.encode(["a photo of a dog", "an old man"])
    assert rows.shape == (2, 16, 48) and encoder.loads == 1  # 16 tokens, Qwen3's 32 wide padded to the network's 48
    assert (rows[:, :, 32:] == 0).all() and rows[:, :, :32].abs().sum() > 0
    den.encode(["a photo of a dog", "", "a high quality photo"])  # seen, and the defaults came with the first load
    assert encoder.loads == 1
    den.encode(["a rocket ship"])
    assert encoder.loads == 2
    # a new server without Qwen3 finds them on disk
    cached = loading.load_pixnerd(settings_for(files, tmp_path, DIFFUSION_LAB_PIXNERD_TEXT_ENCODER="none"))
    assert torch.equal(cached.encode(["a photo of a dog"]), rows[:1])
    with pytest.raises(
        PixNerdNoTextEncoder, match="No embedding for prompt 'a castle'.*DIFFUSION_LAB_PIXNERD_TEXT_ENCODER"
    ) as info:
        cached.encode(["a castle"])
    assert isinstance(info.value, ValueError)  # a page shows it as bad input


def test_a_wider_qwen3_is_cut_to_the_networks_width(files, tmp_path):
    wide = save_tiny_qwen3(tmp_path / "qwen3-wide", hidden=64)
    encoder = loading.Qwen3PromptEncoder(str(wide), torch.device("cpu"), width=48, length=16)
    assert encoder(["a skull"]).shape == (1, 16, 48)


def test_a_checkpoint_with_code_in_it_is_refused_and_nothing_in_it_runs(files, tmp_path):
    marker = tmp_path / "ran"
    net = standin_network()
    save_lightning_checkpoint(tmp_path / "evil.ckpt", net, extra={"hyper_parameters": Runs(str(marker))})
    with pytest.raises(PixNerdWeightsError, match=r"holds Python objects besides tensors \(io.open\).*convert_pixnerd"):
        loading.load_pixnerd(settings_for(files, tmp_path, DIFFUSION_LAB_PIXNERD_MODEL=str(tmp_path / "evil.ckpt")))
    assert not marker.exists()


class Runs:
    """An object whose unpickling would run code (writes a file): what a checkpoint must not be allowed to do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_the_conversion_tool_writes_the_ema_weights_as_safetensors_allowing_only_the_named_globals(files, tmp_path):
    from pathlib import PosixPath

    from safetensors.torch import load_file

    from tools.convert_pixnerd import main

    ckpt = tmp_path / "paths.ckpt"
    ema = save_lightning_checkpoint(ckpt, standin_network(), extra={"hyper_parameters": {"root": PosixPath("/data")}})
    with pytest.raises(PixNerdWeightsError, match="--allow pathlib.PosixPath"):
        loading.read_checkpoint(ckpt)
    main([str(ckpt), str(tmp_path / "model.safetensors"), "--allow", "pathlib.PosixPath", "--dtype", "float32"])
    written = load_file(str(tmp_path / "model.safetensors"))
    assert written.keys() == ema.keys() and all(torch.equal(written[k], v.float()) for k, v in ema.items())
    den = loading.load_pixnerd(
        settings_for(files, tmp_path, DIFFUSION_LAB_PIXNERD_MODEL=str(tmp_path))
    )  # the folder's file
    assert all(torch.equal(den.net.state_dict()[k], v.float()) for k, v in ema.items())


def test_weights_of_another_network_are_refused_with_what_does_not_match(files, tmp_path):
    save_lightning_checkpoint(tmp_path / "other.ckpt", standin_network(hidden_size=16, num_encoder_blocks=1))
    with pytest.raises(
        PixNerdWeightsError, match=r"not the weights of this network \(missing 2 \(e.g. blocks.1.bias\); misshapen"
    ):
        loading.load_pixnerd(settings_for(files, tmp_path, DIFFUSION_LAB_PIXNERD_MODEL=str(tmp_path / "other.ckpt")))


def test_every_missing_piece_is_in_the_status_with_its_fix(files, tmp_path):
    status = pixnerd_status(settings_for(files, tmp_path))
    assert status.ready, status.problems
    assert dict(status.items)["network"].startswith("pixnerd_standin (checkout")
    off = pixnerd_status(pixnerd_settings({"DIFFUSION_LAB_CONFIG": str(tmp_path / "none.toml")}))
    assert not off.configured and "DIFFUSION_LAB_PIXNERD_MODEL" in off.problems[0]
    wrong = tmp_path / "checkout"
    shutil.copytree(STANDIN, wrong)
    (wrong / ".git").mkdir()
    (wrong / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (wrong / ".git" / "packed-refs").write_text(f"{'1' * 40} refs/heads/main\n")
    cases = {
        "DIFFUSION_LAB_PIXNERD_SOURCE=": ("is not set", "git clone https://github.com/MCG-NJU/PixNerd"),
        f"DIFFUSION_LAB_PIXNERD_SOURCE={tmp_path / 'nowhere'}": ("not a folder here", "git clone"),
        f"DIFFUSION_LAB_PIXNERD_SOURCE={tmp_path}": ("is not a checkout of", "git clone"),
        f"DIFFUSION_LAB_PIXNERD_SOURCE={wrong}": ("at commit 1111111", f"checkout {TESTED_COMMIT[:7]}"),
        "DIFFUSION_LAB_PIXNERD_CONFIG=configs_t2i/nope.yaml": ("not in the checkout", "inference_heavydecoder.yaml"),
        f"DIFFUSION_LAB_PIXNERD_MODEL={tmp_path / 'no.ckpt'}": ("neither a weights file nor a folder", MODEL_ID),
        "DIFFUSION_LAB_PIXNERD_DEVICE=cuda": ("has no CUDA GPU", "DIFFUSION_LAB_PIXNERD_DEVICE=auto"),
        "DIFFUSION_LAB_PIXNERD_BATCH_ROWS=6": ("is 6", "multiple of 4"),
        f"DIFFUSION_LAB_PIXNERD_TEXT_ENCODER={tmp_path}": ("has no config.json", "Qwen/Qwen3-1.7B"),
        "DIFFUSION_LAB_PIXNERD_TEXT_ENCODER=none": ("no text encoder and no cached embeddings", "Qwen/Qwen3-1.7B"),
    }
    if torch.cuda.is_available():
        del cases["DIFFUSION_LAB_PIXNERD_DEVICE=cuda"]
    for setting, (problem, fix) in cases.items():
        name, value = setting.split("=", 1)
        status = pixnerd_status(settings_for(files, tmp_path / "empty-cache", **{name: value}))
        said = " ".join(status.problems)
        assert not status.ready and problem in said and fix in said.split("Fix:", 1)[1], (setting, said)
    assert "at commit 1111111" in str(_load_error(files, tmp_path, DIFFUSION_LAB_PIXNERD_SOURCE=str(wrong)))


def _load_error(files, tmp_path, **env) -> BackendUnavailable:
    with pytest.raises(BackendUnavailable) as info:
        loading.load_pixnerd(settings_for(files, tmp_path, **env))
    return info.value


def test_loading_failures_are_explained(files, tmp_path, monkeypatch):
    assert isinstance(_load_error(files, tmp_path, DIFFUSION_LAB_PIXNERD_SOURCE=str(tmp_path)), PixNerdSourceError)
    assert isinstance(_load_error(files, tmp_path, DIFFUSION_LAB_PIXNERD_MODEL=""), PixNerdNotConfigured)
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(b"not a checkpoint")
    error = _load_error(files, tmp_path, DIFFUSION_LAB_PIXNERD_MODEL=str(damaged))
    assert isinstance(error, PixNerdWeightsError) and "download it again" in error.fix
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the hub's id, offline and not cached
    error = _load_error(files, tmp_path, DIFFUSION_LAB_PIXNERD_MODEL=MODEL_ID)
    assert isinstance(error, PixNerdNotCached) and f"hf download {MODEL_ID} model.ckpt --local-dir" in error.fix
    status = pixnerd_status(settings_for(files, tmp_path, DIFFUSION_LAB_PIXNERD_MODEL=MODEL_ID))
    assert "is not cached and HF_HUB_OFFLINE is set" in " ".join(status.problems)


def test_cuda_out_of_memory_is_explained_and_the_backend_keeps_working(files, tmp_path, monkeypatch):
    den = loading.load_pixnerd(settings_for(files, tmp_path))
    x, cond = torch.randn(1, 3, 512, 512), den.encode([""])
    forward = den.net.forward
    monkeypatch.setattr(
        den.net, "forward", lambda *a: (_ for _ in ()).throw(torch.OutOfMemoryError("CUDA out of memory"))
    )
    with pytest.raises(PixNerdOutOfMemory, match="DIFFUSION_LAB_PIXNERD_DTYPE=bfloat16"):
        den(x, 0.5, cond)
    monkeypatch.setattr(den.net, "forward", forward)
    assert torch.isfinite(den(x, 0.5, cond)[0]).all()


FLOW_PAGES = [
    "f1_1_noisy.py",
    "f1_2_blur.py",
    "f1_3_one_step.py",
    "f1_4_velocity.py",
    "f1_5_euler.py",
    "f1_6_sample.py",
    "f2_1_cfg.py",
    "f3_1_edit.py",
    "f3_2_text.py",
    "f3_3_anagrams.py",
    "f3_4_hybrids.py",
]


@pytest.fixture
def pixnerd_env(files, tmp_path, monkeypatch):
    from ui.state import pixnerd_backend

    env = {
        "DIFFUSION_LAB_PIXNERD_MODEL": str(files["ckpt"]),
        "DIFFUSION_LAB_PIXNERD_SOURCE": str(STANDIN),
        "DIFFUSION_LAB_PIXNERD_TEXT_ENCODER": str(files["qwen"]),
        "DIFFUSION_LAB_PIXNERD_DEVICE": "cpu",
        "DIFFUSION_LAB_CACHE": str(files["base"] / "cache"),
        "DIFFUSION_LAB_PIXNERD_BATCH_ROWS": "4",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pixnerd_backend.clear()
    yield
    pixnerd_backend.clear()


def test_every_fall_2026_page_runs_on_pixnerd_at_512_px_on_a_room_that_warmed_them(pixnerd_env, monkeypatch):
    """A lecturer's PixNerd server as docs/operating.md sets it up (DIFFUSION_LAB_WARM_BACKENDS=PixNerd,
    DIFFUSION_LAB_RESULTS_MB=2048): the warm-up computes every Fall 2026 page's defaults at 512 px with the course's
    blur (kernel 265, sigma 16), and each page then opens on PixNerd computing nothing (a 512 px result with its
    trajectories is ~80 MB: the default 256 MB holds three)."""
    from serving.queue import ResultsStore
    from serving.room import warm_defaults
    from serving.settings import RoomSettings
    from ui import catalog
    from ui.state import DEFAULT_SEED, backend, first_test_images, room

    assert sorted(FLOW_PAGES) == sorted(p.file for p in catalog.PART_A_FLOW)
    monkeypatch.setenv("DIFFUSION_LAB_WARM_BACKENDS", "PixNerd")
    monkeypatch.setenv("DIFFUSION_LAB_RESULTS_MB", "2048")
    room.clear()
    r = room()  # the tests' servers do not warm by themselves (conftest): this one is warmed here, PixNerd only
    try:
        warm_defaults(
            r,
            list(RoomSettings.from_env().warm_backends),
            [DEFAULT_SEED],
            backend,
            lambda name: first_test_images(name, 1),
        )
        warmed = dict(r.queue.counts)
        assert warmed["computed"] >= 20 and warmed["failed"] == 0, warmed
        for page in FLOW_PAGES[:-1]:  # opened by a link that names the backend (?backend=PixNerd)
            at = open_page(page, "part_a_flow", query={"backend": "PixNerd"})
            assert at.selectbox(key="flow_backend").value == "PixNerd" and image_urls(at), page
            assert r.queue.counts["computed"] == warmed["computed"], f"{page} computed something the warm-up did not"
        at = open_page(FLOW_PAGES[-1], "part_a_flow")  # 3.4 on the digits (28 px), then PixNerd: its blur's defaults
        assert at.slider(key="flow_hybrid_kernel").value < 265
        at.selectbox(key="flow_backend").set_value("PixNerd").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.slider(key="flow_hybrid_kernel").value == 265 and at.slider(key="flow_hybrid_sigma").value == 16.0
        assert image_urls(at) and r.queue.counts["computed"] == warmed["computed"] + 1  # the digits' 3.4 only
    finally:
        room.clear()
        r.queue.results = ResultsStore(0, r.queue.results.sizeof)  # its ~1.8 GB go now, not with its worker threads


def test_pixnerd_not_configured_says_so_and_the_page_keeps_working(monkeypatch):
    from ui.state import pixnerd_backend

    monkeypatch.delenv("DIFFUSION_LAB_PIXNERD_MODEL", raising=False)
    pixnerd_backend.clear()
    at = open_page("f1_6_sample.py", "part_a_flow")
    at.selectbox(key="flow_backend").set_value("PixNerd").run()
    assert not at.exception
    assert any("PixNerd is not ready" in e.value and "DIFFUSION_LAB_PIXNERD_MODEL" in e.value for e in at.error)
    assert image_urls(at)  # on the bundled flow backend meanwhile


@pytest.mark.skipif(
    not os.environ.get("PIXNERD_CHECKOUT"),
    reason="set PIXNERD_CHECKOUT to a checkout of MCG-NJU/PixNerd (and run this test alone: -k real_checkout)",
)
def test_the_real_checkouts_network_loads_its_ema_weights_from_a_lightning_checkpoint(tmp_path):
    """PixNerd's own network code (a small config of it): the checkpoint's EMA weights in, its own velocity out."""
    import yaml

    source = os.environ["PIXNERD_CHECKOUT"]
    config = yaml.safe_load((Path(source) / "configs_t2i" / "inference_heavydecoder.yaml").read_text())
    config["model"]["denoiser"]["init_args"].update(
        hidden_size=96, num_groups=4, txt_embed_dim=64, num_encoder_blocks=2, num_text_blocks=1, num_decoder_blocks=1
    )
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(config))
    settings = pixnerd_settings(
        {
            "DIFFUSION_LAB_PIXNERD_MODEL": str(tmp_path / "model.ckpt"),
            "DIFFUSION_LAB_PIXNERD_SOURCE": source,
            "DIFFUSION_LAB_PIXNERD_CONFIG": str(tmp_path / "small.yaml"),
            "DIFFUSION_LAB_PIXNERD_DEVICE": "cpu",
            "DIFFUSION_LAB_PIXNERD_TEXT_ENCODER": "none",
            "DIFFUSION_LAB_CACHE": str(tmp_path),
            "DIFFUSION_LAB_CONFIG": str(tmp_path / "none.toml"),
        }
    )
    torch.manual_seed(0)
    reference = loading.build_network(settings, device="cpu").eval()
    for p in reference.parameters():
        p.data.normal_(0, 0.05)
    save_lightning_checkpoint(tmp_path / "model.ckpt", reference, dtype=torch.float32)
    den = loading.load_pixnerd(settings)
    x, y, t = torch.randn(2, 3, 512, 512), torch.randn(2, 128, 64), torch.tensor([0.3, 0.8])
    with torch.no_grad():
        expected = reference(x, t, y)
    assert torch.equal(den(x, t, y)[0], expected)


def test_the_notebooks_model_object_and_checks_run_on_pixnerd_unchanged(files, tmp_path):
    """The notebook's code on PixNerd through lab.flow_model.FlowModel: its interface at 512 px, its check cells."""
    from test_notebook import lab_names, notebook_checks

    from lab.flow_model import FlowModel

    model = FlowModel(loading.load_pixnerd(settings_for(files, tmp_path)))
    assert model.image_shape == (3, 512, 512) and model.noise(180).shape == (1, 3, 512, 512)
    image = model.preprocess(model.to_pil(model.noise(3).clamp(-1, 1)))
    notebook_checks(lab_names(), model, image)
    assert torch.equal(
        model.predict_velocity(image, 0.5, "a photo of a dog"),
        model.predict_velocity(image, 0.5, model.encode("a photo of a dog")),
    )
