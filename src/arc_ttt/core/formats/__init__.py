"""Prompt formats by name: the one place a format is registered, and where `model.format` is resolved.

A format is an object with a `name`, its prompt as text without a tokenizer (`prompt_text`, for
`show-prompt`), `codec(tokenizer)`, its `codec.Codec` on that tokenizer's ids, and `shrinkable` (one token
per symbol, so `prepare-model --shrink-vocab` may cut the vocabulary to its symbols). The package holds the
shared codec interface (`codec`), the symbol formats (`symbols`: kit, ARChitects, NVARC), MIT's chat format
(`chat`) and the grid grammar (`grammar`).

A new format is one module that defines its format and codec, plus one `register` call. A user's own
format can also be named by reference, `"package.module:ATTR"`, as `model.format` or in a model folder's
arc_format.json: every process that resolves it (the notebook, torchrun workers, `prepare-model`) imports
the module and registers the format, so no process depends on another having run a `register` line.
`resolve` turns `model.format` ("auto" included) into a registered name, reading the model folder's
arc_format.json; the run, the fine-tuning, the CLI and `prepare-model` all call it.
"""
from __future__ import annotations

import importlib
import json
import os
from typing import Protocol, Sequence

import numpy as np

from .chat import MARC
from .codec import Codec
from ..errors import UserError
from ..folders import write_text_atomic
from .symbols import ARCHITECTS, KIT, NVARC
from ..tasks import Pair

FORMAT_FILE = "arc_format.json"  # in a model folder: {"format": NAME}, written by `arc-ttt prepare-model`
DEFAULT = "kit"  # what "auto" means for a folder that names no format


class Format(Protocol):
    """What the registry holds: a named prompt layout that binds to a tokenizer."""

    @property
    def name(self) -> str: ...

    def prompt_text(self, demos: Sequence[Pair], query: np.ndarray) -> str: ...

    def codec(self, tokenizer) -> Codec: ...

    @property
    def shrinkable(self) -> bool: ...


_REGISTRY: dict[str, Format] = {}
_REFERENCES: dict[str, str] = {}  # name -> "module:attr", for formats loaded by reference


def register(fmt: Format) -> Format:
    """Make a format known by its name (to `model.format`, the CLI's --format and the folder file)."""
    _REGISTRY[fmt.name] = fmt
    return fmt


def is_reference(setting: str) -> bool:
    return ":" in setting


def load_reference(ref: str) -> str:
    """Import `module:attr`, register the format it names and return its name; a UserError names what failed."""
    module_name, _, attr = ref.partition(":")
    try:
        fmt = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(f"prompt format {ref!r}: cannot load it ({e}); the module must be importable in every "
                        f"process that runs the model (on sys.path, e.g. shipped beside src/)") from None
    for part in ("name", "codec", "prompt_text", "shrinkable"):
        if not hasattr(fmt, part):
            raise UserError(f"prompt format {ref!r} is not a format: it has no {part!r}")
    register(fmt)
    _REFERENCES[fmt.name] = ref
    return fmt.name


for _fmt in (KIT, ARCHITECTS, NVARC, MARC):
    register(_fmt)


def names() -> tuple[str, ...]:
    """Every registered format's name, in registration order."""
    return tuple(_REGISTRY)


def get_format(name: str) -> Format:
    """A registered format by name, or one named by reference (`module:attr`)."""
    if is_reference(name):
        name = load_reference(name)
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
    if not isinstance(name, str) or not (is_reference(name) or name in _REGISTRY):
        raise UserError(f"{path}: unknown prompt format {name!r}: choose one of {', '.join(names())}")
    return get_format(name).name


def write_format_file(model_path: str, name: str) -> str:
    """The folder's arc_format.json; a format loaded by reference is written as its reference, so a process
    that reads the folder can load it."""
    name = get_format(name).name  # refuses an unknown name
    path = os.path.join(model_path, FORMAT_FILE)
    write_text_atomic(path, json.dumps({"format": portable(name)}) + "\n")
    return path


def portable(name: str) -> str:
    """What to hand another process for a format: its reference when it was loaded by one, else its name."""
    return _REFERENCES.get(name, name)


def resolve(setting: str, model_path: str | None) -> str:
    """`model.format`: a registered name, or "auto" = what the model folder's arc_format.json says, else the
    kit's layout. A format loaded by reference resolves to its reference, which any process can load."""
    if setting != "auto":
        return portable(get_format(setting).name)
    found = read_format_file(model_path) if model_path and os.path.isdir(model_path) else None
    return portable(found) if found else DEFAULT


def codec_for(fmt: "str | Format", tokenizer) -> Codec:
    """The codec of a format (a name or a format) on a tokenizer; raises TokenizerFormatError naming the format
    and the missing or merged symbols when they do not fit."""
    return (get_format(fmt) if isinstance(fmt, str) else fmt).codec(tokenizer)
