"""Geometry: the whole grid or its objects turned, flipped, scaled, tiled, mirrored, moved."""
from __future__ import annotations

import numpy as np

from ..core.views import D8_NAMES, d8
from .family import Grid, Redraw, Rng, Rule, family
from .grids import background, colours, objects, place, polyomino, scene, side


def _random_grid(r: Rng, lo: int, hi: int, cols: list[int], bg: int, density: float) -> Grid:
    h, w = side(r, lo, hi), side(r, lo, hi)
    g = np.where(r.random((h, w)) < density, r.choice(cols, size=(h, w)), bg)
    if len(np.unique(g)) < 2:
        raise Redraw("a flat grid")
    return g


@family("d8_whole", "geometry")
def d8_whole(rng: Rng) -> Rule:
    """The whole grid turned or flipped by one fixed symmetry (not the identity)."""
    k = int(rng.integers(1, 8))
    cols = colours(rng, int(rng.integers(2, 5)), exclude=[0])
    density = float(rng.uniform(0.2, 0.6))
    return Rule(lambda r: _random_grid(r, 2, 10, cols, 0, density), lambda g: d8(g, k), {"symmetry": D8_NAMES[k]})


def _small_grid(rng: Rng):
    """A task's palette and an input drawer of random grids up to `hi` a side (the caller bounds the output)."""
    bg = background(rng)
    cols = colours(rng, int(rng.integers(2, 5)), exclude=[bg])
    density = float(rng.uniform(0.25, 0.7))
    return bg, lambda r, hi: _random_grid(r, 2, hi, cols, bg, density)


@family("scale_up", "geometry")
def scale_up(rng: Rng) -> Rule:
    """Every cell becomes a k x k block (k fixed per task)."""
    k = int(rng.integers(2, 5))
    _, draw = _small_grid(rng)
    return Rule(lambda r: draw(r, min(8, 30 // k)), lambda g: np.kron(g, np.ones((k, k), g.dtype)), {"factor": k})


@family("scale_down", "geometry")
def scale_down(rng: Rng) -> Rule:
    """The input is a grid blown up k times (each cell a k x k block); the output is the small grid."""
    k = int(rng.integers(2, 5))
    _, small = _small_grid(rng)

    def apply(g: Grid) -> Grid:
        out = g[::k, ::k]
        if g.shape[0] % k or g.shape[1] % k or not np.array_equal(np.kron(out, np.ones((k, k), g.dtype)), g):
            raise Redraw("not a scaled grid")
        return out.copy()

    return Rule(lambda r: np.kron(small(r, min(8, 30 // k)), np.ones((k, k), int)), apply, {"factor": k})


@family("tile", "geometry")
def tile(rng: Rng) -> Rule:
    """The output is the input repeated a times down and b times across."""
    a, b = (int(v) for v in rng.integers(1, 4, 2))
    if a == b == 1:
        b = int(rng.integers(2, 5))
    _, draw = _small_grid(rng)
    return Rule(lambda r: draw(r, min(8, 30 // max(a, b))), lambda g: np.tile(g, (a, b)), {"down": a, "across": b})


_MIRRORS = {"tl": lambda g: g, "tr": lambda g: g[:, ::-1], "bl": lambda g: g[::-1], "br": lambda g: g[::-1, ::-1]}


@family("tile_mirrored", "geometry")
def tile_mirrored(rng: Rng) -> Rule:
    """A 2 x 2 of the input and its mirror images, symmetric both ways; the input sits in a fixed corner."""
    corner = str(rng.choice(list(_MIRRORS)))
    _, draw = _small_grid(rng)

    def apply(g: Grid) -> Grid:
        q = _MIRRORS[corner](g)
        top = np.hstack([q, q[:, ::-1]])
        return np.vstack([top, top[::-1]])

    return Rule(lambda r: draw(r, 10), apply, {"corner": corner})


@family("mirror_concat", "geometry")
def mirror_concat(rng: Rng) -> Rule:
    """The input joined to its mirror image on one fixed side (right, left, below or above)."""
    where = str(rng.choice(["right", "left", "below", "above"]))
    _, draw = _small_grid(rng)

    def apply(g: Grid) -> Grid:
        if where in ("right", "left"):
            m = g[:, ::-1]
            return np.hstack([g, m] if where == "right" else [m, g])
        m = g[::-1]
        return np.vstack([g, m] if where == "below" else [m, g])

    return Rule(lambda r: draw(r, 12), apply, {"side": where})


@family("translate_objects", "geometry")
def translate_objects(rng: Rng) -> Rule:
    """Everything on the background moves by one fixed (rows, columns) step; what leaves the grid is cut off, or
    comes back on the other side (per task)."""
    while (step := tuple(int(v) for v in rng.integers(-3, 4, 2))) == (0, 0):
        pass
    wrap = bool(rng.random() < 0.4)
    bg = background(rng)
    cols = colours(rng, int(rng.integers(1, 4)), exclude=[bg])

    def apply(g: Grid) -> Grid:
        if wrap:
            return np.roll(g, step, axis=(0, 1))
        out = np.full_like(g, bg)
        (dr, dc), (H, W) = step, g.shape
        out[max(0, dr):H + min(0, dr), max(0, dc):W + min(0, dc)] = g[max(0, -dr):H - max(0, dr),
                                                                      max(0, -dc):W - max(0, dc)]
        return out

    def draw(r: Rng) -> Grid:
        masks = [polyomino(r, int(r.integers(1, 9)), 4, 4) for _ in range(int(r.integers(1, 5)))]
        g = scene(r, masks, [int(r.choice(cols)) for _ in masks], bg, 5, 14)[0]
        if (apply(g) == bg).all():
            raise Redraw("everything moved out")
        return g

    return Rule(draw, apply, {"step": step, "wrap": wrap, "background": bg})


@family("flip_objects_in_place", "geometry")
def flip_objects_in_place(rng: Rng) -> Rule:
    """Each object is flipped (left-right, upside down, or turned half round, per task) inside its own box."""
    how = str(rng.choice(["left_right", "up_down", "half_turn"]))
    flip = {"left_right": lambda m: m[:, ::-1], "up_down": lambda m: m[::-1], "half_turn": lambda m: m[::-1, ::-1]}[how]
    bg = background(rng)
    pal = colours(rng, int(rng.integers(2, 5)), exclude=[bg])

    def draw(r: Rng) -> Grid:
        masks = [polyomino(r, int(r.integers(3, 10)), 4, 4) for _ in range(int(r.integers(1, 5)))]
        h, w = side(r, 6, 16), side(r, 6, 16)
        g = np.full((h, w), bg)
        for m, (top, left) in zip(masks, place(r, (h, w), masks, boxes=True)):
            two = [int(c) for c in r.choice(pal, 2, replace=False)]
            g[top:top + m.shape[0], left:left + m.shape[1]][m] = r.choice(two, size=int(m.sum()))
        return g

    def apply(g: Grid) -> Grid:
        out = np.full_like(g, bg)
        objs = objects(g, bg, diagonal=True, single_colour=False)
        for o in objs:
            box = out[o.top:o.top + o.shape[0], o.left:o.left + o.shape[1]]
            f = flip(o.grid)
            box[f != bg] = f[f != bg]
        if (out != bg).sum() != sum(o.size for o in objs):
            raise Redraw("objects' boxes overlap")
        return out

    return Rule(draw, apply, {"flip": how, "background": bg})
