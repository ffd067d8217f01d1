"""How a ``DIFFUSION_LAB_*`` variable's text becomes a setting: the kinds a variable takes (``KINDS``: what it
takes, for messages, and its parser), ``parse`` (a settings section from the environment, else a config file's table,
else its defaults) and ``SettingError``, which names the variable and what it takes. The sections themselves, and the
list of every variable, are in serving.settings; a field is declared with models.sources.variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

TRUE, FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


class SettingError(ValueError):
    """A variable whose value cannot be read; the message names it (label) and what it takes."""

    def __init__(self, label: str, value, takes: str):
        super().__init__(f"{label}={value!r}: it takes {takes}")
        self.label, self.value, self.takes = label, value, takes


def _choice(text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise ValueError
    return text


def _bool(text: str) -> bool:
    if text.lower() not in TRUE + FALSE:
        raise ValueError
    return text.lower() in TRUE


def _whole(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise ValueError
        return value

    return parse


def _number(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError
    return value


def _optional(text: str) -> str | None:
    return None if text.lower() in ("", "none", "off") else text


def _auto_on_off(text: str) -> str:
    if text.lower() in ("auto", "on", "off"):
        return text.lower()
    return "on" if _bool(text) else "off"


def _device(text: str) -> str:
    if text.lower() in ("", "auto"):
        return "auto"
    try:
        torch.device(text)
    except RuntimeError:
        raise ValueError from None
    return text


_NAME_COMMA = re.compile(
    r",(?![^()]*\))"
)  # a comma between names, not one inside a name's parentheses ("Emoji (colour, flow)")

# kind -> (what it takes, for messages; how a string becomes the value)
KINDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "whole": ("a whole number >= 1", _whole(1)),
    "whole0": ("a whole number >= 0", _whole(0)),
    "number": ("a number >= 0", _number),
    "bool": ("0 or 1 (or off / on, false / true, no / yes)", _bool),
    "seeds": ("a comma-separated list of whole numbers", lambda text: tuple(int(s) for s in text.split(","))),
    "names": (
        "a comma-separated list of names",
        lambda text: tuple(s.strip() for s in _NAME_COMMA.split(text) if s.strip()),
    ),
    "text": ("text", str),
    "path": ("a path", str),
    "edition": ("2024 or 2026", lambda text: _choice(text, ("2024", "2026"))),
    # DeepFloyd IF's (IFSettings)
    "optional": ("a hub id or a folder, or none", _optional),
    "folder": ("a folder", str),
    "device": ("auto, cpu, cuda or cuda:N", _device),
    "auto_on_off": ("auto, on or off", _auto_on_off),
    "on_off": ("on or off", _bool),
    # PixNerd's (PixNerdSettings)
    "dtype": ("float32 or bfloat16", lambda text: _choice(text.lower(), ("float32", "bfloat16"))),
}


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as the docs say it
    doc: str
    section: str


def shown(f) -> str:
    if f.metadata.get("shown") is not None:
        return f.metadata["shown"]
    value = f.default
    if isinstance(value, bool):
        return "1" if value else "0"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def parse(cls, env: Mapping[str, str] | None = None, table: Mapping[str, Any] | None = None, where: str = ""):
    """cls (a section) from DIFFUSION_LAB_<...> variables of env (default: the process's environment), else from
    table (a config file's, named where), else its defaults; SettingError names the variable and what it takes."""
    env = os.environ if env is None else env
    table = table or {}
    values, sources = {}, []
    for f in fields(cls):
        if "env" not in f.metadata:
            continue
        name, kind = f.metadata["env"], f.metadata["takes"]
        takes, read = KINDS[kind]
        raw = env.get(name, "").strip()
        if raw:
            source, label = raw, name
        elif f.name in table:
            source, label = table[f.name], f"{f.name} in {where}"
        else:
            continue
        try:
            values[f.name] = (
                source if isinstance(source, bool) and kind in ("bool", "on_off") else read(str(source).strip())
            )
        except ValueError:
            raise SettingError(label, source, takes) from None
        sources.append((f.name, f"env {name}" if label == name else f"file {where}"))
    settings = cls(**values)
    if any(f.name == "sources" for f in fields(cls)):
        settings = replace(settings, sources=tuple(sources))
    return settings
