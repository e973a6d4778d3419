"""Logic: two halves of a grid, split by a separator line, combined cell by cell (and, or, xor, nor, and-not)."""
from __future__ import annotations

import numpy as np

from .family import Grid, Redraw, Rng, Rule, family
from .grids import colours, side

OPS = {
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "nor": lambda a, b: ~(a | b),
    "left_not_right": lambda a, b: a & ~b,  # the first half (left, or top) where the second is empty
}


def halves(g: Grid, separator: int, bg: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The two halves' occupied cells (first, second), read on either side of the middle separator line."""
    t = g if split == "vertical" else g.T
    w = t.shape[1] // 2
    if t.shape[1] % 2 == 0 or not (t[:, w] == separator).all():
        raise Redraw("no separator line in the middle")
    a, b = t[:, :w] != bg, t[:, w + 1:] != bg
    return (a, b) if split == "vertical" else (a.T, b.T)


def combine(g: Grid, op: str, separator: int, bg: int, split: str, out: int) -> Grid:
    a, b = halves(g, separator, bg, split)
    return np.where(OPS[op](a, b), out, bg)


def _halves_rule(rng: Rng, op: str) -> Rule:
    split = str(rng.choice(["vertical", "horizontal"]))  # the separator line's direction
    bg = 0 if rng.random() < 0.7 else int(rng.integers(10))
    separator, first, second, out = colours(rng, 4, exclude=[bg])
    if rng.random() < 0.3:
        out = first if rng.random() < 0.5 else second
    density = float(rng.uniform(0.3, 0.7))

    def apply(g: Grid) -> Grid:
        return combine(g, op, separator, bg, split, out)

    def draw(r: Rng):
        h, w = side(r, 3, 12), side(r, 3, 12)
        a, b = r.random((h, w)) < density, r.random((h, w)) < density
        hit = OPS[op](a, b)
        if not hit.any() or hit.all():
            raise Redraw("a flat result")
        t = np.full((h, 2 * w + 1), bg)
        t[:, :w][a], t[:, w + 1:][b], t[:, w] = first, second, separator
        x = t if split == "vertical" else np.ascontiguousarray(t.T)
        return x, apply(x)

    return Rule(draw, apply, {"op": op, "split": split, "bg": bg, "separator": separator, "first": first,
                              "second": second, "out": out})


@family("halves_and", "logic")
def halves_and(rng: Rng) -> Rule:
    """Two halves split by a line: the output marks the cells set in both halves."""
    return _halves_rule(rng, "and")


@family("halves_or", "logic")
def halves_or(rng: Rng) -> Rule:
    """Two halves split by a line: the output marks the cells set in either half."""
    return _halves_rule(rng, "or")


@family("halves_xor", "logic")
def halves_xor(rng: Rng) -> Rule:
    """Two halves split by a line: the output marks the cells set in exactly one half."""
    return _halves_rule(rng, "xor")


@family("halves_nor", "logic")
def halves_nor(rng: Rng) -> Rule:
    """Two halves split by a line: the output marks the cells empty in both halves."""
    return _halves_rule(rng, "nor")


@family("halves_left_not_right", "logic")
def halves_left_not_right(rng: Rng) -> Rule:
    """Two halves split by a line: the output marks the cells set in the first (left or top) half only."""
    return _halves_rule(rng, "left_not_right")
