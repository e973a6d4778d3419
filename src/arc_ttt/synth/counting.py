"""Counting: the output's size, length or colour says how many objects or cells the input holds."""
from __future__ import annotations

import numpy as np

from .colour import majority, some
from .family import Grid, Redraw, Rng, Rule, family
from .grids import colours, objects, polyomino, scatter_fast, side


def _bg(rng: Rng) -> int:
    return 0 if rng.random() < 0.7 else int(rng.integers(10))


def count_objects(g: Grid, bg: int) -> dict[int, int]:
    """colour -> how many (4-connected, single-colour) objects of it."""
    out: dict[int, int] = {}
    for o in objects(g, bg):
        out[o.colour] = out.get(o.colour, 0) + 1
    return out


def _objects_grid(r: Rng, bg: int, cols: list[int], max_cells: int = 4, lo: int = 6, hi: int = 16) -> Grid:
    """A grid on `bg` with one small object per entry of `cols`, in that colour, none touching another."""
    masks = [polyomino(r, side(r, 1, max_cells), 3, 3) for _ in cols]
    return scatter_fast(r, np.full((side(r, lo, hi), side(r, lo, hi)), bg), masks, cols)


def _bar(n: int, colour: int, vertical: bool) -> Grid:
    return np.full((n, 1) if vertical else (1, n), colour)


@family("count_objects_bar", "counting")
def count_objects_bar(rng: Rng) -> Rule:
    """The output is a bar of one cell per object of the counted colour (other colours are distractors)."""
    bg = _bg(rng)
    target, *others = colours(rng, int(rng.integers(1, 4)), exclude=[bg])
    vertical = bool(rng.random() < 0.4)

    def apply(g: Grid) -> Grid:
        n = count_objects(g, bg).get(target, 0)
        if n == 0:
            raise Redraw("nothing to count")
        return _bar(n, target, vertical)

    def draw(r: Rng):
        cols = [target] * side(r, 1, 8) + [int(r.choice(others)) for _ in range(int(r.integers(0, 5)) * bool(others))]
        x = _objects_grid(r, bg, [int(c) for c in r.permutation(cols)])
        return x, apply(x)

    return Rule(draw, apply, {"bg": bg, "target": target, "others": others, "vertical": vertical})


def histogram(g: Grid, bg: int, by_objects: bool, vertical: bool) -> Grid:
    """One bar per colour, as long as its count of objects (or cells), longest first; Redraw on a tie."""
    counts = count_objects(g, bg) if by_objects else \
        {int(c): int(n) for c, n in zip(*np.unique(g[g != bg], return_counts=True))}
    if len(counts) < 2 or len(set(counts.values())) < len(counts):
        raise Redraw("tied counts")
    ranked = sorted(counts.items(), key=lambda cn: -cn[1])
    out = np.full((len(ranked), ranked[0][1]), bg)
    for i, (c, n) in enumerate(ranked):
        out[i, :n] = c
    return np.ascontiguousarray(np.rot90(out)) if vertical else out  # vertical bars stand on the bottom


@family("colour_histogram", "counting")
def colour_histogram(rng: Rng) -> Rule:
    """One bar per colour, its length the number of that colour's objects (or cells), sorted longest first."""
    bg = _bg(rng)
    palette = colours(rng, int(rng.integers(3, 8)), exclude=[bg])
    by_objects, vertical = bool(rng.random() < 0.5), bool(rng.random() < 0.5)

    def apply(g: Grid) -> Grid:
        return histogram(g, bg, by_objects, vertical)

    def draw(r: Rng):
        cols = some(r, palette, 2, 4)
        counts = sorted(r.permutation(np.arange(1, 8))[:len(cols)].tolist())
        per = [c for c, n in zip(cols, counts) for _ in range(n)]
        if by_objects:
            x = _objects_grid(r, bg, [int(c) for c in r.permutation(per)], max_cells=3, lo=8)
        else:
            x = np.full((side(r, 5, 14), side(r, 5, 14)), bg)
            spots = r.permutation(x.size)[:len(per)]
            x.flat[spots] = per
        return x, apply(x)

    return Rule(draw, apply, {"bg": bg, "palette": palette, "by_objects": by_objects, "vertical": vertical})


@family("majority_colour", "counting")
def majority_colour(rng: Rng) -> Rule:
    """The output is a small square of the most frequent non-background colour."""
    bg = _bg(rng)
    palette = colours(rng, int(rng.integers(3, 9)), exclude=[bg])
    k = int(rng.choice([1, 1, 2, 3]))

    def apply(g: Grid) -> Grid:
        return np.full((k, k), majority(g, bg))

    def draw(r: Rng):
        cols = some(r, palette, 2, 4)
        h, w = side(r, 3, 14), side(r, 3, 14)
        x = np.where(r.random((h, w)) < r.uniform(0.2, 0.8), r.choice(cols, size=(h, w)), bg)
        return x, apply(x)

    return Rule(draw, apply, {"bg": bg, "palette": palette, "k": k})


def more_objects(g: Grid, bg: int) -> tuple[int, int]:
    """(the colour with more objects, the other) of a grid holding objects of exactly two colours."""
    counts = count_objects(g, bg)
    if len(counts) != 2 or len(set(counts.values())) < 2:
        raise Redraw("not two colours with different counts")
    (a, na), (b, nb) = counts.items()
    return (a, b) if na > nb else (b, a)


@family("compare_counts", "counting")
def compare_counts(rng: Rng) -> Rule:
    """Objects of two colours: the output is the colour with more objects (a cell of it), or the input with the
    other colour's objects erased."""
    bg = _bg(rng)
    palette = colours(rng, int(rng.integers(4, 9)), exclude=[bg])
    answer = str(rng.choice(["colour", "keep"]))

    def apply(g: Grid) -> Grid:
        win, lose = more_objects(g, bg)
        return np.full((1, 1), win) if answer == "colour" else np.where(g == lose, bg, g)

    def draw(r: Rng):
        a, b = some(r, palette, 2, 2)
        na, nb = (int(n) for n in r.permutation(np.arange(1, 7))[:2])
        cols = [a] * na + [b] * nb
        # the colour with fewer objects often has the larger ones, so the count (not the area) decides
        masks = [polyomino(r, side(r, 1, 3) if c == a and na > nb or c == b and nb > na else side(r, 2, 6), 3, 3)
                 for c in cols]
        x = scatter_fast(r, np.full((side(r, 6, 14), side(r, 6, 14)), bg), masks, cols)
        return x, apply(x)

    return Rule(draw, apply, {"bg": bg, "palette": palette, "answer": answer})


@family("count_to_grid_size", "counting")
def count_to_grid_size(rng: Rng) -> Rule:
    """The output is an n x n square, n the number of objects, in their colour (filled, or on its diagonal)."""
    bg = _bg(rng)
    palette = colours(rng, int(rng.integers(2, 9)), exclude=[bg])
    diagonal = bool(rng.random() < 0.4)

    def apply(g: Grid) -> Grid:
        counts = count_objects(g, bg)
        if len(counts) != 1:
            raise Redraw("objects of several colours")
        (c, n), = counts.items()
        out = np.full((n, n), bg)
        if diagonal:
            np.fill_diagonal(out, c)
        else:
            out[:] = c
        return out

    def draw(r: Rng):
        c = int(r.choice(palette))
        x = _objects_grid(r, bg, [c] * side(r, 1, 7), lo=7)
        return x, apply(x)

    return Rule(draw, apply, {"bg": bg, "palette": palette, "diagonal": diagonal})
