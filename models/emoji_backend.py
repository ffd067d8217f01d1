"""The colour Part A backend: a class-conditional DDPM on emoji at 32 px whose prompts are free text.

A prompt maps to the nearest emoji name by its words ("an oil painting of an old man" -> old man, "people around a
campfire" -> fire, "a lithograph of waterfalls" -> water wave); "" and "a high quality photo" are the null class
(the last embedding, CFG's unconditional estimate). Both editions' networks are trained by flow matching
(tools/train_emoji.py; cards parta_emoji_flow.md, parta_emoji.md): the Fall 2026 backend gives its velocity; the Fall
2024 backend is DDPM as the other Part A backends (T = 1000, DeepFloyd IF's squaredcos_cap_v2 schedule, the noise as its
estimate, images in [-1, 1]), the noise read from its network's velocity at the same point of the path
(EmojiDenoiser._flow_as_ddpm).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

import torch

from models.backend import NULL_PROMPTS, Denoiser
from models.schedules import make_alphas_cumprod
from models.unet import inference_copy, memory_format_of

# Words that say how, not what (style, medium, filler): they never pick a name
STYLE_WORDS = frozenset(
    """a an the of in on at with and or by to from around near under over wearing holding
    photo photograph picture image painting oil lithograph drawing sketch illustration watercolor watercolour
    high quality detailed beautiful cute big small little old-fashioned style art artwork emoji icon""".split()
)
# A word -> the name word it means (so "campfire" reads as fire, "waterfalls" as water)
SYNONYMS = {
    "campfire": "fire",
    "flame": "fire",
    "flames": "fire",
    "bonfire": "fire",
    "waterfall": "water",
    "waterfalls": "water",
    "waves": "wave",
    "sea": "wave",
    "ocean": "wave",
    "surf": "wave",
    "mountains": "mountain",
    "snowy": "snow",
    "peak": "mountain",
    "skeleton": "skull",
    "skulls": "skull",
    "puppy": "dog",
    "dogs": "dog",
    "kitten": "cat",
    "cats": "cat",
    "wizard": "mage",
    "witch": "mage",
    "men": "man",
    "grandfather": "man",
    "grandmother": "woman",
    "women": "woman",
    "infant": "baby",
    "child": "baby",
    "spaceship": "rocket",
    "rockets": "rocket",
    "forest": "tree",
    "flower": "rose",
    "flowers": "rose",
    "car": "automobile",
    "boat": "sailboat",
    "ship": "sailboat",
    "coffee": "beverage",
    "tea": "beverage",
    "cup": "beverage",
    "pumpkin": "jack-o-lantern",
    "halloween": "jack-o-lantern",
    "diamond": "gem",
    "jewel": "gem",
    "king": "crown",
    "queen": "crown",
    "tent": "camping",
    "village": "house",
    "home": "house",
    "hut": "house",
    "cabin": "house",
    "robots": "robot",
    "ghosts": "ghost",
    "lamp": "bulb",
    "idea": "bulb",
    "stars": "star",
    "burger": "hamburger",
    "pencils": "pencil",
    "hats": "hat",
    "penguins": "penguin",
    "frogs": "frog",
}


def words(text: str) -> list[str]:
    """Lower-case words of a prompt or name, hyphens kept inside words ("jack-o-lantern", "snow-capped")."""
    return re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", text.lower())


def name_words(name: str) -> set[str]:
    """The words that pick a name: its own, and the parts of its hyphenated words ("snow-capped" -> snow)."""
    out = set()
    for w in words(name):
        out |= {w, *w.split("-")}
    return out - STYLE_WORDS


def nearest_name(prompt: str, names: Sequence[str]) -> int | None:
    """Index of the name a prompt means: most of its words in the prompt (after SYNONYMS), ties to the name whose
    first such word comes earliest (the subject comes first: "a man wearing a hat" -> old man). None for the null
    prompts; ValueError when no word of the prompt names anything."""
    if prompt.strip().lower() in NULL_PROMPTS:
        return None
    key = prompt.strip().lower()
    exact = {n.lower(): k for k, n in enumerate(names)}
    if key in exact:
        return exact[key]
    said = [SYNONYMS.get(w, w) for w in words(prompt) if w not in STYLE_WORDS]
    forms = [{w, w[:-1]} if w.endswith("s") and len(w) > 3 else {w} for w in said]  # "rockets" and "cactus" alike
    best, best_key = None, None
    for k, name in enumerate(names):
        own = name_words(name)
        hits = [i for i, f in enumerate(forms) if f & own]
        if hits:
            rank = (-len({said[i] for i in hits}), min(hits), len(own))
            if best_key is None or rank < best_key:
                best, best_key = k, rank
    if best is None:
        shown = ", ".join(names[:12])
        said = prompt if len(prompt) <= 80 else prompt[:77] + "..."  # a page of text is not echoed back whole
        raise ValueError(
            f"no word of {said!r} names an emoji this backend knows; say one of its {len(names)} names "
            f"({shown}, ...: the full list is under the prompt box), or leave it empty for no name"
        )
    return best


# Pairs of names the Fall 2024 backend's illusions work with (first, second, judged to read as both in how many of seeds
# 0..19 as the page makes them, CFG 7): anagrams as is / flipped, hybrids far / near at sigma 2. The course's pairs read
# as both in 0 of 20 (parta_emoji.md). Found by tools/search_illusions.py --backend "Emoji (colour)" over every pair of
# names: of its eight anagrams (all 20 of 20) and its hybrids, the four whose pictures are cleanest by eye; the pages
# offer them.
ILLUSIONS = {
    "anagram": (
        ("rose", "red apple", 20),
        ("fire", "pizza", 20),
        ("rose", "strawberry", 20),
        ("baby", "sunflower", 20),
    ),
    "hybrid": (
        ("red apple", "mushroom", 19),
        ("strawberry", "automobile", 19),
        ("crescent moon", "butterfly", 17),
        ("sun with face", "cat face", 15),
    ),
}


# The flow model (Fall 2026): its pages' default w (judged right 99.1 % at w 2, 94.0 % at w 7: its card), and
# its pairs (first, second, seeds of 20 read as both at w 7, the course's: rotated by 180 degrees for anagrams, far / near
# for hybrids at the course's blur scaled), found by tools/search_illusions.py --backend "Emoji (colour, flow)" (the
# hybrids with --far 20 --keep 60 --final 12: the defaults' best four read as both in 20, 16, 16 and 15 of 20)
FLOW_CFG_W = 2.0
FLOW_ILLUSIONS = {
    "anagram": (
        ("red apple", "red heart", 20),
        ("red apple", "watermelon", 20),
        ("sunflower", "crown", 20),
        ("strawberry", "watermelon", 20),
    ),
    "hybrid": (
        ("pizza", "mushroom", 20),
        ("beach with umbrella", "panda", 20),
        ("star", "crown", 20),
        ("star", "light bulb", 16),
    ),
}


class EmojiDenoiser(Denoiser):
    """``eps = unet(x_t, t, class_labels=name index)`` (DDPM; a network trained on v = sqrt(abar) eps - sqrt(1 - abar)
    x0, output "v", gives eps = sqrt(abar) v + sqrt(1 - abar) x_t), or ``v = unet(x_t, t * T, ...)`` for t in [0, 1]
    (flow matching, objective "flow": tools/train_emoji.py); prompts are free text mapped to names, the null class last."""

    variance_type = "fixed_small"
    row_timesteps = True  # t may be a (B,) tensor (a server batches calls at different t)
    cfg_scale = 3.0  # the pages' default γ on this model: judged best there (99 %, 97 % at the course's 7: its card)
    illusions = ILLUSIONS  # pairs of names its anagrams and hybrids work with (the pages offer them)

    def __init__(
        self,
        unet,
        names: Sequence[str],
        schedule: str = "squaredcos_cap_v2",
        T: int = 1000,
        objective: str = "ddpm",
        output: str | None = None,
    ):
        self.unet = unet.eval()
        self.names = tuple(names)  # a prompt is read as the nearest of these (name_of); the pages show a text box
        self.null_index = len(self.names)
        size = unet.config.sample_size
        self.image_shape = (3, size, size)
        param = next(unet.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.time_scale = 1  # the UNet's timestep per unit of t
        self.memory_format = memory_format_of(unet)  # of the model's input: its weights' (for_inference: channels_last)
        if objective == "flow":  # Fall 2026: t in [0, 1] fed as t * T, velocity prediction
            self.prediction, self.time_scale, self.T = "velocity", T, 0
            self.cfg_scale, self.illusions = FLOW_CFG_W, FLOW_ILLUSIONS
        else:
            self.T, self.clip_x0 = T, 1.0
            self.alphas_cumprod = make_alphas_cumprod(schedule, T).to(self.device)
        output = output or ("velocity" if objective == "flow" else "epsilon")
        if output not in ("epsilon", "v", "velocity") or (objective == "flow" and output != "velocity"):
            raise ValueError(f"a {objective} backend takes a network of epsilon, v (DDPM) or velocity, not {output!r}")
        self.output = output  # what the network predicts; a DDPM backend always gives the noise (self.prediction)

    def __call__(
        self, x_t: torch.Tensor, t: int | float | torch.Tensor, cond: torch.Tensor
    ) -> tuple[torch.Tensor, None]:
        """eps (B, 3, S, S) of x_t at timestep t (an int, or (B,) integers), or its velocity at t in [0, 1] (a number or
        (B,) of them), under name indices cond (B,)."""
        if isinstance(t, torch.Tensor):
            t_in = t.to(x_t.device) * self.time_scale
        else:
            t_in = torch.full((x_t.shape[0],), t * self.time_scale, device=x_t.device)
        cond = cond.to(x_t.device)
        with torch.no_grad():
            if self.prediction == "epsilon" and self.output == "velocity":  # a flow network on the DDPM path (below)
                return self._flow_as_ddpm(x_t, t_in, cond), None
            x_in = x_t.contiguous(memory_format=self.memory_format)
            eps = self.unet(x_in, t_in, class_labels=cond).sample
            if self.output == "v":  # v = sqrt(abar) eps - sqrt(1 - abar) x0, so eps = sqrt(abar) v + sqrt(1 - abar) x_t
                a, s = self._a_s(t_in, eps.dtype)
                eps = a * eps + s * x_t
        return eps.contiguous(), None

    def _a_s(self, t: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(abar_t), sqrt(1 - abar_t) of DDPM timesteps t (B,), as (B, 1, 1, 1)."""
        abar = self.alphas_cumprod[t.long()].view(-1, 1, 1, 1).to(dtype)
        return abar.sqrt(), (1 - abar).sqrt()

    def _flow_as_ddpm(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The noise of x_t = a x0 + s eps (a = sqrt(abar_t), s = sqrt(1 - abar_t)) from a flow network: the same point
        of the linear path x_tau = (1 - tau) eps + tau x0 is x_t / (a + s) at tau = a / (a + s), where
        eps = x_tau - tau v (v = x0 - eps, the network's velocity): the same distribution, read as the course's DDPM."""
        a, s = self._a_s(t, x_t.dtype)
        tau, x_tau = a / (a + s), x_t / (a + s)
        # the network's timestep is t * T, T the file's (the DDPM schedule's) as it was trained
        v = self.unet(x_tau.contiguous(memory_format=self.memory_format), tau.flatten() * self.T, class_labels=cond)
        return (x_tau - tau * v.sample).contiguous()

    def for_inference(self) -> EmojiDenoiser:
        """This backend for a server: its UNet in channels_last (oneDNN's fast layout; BatchNorm folded, where it has
        any), ~1.5x fewer ms per image on a CPU; equal to this one up to fp32 rounding, not bit for bit (the exact path
        stays this one)."""
        fast = copy.copy(self)
        fast.unet = inference_copy(self.unet)
        fast.memory_format = memory_format_of(fast.unet)
        return fast

    def name_of(self, prompt: str) -> str | None:
        """The emoji name a prompt is read as (None: the null class)."""
        k = nearest_name(prompt, self.names)
        return None if k is None else self.names[k]

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Name indices (len(prompts),), the null prompts the null index; ValueError for a prompt that names nothing."""
        rows = [nearest_name(p, self.names) for p in prompts]
        return torch.tensor([self.null_index if k is None else k for k in rows], device=self.device)
