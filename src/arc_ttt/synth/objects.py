"""Objects: connected groups read back by connectivity, then picked (largest, smallest, odd one out, by shape or
size) and recoloured, kept, erased or cropped."""
from __future__ import annotations

from collections import Counter

import numpy as np

from .family import Grid, Redraw, Rng, Rule, family
from .grids import Object, background, colours, objects, polyomino, scene, unique_extreme


def _shapes(r: Rng, n: int, lo: int, hi: int, side: int = 5) -> list[np.ndarray]:
    return [polyomino(r, int(r.integers(lo, hi + 1)), side, side) for _ in range(n)]


def _recoloured(g: Grid, objs: list[Object], col: int) -> Grid:
    out = g.copy()
    for o in objs:
        out[o.cells[:, 0], o.cells[:, 1]] = col
    return out


def _variants(mask: np.ndarray) -> set[bytes]:
    """The mask under the eight turns and flips, as comparable keys."""
    out = set()
    for m in (mask, mask.T):
        for k in range(4):
            t = np.rot90(m, k)
            out.add(bytes(t.shape) + t.tobytes())
    return out


def _key(mask: np.ndarray) -> bytes:
    return bytes(mask.shape) + np.ascontiguousarray(mask).tobytes()


def _many_objects(rng: Rng, lo_size: int = 1, hi_size: int = 12):
    """A task's palette and an input drawer: 3-7 objects of random shapes and sizes, 4-separated."""
    bg = background(rng)
    cols = colours(rng, int(rng.integers(1, 4)), exclude=[bg])
    n_lo, n_hi = 3, int(rng.integers(4, 8))

    def draw(r: Rng) -> Grid:
        masks = _shapes(r, int(r.integers(n_lo, n_hi + 1)), lo_size, hi_size)
        return scene(r, masks, [int(r.choice(cols)) for _ in masks], bg, 6, 18)[0]

    return bg, cols, draw


def _by_size(rng: Rng, pick) -> Rule:
    bg = background(rng)
    target = colours(rng, 1, exclude=[bg])[0]
    cols = colours(rng, int(rng.integers(1, 4)), exclude=[bg, target])

    def draw(r: Rng) -> Grid:
        masks = _shapes(r, int(r.integers(3, 7)), 1, 12)
        return scene(r, masks, [int(r.choice(cols)) for _ in masks], bg, 6, 18)[0]

    def apply(g: Grid) -> Grid:
        objs = objects(g, bg)
        if len(objs) < 2:
            raise Redraw("one object")
        return _recoloured(g, [objs[unique_extreme([o.size for o in objs], pick)]], target)

    return Rule(draw, apply, {"background": bg, "colour": target})


@family("recolour_largest", "objects")
def recolour_largest(rng: Rng) -> Rule:
    """The largest object (by cell count) takes one fixed colour; the others are left as they are."""
    return _by_size(rng, max)


@family("recolour_smallest", "objects")
def recolour_smallest(rng: Rng) -> Rule:
    """The smallest object (by cell count) takes one fixed colour; the others are left as they are."""
    return _by_size(rng, min)


@family("keep_largest", "objects")
def keep_largest(rng: Rng) -> Rule:
    """Every object but the largest is erased; the grid keeps its size."""
    bg, _, draw = _many_objects(rng)

    def apply(g: Grid) -> Grid:
        objs = objects(g, bg)
        if len(objs) < 2:
            raise Redraw("one object")
        keep = objs[unique_extreme([o.size for o in objs])]
        out = np.full_like(g, bg)
        out[keep.cells[:, 0], keep.cells[:, 1]] = g[keep.cells[:, 0], keep.cells[:, 1]]
        return out

    return Rule(draw, apply, {"background": bg})


@family("extract_largest", "objects")
def extract_largest(rng: Rng) -> Rule:
    """The output is the largest object alone, cropped to its bounding box."""
    bg, _, draw = _many_objects(rng, 2, 14)

    def apply(g: Grid) -> Grid:
        objs = objects(g, bg)
        if len(objs) < 2:
            raise Redraw("one object")
        return objs[unique_extreme([o.size for o in objs])].grid.copy()

    return Rule(draw, apply, {"background": bg})


@family("remove_small", "objects")
def remove_small(rng: Rng) -> Rule:
    """Noise removal: objects of fewer than k cells are erased, the larger ones kept."""
    bg = background(rng)
    k = int(rng.integers(2, 5))
    cols = colours(rng, int(rng.integers(1, 4)), exclude=[bg])

    def draw(r: Rng) -> Grid:
        masks = _shapes(r, int(r.integers(1, 5)), k + 1, k + 10)
        masks += _shapes(r, int(r.integers(2, 9)), 1, k - 1, side=2)
        return scene(r, masks, [int(r.choice(cols)) for _ in masks], bg, 6, 18)[0]

    def apply(g: Grid) -> Grid:
        small = [o for o in objects(g, bg) if o.size < k]
        return _recoloured(g, small, bg)

    return Rule(draw, apply, {"background": bg, "min_size": k})


@family("recolour_by_size", "objects")
def recolour_by_size(rng: Rng) -> Rule:
    """Each object takes the colour its size (cell count) maps to, one size -> colour table per task."""
    bg = background(rng)
    sizes = sorted(int(s) for s in rng.choice(np.arange(1, 7), int(rng.integers(2, 5)), replace=False))
    src, *outs = colours(rng, 1 + len(sizes), exclude=[bg])
    table = dict(zip(sizes, outs))

    def draw(r: Rng) -> Grid:
        drawn = sizes + [int(r.choice(sizes)) for _ in range(int(r.integers(0, 4)))]  # the whole table each time
        masks = [polyomino(r, drawn[i], 3, 3) for i in r.permutation(len(drawn))]
        return scene(r, masks, [src] * len(masks), bg, 5, 16)[0]

    def apply(g: Grid) -> Grid:
        out = g.copy()
        for o in objects(g, bg):
            if o.size not in table:
                raise Redraw(f"no colour for size {o.size}")
            out[o.cells[:, 0], o.cells[:, 1]] = table[o.size]
        return out

    return Rule(draw, apply, {"background": bg, "colour": src, "table": table})


@family("recolour_by_shape", "objects")
def recolour_by_shape(rng: Rng) -> Rule:
    """Objects of one fixed shape (exactly, or up to turns and flips) take a colour; other shapes stay."""
    bg = background(rng)
    target = colours(rng, 1, exclude=[bg])[0]
    cols = colours(rng, int(rng.integers(1, 3)), exclude=[bg, target])
    template = polyomino(rng, int(rng.integers(3, 7)), 3, 3)
    turned = bool(rng.random() < 0.4)
    keys = _variants(template) if turned else {_key(template)}

    def draw(r: Rng) -> Grid:
        n_same = int(r.integers(1, 4))
        same = [np.rot90(template.T if r.random() < 0.5 else template, int(r.integers(4))) if turned else template
                for _ in range(n_same)]
        others = [m for m in _shapes(r, int(r.integers(1, 5)), 3, 6, 3) if _key(m) not in keys]
        if not others:
            raise Redraw("no other shape")
        masks = [same[i] if i < n_same else others[i - n_same] for i in r.permutation(n_same + len(others))]
        return scene(r, masks, [int(r.choice(cols)) for _ in masks], bg, 6, 16)[0]

    def apply(g: Grid) -> Grid:
        return _recoloured(g, [o for o in objects(g, bg) if _key(o.mask) in keys], target)

    return Rule(draw, apply, {"background": bg, "colour": target, "template": template.astype(int).tolist(),
                              "turned": turned})


def _odd_one_rule(rng: Rng):
    """A task's way of making one object differ from the rest (by colour or by shape), an input drawer, and the
    reader that finds the odd object again."""
    bg = background(rng)
    by = str(rng.choice(["colour", "shape"]))
    pal = colours(rng, 4, exclude=[bg])

    def draw(r: Rng) -> Grid:
        n = int(r.integers(3, 7))
        if by == "colour":
            masks = _shapes(r, n, 2, 9)
            base, odd = (int(c) for c in r.choice(pal, 2, replace=False))
            cols = [odd] + [base] * (n - 1)
        else:
            base = polyomino(r, int(r.integers(3, 7)), 4, 4)
            odd = polyomino(r, int(r.integers(3, 7)), 4, 4)
            if _key(odd) in _variants(base):
                raise Redraw("the odd shape is the same")
            masks, cols = [odd] + [base] * (n - 1), [int(r.choice(pal))] * n
        order = r.permutation(n)
        return scene(r, [masks[i] for i in order], [cols[i] for i in order], bg, 6, 16)[0]

    def odd(g: Grid) -> Object:
        objs = objects(g, bg)
        groups = Counter(o.colour if by == "colour" else _key(o.mask) for o in objs)
        if len(groups) != 2 or sorted(groups.values())[0] != 1 or len(objs) < 3:
            raise Redraw("no single odd object")
        lone = next(k for k, v in groups.items() if v == 1)
        return next(o for o in objs if (o.colour if by == "colour" else _key(o.mask)) == lone)

    return bg, by, pal, draw, odd


@family("recolour_unique", "objects")
def recolour_unique(rng: Rng) -> Rule:
    """The one object whose colour (or shape, per task) differs from all the others takes a fixed colour."""
    bg, by, pal, draw, odd = _odd_one_rule(rng)
    target = colours(rng, 1, exclude=[bg, *pal])[0]
    return Rule(draw, lambda g: _recoloured(g, [odd(g)], target), {"background": bg, "by": by, "colour": target})


@family("extract_unique", "objects")
def extract_unique(rng: Rng) -> Rule:
    """The output is the one object whose colour (or shape, per task) differs from all others, cropped."""
    bg, by, _, draw, odd = _odd_one_rule(rng)
    return Rule(draw, lambda g: odd(g).grid.copy(), {"background": bg, "by": by})
