"""The app's pages, in the course's order: file in app_pages/<part>/, its address, its title. Home.py routes to them;
the shell, the tests and tools/screenshots.py list them. A page's address never changes (links and screenshots
name it); its file sorts in course order."""

from typing import NamedTuple


class Page(NamedTuple):
    file: str  # in app_pages/<part>/
    url: str  # its address: /<url>
    title: str


PART_A = [
    Page("a0_sampling.py", "a0_sampling", "0 · Sampling"),
    Page("a1_forward.py", "a1_forward", "1.1 · Forward process"),
    Page("a2_blur.py", "a2_blur", "1.2 · Classical denoising"),
    Page("a3_one_step.py", "a3_one_step", "1.3 · One-step denoising"),
    Page("a4_iterative.py", "a4_iterative", "1.4 · Iterative denoising"),
    Page("a5_sample.py", "a5_sample", "1.5 · Sampling from noise"),
    Page("a6_cfg.py", "a6_cfg", "1.6 · Classifier-free guidance"),
    Page("a7_0_sdedit.py", "a7_sdedit", "1.7 · SDEdit"),
    Page("a7_1_inputs.py", "a71_inputs", "1.7.1 · Uploads and drawings"),
    Page("a7_2_inpaint.py", "a72_inpaint", "1.7.2 · Inpainting"),
    Page("a7_3_text.py", "a73_text", "1.7.3 · Text image-to-image"),
    Page("a8_anagrams.py", "a8_anagrams", "1.8 · Visual anagrams"),
    Page("a9_hybrids.py", "a9_hybrids", "1.9 · Hybrid images"),
]
PART_B = [
    Page("b1_denoiser.py", "b1_denoiser", "1 · Single-step denoiser"),
    Page("b2_generators.py", "b2_generators", "2 · DDPM and flow matching"),
    Page("b4_train.py", "b4_train", "Train live"),
]
