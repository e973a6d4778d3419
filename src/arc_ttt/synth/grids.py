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


def scatter(rng: Rng, grid: Grid, masks: list[np.ndarray], cols: list[int], gap: int = 1, find=None) -> Grid:
    """`grid` with each mask painted in its colour at a random free place, `gap` cells apart; Redraw if full.
    `find` picks the place (default `free_spot`, every place considered)."""
    out = grid.copy()
    occupied = np.zeros(grid.shape, bool)
    for mask, col in zip(masks, cols):
        spot = (find or free_spot)(rng, occupied, *mask.shape, gap=gap)
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
    return scatter(rng, grid, masks, cols, gap, find=spot_by_tries)


def sound_pair(x: Grid, y: Grid) -> tuple[Grid, Grid]:
    """(x, y) for a draw to return, or Redraw when the verifier would refuse the pair's task for it: an output
    equal to its input, or an output of the input's shape in one flat colour (a trivial guess)."""
    if y.shape == x.shape and (np.array_equal(x, y) or (y == y.flat[0]).all()):
        raise Redraw("an unchanged or flat output")
    return x, y


# Vectorised readers and fast drawers (the families of objects, topology, lines and movement read grids many
# times per task; a Python flood fill per call would cost most of the generation time).

def labels(grid: Grid, bg: int = 0, *, diagonal: bool = False, single_colour: bool = True) -> np.ndarray:
    """Connected components, as `objects` groups cells: each non-`bg` cell gets the flat index of its component's
    first cell in reading order, background cells -1 (minimum labels spread along links, with pointer jumping)."""
    H, W = grid.shape
    n = H * W
    fg = grid != bg
    links = []
    for dr, dc in (((0, 1), (1, 0), (1, 1), (1, -1)) if diagonal else ((0, 1), (1, 0))):
        a = (slice(0, H - dr), slice(max(0, -dc), W - max(0, dc)))
        b = (slice(dr, H), slice(max(0, dc), W - max(0, -dc)))
        conn = fg[a] & fg[b] & ((grid[a] == grid[b]) if single_colour else True)
        links.append((a, b, conn))
    # start from each cell's horizontal run (labelled by its leftmost cell): few rounds are left to spread
    starts = fg.copy()
    starts[:, 1:] &= ~links[0][2]
    lab = np.where(fg, np.maximum.accumulate(np.where(starts, np.arange(n).reshape(H, W), 0), axis=1), n)
    links = [link for link in links if link[2].any()]
    while True:
        prev = lab
        lab = lab.copy()
        for a, b, conn in links:
            m = np.where(conn, np.minimum(lab[a], lab[b]), n)
            lab[a] = np.minimum(lab[a], m)
            lab[b] = np.minimum(lab[b], m)
        lab = np.append(lab.ravel(), n)[lab]  # each cell takes its label's label
        if np.array_equal(lab, prev):
            return np.where(fg, lab, -1)


def objects(grid: Grid, bg: int = 0, *, diagonal: bool = False, single_colour: bool = True) -> list[Object]:
    """Connected groups of non-`bg` cells (4- or 8-connected; of one colour, or of any non-bg colours), in
    reading order of their first cell, cells in reading order; vectorised over `labels` (a flood fill is the
    tests' reference)."""
    flat = labels(grid, bg, diagonal=diagonal, single_colour=single_colour).ravel()
    idx = np.flatnonzero(flat >= 0)
    if len(idx) == 0:
        return []
    idx = idx[np.argsort(flat[idx], kind="stable")]
    keys = flat[idx]
    starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    rows, cols = np.divmod(idx, grid.shape[1])
    vals = grid.ravel()[idx]
    out = []
    for a, b in zip([0, *starts.tolist()], [*starts.tolist(), len(idx)]):
        r, c, v = rows[a:b], cols[a:b], vals[a:b]
        top, left = int(r.min()), int(c.min())
        box = np.full((int(r.max()) - top + 1, int(c.max()) - left + 1), bg, dtype=grid.dtype)
        box[r - top, c - left] = v
        colour = int(v[0]) if single_colour else int(np.bincount(v).argmax())
        out.append(Object(np.column_stack((r, c)), colour, box, top, left, int(bg)))
    return out


def holes(grid: Grid, bg: int = 0) -> np.ndarray:
    """The background areas cut off from the grid's edge (4-connected), labelled as `labels` does; -1 elsewhere."""
    lab = labels((grid == bg).astype(np.int8), 0)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    return np.where(np.isin(lab, edge), -1, lab)


def enclosed(grid: Grid, bg: int = 0) -> np.ndarray:
    """Background cells with no 4-connected path through background to the grid's edge (holes, closed areas)."""
    return holes(grid, bg) >= 0


def polyomino(rng: Rng, n: int, max_h: int = MAX_SIDE, max_w: int = MAX_SIDE) -> np.ndarray:
    """A random 4-connected mask of exactly n cells within max_h x max_w, cropped to its bounding box."""
    if n > max_h * max_w:
        raise ValueError(f"{n} cells do not fit {max_h} x {max_w}")
    cells, seen = [(0, 0)], {(0, 0)}
    r0 = r1 = c0 = c1 = 0
    for _ in range(50 * n):
        if len(cells) == n:
            break
        u, v = rng.random(2)
        r, c = cells[int(u * len(cells))]
        dr, dc = _N4[int(v * 4)]
        rr, cc = r + dr, c + dc
        if (rr, cc) in seen or max(r1, rr) - min(r0, rr) >= max_h or max(c1, cc) - min(c0, cc) >= max_w:
            continue
        cells.append((rr, cc))
        seen.add((rr, cc))
        r0, r1, c0, c1 = min(r0, rr), max(r1, rr), min(c0, cc), max(c1, cc)
    else:
        if len(cells) < n:
            raise Redraw("the polyomino did not grow")
    mask = np.zeros((r1 - r0 + 1, c1 - c0 + 1), bool)
    arr = np.array(cells)
    mask[arr[:, 0] - r0, arr[:, 1] - c0] = True
    return mask


def place(rng: Rng, shape: tuple[int, int], masks: list[np.ndarray], gap: int = 1, *, boxes: bool = False,
          margin: int = 0, occupied: np.ndarray | None = None, tries: int = 60) -> list[tuple[int, int]]:
    """Random top-left corners for the masks in turn, each box grown by `gap` touching nothing placed before (nor
    `occupied`), `margin` cells inside the edges (`boxes`: a placed mask blocks its whole box); Redraw on no room.
    Random tries, not `free_spot`'s full scan: fast on big grids."""
    H, W = shape
    occ = np.zeros(shape, bool) if occupied is None else occupied.copy()
    spots = []
    for m in masks:
        h, w = m.shape
        if H - h - margin < margin or W - w - margin < margin:
            raise Redraw("an object larger than the grid")
        rs = rng.integers(margin, H - h - margin + 1, size=tries)
        cs = rng.integers(margin, W - w - margin + 1, size=tries)
        for r, c in zip(rs.tolist(), cs.tolist()):
            if not occ[max(0, r - gap):r + h + gap, max(0, c - gap):c + w + gap].any():
                break
        else:
            raise Redraw("no room for another object")
        occ[r:r + h, c:c + w] |= True if boxes else m
        spots.append((r, c))
    return spots


def paint(grid: Grid, masks: list[np.ndarray], spots: list[tuple[int, int]], cols: list[int]) -> Grid:
    """`grid` with each mask painted in its colour at its top-left spot."""
    out = grid.copy()
    for m, (r, c), col in zip(masks, spots, cols):
        out[r:r + m.shape[0], c:c + m.shape[1]][m] = col
    return out


def background(rng: Rng, p_zero: float = 0.8) -> int:
    """The background colour: 0 mostly, another colour sometimes (so no rule learns that 0 is always empty)."""
    return 0 if rng.random() < p_zero else int(rng.integers(1, 10))


def scene(rng: Rng, masks: list[np.ndarray], cols: list[int], bg: int = 0, lo: int = 5, hi: int = 20,
          gap: int = 1, *, boxes: bool = False, margin: int = 0, room: float = 3.0) -> tuple[Grid, list]:
    """A background grid of random sides in lo..hi (grown to hold the masks with `room` times their area) with
    each mask painted in its colour, `gap` apart; returns the grid and the masks' top-left spots."""
    need = room * sum((m.shape[0] + gap) * (m.shape[1] + gap) for m in masks)
    least = max(lo, int(np.ceil(np.sqrt(need))))
    tall = max(least, max(m.shape[0] for m in masks) + 2 * margin)
    wide = max(least, max(m.shape[1] for m in masks) + 2 * margin)
    if max(tall, wide) > MAX_SIDE:
        raise Redraw("the objects do not fit a grid")
    h, w = side(rng, tall, max(hi, tall)), side(rng, wide, max(hi, wide))
    spots = place(rng, (h, w), masks, gap, boxes=boxes, margin=margin)
    return paint(np.full((h, w), bg), masks, spots, cols), spots
