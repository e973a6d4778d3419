"""Grid primitives the families draw with and read back with: sprites, placement, objects by connectivity.

Pure numpy, arrays in and new arrays out. The readers (`objects`, `bbox`) are what rules use to recompute a
transformation from the input alone; the drawers (`sprite`, `scatter`) only make inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .family import Grid, Redraw, Rng

MAX_SIDE = 30
_N4 = ((1, 0), (-1, 0), (0, 1), (0, -1))
_N8 = _N4 + ((1, 1), (1, -1), (-1, 1), (-1, -1))


def colours(rng: Rng, k: int, exclude=()) -> list[int]:
    """k distinct colours outside `exclude`, in random order."""
    pool = [c for c in range(10) if c not in set(exclude)]
    if k > len(pool):
        raise ValueError(f"{k} colours asked, {len(pool)} available")
    return [int(c) for c in rng.permutation(pool)[:k]]


def side(rng: Rng, lo: int, hi: int) -> int:
    return int(rng.integers(lo, min(hi, MAX_SIDE) + 1))


def sprite(rng: Rng, h: int, w: int, density: float = 0.6) -> np.ndarray:
    """A random 4-connected boolean mask whose bounding box is exactly h x w (grown from a seed cell)."""
    for _ in range(50):
        mask = np.zeros((h, w), bool)
        r, c = int(rng.integers(h)), int(rng.integers(w))
        mask[r, c] = True
        target = max(1, int(round(density * h * w)))
        while mask.sum() < target:
            rr, cc = np.argwhere(mask)[int(rng.integers(mask.sum()))]
            dr, dc = _N4[int(rng.integers(4))]
            if 0 <= rr + dr < h and 0 <= cc + dc < w:
                mask[rr + dr, cc + dc] = True
        if mask.any(axis=1).all() and mask.any(axis=0).all():
            return mask
    return np.ones((h, w), bool)


def free_spot(rng: Rng, occupied: np.ndarray, h: int, w: int, gap: int = 1) -> tuple[int, int] | None:
    """A random top-left corner where an h x w box, grown by `gap`, touches nothing occupied."""
    H, W = occupied.shape
    spots = [(r, c) for r in range(H - h + 1) for c in range(W - w + 1)
             if not occupied[max(0, r - gap):r + h + gap, max(0, c - gap):c + w + gap].any()]
    return spots[int(rng.integers(len(spots)))] if spots else None


def scatter(rng: Rng, grid: Grid, masks: list[np.ndarray], cols: list[int], gap: int = 1) -> Grid:
    """`grid` with each mask painted in its colour at a random free place, `gap` cells apart; Redraw if full."""
    out = grid.copy()
    occupied = np.zeros(grid.shape, bool)
    for mask, col in zip(masks, cols):
        spot = free_spot(rng, occupied, *mask.shape, gap=gap)
        if spot is None:
            raise Redraw("no room for another object")
        r, c = spot
        out[r:r + mask.shape[0], c:c + mask.shape[1]][mask] = col
        occupied[r:r + mask.shape[0], c:c + mask.shape[1]] |= mask
    return out


def noise(rng: Rng, grid: Grid, p: float, cols: list[int], where: np.ndarray | None = None) -> Grid:
    """`grid` with a share p of the cells (of `where`, default all) set to random colours from `cols`."""
    out = grid.copy()
    hit = rng.random(grid.shape) < p
    if where is not None:
        hit &= where
    out[hit] = rng.choice(cols, size=int(hit.sum()))
    return out


@dataclass(frozen=True)
class Object:
    """A connected group of non-background cells, read back from a grid."""

    cells: np.ndarray  # (n, 2) row, column
    colour: int  # the most frequent colour (the only one for single-colour objects)
    grid: Grid  # the object's bounding box, background elsewhere
    top: int
    left: int

    @property
    def size(self) -> int:
        return len(self.cells)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    @property
    def mask(self) -> np.ndarray:
        return self.grid != self.background

    background: int = 0


def objects(grid: Grid, bg: int = 0, *, diagonal: bool = False, single_colour: bool = True) -> list[Object]:
    """Connected groups of non-`bg` cells (4- or 8-connected; of one colour, or of any non-bg colours), in
    reading order of their first cell."""
    H, W = grid.shape
    seen = np.zeros((H, W), bool)
    steps = _N8 if diagonal else _N4
    out = []
    for r0 in range(H):
        for c0 in range(W):
            if seen[r0, c0] or grid[r0, c0] == bg:
                continue
            stack, cells = [(r0, c0)], []
            seen[r0, c0] = True
            while stack:
                r, c = stack.pop()
                cells.append((r, c))
                for dr, dc in steps:
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < H and 0 <= cc < W and not seen[rr, cc] and grid[rr, cc] != bg and \
                            (not single_colour or grid[rr, cc] == grid[r0, c0]):
                        seen[rr, cc] = True
                        stack.append((rr, cc))
            out.append(_object(grid, np.array(cells), bg))
    return out


def _object(grid: Grid, cells: np.ndarray, bg: int) -> Object:
    top, left = cells.min(axis=0)
    bottom, right = cells.max(axis=0)
    box = np.full((bottom - top + 1, right - left + 1), bg, dtype=grid.dtype)
    box[cells[:, 0] - top, cells[:, 1] - left] = grid[cells[:, 0], cells[:, 1]]
    vals, counts = np.unique(grid[cells[:, 0], cells[:, 1]], return_counts=True)
    return Object(cells, int(vals[np.argmax(counts)]), box, int(top), int(left), int(bg))


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) inclusive of a non-empty mask; Redraw when it is empty."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise Redraw("nothing there")
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def crop(grid: Grid, box: tuple[int, int, int, int]) -> Grid:
    t, l, b, r = box
    return grid[t:b + 1, l:r + 1].copy()


def unique_extreme(values: list, pick=max) -> int:
    """Index of the single extreme value (max by default); Redraw on a tie, which would leave the rule ambiguous."""
    best = pick(values)
    hits = [i for i, v in enumerate(values) if v == best]
    if len(hits) != 1:
        raise Redraw("a tie")
    return hits[0]


def spot_by_tries(rng: Rng, occupied: np.ndarray, h: int, w: int, gap: int = 1,
                  tries: int = 60) -> tuple[int, int] | None:
    """Like `free_spot`, by random tries instead of a scan (fast on big grids); None when no try fits."""
    H, W = occupied.shape
    if h > H or w > W:
        return None
    for _ in range(tries):
        r, c = int(rng.integers(H - h + 1)), int(rng.integers(W - w + 1))
        if not occupied[max(0, r - gap):r + h + gap, max(0, c - gap):c + w + gap].any():
            return r, c
    return None


def scatter_fast(rng: Rng, grid: Grid, masks: list[np.ndarray], cols: list[int], gap: int = 1) -> Grid:
    """`scatter` placed by `spot_by_tries`: the same pictures, quicker; Redraw when one does not fit."""
    out = grid.copy()
    occupied = out != out  # nothing yet (the grid's own cells do not block)
    for mask, col in zip(masks, cols):
        spot = spot_by_tries(rng, occupied, *mask.shape, gap=gap)
        if spot is None:
            raise Redraw("no room for another object")
        r, c = spot
        out[r:r + mask.shape[0], c:c + mask.shape[1]][mask] = col
        occupied[r:r + mask.shape[0], c:c + mask.shape[1]] |= mask
    return out


def sound_pair(x: Grid, y: Grid) -> tuple[Grid, Grid]:
    """(x, y) for a draw to return, or Redraw when the verifier would refuse the pair's task for it: an output
    equal to its input, or an output of the input's shape in one flat colour (a trivial guess)."""
    if y.shape == x.shape and (np.array_equal(x, y) or (y == y.flat[0]).all()):
        raise Redraw("an unchanged or flat output")
    return x, y
