"""The models shipped in models/weights/: the Part A backends of both editions, the Part B course models, the judges.

Every file is fp16 safetensors with its config in the metadata, and has a card (NAME.md) that says how it was
trained and what it scores. tools/train_bundled.py and tools/export_bundled.py make them.
"""

from __future__ import annotations

import json
from pathlib import Path

from models.classes import CLASSES, PROMPTS
from models.classifier import Classifier
from models.course_backend import CourseDenoiser
from models.files import CheckpointError, load_model_file, read_safetensors
from models.schedules import make_alphas_cumprod

WEIGHTS = Path(__file__).resolve().parent / "weights"
# Part A backends: name shown in the app -> (file stem, dataset); the Fall 2024 edition's (DDPM) and the Fall 2026
# edition's (flow matching); emoji: 32 px colour, free-text prompts (models/emoji_backend.py). Both colour networks are
# flow networks: the Fall 2024 backend reads its own as DDPM (EmojiDenoiser, output "velocity"; parta_emoji.md)
BACKENDS = {
    "MNIST digits": ("parta_mnist", "mnist"),
    "Fashion-MNIST": ("parta_fashion", "fashion_mnist"),
    "Emoji (colour)": ("parta_emoji", "emoji"),
}
FLOW_BACKENDS = {
    "MNIST digits (flow)": ("parta_mnist_flow", "mnist"),
    "Emoji (colour, flow)": ("parta_emoji_flow", "emoji"),
}
ALL_BACKENDS = BACKENDS | FLOW_BACKENDS
# The single-step and pure-noise denoisers: the course shows them after its epochs 1 and 5 (passes over 60,000
# digits); the bundled runs take their snapshots after as many images, 13 and 65 passes over the 4,500 bundled digits
DENOISER_SNAPSHOTS = {1: 13, 5: 65}  # the course's epoch -> passes over the bundled digits


def weights_path(stem: str) -> Path:
    """models/weights/STEM.safetensors; CheckpointError if it is not there."""
    path = WEIGHTS / f"{stem}.safetensors"
    if not path.exists():
        raise CheckpointError(
            f"{path} is missing: the bundled weights ship with the repository (git checkout models/weights)"
        )
    return path


def load_backend(name: str = "MNIST digits", device: str = "cpu"):
    """A bundled Part A backend as a lab Denoiser: prompts name classes (emoji: words that name them), "" is unconditional."""
    if name not in ALL_BACKENDS:
        raise ValueError(f"backend must be one of {sorted(ALL_BACKENDS)}, got {name!r}")
    stem, dataset = ALL_BACKENDS[name]
    if dataset == "emoji":
        return load_emoji_backend(stem, device, ddpm=name in BACKENDS)
    model, meta = load_model_file(weights_path(stem))
    return course_backend(model, meta["train"], device)


def load_emoji_backend(stem: str = "parta_emoji_flow", device: str = "cpu", ddpm: bool = False):
    """The colour backend (models/emoji_backend.py): diffusers imports only when it is asked for."""
    from models.emoji_unet import load_emoji_file

    return emoji_denoiser(*load_emoji_file(weights_path(stem)), device, ddpm)


def emoji_denoiser(model, meta: dict, device: str = "cpu", ddpm: bool = False):
    """A colour UNet and its file's metadata (models/emoji_unet.load_emoji_file) as the lab's Denoiser: as it was trained,
    or with ddpm a flow network read as DDPM (the noise of the same point of the path: models/emoji_backend.py)."""
    from models.emoji_backend import EmojiDenoiser

    train = meta["train"]
    objective = train.get("objective", "ddpm")
    output = "velocity" if objective == "flow" else train.get("prediction", "epsilon")
    objective = "ddpm" if ddpm else objective
    return EmojiDenoiser(model.to(device), meta["names"], train["schedule"], train["T"], objective, output)


def part_a_problem(train: dict) -> str | None:
    """Why a trained model cannot drive the Part A pages (None: it can): the Fall 2024 pages need lab.train_config.PART_A_BACKEND's
    DDPM, the Fall 2026 pages a class-conditioned flow model of images in [-1, 1]."""
    if train.get("experiment") not in ("ddpm", "flow") or train.get("condition") != "class":
        return "the Part A pages need a class-conditioned DDPM or flow-matching model"
    if train.get("experiment") == "ddpm" and (train.get("T") != 1000 or not train.get("signed")):
        return "the Part A pages need T = 1000 and images in [-1, 1] (train it as a Part A backend)"
    if not train.get("signed"):
        return "the Fall 2026 Part A pages need images in [-1, 1] (train it as a Part A backend (Fall 2026, flow))"
    return None


def course_backend(model, train: dict, device: str = "cpu") -> CourseDenoiser:
    """A class-conditioned course model (bundled or trained by a user) as a Part A Denoiser, prompts naming classes:
    a DDPM for the Fall 2024 pages, a flow-matching model (velocity) for the Fall 2026 ones."""
    problem = part_a_problem(train)
    if problem:
        raise ValueError(f"this model cannot be a Part A backend: {problem}")
    classes = CLASSES[train["dataset"]]
    if train["experiment"] == "flow":
        return CourseDenoiser(model.to(device), None, classes.prompts, aliases=classes.aliases)
    alphas_cumprod = make_alphas_cumprod(train["schedule"], train["T"])
    return CourseDenoiser(
        model.to(device), alphas_cumprod.to(device), classes.prompts, clip_x0=1.0, aliases=classes.aliases
    )


def load_course_model(stem: str, device: str = "cpu"):
    """A bundled Part B model: (CourseUNet in eval mode, its training config as a dict)."""
    model, meta = load_model_file(weights_path(stem))
    return model.to(device), meta["train"]


def load_classifier(dataset: str = "mnist") -> Classifier:
    """The bundled classifier of a dataset, in eval mode (float32); its shape from the file's metadata (the emoji
    judge: 3 x 32 x 32, one logit per name, the names in its metadata too)."""
    state, metadata = read_safetensors(weights_path(f"classifier_{dataset}"))
    model = Classifier(**json.loads(metadata.get("classifier", "{}")))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.names = tuple(json.loads(metadata.get("names", "[]"))) or PROMPTS.get(dataset, ())
    return model.eval()
