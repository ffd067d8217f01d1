"""A Part B training run's settings: ``TrainConfig`` (every setting, checked by ``validate``), the course's settings per
experiment (``COURSE``, SPEC's Part B table; ``course_config``), the device and precision a run may use, and what a
resumed run may change (``RESUMABLE``). lab.train trains one.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace

import torch

from lab._checks import check_float, check_int
from models.unet import UNetConfig

EXPERIMENTS = ("denoiser", "pure_noise", "ddpm", "flow")
CONDITIONS = ("none", "time", "class")
# The UNet a run trains: the course's, or the CS280A "better" one (GroupNorm, sinusoidal time features: models/unet.py)
UNETS = {"course": {}, "better": {"norm": "group", "time_features": 32}}
COURSE = {  # the course's hyperparameters (SPEC, Part B)
    "denoiser": dict(
        condition="none", D=128, batch_size=256, lr=1e-4, epochs=5, lr_schedule="constant", snapshot_epochs=(1, 5)
    ),
    "pure_noise": dict(
        condition="none", D=128, batch_size=256, lr=1e-4, epochs=5, lr_schedule="constant", snapshot_epochs=(1, 5)
    ),
    "ddpm": dict(D=64, batch_size=128, lr=1e-3, epochs=20, T=300, schedule="linear", snapshot_epochs=(5, 20)),
    "flow": dict(D=64, batch_size=64, lr=1e-2, epochs=10, T=50, snapshot_epochs=(1, 5, 10)),
}

# What makes a class-conditioned DDPM usable by the Part A pages (their t = 250/500/750 and strided 990 -> 0 need
# T = 1000): DeepFloyd IF's schedule and images in [-1, 1]; sample grids on the strided timesteps, CFG 3.
PART_A_BACKEND = dict(T=1000, schedule="squaredcos_cap_v2", signed=True, sample_stride=30, cfg_scale=3.0)
# A flow model for the Fall 2026 pages: images in [-1, 1], sample grids by the pages' 50 Euler steps (h = 0.02)
PART_A_FLOW_BACKEND = dict(T=50, signed=True)


LIMITS = {"epochs": 200, "D": 256, "batch_size": 4096, "T": 10_000}  # the largest a run may ask for (validate)
MAX_STEPS = 1_000_000


@dataclass(frozen=True)
class TrainConfig:
    experiment: str = "ddpm"  # denoiser (1.2), pure_noise (1.2.3), ddpm (Fall 2024), flow (Fall 2025)
    condition: str = "time"  # none (denoiser, pure_noise), time or class (ddpm, flow)
    dataset: str = "mnist"  # mnist or fashion_mnist
    data_dir: str | None = None  # IDX folder; None: bundled MNIST / Debian's Fashion-MNIST
    epochs: int = 20
    D: int = 64  # UNet hidden width
    unet: str = "course"  # a key of UNETS: the course's UNet or the better one
    batch_size: int = 128
    lr: float = 1e-3  # Adam learning rate
    lr_schedule: str = "exponential"  # exponential (gamma 0.1 ** (1 / epochs), stepped per epoch) or constant
    grad_clip: float | None = None  # max gradient norm, None: no clipping
    sigma: float = 0.5  # noise level of the single-step denoiser
    T: int = 300  # DDPM timesteps, or flow-matching Euler steps for sampling
    schedule: str = "linear"  # DDPM betas: linear (1e-4 .. 0.02) or squaredcos_cap_v2 (DeepFloyd IF's)
    signed: bool = False  # images in [-1, 1] (the Part A backends) instead of [0, 1] (the course)
    p_uncond: float = 0.1  # probability of dropping the class (CFG)
    cfg_scale: float = 5.0  # guidance of the sample grids
    seed: int = 0
    device: str = "cpu"
    precision: str = (
        "auto"  # bf16 autocast, fp32, or auto: bf16 where the device computes it natively (validate resolves it)
    )
    sample_every: int = 1  # epochs between sample grids (0: only at snapshot epochs and the end)
    sample_every_steps: int = (
        0  # also a preview (a row of 10 samples) every this many steps (0: none; a room sees digits emerge)
    )
    sample_stride: int = 10  # DDPM grids use timesteps T-1 .. 0 by this stride (the course samples with 1)
    snapshot_epochs: tuple[int, ...] = ()  # epochs whose checkpoints are kept (the latest is always kept)
    max_steps: int | None = None  # stop after this many optimizer steps in all (time budgets, tests)
    epoch_images: int = (
        0  # images in an epoch: 0 a pass over the data; 60,000 the course's (MNIST's training set), drawn
    )
    # from passes over the bundled digits, each shuffled: the lr schedule, snapshots and grids then follow the course's epochs
    checkpoint_every_s: float | None = (
        60.0  # checkpoint after a step this long after the last one (a kill loses less); None: never
    )

    def unet_config(self) -> UNetConfig:
        """The UNet: time added (DDPM) or multiplied (flow matching), one-hot classes for "class"; the course's, or
        the better one (UNETS)."""
        time_mode = "none" if self.condition == "none" else "add" if self.experiment == "ddpm" else "mul"
        return UNetConfig(
            D=self.D, time=time_mode, num_classes=10 if self.condition == "class" else 0, **UNETS[self.unet]
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A config from its JSON; ValueError naming unknown settings (a damaged or foreign file)."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"unknown training setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            )
        return cls(**(d | {"snapshot_epochs": tuple(d.get("snapshot_epochs", ()))}))

    def validate(self, cuda_elsewhere: bool = False) -> TrainConfig:
        """This config with its values checked (ValueError names the setting) and precision "auto" resolved;
        cuda_elsewhere: "cuda" is allowed on a machine without one (a Ray cluster's GPU trains the run)."""
        if self.experiment not in EXPERIMENTS:
            raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {self.experiment!r}")
        if self.unet not in UNETS:
            raise ValueError(f"unet must be one of {tuple(UNETS)}, got {self.unet!r}")
        allowed = ("none",) if self.experiment in ("denoiser", "pure_noise") else ("time", "class")
        if self.condition not in allowed:
            raise ValueError(f"condition for {self.experiment} must be one of {allowed}, got {self.condition!r}")
        for name, high in LIMITS.items():  # the upper bounds hold here, not only in the page's widgets
            check_int(name, getattr(self, name), 1, high)
        check_float("lr", self.lr, 0, None, strict_low=True)  # any finite rate: it costs no server time
        check_float("sigma", self.sigma, 0, 10, strict_low=True)
        check_float("cfg_scale", self.cfg_scale, 0, 100)
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("sample_stride", self.sample_stride, 1, None)
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, 1, MAX_STEPS)
        check_int("epoch_images (0: a pass over the data)", self.epoch_images, 0, 10_000_000)
        if self.grad_clip is not None:
            check_float(
                "grad_clip (the largest gradient norm; None: no clipping)", self.grad_clip, 0, None, strict_low=True
            )
        check_device(self.device, cuda_elsewhere)
        check_float("p_uncond", self.p_uncond, 0, 1)
        for name in ("sample_every", "sample_every_steps"):  # 0: none
            check_int(name, getattr(self, name), 0, MAX_STEPS)
        if self.lr_schedule not in ("exponential", "constant"):
            raise ValueError(f"lr_schedule must be 'exponential' or 'constant', got {self.lr_schedule!r}")
        if self.checkpoint_every_s is not None:
            check_float("checkpoint_every_s", self.checkpoint_every_s, 0, 86400)
        if len(self.snapshot_epochs) > 20:
            raise ValueError(f"snapshot_epochs keeps at most 20 checkpoints, got {len(self.snapshot_epochs)}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {self.precision!r}")
        return replace(self, precision=native_precision(self.device)) if self.precision == "auto" else self


def check_device(device: str, cuda_elsewhere: bool = False) -> str:
    """ "cpu", "cuda" or "cuda:N" that this torch can use (or, with cuda_elsewhere, "cuda" for a run that a Ray cluster
    with GPUs trains: the task gets a GPU of its own); ValueError saying what there is and what to do."""
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda"):
        if not torch.cuda.is_available() and device in ("cuda", "cuda:0") and cuda_elsewhere:
            return device  # checked again where the run trains
        if not torch.cuda.is_available():
            build = "this torch is a CPU build" if torch.version.cuda is None else "torch sees no CUDA GPU"
            raise ValueError(
                f"device {device!r}: {build}; use device cpu (or install a CUDA build of torch on a machine with a GPU)"
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 .. cuda:{torch.cuda.device_count() - 1})"
            )
    return device


def native_precision(device: str) -> str:
    """ "bf16" where the device has bf16 arithmetic (a CUDA GPU that supports it; a CPU with AVX-512 BF16 or AMX),
    else "fp32": without it bf16 autocast is emulated, several times slower than fp32 (6.8x on an AVX2 AMD EPYC)."""
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    native = (
        getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    )
    return "bf16" if native else "fp32"


def course_config(
    experiment: str, condition: str | None = None, *, cuda_elsewhere: bool = False, **overrides
) -> TrainConfig:
    """The course's settings for an experiment, with overrides (cuda_elsewhere: see TrainConfig.validate)."""
    if experiment not in COURSE:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {experiment!r}")
    base = COURSE[experiment] | ({"condition": condition} if condition else {})
    return TrainConfig(experiment=experiment, **(base | overrides)).validate(cuda_elsewhere)


RESUMABLE = (
    "lr",
    "epochs",
    "max_steps",
    "grad_clip",
    "checkpoint_every_s",
    "sample_every",
    "sample_every_steps",
    "device",
    "precision",
)  # what a resume may change


def resumed_config(saved: TrainConfig, changes: dict, cuda_elsewhere: bool = False) -> TrainConfig:
    """The config a resumed run goes on with: saved, with changes to RESUMABLE settings applied. A change of any other
    setting (D, the experiment, the data...) cannot apply to the weights trained so far: ValueError naming it."""
    other = {k: v for k, v in changes.items() if k not in RESUMABLE and v != getattr(saved, k)}
    if other:
        detail = ", ".join(f"{k} {getattr(saved, k)!r} -> {v!r}" for k, v in other.items())
        raise ValueError(
            f"a resumed run keeps its {', '.join(other)} ({detail}): start a new run for that. "
            f"Resume can change {', '.join(RESUMABLE)}"
        )
    return replace(saved, **{k: v for k, v in changes.items() if k in RESUMABLE}).validate(cuda_elsewhere)


def with_overrides(config: TrainConfig, **overrides) -> TrainConfig:
    """config with the given fields replaced (None values ignored), validated."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None}).validate()
