"""Our step A.3 and our whole CFG loop against diffusers' DDPMScheduler and IFPipeline (DeepFloyd IF's own code).

The UNet is a tiny random IF-architecture UNet2DConditionModel (SPEC), the scheduler DeepFloyd IF stage I's.
What we switch off to compare with the course's loop, and why:
- thresholding: IF's scheduler applies dynamic thresholding to x0_hat; the course's step A.3 does not.
  With thresholding off, diffusers falls back to clip_sample (clip x0_hat to [-1, 1]), which the course's
  step does not do either, so clip_sample is switched off too. Both are also compared switched on, against
  our optional ``threshold`` and ``clip_x0``.
- the safety checker and watermarker of IFPipeline (post-processing of PIL output; we compare output_type "pt").
Nothing else differs: same initial noise and per-step noise (one CPU generator, drawn in the same order),
same timesteps (the course's 990, 960, ..., 0; diffusers adds the last step 0 -> clean, and so do we), same
embeddings, same guidance formula.
"""

import pytest
import torch
from diffusers import DDPMScheduler, IFPipeline, UNet2DConditionModel
from tiny_if import tiny_unet_config

from lab.diffusion import CLEAN, DynamicThreshold, step
from lab.guidance import cfg
from lab.sampling import denoise
from lab.schedules import strided_timesteps
from models.deepfloyd.denoiser import IF_SCHEDULER_CONFIG, IFDenoiser

TS = strided_timesteps(1000, 30)
SIZE = 32  # the whole loop's pictures: the comparison holds at any size, and 32 px costs a quarter of 64 px
OPTIONS = {  # name: (diffusers scheduler overrides, our step options)
    "course": ({"thresholding": False, "clip_sample": False}, {}),
    "clip": ({"thresholding": False, "clip_sample": True}, {"clip_x0": 1.0}),
    "threshold": ({"thresholding": True}, {"threshold": DynamicThreshold(0.95, 1.5)}),
}


def scheduler(variance_type="learned_range", **overrides):
    return DDPMScheduler(**(IF_SCHEDULER_CONFIG | {"variance_type": variance_type} | overrides))


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return UNet2DConditionModel(**tiny_unet_config() | {"sample_size": SIZE}).eval()


@pytest.mark.parametrize("variance_type", ["learned_range", "fixed_small"])
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_step_equals_scheduler_step_at_every_strided_timestep(variance_type, option):
    overrides, ours = OPTIONS[option]
    sched = scheduler(variance_type, **overrides)
    sched.set_timesteps(timesteps=TS)
    g = torch.Generator().manual_seed(0)
    for i, t in enumerate(TS):
        x_t = torch.randn(2, 3, 64, 64, generator=g) * 1.5
        eps, v = torch.randn(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
        model_output = torch.cat([eps, v], 1) if variance_type == "learned_range" else eps
        expected = sched.step(model_output, t, x_t, generator=torch.Generator().manual_seed(t), return_dict=False)
        t_prev = TS[i + 1] if i + 1 < len(TS) else CLEAN
        got = step(
            x_t,
            eps,
            t,
            t_prev,
            sched.alphas_cumprod,
            variance=v,
            variance_type=variance_type,
            generator=torch.Generator().manual_seed(t),
            **ours,
        )
        assert torch.allclose(got[0], expected[0], atol=1e-5, rtol=0), (t, (got[0] - expected[0]).abs().max())
        assert torch.allclose(got[1], expected[1], atol=1e-5, rtol=0), t


@pytest.mark.parametrize("option", ["course", "threshold"])
def test_cfg_run_equals_ifpipeline(unet, option):
    overrides, ours = OPTIONS[option]
    g = torch.Generator().manual_seed(1)
    prompt_embeds, negative_embeds = torch.randn(1, 7, 64, generator=g), torch.randn(1, 7, 64, generator=g)
    pipe = IFPipeline(
        tokenizer=None,
        text_encoder=None,
        unet=unet,
        scheduler=scheduler(**overrides),
        safety_checker=None,
        feature_extractor=None,
        watermarker=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    theirs_steps = []
    theirs = pipe(
        prompt_embeds=prompt_embeds,
        negative_prompt_embeds=negative_embeds,
        timesteps=TS,
        guidance_scale=7.0,
        num_images_per_prompt=2,
        generator=torch.Generator().manual_seed(42),
        output_type="pt",
        callback=lambda i, t, x: theirs_steps.append(x.clone()),
    ).images

    denoiser = IFDenoiser(unet, {"a photo": prompt_embeds, "": negative_embeds})
    g = torch.Generator().manual_seed(42)
    x_T = torch.randn(2, 3, SIZE, SIZE, generator=g)
    ours_steps = []
    guide = cfg(denoiser.encode(["a photo"]), denoiser.encode([""]), 7.0)
    out = denoise(denoiser, x_T, TS, guide, generator=g, callback=lambda s: ours_steps.append(s["x"]), **ours)

    assert len(ours_steps) == len(theirs_steps) == len(TS)  # 33 strided steps + the step 0 -> clean
    for i, (a, b) in enumerate(zip(ours_steps, theirs_steps)):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), (i, (a - b).abs().max())
    assert torch.allclose(out, theirs, atol=1e-5, rtol=1e-5)
    assert out.abs().max() > 0.1  # a real image, not a collapsed one
