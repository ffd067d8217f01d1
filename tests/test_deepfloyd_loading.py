"""DeepFloyd IF loaded the way a user loads a local folder (DIFFUSION_LAB_IF_MODEL), on tiny IF-architecture models.

The folders are saved by diffusers' ``save_pretrained`` (UNet, T5 encoder and tokenizer, schedulers), so loading
runs exactly the user's path: settings from the environment, ``IFPipeline.from_pretrained``, T5 on demand.
"""

import warnings
from types import SimpleNamespace

import pytest
import torch
from diffusers import IFPipeline, UNet2DConditionModel
from safetensors.torch import load_file
from tiny_if import save_tiny_if

import lab
from lab.schedules import strided_timesteps
from models.deepfloyd import loading
from models.deepfloyd.denoiser import IFDenoiser
from models.deepfloyd.errors import IFModelNotFound, IFNotConfigured, IFNoTextEncoder
from models.deepfloyd.loading import IFSpeedWarning, load_stage1, load_stage2, pipeline_kwargs, variant_for
from models.deepfloyd.settings import choose_device, choose_dtype, has_package, use_offload
from serving.settings import deepfloyd_settings as load_settings

SHORT = strided_timesteps(1000, 250)  # 750, 500, 250, 0 and the step to clean: the course's loop, fewer steps


pytestmark = pytest.mark.usefixtures("one_thread")


def settings_for(folder, cache, **env):
    """Settings as a user sets them: environment variables only (no config file); the CPU even where a GPU is."""
    environ = {
        "DIFFUSION_LAB_IF_MODEL": str(folder),
        "DIFFUSION_LAB_CACHE": str(cache),
        "DIFFUSION_LAB_DEVICE": "cpu",
        "DIFFUSION_LAB_CONFIG": str(cache / "none.toml"),
    }
    return load_settings(environ | env)


def load_quietly(settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IFSpeedWarning)
        return load_stage1(settings)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("if")
    return save_tiny_if(root / "stage1"), save_tiny_if(root / "stage2", stage=2, sample_size=64), root


@pytest.fixture(scope="module")
def denoiser(folders):
    stage1, stage2, root = folders
    with pytest.warns(IFSpeedWarning, match="fp32"):  # fp32 on the CPU, with the warning
        den = load_stage1(settings_for(stage1, root / "cache"))
    return den


def test_loads_the_saved_unet_in_fp32_on_the_cpu(folders, denoiser):
    assert isinstance(denoiser, IFDenoiser) and isinstance(denoiser, lab.Denoiser)
    assert denoiser.device == torch.device("cpu") and denoiser.dtype == torch.float32
    assert denoiser.image_shape == (3, 32, 32) and denoiser.T == 1000 and denoiser.variance_type == "learned_range"
    saved = load_file(str(folders[0] / "unet" / "diffusion_pytorch_model.safetensors"))
    state = denoiser.unet.state_dict()
    assert saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in saved)
    assert torch.equal(denoiser.alphas_cumprod, lab.make_alphas_cumprod("squaredcos_cap_v2", 1000))


def test_noise_and_variance_are_the_unets_channels_split_in_two(folders, denoiser):
    unet = UNet2DConditionModel.from_pretrained(
        folders[0], subfolder="unet", low_cpu_mem_usage=False
    ).eval()  # an independent load
    g = torch.Generator().manual_seed(0)
    x_t, cond = torch.randn(2, 3, 32, 32, generator=g), denoiser.encode(["a photo of a dog", ""])
    eps, variance = denoiser(x_t, 500, cond)
    with torch.no_grad():
        out = unet(x_t, 500, encoder_hidden_states=cond, return_dict=False)[0]  # (2, 6, 32, 32)
    assert eps.shape == variance.shape == (2, 3, 32, 32)
    assert torch.allclose(eps, out[:, :3], atol=1e-6) and torch.allclose(variance, out[:, 3:], atol=1e-6)


def test_part_a_runs_end_to_end_on_the_loaded_model(denoiser):
    seed = 180
    prompts = [
        "a photo of a dog",
        "an oil painting of an old man",
        "an oil painting of people around a campfire",
        "a lithograph of a skull",
        "a lithograph of waterfalls",
        "a rocket ship",
        "a pencil",
    ]
    loads = denoiser.embeddings.encoder.loads
    denoiser.prepare(prompts)  # every new prompt in one T5 load
    assert denoiser.embeddings.encoder.loads == loads + 1
    x = lab.sample(denoiser, n=1, prompt="a photo of a dog", scale=7.0, generator=seed)  # 1.6, the course's timesteps
    anagram = lab.visual_anagrams(
        denoiser,
        ["an oil painting of an old man", "an oil painting of people around a campfire"],
        ("identity", "flip"),
        timesteps=SHORT,
        generator=seed,
    )
    hybrid = lab.make_hybrids(
        denoiser, ["a lithograph of a skull", "a lithograph of waterfalls"], timesteps=SHORT, generator=seed
    )
    im = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    mask = torch.zeros(32, 32)
    mask[8:24, 8:24] = 1
    filled = lab.inpaint(denoiser, im, mask, prompt="a rocket ship", timesteps=SHORT, generator=seed)
    edited = lab.sdedit(denoiser, im, i_start=3, prompt="a pencil", timesteps=SHORT, generator=seed)
    for out in (x, anagram, hybrid, filled, edited):
        assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()
    assert torch.equal(filled[..., mask == 0], im[..., mask == 0])  # A.5: the kept pixels come back exactly
    assert torch.equal(filled, lab.inpaint(denoiser, im, mask, prompt="a rocket ship", timesteps=SHORT, generator=seed))
    assert set(prompts) | {"", "a high quality photo"} <= set(denoiser.embeddings)
    assert denoiser.embeddings.encoder.loads == loads + 1  # nothing encoded twice


def test_stage_two_upsamples_a_stage_one_result(folders, denoiser):
    settings = settings_for(folders[0], folders[2] / "cache", DIFFUSION_LAB_IF_STAGE2=str(folders[1]))
    upsampler = load_stage2(settings, denoiser)
    assert upsampler.embeddings is denoiser.embeddings and upsampler.dtype == torch.float32
    x = lab.sample(denoiser, n=1, prompt="a rocket ship", scale=None, timesteps=SHORT, generator=0)
    loads = denoiser.embeddings.encoder.loads
    up = upsampler(x, "a rocket ship", num_inference_steps=1, generator=torch.Generator().manual_seed(0))
    assert up.shape == (1, 3, 64, 64) and torch.isfinite(up).all() and up.abs().max() <= 1
    assert denoiser.embeddings.encoder.loads == loads  # the prompt's embedding is reused, T5 not loaded again
    with pytest.raises(ValueError, match=r"\(B, 3, h, w\)"):
        upsampler(x[0])


def test_stage_two_off_or_the_wrong_stage_is_explained(folders, denoiser):
    with pytest.raises(IFNotConfigured, match="DIFFUSION_LAB_IF_STAGE2"):
        load_stage2(settings_for(folders[0], folders[2] / "cache"), denoiser)
    with pytest.raises(
        IFModelNotFound, match="holds a IFPipeline, not a DeepFloyd IF stage II.*DIFFUSION_LAB_IF_STAGE2"
    ):
        load_stage2(settings_for(folders[0], folders[2] / "cache", DIFFUSION_LAB_IF_STAGE2=str(folders[0])), denoiser)
    with pytest.raises(
        IFModelNotFound, match="holds a IFSuperResolutionPipeline, not .* stage I .*DIFFUSION_LAB_IF_MODEL"
    ):
        load_quietly(settings_for(folders[1], folders[2] / "cache"))
    with pytest.raises(IFModelNotFound, match="lacks model_index.json"):
        load_quietly(settings_for(folders[2] / "nowhere", folders[2] / "cache"))


def test_a_download_without_t5_runs_on_imported_embeddings(folders, tmp_path):
    """The course's way: stage I without its text encoder, prompts from the .pth."""
    folder = save_tiny_if(tmp_path / "no_t5", text_encoder=False)
    den = load_quietly(settings_for(folder, tmp_path / "cache"))
    assert den.embeddings.encoder is None
    with pytest.raises(IFNoTextEncoder, match="DIFFUSION_LAB_IF_EMBEDDINGS") as info:
        den.encode(["a photo of a dog"])
    assert isinstance(info.value, ValueError)
    g = torch.Generator().manual_seed(0)
    course = {p: torch.randn(1, 77, 64, generator=g).half() for p in ("", "a high quality photo", "a photo of a dog")}
    torch.save(course, tmp_path / "prompt_embeds_dict.pth")
    den = load_quietly(
        settings_for(folder, tmp_path / "cache2", DIFFUSION_LAB_IF_EMBEDDINGS=str(tmp_path / "prompt_embeds_dict.pth"))
    )
    assert torch.equal(den.encode(["a photo of a dog"])[0], course["a photo of a dog"][0].float())
    x = lab.sample(den, n=1, prompt="a photo of a dog", timesteps=SHORT, generator=1)
    assert torch.isfinite(x).all()


def test_fp16_is_chosen_only_on_cuda(monkeypatch, folders):
    assert choose_dtype(torch.device("cpu")) == torch.float32
    assert choose_dtype(torch.device("cuda")) == torch.float16
    assert choose_dtype(torch.device("mps")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("auto") == torch.device("cpu")
    with pytest.raises(IFNotConfigured, match="DIFFUSION_LAB_DEVICE"):
        choose_device("cuda")
    assert pipeline_kwargs(str(folders[0]), torch.device("cpu"))["dtype"] == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device("auto") == torch.device("cuda")
    kwargs = pipeline_kwargs("DeepFloyd/IF-I-XL-v1.0", torch.device("cuda"))
    assert kwargs["dtype"] == torch.float16 and kwargs["variant"] == "fp16"
    assert kwargs["text_encoder"] is None and kwargs["safety_checker"] is None and kwargs["watermarker"] is None
    assert pipeline_kwargs("DeepFloyd/IF-I-XL-v1.0", torch.device("cpu"))["dtype"] == torch.float32


def test_weights_variant_follows_the_folder_and_the_dtype(tmp_path):
    (tmp_path / "both" / "unet").mkdir(parents=True)
    (tmp_path / "both" / "unet" / "diffusion_pytorch_model.safetensors").touch()
    (tmp_path / "both" / "unet" / "diffusion_pytorch_model.fp16.safetensors").touch()
    (tmp_path / "half" / "unet").mkdir(parents=True)
    (tmp_path / "half" / "unet" / "diffusion_pytorch_model.fp16.safetensors").touch()
    both, half = str(tmp_path / "both"), str(tmp_path / "half")
    assert variant_for(both, torch.float16, "unet") == "fp16" and variant_for(both, torch.float32, "unet") is None
    assert variant_for(half, torch.float32, "unet") == "fp16"  # upcast: the only weights there are
    assert variant_for("DeepFloyd/IF-I-M-v1.0", torch.float32, "unet") == "fp16"


def test_under_offload_t5_and_stage_two_move_stage_one_off_the_gpu_first(folders, denoiser, monkeypatch):
    freed = []
    monkeypatch.setattr(denoiser, "pipeline", SimpleNamespace(maybe_free_model_hooks=lambda: freed.append("stage I")))
    denoiser.prepare(["a photo of the amalfi coast"])  # a new prompt: T5 is loaded
    assert freed == ["stage I"]
    denoiser.prepare(["a photo of the amalfi coast"])  # cached: nothing loaded, nothing moved
    assert freed == ["stage I"]
    upsampler = load_stage2(
        settings_for(folders[0], folders[2] / "cache", DIFFUSION_LAB_IF_STAGE2=str(folders[1])), denoiser
    )
    upsampler(torch.zeros(1, 3, 32, 32), "a photo of the amalfi coast", num_inference_steps=1)
    assert freed == ["stage I", "stage I"]


@pytest.mark.skipif(not has_package("accelerate"), reason="model CPU offload needs accelerate")
def test_real_model_cpu_offload_hooks_run_the_denoiser(folders):
    """diffusers' enable_model_cpu_offload (accelerate hooks), here with the CPU standing in for the GPU."""
    pipe = loading._from_pretrained(
        IFPipeline, str(folders[0]), torch.device("cpu"), "stage I", "DIFFUSION_LAB_IF_MODEL"
    )
    loading._place(pipe, torch.device("cpu"), offload=True, attention_slicing=False, what="stage I")
    assert hasattr(pipe.unet, "_hf_hook")
    den = IFDenoiser(pipe.unet, {"": torch.randn(77, 64)}, device=torch.device("cpu"), pipeline=pipe)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    eps, _ = den(x, 500, den.encode([""]))
    den.offload()  # before T5 or stage II
    assert torch.equal(den(x, 500, den.encode([""]))[0], eps)


def test_attention_slicing_setting_reaches_the_unet(folders, tmp_path):
    den = load_quietly(settings_for(folders[0], tmp_path, DIFFUSION_LAB_IF_ATTENTION_SLICING="on"))
    assert any("Sliced" in type(p).__name__ for p in den.unet.attn_processors.values())


class StubPipe:
    def __init__(self):
        self.calls = []

    def enable_attention_slicing(self):
        self.calls.append("slicing")

    def to(self, device):
        self.calls.append(("to", device))

    def enable_model_cpu_offload(self, device):
        self.calls.append(("offload", device))


def test_memory_options(monkeypatch):
    cuda = torch.device("cuda")
    pipe = StubPipe()
    monkeypatch.setattr(loading, "has_package", lambda name: True)
    loading._place(pipe, cuda, offload=True, attention_slicing=True, what="stage I")
    assert pipe.calls == ["slicing", ("offload", cuda)]
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: type("P", (), {"total_memory": 15 * 2**30}))
    assert use_offload("auto", cuda) and not use_offload("off", cuda) and not use_offload("on", torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: type("P", (), {"total_memory": 80 * 2**30}))
    assert not use_offload("auto", cuda) and use_offload("on", cuda)
