"""Every way DeepFloyd IF can be unavailable raises its own IFUnavailable type with a message naming the fix;
the loaders are patched to raise huggingface_hub's own exception types, or run offline for real. Also the
settings (environment, config file) and the status the sidebar shows."""

import warnings
import weakref
from types import SimpleNamespace

import huggingface_hub
import huggingface_hub.constants
import pytest
import torch
from diffusers import IFPipeline
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

import lab
from lab.course import pure_noise
from models.deepfloyd import loading
from models.deepfloyd import settings as settings_module
from models.deepfloyd.errors import (
    IFAccessDenied,
    IFMissingPackage,
    IFModelNotFound,
    IFNotCached,
    IFNotConfigured,
    IFOutOfMemory,
    IFUnavailable,
)
from models.deepfloyd.loading import IFSpeedWarning, T5PromptEncoder, load_stage1
from models.deepfloyd.settings import IFSettings, if_status
from serving.settings import deepfloyd_settings as load_settings

XL = "DeepFloyd/IF-I-XL-v1.0"


pytestmark = pytest.mark.usefixtures("one_thread")


def load(settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IFSpeedWarning)
        return load_stage1(settings)


def hub_error(cls, status, message):
    """A huggingface_hub HTTP error as the hub client raises it (the response reduced to what it reads)."""
    return cls(message, response=SimpleNamespace(status_code=status, headers={}, request=None))


def failing_load(monkeypatch, exc, token="hf_example"):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: token)

    def from_pretrained(*args, **kwargs):
        raise exc

    monkeypatch.setattr(IFPipeline, "from_pretrained", from_pretrained)
    with pytest.raises(IFUnavailable) as info:
        load(IFSettings(model=XL, device="cpu"))
    assert info.value.__cause__ is exc  # the original error stays in the traceback
    return info.value


def test_gated_repo_without_token(monkeypatch):
    error = failing_load(
        monkeypatch, hub_error(GatedRepoError, 401, "401 Client Error: access to model is restricted"), token=None
    )
    assert type(error) is IFAccessDenied and isinstance(error, RuntimeError)
    assert "no Hugging Face token" in error.problem
    assert f"https://huggingface.co/{XL}" in error.fix and "hf auth login" in error.fix and "HF_TOKEN" in error.fix


def test_gated_repo_licence_not_accepted(monkeypatch):
    error = failing_load(
        monkeypatch, hub_error(GatedRepoError, 403, "403 Client Error: you are not in the authorized list")
    )
    assert type(error) is IFAccessDenied and "refused your token" in error.problem
    assert f"https://huggingface.co/{XL}" in error.fix and "accept the licence" in error.fix


def test_http_401_wrapped_in_an_oserror_as_diffusers_does(monkeypatch):
    try:
        try:
            raise hub_error(HfHubHTTPError, 401, "401 Client Error: Unauthorized")
        except HfHubHTTPError as e:
            raise OSError("Cannot load model: the model is not fully cached locally") from e
    except OSError as wrapped:
        error = failing_load(monkeypatch, wrapped, token=None)
    assert type(error) is IFAccessDenied


def test_wrong_repo_id(monkeypatch):
    error = failing_load(monkeypatch, hub_error(RepositoryNotFoundError, 404, "404 Client Error: Repository Not Found"))
    assert type(error) is IFModelNotFound and "DIFFUSION_LAB_IF_MODEL" in error.fix and "log in" not in error.fix
    anonymous = hub_error(RepositoryNotFoundError, 401, "401 Client Error: Repository Not Found")  # the hub's answer
    error = failing_load(monkeypatch, anonymous, token=None)  # to a token-less client, for a typo or a private repo
    assert type(error) is IFModelNotFound and "log in first" in error.fix


def test_not_cached_offline(monkeypatch):
    error = failing_load(monkeypatch, LocalEntryNotFoundError("cannot find the requested files in the local cache"))
    assert type(error) is IFNotCached and f"hf download {XL}" in error.fix and "DIFFUSION_LAB_IF_MODEL" in error.fix


def test_offline_for_real_is_explained_for_stage_one_and_t5(monkeypatch):
    """No patching of the loader: diffusers and transformers raise their own OSErrors, offline, in a fraction of a second."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(IFNotCached, match="not fully in the local cache.*hf download DeepFloyd/IF-I-M-v1.0") as info:
        load(IFSettings(model="DeepFloyd/IF-I-M-v1.0", device="cpu"))
    assert isinstance(info.value.__cause__, OSError)  # diffusers' own "not fully cached locally"
    with pytest.raises(IFNotCached, match="T5 text encoder.*DIFFUSION_LAB_IF_TEXT_ENCODER"):
        T5PromptEncoder("DeepFloyd/IF-I-M-v1.0", torch.device("cpu"), torch.float32).load()


def test_cuda_out_of_memory_is_explained_and_the_lab_stays_usable(monkeypatch, folder, tmp_path, toy):
    den = load(IFSettings(model=str(folder), device="cpu", cache_dir=str(tmp_path)))
    den.prepare(["a rocket ship"])
    x = pure_noise(den, 1, generator=0)

    held = []

    def oom(*args, **kwargs):
        activations = torch.empty(1024, 1024)  # what the failed call had allocated
        held.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    monkeypatch.setattr(den.unet, "forward", oom)
    with pytest.raises(IFOutOfMemory, match="DIFFUSION_LAB_IF_OFFLOAD=on") as info:
        lab.iterative_denoise_cfg(den, x, i_start=30, prompt="a rocket ship")
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)
    assert held[0]() is None  # released although the error (and its traceback) is still alive
    monkeypatch.undo()
    assert torch.isfinite(
        lab.iterative_denoise_cfg(den, x, i_start=30, prompt="a rocket ship")
    ).all()  # fewer images fit
    assert torch.isfinite(lab.sample(toy, n=2, prompt="1", generator=0)).all()  # the bundled backend is untouched

    monkeypatch.setattr(IFPipeline, "to", oom)  # the UNet does not fit on the GPU at load
    with pytest.raises(IFOutOfMemory, match="moving stage I"):
        load(IFSettings(model=str(folder), device="cpu", cache_dir=str(tmp_path)))


def test_a_bad_embeddings_file_or_an_unexpected_failure_is_still_an_ifunavailable(monkeypatch, folder, tmp_path):
    (tmp_path / "notes.pth").write_text("not a torch file")
    with pytest.raises(IFNotConfigured, match="DIFFUSION_LAB_IF_EMBEDDINGS.*not a torch file"):
        load(
            IFSettings(model=str(folder), embeddings=str(tmp_path / "notes.pth"), device="cpu", cache_dir=str(tmp_path))
        )

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

    monkeypatch.setattr(IFPipeline, "to", broken)
    with pytest.raises(IFUnavailable, match="stage I failed: RuntimeError: CUDA error.*DIFFUSION_LAB_IF_MODEL"):
        load(IFSettings(model=str(folder), device="cpu", cache_dir=str(tmp_path)))


def test_offload_without_accelerate_names_the_package(monkeypatch):
    monkeypatch.setattr(loading, "has_package", lambda name: name != "accelerate")
    with pytest.raises(IFMissingPackage, match=r"accelerate.*pip install accelerate==1\.15\.0"):
        loading._place(SimpleNamespace(), torch.device("cuda"), offload=True, attention_slicing=False, what="stage I")


def test_settings_from_environment_and_config_file(tmp_path):
    config = tmp_path / "diffusion-lab.toml"
    config.write_text(
        '[deepfloyd]\nmodel = "DeepFloyd/IF-I-L-v1.0"\nstage2 = "DeepFloyd/IF-II-L-v1.0"\n'
        'offload = "off"\nattention_slicing = true\nembeddings = "~/prompt_embeds_dict.pth"\n'
    )
    s = load_settings(
        {
            "DIFFUSION_LAB_CONFIG": str(config),
            "DIFFUSION_LAB_IF_MODEL": "DeepFloyd/IF-I-M-v1.0",
            "DIFFUSION_LAB_IF_TEXT_ENCODER": "none",
            "DIFFUSION_LAB_IF_OFFLOAD": "1",
        }
    )
    assert s == IFSettings(
        model="DeepFloyd/IF-I-M-v1.0",
        stage2="DeepFloyd/IF-II-L-v1.0",
        text_encoder=None,
        embeddings="~/prompt_embeds_dict.pth",
        offload="on",
        attention_slicing=True,
    )
    assert dict(s.sources)["model"] == "env DIFFUSION_LAB_IF_MODEL" and dict(s.sources)["stage2"] == f"file {config}"
    assert hash(s) == hash(
        IFSettings(
            **{
                f: getattr(s, f)
                for f in ("model", "stage2", "text_encoder", "embeddings", "offload", "attention_slicing")
            }
        )
    )
    assert load_settings({"DIFFUSION_LAB_CONFIG": str(tmp_path / "none.toml")}) == IFSettings()  # IF off by default


@pytest.mark.parametrize(
    "environ, config, match",
    [
        ({"DIFFUSION_LAB_IF_OFFLOAD": "maybe"}, None, "DIFFUSION_LAB_IF_OFFLOAD to auto, on or off"),
        ({"DIFFUSION_LAB_IF_ATTENTION_SLICING": "2"}, None, "DIFFUSION_LAB_IF_ATTENTION_SLICING to on or off"),
        ({"DIFFUSION_LAB_DEVICE": "gpu"}, None, "DIFFUSION_LAB_DEVICE to auto, cpu, cuda"),
        ({}, "[deepfloyd]\nmodle = 'x'\n", "unknown keys \\['modle'\\]"),
        ({}, "[deepfloyd\n", "not valid TOML"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path, environ, config, match):
    path = tmp_path / "diffusion-lab.toml"
    if config is not None:
        path.write_text(config)
    with pytest.raises(IFNotConfigured, match=match):
        load_settings(environ | {"DIFFUSION_LAB_CONFIG": str(path)})


def test_status_says_what_is_missing_and_the_fix(monkeypatch, folder, tmp_path):
    off = if_status(IFSettings())
    assert not off.configured and "DIFFUSION_LAB_IF_MODEL" in off.problems[0]
    ready = if_status(IFSettings(model=str(folder), device="cpu", cache_dir=str(tmp_path)))
    assert ready.ready and dict(ready.items)["device"].startswith("cpu, float32")
    assert "T5 from" in dict(ready.items)["text encoder"]

    monkeypatch.setattr(settings_module, "_hub_cached", lambda repo_id: False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    gated = if_status(IFSettings(model=XL, cache_dir=str(tmp_path)))
    assert not gated.ready and any(f"https://huggingface.co/{XL}" in p and "hf auth login" in p for p in gated.problems)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert any("HF_HUB_OFFLINE" in p for p in if_status(IFSettings(model=XL, cache_dir=str(tmp_path))).problems)

    no_t5 = if_status(IFSettings(model=str(folder), text_encoder=None, device="cpu", cache_dir=str(tmp_path)))
    assert any("DIFFUSION_LAB_IF_EMBEDDINGS" in p for p in no_t5.problems)
    missing = if_status(
        IFSettings(model=str(tmp_path / "nowhere"), embeddings=str(tmp_path / "x.pth"), cache_dir=str(tmp_path))
    )
    assert any("'nowhere' is not in the diffusers layout" in p for p in missing.problems)
    assert any("x.pth, which does not exist" in p for p in missing.problems)
    for status in (ready, no_t5, missing):  # what every student's sidebar shows: no path of the server's
        assert not any(str(tmp_path) in text for text in [*status.problems, *(v for _, v in status.items)])

    monkeypatch.setattr(settings_module, "choose_device", lambda setting: torch.device("cuda"))
    monkeypatch.setattr(settings_module, "use_offload", lambda setting, device: True)
    monkeypatch.setattr(settings_module, "has_package", lambda name: name != "accelerate")
    gpu = if_status(IFSettings(model=str(folder), device="cpu", cache_dir=str(tmp_path)))
    assert dict(gpu.items)["device"] == "cuda, float16" and any("accelerate==1.15.0" in p for p in gpu.problems)
