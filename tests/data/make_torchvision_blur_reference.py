"""Regenerate torchvision_gaussian_blur.json: torchvision's own gaussian_blur on fixed inputs.

torchvision cannot be imported on the CPU machines this lab targets (SPEC), but the module that holds
its Gaussian blur imports only torch. So: download the wheel without dependencies, load that one file
standalone, and freeze its output.

    pip download --no-deps torchvision==0.28.0 -d /tmp/tv
    cd /tmp/tv && unzip -o torchvision-*.whl torchvision/transforms/_functional_tensor.py
    python tests/data/make_torchvision_blur_reference.py /tmp/tv/torchvision/transforms/_functional_tensor.py
"""

import importlib.util
import json
import pathlib
import sys

import torch

# (input shape, kernel_size, sigma); sigma None is torchvision's default for the kernel size
CASES = [((2, 3, 9, 11), 5, 1.3), ((1, 1, 12, 12), 3, 0.8), ((1, 3, 10, 14), 9, None), ((1, 1, 20, 18), 33, 2.0)]


def make_input(shape) -> torch.Tensor:
    """A deterministic, non-symmetric test image: no random generator involved."""
    b, c, h, w = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij")
    return torch.sin(0.7 * h + 1.3 * w + 2.1 * c + 0.5 * b) + 0.1 * torch.remainder(h * w, 7)


if __name__ == "__main__":
    spec = importlib.util.spec_from_file_location("torchvision_functional_tensor", sys.argv[1])
    tvf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tvf)
    out = []
    for shape, k, sigma in CASES:
        s = 0.3 * ((k - 1) * 0.5 - 1) + 0.8 if sigma is None else sigma  # torchvision's F.gaussian_blur default
        y = tvf.gaussian_blur(make_input(shape), [k, k], [s, s])
        out.append({"shape": shape, "kernel_size": k, "sigma": sigma, "output": y.flatten().tolist()})
    path = pathlib.Path(__file__).with_name("torchvision_gaussian_blur.json")
    path.write_text(json.dumps({"torchvision": "0.28.0", "cases": out}))
    print(f"wrote {path}")
