"""Prompt formats by name, and the symbol formats' codec: what a run, the fine-tuning and the CLI ask for.

`get_format` names every format (`FORMATS`); `resolve_format_name` turns `model.format` ("auto" included)
into one, reading the model folder's arc_format.json; `codec_for` binds a format to a tokenizer. The
formats themselves live beside: the symbol layouts (kit, ARChitects, NVARC) in `core.symbolformat`, MIT's
chat format (marc) in `core.chatformat`, and what every codec shares (the answer alphabet, the encoded
sequence and its loss mask) in `core.codec`. `GridCodec` is a symbol format bound to one tokenizer's ids.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .chatformat import MARC
from .grammar import GridGrammar
from .codec import DIGITS, Encoded, LossOn, answer_tokens, grid_symbols, rows_to_grid
from .kitformat import GridFormat
from .symbolformat import ARCHITECTS, NVARC, PromptFormat, check_format, kit_format
from .tasks import MAX_SIDE, Pair

FORMATS = ("kit", "architects", "nvarc", "marc")
FORMAT_FILE = "arc_format.json"  # in a model folder: {"format": NAME}, written by `arc-ttt prepare-model`


def get_format(name: str):
    """A format by name: a PromptFormat, or the chat-template format `marc` (core.chatformat)."""
    if name == "kit":
        return kit_format()
    if name == "architects":
        return ARCHITECTS
    if name == "nvarc":
        return NVARC
    if name == "marc":
        return MARC
    raise ValueError(f"unknown prompt format {name!r}: choose one of {', '.join(FORMATS)}")


def read_format_file(model_path: str) -> str | None:
    """The format a model folder says it speaks (its arc_format.json), or None when it says nothing."""
    path = os.path.join(model_path, FORMAT_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        name = json.load(f).get("format")
    if name not in FORMATS:
        raise ValueError(f"{path}: unknown prompt format {name!r}: choose one of {', '.join(FORMATS)}")
    return name


def write_format_file(model_path: str, name: str) -> str:
    get_format(name)  # refuses an unknown name
    path = os.path.join(model_path, FORMAT_FILE)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"format": name}, f)
        f.write("\n")
    return path


def resolve_format_name(setting: str, model_path: str | None) -> str:
    """`model.format`: a name, or "auto" = what the model folder's arc_format.json says, else the kit's layout."""
    if setting != "auto":
        get_format(setting)
        return setting
    return (read_format_file(model_path) if model_path and os.path.isdir(model_path) else None) or "kit"


def codec_for(fmt, tokenizer):
    """The codec of a format (a name, a PromptFormat, a GridFormat or the marc chat format) on a tokenizer;
    raises TokenizerFormatError naming the format and the missing or merged symbols when they do not fit."""
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    if isinstance(fmt, GridFormat):
        fmt = kit_format(fmt)
    if isinstance(fmt, PromptFormat):
        return GridCodec.from_tokenizer(tokenizer, fmt)
    return fmt.codec(tokenizer)


@dataclass(frozen=True)
class GridCodec:
    """A PromptFormat bound to one tokenizer's ids. Sequences are built id by id, never by tokenizing text."""

    fmt: PromptFormat
    digit_ids: tuple[int, ...]
    newline_id: int
    input_id: int  # the first symbol of the input prefix
    output_id: int  # the last symbol of the output prefix (the prompt ends with it)
    end_id: int
    bos_id: int | None = None
    pad_id: int = 0
    ids: tuple[tuple[str, int], ...] = ()  # symbol -> id, every symbol of the format
    names: tuple[tuple[str, str], ...] = ()  # special symbol -> the tokenizer's text for it

    @classmethod
    def from_tokenizer(cls, tokenizer, fmt: "PromptFormat | GridFormat | str" = GridFormat(),
                       use_bos: bool = True) -> "GridCodec":
        if isinstance(fmt, str):
            fmt = get_format(fmt)
        if isinstance(fmt, GridFormat):
            fmt = kit_format(fmt)
        if not isinstance(fmt, PromptFormat):
            raise TypeError(f"GridCodec speaks symbol formats; use codec_for() for {fmt.name!r}")
        ids, names = check_format(tokenizer, fmt)
        bos = tokenizer.bos_token_id if use_bos and fmt.bos != "none" else None
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return cls(
            fmt=fmt,
            digit_ids=tuple(ids[d] for d in DIGITS),
            newline_id=ids[fmt.newline],
            input_id=ids[fmt.input_prefix[0]],
            output_id=ids[fmt.output_prefix[-1]],
            end_id=ids[fmt.end],
            bos_id=bos,
            pad_id=pad if pad is not None else ids[fmt.end],
            ids=tuple(ids.items()),
            names=tuple(names.items()),
        )

    @property
    def name(self) -> str:
        return self.fmt.name

    def grammar(self, max_side: int = MAX_SIDE) -> GridGrammar:
        """The grid grammar with the format's row layout (rows newline-terminated, or joined by newlines)."""
        return GridGrammar(max_side, separated=not self.fmt.rows_terminated)

    @property
    def grid_token_ids(self) -> tuple[int, ...]:
        """The only tokens a generated output may contain: digits 0-9, newline, end (indices NEWLINE, END)."""
        return (*self.digit_ids, self.newline_id, self.end_id)

    @property
    def format_token_ids(self) -> tuple[int, ...]:
        ids = [*self.grid_token_ids, *(i for _, i in self.ids), self.pad_id]
        if self.bos_id is not None:
            ids.append(self.bos_id)
        return tuple(dict.fromkeys(ids))

    def _lookup(self) -> dict[str, int]:
        return dict(self.ids)

    def encode_grid(self, grid: np.ndarray) -> list[int]:
        lut = np.asarray(self.digit_ids, dtype=np.int64)
        g = lut[np.asarray(grid)]
        rows = np.concatenate([g, np.full((g.shape[0], 1), self.newline_id, dtype=np.int64)], axis=1)
        flat = rows.reshape(-1).tolist()
        return flat if self.fmt.rows_terminated else flat[:-1]

    def answer_symbols(self, grid: np.ndarray) -> list[int]:
        """A grid as the answer the model writes, in grid-token indices (digits, NEWLINE, END)."""
        return grid_symbols(grid, self.fmt.rows_terminated)

    def pair_cost(self, pair: Pair) -> int:
        """Tokens the pair takes in any D8 orientation (an upper bound for fitting demos under a cap)."""
        f = self.fmt
        markers = len(f.separator) + len(f.input_prefix) + len(f.output_prefix) + 1
        return sum(g.size + max(g.shape) for g in (pair.input, pair.output)) + markers

    def answer_cost(self, demos: Sequence[Pair]) -> int:
        """Expected tokens of a generated answer (for planning): the largest demo output's, with the end."""
        return answer_tokens(demos)

    @property
    def overhead(self) -> int:
        """Tokens before the first pair: BOS and the preamble."""
        return (self.bos_id is not None) + len(self.fmt.preamble)

    def _head(self) -> list[int]:
        look = self._lookup()
        return ([] if self.bos_id is None else [self.bos_id]) + [look[s] for s in self.fmt.preamble]

    def encode_pairs(self, pairs: Sequence[Pair], loss_on: LossOn | str = LossOn.ALL_OUTPUTS) -> Encoded:
        """Complete pairs (all with outputs); the last plays the query. For training and scoring."""
        loss_on = LossOn(loss_on)
        look = self._lookup()
        sep = [look[s] for s in self.fmt.separator]
        inp = [look[s] for s in self.fmt.input_prefix]
        out = [look[s] for s in self.fmt.output_prefix]
        ids: list[int] = self._head()
        mask: list[bool] = [False] * len(ids)
        for i, p in enumerate(pairs):
            if p.output is None:
                raise ValueError("encode_pairs needs every pair's output")
            prompt = [*(sep if i else []), *inp, *self.encode_grid(p.input), *out]
            target = [*self.encode_grid(p.output), self.end_id]
            on = (loss_on is LossOn.ALL_OUTPUTS or (loss_on is LossOn.ALL_BUT_FIRST and i > 0)
                  or i == len(pairs) - 1)
            ids += prompt + target
            mask += [False] * len(prompt) + [on] * len(target)
        return Encoded(np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool))

    def encode_prompt(self, demos: Sequence[Pair], query_input: np.ndarray) -> np.ndarray:
        """Demonstrations, then the query input and the output prefix: the model continues with the grid."""
        look = self._lookup()
        head = self.encode_pairs(demos).ids.tolist() if demos else self._head()
        tail = [*([look[s] for s in self.fmt.separator] if demos else []), *(look[s] for s in self.fmt.input_prefix),
                *self.encode_grid(query_input), *(look[s] for s in self.fmt.output_prefix)]
        return np.asarray(head + tail, dtype=np.int64)

    def prompt_text(self, demos: Sequence[Pair], query_input: np.ndarray) -> str:
        """Exactly the text of `encode_prompt` (special tokens as the tokenizer writes them), without BOS."""
        return self.fmt.prompt_text(demos, query_input, dict(self.names))

    def decode(self, ids: Sequence[int]) -> np.ndarray | None:
        """Generated ids (after the output prefix) -> grid, or None when they are not a legal grid."""
        digit = {t: d for d, t in enumerate(self.digit_ids)}
        rows: list[list[int]] = [[]]
        for t in ids:
            t = int(t)
            if t == self.end_id:
                break
            if t == self.newline_id:
                rows.append([])
            elif t in digit:
                rows[-1].append(digit[t])
            else:
                return None
        if not self.fmt.rows_terminated and rows and not rows[-1]:
            return None  # a trailing newline is not in this layout
        return rows_to_grid(rows, lambda row: row)
