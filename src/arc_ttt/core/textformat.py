"""The grid text format: one token per cell, one newline per row, three markers.

    [bos] I <input rows> O <output rows> E  I ... O <output rows> E ... I <query rows> O

A row is its cells' digits followed by a newline, so an H x W grid costs H*W + H tokens and a
pair costs its two grids plus three markers. Sequences are built from token ids symbol by
symbol, never by tokenizing joined text, so BPE merges (e.g. "\\n\\n") can never change the
layout; `GridCodec.from_tokenizer` still checks that the tokenizer agrees with that layout.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .tasks import MAX_SIDE, GRID_DTYPE, Pair

DIGITS = "0123456789"
# A generated answer as indices into `GridCodec.grid_token_ids`: digits 0-9, then newline, then end.
NEWLINE, END = 10, 11


class LossOn(str, enum.Enum):
    """Which output grids the training loss covers."""

    ALL_OUTPUTS = "all_outputs"
    ALL_BUT_FIRST = "all_but_first"
    LAST = "last"


class TokenizerFormatError(ValueError):
    """The tokenizer cannot express the grid format one token per symbol."""


@dataclass(frozen=True)
class GridFormat:
    input_marker: str = "I"
    output_marker: str = "O"
    end_marker: str = "E"
    newline: str = "\n"

    def symbols(self) -> dict[str, str]:
        """name -> symbol, for every symbol the format uses."""
        named = {f"digit {d}": d for d in DIGITS}
        named.update(newline=self.newline, **{"input marker": self.input_marker,
                                                "output marker": self.output_marker,
                                                "end marker": self.end_marker})
        return named

    def grid_text(self, grid: np.ndarray) -> str:
        return "".join("".join(DIGITS[v] for v in row) + self.newline for row in np.asarray(grid))

    def parse(self, text: str) -> np.ndarray | None:
        """Generated text -> grid, or None for anything that is not a legal ARC grid."""
        text = text.split(self.end_marker, 1)[0]
        return _rows_to_grid(text.split(self.newline), lambda row: [DIGITS.index(ch) for ch in row]
                             if all(ch in DIGITS for ch in row) else None)


def _rows_to_grid(rows: list, cells) -> np.ndarray | None:
    if rows and len(rows[-1]) == 0:  # the newline that closes the last row
        rows = rows[:-1]
    if not rows or len(rows) > MAX_SIDE:
        return None
    parsed = []
    for row in rows:
        values = cells(row)
        if not values or values is None or len(values) > MAX_SIDE:
            return None
        if parsed and len(values) != len(parsed[0]):
            return None
        parsed.append(values)
    return np.array(parsed, dtype=GRID_DTYPE)


def answer_tokens(demos: Sequence[Pair]) -> int:
    """Expected length of a generated answer: the largest demo output's H*W+H tokens, plus the end marker."""
    return max(p.output.shape[0] * (p.output.shape[1] + 1) for p in demos) + 1


def grid_symbols(grid: np.ndarray) -> list[int]:
    """A grid as the answer the model writes, in grid-token indices (digits, newline per row, end)."""
    h, _ = grid.shape
    rows = np.concatenate([np.asarray(grid, dtype=np.int64), np.full((h, 1), NEWLINE)], axis=1)
    return [*rows.reshape(-1).tolist(), END]


def parse_grid_text(text: str, fmt: GridFormat = GridFormat()) -> np.ndarray | None:
    return fmt.parse(text)


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # int64 token ids
    loss_mask: np.ndarray  # bool, True where the token is a target (output cells, newlines, end marker)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class GridCodec:
    """The grid format bound to one tokenizer's ids."""

    fmt: GridFormat
    digit_ids: tuple[int, ...]
    newline_id: int
    input_id: int
    output_id: int
    end_id: int
    bos_id: int | None = None
    pad_id: int = 0

    @classmethod
    def from_tokenizer(cls, tokenizer, fmt: GridFormat = GridFormat(), use_bos: bool = True) -> "GridCodec":
        ids = check_tokenizer(tokenizer, fmt)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return cls(
            fmt=fmt,
            digit_ids=tuple(ids[f"digit {d}"] for d in DIGITS),
            newline_id=ids["newline"],
            input_id=ids["input marker"],
            output_id=ids["output marker"],
            end_id=ids["end marker"],
            bos_id=tokenizer.bos_token_id if use_bos else None,
            pad_id=pad if pad is not None else ids["end marker"],
        )

    @property
    def grid_token_ids(self) -> tuple[int, ...]:
        """The only tokens a generated output may contain."""
        return (*self.digit_ids, self.newline_id, self.end_id)

    @property
    def format_token_ids(self) -> tuple[int, ...]:
        ids = [*self.grid_token_ids, self.input_id, self.output_id, self.pad_id]
        if self.bos_id is not None:
            ids.append(self.bos_id)
        return tuple(dict.fromkeys(ids))

    def encode_grid(self, grid: np.ndarray) -> list[int]:
        lut = np.asarray(self.digit_ids, dtype=np.int64)
        g = lut[np.asarray(grid)]
        rows = np.concatenate([g, np.full((g.shape[0], 1), self.newline_id, dtype=np.int64)], axis=1)
        return rows.reshape(-1).tolist()

    def encode_pairs(self, pairs: Sequence[Pair], loss_on: LossOn | str = LossOn.ALL_OUTPUTS) -> Encoded:
        """Complete pairs (all with outputs); the last plays the query. For training and scoring."""
        loss_on = LossOn(loss_on)
        ids: list[int] = [] if self.bos_id is None else [self.bos_id]
        mask: list[bool] = [False] * len(ids)
        for i, p in enumerate(pairs):
            if p.output is None:
                raise ValueError("encode_pairs needs every pair's output")
            prompt = [self.input_id, *self.encode_grid(p.input), self.output_id]
            target = [*self.encode_grid(p.output), self.end_id]
            on = (loss_on is LossOn.ALL_OUTPUTS or (loss_on is LossOn.ALL_BUT_FIRST and i > 0)
                  or i == len(pairs) - 1)
            ids += prompt + target
            mask += [False] * len(prompt) + [on] * len(target)
        return Encoded(np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool))

    def encode_prompt(self, demos: Sequence[Pair], query_input: np.ndarray) -> np.ndarray:
        """Demonstrations, then the query input and the output marker: the model continues with the grid."""
        head = self.encode_pairs(demos).ids.tolist() if demos else ([] if self.bos_id is None else [self.bos_id])
        return np.asarray(head + [self.input_id, *self.encode_grid(query_input), self.output_id], dtype=np.int64)

    def decode(self, ids: Sequence[int]) -> np.ndarray | None:
        """Generated ids (after the output marker) -> grid, or None when they are not a legal grid."""
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
        return _rows_to_grid(rows, lambda row: row)


def check_tokenizer(tokenizer, fmt: GridFormat = GridFormat()) -> dict[str, int]:
    """symbol name (as in GridFormat.symbols) -> id; raises TokenizerFormatError naming the first symbol or merge that breaks the format."""
    ids: dict[str, int] = {}  # by name: two names may (wrongly) share one symbol
    for name, sym in fmt.symbols().items():
        toks = tokenizer.encode(sym, add_special_tokens=False)
        if len(toks) != 1:
            raise TokenizerFormatError(
                f"{name} {sym!r} encodes to {len(toks)} tokens {toks} with this tokenizer; the grid format "
                f"needs exactly one. Choose other marker symbols, or run `arc-ttt prepare-model --shrink-vocab`.")
        ids[name] = toks[0]
    by_id: dict[int, str] = {}
    for name, i in ids.items():
        if i in by_id:
            raise TokenizerFormatError(f"the {by_id[i]} and the {name} share token id {i}")
        by_id[i] = name
    # Every ordered pair of digits side by side, rows closed by newlines: a BPE merge shows up as a
    # shorter encoding.
    for a in DIGITS:
        row = "".join(a + b for b in DIGITS)
        text = row + fmt.newline + row + fmt.newline
        toks = tokenizer.encode(text, add_special_tokens=False)
        if len(toks) != 2 * len(row) + 2:
            raise TokenizerFormatError(
                f"a 2x{len(row)} grid {text!r} encodes to {len(toks)} tokens, expected {2 * len(row) + 2} "
                f"(H*W+H): the tokenizer merges digits or newlines. Run `arc-ttt prepare-model --shrink-vocab`.")
    return ids
