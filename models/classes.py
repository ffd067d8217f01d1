"""The classes of each data set, in one table: their own names, the prompts the pages write for them, other names.

A class backend's prompt k names class k (``CourseDenoiser.prompts``); the data loaders, the command line and the
pages all read the names from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Classes:
    names: tuple[str, ...]  # the data set's own name of class k, at index k
    prompts: tuple[str, ...]  # the prompt a page writes for class k (a prompt box's choices)
    words: tuple[str, ...] = ()  # one more way to name class k (number words for the digits)
    aliases: Mapping[str, int] = field(init=False)  # every way to name a class, lower case -> k

    def __post_init__(self):
        spellings = [(s, k) for seq in (self.prompts, self.names, self.words) for k, s in enumerate(seq)]
        object.__setattr__(self, "aliases", MappingProxyType({s.lower(): k for s, k in spellings}))


CLASSES = {
    "mnist": Classes(
        names=tuple(str(k) for k in range(10)),
        prompts=tuple(str(k) for k in range(10)),
        words=tuple("zero one two three four five six seven eight nine".split()),
    ),
    "fashion_mnist": Classes(
        names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        prompts=(
            "a t-shirt",
            "a pair of trousers",
            "a pullover",
            "a dress",
            "a coat",
            "a sandal",
            "a shirt",
            "a sneaker",
            "a bag",
            "an ankle boot",
        ),
    ),
}
PROMPTS = MappingProxyType({dataset: c.prompts for dataset, c in CLASSES.items()})  # class k's prompt, per data set
