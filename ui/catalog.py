"""The app's pages, in the course's order: file in app_pages/<folder>/, its address, its title; Part A in each of
the course's editions. Home.py routes to them; the shell, the tests and tools/screenshots.py list them. A page's
address never changes (links and screenshots name it); its file sorts in course order."""

from typing import NamedTuple


class Page(NamedTuple):
    file: str  # in app_pages/<folder>/
    url: str  # its address: /<url>
    title: str


class Edition(NamedTuple):
    name: str  # "Fall 2024"
    method: str  # what its Part A runs
    folder: str  # app_pages/<folder>/ holds its Part A pages
    pages: list[Page]


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
PART_A_FLOW = [
    Page("f1_1_noisy.py", "f1_1_noisy", "1.1 · Noisy training inputs"),
    Page("f1_2_blur.py", "f1_2_blur", "1.2 · Classical denoising"),
    Page("f1_3_one_step.py", "f1_3_one_step", "1.3 · One-step denoising"),
    Page("f1_4_velocity.py", "f1_4_velocity", "1.4 · Visualizing velocity"),
    Page("f1_5_euler.py", "f1_5_euler", "1.5 · Euler sampling"),
    Page("f1_6_sample.py", "f1_6_sample", "1.6 · Sampling from noise"),
    Page("f2_1_cfg.py", "f2_1_cfg", "2.1 · Classifier-free guidance"),
    Page("f3_1_edit.py", "f3_1_edit", "3.1 · Image-to-image editing"),
    Page("f3_2_text.py", "f3_2_text", "3.2 · Text-guided editing"),
    Page("f3_3_anagrams.py", "f3_3_anagrams", "3.3 · Visual anagrams"),
    Page("f3_4_hybrids.py", "f3_4_hybrids", "3.4 · Hybrid images"),
]
PART_B = [
    Page("b1_denoiser.py", "b1_denoiser", "1 · Single-step denoiser"),
    Page("b2_generators.py", "b2_generators", "2 · DDPM and flow matching"),
    Page("b4_train.py", "b4_train", "Train live"),
]
EDITIONS = {
    "2024": Edition("Fall 2024", "DDPM (DeepFloyd IF)", "part_a", PART_A),
    "2026": Edition("Fall 2026", "flow matching (PixNerd)", "part_a_flow", PART_A_FLOW),
}
EDITION_OF = {page.url: edition for edition, e in EDITIONS.items() for page in e.pages}  # a Part A page's edition
# A Part A page's counterpart in the other edition (the page an edition switch goes to): the same idea of the course
TWINS = {
    "a0_sampling": "f1_6_sample",
    "a1_forward": "f1_1_noisy",
    "a2_blur": "f1_2_blur",
    "a3_one_step": "f1_3_one_step",
    "a4_iterative": "f1_5_euler",
    "a5_sample": "f1_6_sample",
    "a6_cfg": "f2_1_cfg",
    "a7_sdedit": "f3_1_edit",
    "a71_inputs": "f3_1_edit",
    "a72_inpaint": "f3_1_edit",
    "a73_text": "f3_2_text",
    "a8_anagrams": "f3_3_anagrams",
    "a9_hybrids": "f3_4_hybrids",
    "f1_4_velocity": "a3_one_step",
}
TWINS |= {
    "f1_1_noisy": "a1_forward",
    "f1_2_blur": "a2_blur",
    "f1_3_one_step": "a3_one_step",
    "f1_5_euler": "a4_iterative",
    "f1_6_sample": "a5_sample",
    "f2_1_cfg": "a6_cfg",
    "f3_1_edit": "a7_sdedit",
    "f3_2_text": "a73_text",
    "f3_3_anagrams": "a8_anagrams",
    "f3_4_hybrids": "a9_hybrids",
}
