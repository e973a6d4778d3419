"""Topology: enclosed areas, holes, outlines, inside and outside, boxes round objects."""
from __future__ import annotations

import numpy as np

from .family import Grid, Redraw, Rng, Rule, family
from .grids import background, colours, enclosed, holes, objects, place, polyomino, scene, side


def _ring(mask: np.ndarray) -> np.ndarray:
    """The 8-neighbour ring round a mask (the mask padded by one cell): a closed wall round it."""
    p = np.pad(mask, 1)
    grown = p.copy()
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            grown |= np.roll(np.roll(p, dr, 0), dc, 1)
    return grown & ~p


def _loop(r: Rng, closed: bool) -> np.ndarray:
    """A closed wall round a random region (a rectangle or a blob), or the same wall with a one-cell gap."""
    if r.random() < 0.5:
        inner = np.ones((side(r, 1, 5), side(r, 1, 5)), bool)
    else:
        inner = polyomino(r, int(r.integers(2, 13)), 5, 5)
    wall = _ring(inner)
    if not closed:  # open a wall cell next to the inside and to the outside along one axis
        rows, cols = np.nonzero(wall)
        pad = np.pad(inner, 1)
        ok = [(a, b) for a, b in zip(rows, cols) if (a in (0, wall.shape[0] - 1) or b in (0, wall.shape[1] - 1))
              and any(0 <= a + dr < pad.shape[0] and 0 <= b + dc < pad.shape[1] and pad[a + dr, b + dc]
                      for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)))]
        a, b = ok[int(r.integers(len(ok)))]
        wall[a, b] = False
    return wall


@family("fill_enclosed", "topology")
def fill_enclosed(rng: Rng) -> Rule:
    """Background areas that cannot reach the grid's edge (closed in by walls) are filled with a fixed colour;
    areas behind an open wall are not."""
    bg = background(rng)
    fill, *walls = colours(rng, int(rng.integers(2, 4)), exclude=[bg])

    def draw(r: Rng) -> Grid:
        n = int(r.integers(1, 5))
        masks = [_loop(r, closed=i == 0 or r.random() < 0.6) for i in range(n)]
        return scene(r, masks, [int(r.choice(walls)) for _ in masks], bg, 6, 18)[0]

    def apply(g: Grid) -> Grid:
        out = g.copy()
        out[enclosed(g, bg)] = fill
        return out

    return Rule(draw, apply, {"background": bg, "fill": fill})


@family("fill_holes", "topology")
def fill_holes(rng: Rng) -> Rule:
    """Holes inside solid objects are filled with the object's own colour, or with one fixed colour."""
    bg = background(rng)
    fill = colours(rng, 1, exclude=[bg])[0] if rng.random() < 0.5 else None
    pal = colours(rng, int(rng.integers(1, 4)), exclude=[bg] + ([fill] if fill is not None else []))

    def draw(r: Rng) -> Grid:
        masks = [_holed(r, int(r.integers(i == 0, 4)), 7) for i in range(int(r.integers(1, 5)))]
        return scene(r, masks, [int(r.choice(pal)) for _ in masks], bg, 6, 20)[0]

    def apply(g: Grid) -> Grid:
        out, lab = g.copy(), holes(g, bg)
        if fill is not None:
            out[lab >= 0] = fill
            return out
        for k in np.unique(lab[lab >= 0]).tolist():
            hole = lab == k
            around = _ring(hole)[1:-1, 1:-1] & ~hole
            cols = np.unique(g[around])
            if len(cols) != 1:
                raise Redraw("a hole between two colours")
            out[hole] = cols[0]
        return out

    return Rule(draw, apply, {"background": bg, "fill": fill})


def _holed(r: Rng, n: int, hi: int) -> np.ndarray:
    """A solid rectangle with exactly n one-cell holes inside, no two holes touching (even by a corner)."""
    for _ in range(10):
        h, w = side(r, 3 + (n > 1), hi), side(r, 3 + (n > 2), hi)
        m = np.ones((h, w), bool)
        for rr, cc in zip(r.integers(1, h - 1, 4 * n).tolist(), r.integers(1, w - 1, 4 * n).tolist()):
            if (~m).sum() == n:
                break
            if m[rr - 1:rr + 2, cc - 1:cc + 2].all():
                m[rr, cc] = False
        if (~m).sum() == n:
            return m
    raise Redraw(f"{n} holes do not fit")


@family("recolour_by_holes", "topology")
def recolour_by_holes(rng: Rng) -> Rule:
    """Each object takes the colour its number of holes maps to (one count -> colour table per task)."""
    bg = background(rng)
    counts = sorted(int(v) for v in rng.choice(4, int(rng.integers(2, 5)), replace=False))
    src, *outs = colours(rng, 1 + len(counts), exclude=[bg])
    table = dict(zip(counts, outs))

    def draw(r: Rng) -> Grid:
        drawn = counts + [int(r.choice(counts)) for _ in range(int(r.integers(0, 3)))]  # the whole table each time
        masks = [_holed(r, drawn[i], 6) for i in r.permutation(len(drawn))]
        return scene(r, masks, [src] * len(masks), bg, 6, 20)[0]

    def apply(g: Grid) -> Grid:
        lab, out = holes(g, bg), g.copy()
        for o in objects(g, bg):
            inside = lab[o.top:o.top + o.shape[0], o.left:o.left + o.shape[1]]
            k = len(np.unique(inside[inside >= 0]))
            if k not in table:
                raise Redraw(f"no colour for {k} holes")
            out[o.cells[:, 0], o.cells[:, 1]] = table[k]
        return out

    return Rule(draw, apply, {"background": bg, "colour": src, "table": table})


@family("outline_objects", "topology")
def outline_objects(rng: Rng) -> Rule:
    """Solid objects keep only their outline: cells whose eight neighbours are all the object's colour become
    background (or a fixed colour)."""
    bg = background(rng)
    inner = colours(rng, 1, exclude=[bg])[0] if rng.random() < 0.5 else bg
    pal = colours(rng, int(rng.integers(1, 4)), exclude=[bg, inner])

    def apply(g: Grid) -> Grid:
        p = np.pad(g, 1, constant_values=-1)
        H, W = g.shape
        same = np.ones(g.shape, bool)
        for dr in (0, 1, 2):
            for dc in (0, 1, 2):
                same &= p[dr:dr + H, dc:dc + W] == g
        out = g.copy()
        out[same & (g != bg)] = inner
        return out

    def draw(r: Rng) -> Grid:
        masks = []
        for _ in range(int(r.integers(1, 5))):
            h, w = side(r, 3, 8), side(r, 3, 8)
            masks.append(np.ones((h, w), bool) if r.random() < 0.6 else _fat(r, h, w))
        return scene(r, masks, [int(r.choice(pal)) for _ in masks], bg, 6, 20)[0]

    return Rule(draw, apply, {"background": bg, "inside": inner})


def _fat(r: Rng, h: int, w: int) -> np.ndarray:
    """A solid rectangle with some corner blocks cut away (an L, a T, a plus...), still one piece."""
    m = np.ones((h, w), bool)
    for corner in range(4):
        if r.random() < 0.5:
            a, b = int(r.integers(1, max(2, h // 2))), int(r.integers(1, max(2, w // 2)))
            rows = slice(0, a) if corner < 2 else slice(h - a, h)
            cols = slice(0, b) if corner % 2 == 0 else slice(w - b, w)
            m[rows, cols] = False
    return m if m.any(0).all() and m.any(1).all() else np.ones((h, w), bool)


@family("inside_outside", "topology")
def inside_outside(rng: Rng) -> Rule:
    """A rectangular frame and scattered marks: the marks inside the frame (or outside it, per task) are erased,
    or recoloured, and the others kept."""
    bg = background(rng)
    frame, mark, new = colours(rng, 3, exclude=[bg])
    inside = bool(rng.random() < 0.5)
    recolour = bool(rng.random() < 0.5)

    def apply(g: Grid) -> Grid:
        rows, cols = np.nonzero(g == frame)
        if len(rows) == 0:
            raise Redraw("no frame")
        t, b, left, right = rows.min(), rows.max(), cols.min(), cols.max()
        box = g[t:b + 1, left:right + 1]
        ring = np.ones(box.shape, bool)
        ring[1:-1, 1:-1] = False
        if b - t < 2 or right - left < 2 or not (box[ring] == frame).all() or (box[~ring] == frame).any():
            raise Redraw("not one rectangular frame")
        within = np.zeros(g.shape, bool)
        within[t + 1:b, left + 1:right] = True
        hit = (g == mark) & (within if inside else ~within)
        out = g.copy()
        out[hit] = new if recolour else bg
        return out

    def draw(r: Rng) -> Grid:
        h, w = side(r, 7, 20), side(r, 7, 20)
        fh, fw = side(r, 4, h - 1), side(r, 4, w - 1)
        g = np.full((h, w), bg)
        t, left = int(r.integers(0, h - fh + 1)), int(r.integers(0, w - fw + 1))
        g[t:t + fh, left:left + fw] = frame
        g[t + 1:t + fh - 1, left + 1:left + fw - 1] = bg
        free = np.argwhere(g == bg)
        picks = free[r.choice(len(free), size=min(len(free), int(r.integers(3, 12))), replace=False)]
        g[picks[:, 0], picks[:, 1]] = mark
        within = np.zeros(g.shape, bool)
        within[t + 1:t + fh - 1, left + 1:left + fw - 1] = True
        if not (g == mark)[within].any() or not (g == mark)[~within].any():
            raise Redraw("marks on one side only")
        return g

    return Rule(draw, apply, {"background": bg, "frame": frame, "mark": mark, "inside": inside,
                              "recolour": recolour, "colour": new})


@family("box_objects", "topology")
def box_objects(rng: Rng) -> Rule:
    """A one-cell box of a fixed colour is drawn round each object's bounding box, one cell out."""
    bg = background(rng)
    box_col = colours(rng, 1, exclude=[bg])[0]
    pal = colours(rng, int(rng.integers(1, 4)), exclude=[bg, box_col])

    def apply(g: Grid) -> Grid:
        out = g.copy()
        for o in objects(g, bg, diagonal=True):
            t, left, b, right = o.top - 1, o.left - 1, o.top + o.shape[0], o.left + o.shape[1]
            if t < 0 or left < 0 or b >= g.shape[0] or right >= g.shape[1]:
                raise Redraw("an object on the edge")
            ring = np.ones((b - t + 1, right - left + 1), bool)
            ring[1:-1, 1:-1] = False
            window = out[t:b + 1, left:right + 1]
            if (window[ring] != bg).any():
                raise Redraw("a box would cover something")
            window[ring] = box_col
        return out

    def draw(r: Rng) -> Grid:
        masks = [polyomino(r, int(r.integers(1, 9)), 4, 4) for _ in range(int(r.integers(1, 5)))]
        h, w = side(r, 5, 20), side(r, 5, 20)
        spots = place(r, (h, w), masks, gap=3, boxes=True, margin=1)
        g = np.full((h, w), bg)
        for m, (top, left) in zip(masks, spots):
            g[top:top + m.shape[0], left:left + m.shape[1]][m] = int(r.choice(pal))
        return g

    return Rule(draw, apply, {"background": bg, "box": box_col})
