"""Prompt formats by name: the one place a format is registered, and where `model.format` is resolved.

A format is an object with a `name`, its prompt as text without a tokenizer (`prompt_text`, for
`show-prompt`) and `codec(tokenizer)`, its `core.codec.Codec` on that tokenizer's ids. A new format is
one module that defines its format and codec, plus one `register` call. `resolve` turns `model.format`
("auto" included) into a registered name, reading the model folder's arc_format.json; the run, the
fine-tuning, the CLI and `prepare-model` all call it, so "auto" means the same everywhere.
"""
from __future__ import annotations

import json
import os
from typing import Protocol, Sequence

import numpy as np

from .chatformat import MARC
from .codec import Codec
from .errors import UserError
from .folders import write_text_atomic
from .symbolformat import ARCHITECTS, KIT, NVARC
from .tasks import Pair

FORMAT_FILE = "arc_format.json"  # in a model folder: {"format": NAME}, written by `arc-ttt prepare-model`
DEFAULT = "kit"  # what "auto" means for a folder that names no format


class Format(Protocol):
    """What the registry holds: a named prompt layout that binds to a tokenizer."""

    @property
    def name(self) -> str: ...

    def prompt_text(self, demos: Sequence[Pair], query: np.ndarray) -> str: ...

    def codec(self, tokenizer) -> Codec: ...


_REGISTRY: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Make a format known by its name (to `model.format`, the CLI's --format and the folder file)."""
    _REGISTRY[fmt.name] = fmt
    return fmt


for _fmt in (KIT, ARCHITECTS, NVARC, MARC):
    register(_fmt)


def names() -> tuple[str, ...]:
    """Every registered format's name, in registration order."""
    return tuple(_REGISTRY)


def get_format(name: str) -> Format:
    """A registered format by name."""
    if name not in _REGISTRY:
        raise UserError(f"unknown prompt format {name!r}: choose one of {', '.join(names())}")
    return _REGISTRY[name]


def read_format_file(model_path: str) -> str | None:
    """The format a model folder says it speaks (its arc_format.json), or None when it says nothing."""
    path = os.path.join(model_path, FORMAT_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        name = json.load(f).get("format")
    if name not in _REGISTRY:
        raise UserError(f"{path}: unknown prompt format {name!r}: choose one of {', '.join(names())}")
    return name


def write_format_file(model_path: str, name: str) -> str:
    get_format(name)  # refuses an unknown name
    path = os.path.join(model_path, FORMAT_FILE)
    write_text_atomic(path, json.dumps({"format": name}) + "\n")
    return path


def resolve(setting: str, model_path: str | None) -> str:
    """`model.format`: a registered name, or "auto" = what the model folder's arc_format.json says, else the
    kit's layout."""
    if setting != "auto":
        get_format(setting)
        return setting
    return (read_format_file(model_path) if model_path and os.path.isdir(model_path) else None) or DEFAULT


def codec_for(fmt: "str | Format", tokenizer) -> Codec:
    """The codec of a format (a name or a format) on a tokenizer; raises TokenizerFormatError naming the format
    and the missing or merged symbols when they do not fit."""
    return (get_format(fmt) if isinstance(fmt, str) else fmt).codec(tokenizer)
