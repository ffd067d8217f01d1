"""The course notebook's model object on the lab's backends: its ``flow_model.FlowModel`` interface, offline.

The Fall 2026 notebook (``parta_updated.ipynb``) drives PixNerd through an adapter with ``predict_velocity(x, t,
condition)``, ``encode(prompt)`` and ``device``, and helpers ``preprocess``, ``load_input``, ``to_pil`` and
``noise(seed)``. ``FlowModel`` gives the same on any Fall 2026 backend of the lab (the bundled flow models, a run
trained on Train live, PixNerd), at the backend's size, so a student's notebook code runs on a laptop CPU in seconds
with the model line changed, and on PixNerd on a GPU unchanged::

    from lab.flow import cfg_velocity, euler_sample
    from lab.flow_model import FlowModel

    model = FlowModel("Emoji (colour, flow)")
    condition = model.encode("a lithograph of a skull")
    x, states = euler_sample(model.noise(180), 0, 0.02,
                             lambda x, t: cfg_velocity(x, t, condition, 7, model.predict_velocity))
    model.to_pil(x).save("skull.png")
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lab.checkpoint import load_trained
from lab.flow import noise
from lab.images import fit_image, load_image
from models.backend import Denoiser
from models.bundled import course_backend, load_backend


class FlowModel:
    """The notebook's model object over a lab backend that predicts velocities (see the module docstring).

    backend: a bundled Part A backend's name ("MNIST digits (flow)", "Emoji (colour, flow)"), a ``Denoiser`` (PixNerd's
    from models.pixnerd, a test double), or a run folder / checkpoint of a class-conditioned flow model trained by the lab.
    """

    def __init__(self, backend: str | os.PathLike | Denoiser = "MNIST digits (flow)", device: str = "cpu"):
        if isinstance(backend, Denoiser):
            den = backend
        elif isinstance(backend, Path) or (isinstance(backend, str) and Path(backend).exists()):
            model, train = load_trained(backend)
            den = course_backend(model, train, device)
        else:
            den = load_backend(backend, device)
        if den.prediction != "velocity":
            raise ValueError(
                "FlowModel is the Fall 2026 notebook's interface: this backend predicts noise (Fall 2024, "
                "DDPM); pick a flow backend (MNIST digits (flow), Emoji (colour, flow), a flow run, PixNerd)"
            )
        self.backend = den
        self.device = torch.device(den.device)
        self.image_shape = den.image_shape  # (C, H, W): the notebook's (3, 512, 512) on PixNerd
        self._conditions: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def encode(self, prompt: str) -> torch.Tensor:
        """The condition of a prompt (1, ...), remembered; "" is the null condition CFG guides away from. ValueError for
        a prompt the backend cannot read (a class backend: the name of a class, or a prompt naming one)."""
        if not isinstance(prompt, str):
            raise ValueError(f"encode takes a prompt (a string), got {type(prompt).__name__}")
        if prompt not in self._conditions:
            self._conditions[prompt] = self.backend.encode([prompt])
        return self._conditions[prompt]

    @torch.inference_mode()
    def predict_velocity(self, x: torch.Tensor, t, condition) -> torch.Tensor:
        """The velocity v(x, t, c) (B, C, H, W): x on the model's device, t a number in [0, 1] (or one per image),
        condition from encode (or a prompt, encoded); float32 arithmetic, returned in x's dtype."""
        C, H, W = self.image_shape
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (C, H, W) or x.device != self.device:
            raise ValueError(
                f"expected a state (B, {C}, {H}, {W}) on {self.device}, got "
                f"{tuple(getattr(x, 'shape', ()))} on {getattr(x, 'device', None)}"
            )
        B = x.shape[0]
        ts = torch.as_tensor(t, dtype=torch.float32).reshape(-1).expand(B)
        if not bool(((ts >= 0) & (ts <= 1)).all()):
            raise ValueError(f"flow time must be in [0, 1], got {t}")
        if isinstance(condition, str):
            condition = self.encode(condition)
        cond = condition.expand(B, *condition.shape[1:])
        x_in = x.to(self.backend.dtype)
        if self.backend.row_timesteps or bool((ts == ts[0]).all()):
            v, _ = self.backend(x_in, ts.to(self.device) if self.backend.row_timesteps else float(ts[0]), cond)
        else:  # one time per image on a backend that takes one time per call
            v = torch.cat([self.backend(x_in[i : i + 1], float(ts[i]), cond[i : i + 1])[0] for i in range(B)])
        return v.float().to(x.dtype)

    def preprocess(self, image) -> torch.Tensor:
        """A file path or PIL image centre-cropped and resized to the model's size: (1, C, H, W) float32 in [-1, 1]."""
        if isinstance(image, (str, os.PathLike)):
            image = load_image(Path(image).read_bytes(), str(image))
        if not isinstance(image, Image.Image):
            raise ValueError(f"preprocess takes a file path or a PIL image, got {type(image).__name__}")
        return fit_image(image.convert("RGB") if image.mode not in ("RGB", "L") else image, self.image_shape)[0]

    def load_input(self, path) -> torch.Tensor:
        """The notebook's load_input: preprocess(path) on the model's device; a clear error for an empty or missing path."""
        if not str(path).strip():
            raise ValueError("Set the image path to a file you uploaded or saved in this runtime.")
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Image not found: {path}. Check the path in the file browser.")
        return self.preprocess(path).to(self.device)

    def noise(self, seed: int) -> torch.Tensor:
        """The notebook's noise(seed): (1, C, H, W) standard normal from a CPU generator seeded with seed, on the device."""
        return noise(seed, self.image_shape, self.device)

    @staticmethod
    def to_pil(x: torch.Tensor) -> Image.Image:
        """The first image of x (B, C, H, W) or x (C, H, W) in [-1, 1] as a PIL image (clamped, rounded to 8 bits)."""
        if x.ndim == 4:
            x = x[0]
        a = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        return Image.fromarray(a[..., 0] if a.shape[-1] == 1 else np.ascontiguousarray(a))
