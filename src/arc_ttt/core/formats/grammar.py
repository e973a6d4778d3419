"""The symbol formats' answer grammar, beside their codec: which grid token may come next.

Decoding only ever picks tokens the grammar allows, so every finished candidate parses, and re-scoring
masks with the same grammar, so a candidate never gets mass the decoder forbids. Each codec names its
grammar (`Codec.grammar`): the symbol formats this `GridGrammar`, marc its character-level one
(`chat.NumpyGridGrammar`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from .codec import END, NEWLINE, Codec, grammar_masks
from ..tasks import MAX_SIDE, Task

State = tuple[int, int, int]  # (finished rows, cells in the current row, row width; 0 = not fixed yet)


@dataclass(frozen=True)
class GridGrammar:
    """Which grid token may come next so that the text stays a legal grid of at most max_side x max_side.

    Rows must all have the first row's width, so every text that reaches the end marker parses, and
    no text can be longer than `max_tokens`. `separated`: rows are joined by newlines and the end follows
    the last row directly (NVARC); otherwise every row ends with a newline before the end (the kit, ARChitects).
    """

    max_side: int = MAX_SIDE
    separated: bool = False
    start: ClassVar[State] = (0, 0, 0)

    @property
    def max_tokens(self) -> int:
        return self.max_side * (self.max_side + 1) + 1

    def allowed(self, state: State) -> np.ndarray:
        rows, col, width = state
        ok = np.zeros(12, dtype=bool)
        ok[:10] = rows < self.max_side and col < (width or self.max_side)
        row_done = col > 0 and (width == 0 or col == width)
        if self.separated:
            ok[NEWLINE] = row_done and rows + 1 < self.max_side
            ok[END] = row_done
        else:
            ok[NEWLINE] = row_done
            ok[END] = col == 0 and rows > 0
        return ok

    @staticmethod
    def advance(state: State, k: int) -> State:
        rows, col, width = state
        if k == NEWLINE:
            return rows + 1, 0, width or col
        return rows, col + 1, width  # a digit (the end marker finishes the text; nothing follows)

    def masks(self, tokens: Sequence[int]) -> np.ndarray:
        """The allowed set before each token of a complete text (grid-token indices)."""
        return grammar_masks(self, tokens)


def output_side_limit(task: Task, query: np.ndarray, slack: int = 2) -> int:
    """The answer's expected side from the task's shapes: the largest demo output, or the query scaled
    by the largest output/input growth seen in the demos, plus slack. D8 views swap rows and columns, so
    one bound serves both. For budgeting the prompt only: decoding stays within the ARC limit (30), since
    some true answers are larger than anything the demos show (e.g. ccd554ac, 67e490f4)."""
    demos = [p for p in task.train if p.output is not None]
    if not demos:
        return MAX_SIDE
    largest = max(max(p.output.shape) for p in demos)
    growth = max(max(p.output.shape) / max(p.input.shape) for p in demos)
    return min(MAX_SIDE, max(largest, math.ceil(growth * max(query.shape))) + slack)


def grammar_for(task: Task, test_index: int, codec: Codec | None = None):
    """What the decoder may write for a test input: any grid within the ARC limit, in the codec's format. Not
    the demos' shapes: 5 of 419 ARC-AGI-1 and 10 of 167 ARC-AGI-2 evaluation answers are larger than those suggest."""
    return GridGrammar(MAX_SIDE) if codec is None else codec.grammar(MAX_SIDE)
