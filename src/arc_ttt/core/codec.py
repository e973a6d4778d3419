"""What every prompt format's codec shares, so that the formats need not import each other.

A generated answer is read in one small alphabet whatever the format: indices 0-9 are the digits, then
NEWLINE, then END (`GridCodec.grid_token_ids` and `ChatGridCodec` both order their answer tokens so).
Decoding, re-scoring and the loss masks index that alphabet; the codecs also share the encoded sequence
with its loss mask, the choice of outputs the loss covers, the grid legality check, the answer's expected
length and the error a tokenizer that cannot express a format raises.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .tasks import GRID_DTYPE, MAX_SIDE, Pair

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
class Encoded:
    ids: np.ndarray  # int64 token ids
    loss_mask: np.ndarray  # bool, True where the token is a target (output cells, newlines, end marker)

    def __len__(self) -> int:
        return len(self.ids)


def rows_to_grid(rows: list, cells) -> np.ndarray | None:
    """Rows (each turned into cell values by `cells`, None when it is not a row) -> grid, or None unless they
    make a legal ARC grid: 1-30 rows of 1-30 cells, all rows as wide."""
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


def grid_symbols(grid: np.ndarray, rows_terminated: bool = True) -> list[int]:
    """A grid as the answer the model writes, in grid-token indices (digits, a newline per row or between
    rows, end)."""
    h, _ = grid.shape
    rows = np.concatenate([np.asarray(grid, dtype=np.int64), np.full((h, 1), NEWLINE)], axis=1)
    flat = rows.reshape(-1).tolist()
    return [*(flat if rows_terminated else flat[:-1]), END]


def grammar_masks(grammar, tokens: Sequence[int]) -> np.ndarray:
    """The allowed set before each token of a complete text, shape (len, vocabulary of the grammar), from any
    grammar with `start`, `allowed(state)` and `advance(state, k)` (re-scoring masks a whole answer at once)."""
    state, out = grammar.start, []
    for k in tokens:
        out.append(grammar.allowed(state))
        state = grammar.advance(state, k)
    return np.stack(out)
