"""What every prompt format's codec shares, so that the formats need not import each other.

A generated answer is read in one small alphabet whatever the format: indices 0-9 are the digits, then
NEWLINE, then END (`GridCodec.grid_token_ids` and `ChatGridCodec` both order their answer tokens so).
Decoding, re-scoring and the loss masks index that alphabet; the codecs also share the encoded sequence
with its loss mask, the choice of outputs the loss covers, the grid legality check, the answer's expected
length and the error a tokenizer that cannot express a format raises. `Codec` states what every codec
offers, so that decoding, training, re-scoring and the planner take any format without asking which.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ..tasks import GRID_DTYPE, MAX_SIDE, Pair

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


def pair_tokens(pair: Pair, markers: int = 3, any_orientation: bool = True) -> int:
    """Tokens a pair takes one token per cell and per row, plus `markers`: the layout cost that fitting demos
    (TTT), the planner's estimates and the simulator share. `any_orientation`: rows counted on the longer
    side, an upper bound over the D8 views (for fitting under a cap); else as the pair stands."""
    def grid(g: np.ndarray) -> int:
        return g.size + (max(g.shape) if any_orientation else g.shape[0])
    return grid(pair.input) + grid(pair.output) + markers


@runtime_checkable
class Grammar(Protocol):
    """Which answer tokens (indices into `Codec.grid_token_ids`) may come next, so that every text that
    reaches END decodes to a legal grid."""

    start: Any

    @property
    def max_tokens(self) -> int: ...

    def allowed(self, state: Any) -> np.ndarray: ...

    def advance(self, state: Any, k: int) -> Any: ...

    def masks(self, tokens: Sequence[int]) -> np.ndarray: ...


@runtime_checkable
class Codec(Protocol):
    """A prompt format bound to one tokenizer: all that decoding, training, re-scoring and the planner ask of
    a format, so a new format is a new codec and nothing else changes (`GridCodec`, `ChatGridCodec`)."""

    @property
    def name(self) -> str: ...

    @property
    def grid_token_ids(self) -> tuple[int, ...]:
        """The answer alphabet: digits 0-9, NEWLINE, END at those indices, then any others the format needs."""

    @property
    def format_token_ids(self) -> tuple[int, ...]:
        """Every id the format writes (what a shrunk vocabulary must keep)."""

    @property
    def end_id(self) -> int: ...

    @property
    def bos_id(self) -> int | None: ...

    @property
    def pad_id(self) -> int: ...

    @property
    def overhead(self) -> int:
        """Tokens of a prompt that belong to no pair (BOS, preamble, chat markers)."""

    def encode_pairs(self, pairs: Sequence[Pair], loss_on: LossOn | str = LossOn.ALL_OUTPUTS) -> Encoded:
        """Complete pairs, the last one the query, with the loss mask over the answers `loss_on` names."""

    def encode_prompt(self, demos: Sequence[Pair], query_input: np.ndarray) -> np.ndarray:
        """Demos and the query input, ending where the model writes the answer."""

    def prompt_text(self, demos: Sequence[Pair], query_input: np.ndarray) -> str: ...

    def grammar(self, max_side: int = MAX_SIDE) -> Grammar:
        """The answer grammar for grids up to `max_side`: decoding and re-scoring both follow it."""

    def answer_symbols(self, grid: np.ndarray) -> list[int]:
        """A grid as the answer the model writes, in indices into `grid_token_ids` (END last)."""

    def decode(self, ids: Sequence[int]) -> np.ndarray | None:
        """Generated ids -> grid, or None when they are not a legal grid."""

    def pair_cost(self, pair: Pair) -> int:
        """An upper bound on the pair's tokens in any D8 orientation (for fitting demos under a cap)."""

    def answer_cost(self, demos: Sequence[Pair]) -> int:
        """Expected tokens of a generated answer (for planning)."""
