"""The app's pages: (file in app_pages/<part>/, title). Home.py routes to them; tests and tools/screenshots.py list them."""

PART_A = [
    ("a0_sampling.py", "0 · Sampling"),
    ("a1_forward.py", "1.1 · Forward process"),
    ("a2_blur.py", "1.2 · Classical denoising"),
    ("a3_one_step.py", "1.3 · One-step denoising"),
    ("a4_iterative.py", "1.4 · Iterative denoising"),
    ("a5_sample.py", "1.5 · Sampling from noise"),
    ("a6_cfg.py", "1.6 · Classifier-free guidance"),
    ("a7_sdedit.py", "1.7 · SDEdit"),
    ("a71_inputs.py", "1.7.1 · Uploads and drawings"),
    ("a72_inpaint.py", "1.7.2 · Inpainting"),
    ("a73_text.py", "1.7.3 · Text image-to-image"),
    ("a8_anagrams.py", "1.8 · Visual anagrams"),
    ("a9_hybrids.py", "1.9 · Hybrid images"),
]
PART_B = [
    ("b1_denoiser.py", "1 · Single-step denoiser"),
    ("b2_generators.py", "2 · DDPM and flow matching"),
    ("b4_train.py", "Train live"),
]
