"""Patterns: periodic tilings repaired and continued, symmetries completed, checkerboards, stripes from a seed."""
from __future__ import annotations

import numpy as np

from .family import Grid, Redraw, Rng, Rule, family
from .grids import bbox, colours, crop, objects, scatter_fast, side, sound_pair

# direction of continuation -> quarter turns (np.rot90, anticlockwise) that make it "down", as in movement
TURNS = {"down": 0, "left": 1, "up": 2, "right": 3}
# the edge a seed lies on -> (the grid seen with that edge on the left, read from the top or left end; and back)
EDGES = {"left": (lambda a: a, lambda a: a), "top": (lambda a: a.T, lambda a: a.T),
         "right": (lambda a: a[:, ::-1], lambda a: a[:, ::-1]), "bottom": (lambda a: a[::-1].T, lambda a: a.T[::-1])}


def tile(motif: Grid, h: int, w: int) -> Grid:
    """The motif repeated to fill h x w (cut at the bottom and the right)."""
    mh, mw = motif.shape
    return np.tile(motif, (-(-h // mh), -(-w // mw)))[:h, :w].copy()


def _motif_agreed(g: Grid, unknown: int, ph: int, pw: int) -> Grid | None:
    """The ph x pw motif that every known cell of g agrees with, or None (a disagreement or an unseen cell)."""
    H, W = g.shape
    nh, nw = -(-H // ph), -(-W // pw)
    pad = np.full((nh * ph, nw * pw), -1)
    pad[:H, :W] = np.where(g == unknown, -1, g.astype(int))  # -1: unseen (the grids may be unsigned)
    cls = pad.reshape(nh, ph, nw, pw).transpose(1, 3, 0, 2).reshape(ph, pw, -1)
    hi, lo = cls.max(axis=2), np.where(cls < 0, 99, cls).min(axis=2)
    return hi if (hi >= 0).all() and (hi == lo).all() else None


def repair_periodic(g: Grid, unknown: int) -> Grid:
    """g's smallest tiling (by motif area; repeated at least twice each way) with the `unknown` cells filled."""
    H, W = g.shape
    sizes = sorted(((ph, pw) for ph in range(1, H // 2 + 1) for pw in range(1, W // 2 + 1)),
                   key=lambda s: (s[0] * s[1], s))
    for ph, pw in sizes:
        motif = _motif_agreed(g, unknown, ph, pw)
        if motif is not None:
            return tile(motif, H, W)
    raise Redraw("no tiling fits")


def _answer(x: Grid, filled: Grid, unknown: int, answer: str) -> Grid:
    """The whole repaired grid, or only what was under the one hidden rectangle."""
    if answer == "grid":
        return filled
    box = bbox(x == unknown)
    if not (crop(x, box) == unknown).all():
        raise Redraw("the hidden cells are not one rectangle")
    return crop(filled, box)


def _hide(r: Rng, y: Grid, unknown: int, n: int) -> Grid:
    """y with n random rectangles (up to a third of each side) painted `unknown`."""
    x, (H, W) = y.copy(), y.shape
    for _ in range(n):
        h, w = side(r, 1, max(1, H // 3)), side(r, 1, max(1, W // 3))
        t, left = int(r.integers(H - h + 1)), int(r.integers(W - w + 1))
        x[t:t + h, left:left + w] = unknown
    return x


@family("repair_tiling", "patterns")
def repair_tiling(rng: Rng) -> Rule:
    """A periodic tiling with patches overwritten by a noise colour; the output is the tiling repaired (or the
    hidden patch alone)."""
    unknown = int(rng.integers(10))
    cols = colours(rng, int(rng.integers(2, 5)), exclude=[unknown])
    answer = str(rng.choice(["grid", "grid", "patch"]))
    patches = 1 if answer == "patch" else int(rng.integers(1, 4))

    def apply(g: Grid) -> Grid:
        return _answer(g, repair_periodic(g, unknown), unknown, answer)

    def draw(r: Rng):
        ph, pw = side(r, 1, 4), side(r, 1, 4)
        motif = r.choice(cols, size=(ph, pw))
        if len(np.unique(motif)) < 2:
            raise Redraw("a flat motif")
        y = tile(motif, side(r, max(6, 2 * ph + 1), 18), side(r, max(6, 2 * pw + 1), 18))
        x = _hide(r, y, unknown, patches)
        out = _answer(x, y, unknown, answer)
        if not np.array_equal(apply(x), out):
            raise Redraw("the patch hides what fixes the period")
        return sound_pair(x, out)

    return Rule(draw, apply, {"noise": unknown, "colours": cols, "answer": answer})


def _period(lines: Grid) -> int:
    """The smallest p such that the lines repeat every p and at least twice; Redraw when none does."""
    n = len(lines)
    for p in range(1, n // 2 + 1):
        if np.array_equal(lines[p:], lines[:n - p]):
            return p
    raise Redraw("no repeat shown")


def _given(lines: Grid, bg: int) -> Grid:
    """The lines up to the last one with a non-background cell."""
    used = np.nonzero((lines != bg).any(axis=1))[0]
    if len(used) == 0:
        raise Redraw("nothing given")
    return lines[:used[-1] + 1]


@family("continue_rows", "patterns")
def continue_rows(rng: Rng) -> Rule:
    """The first rows of a vertically periodic pattern are given, the rest blank: the output continues it (the
    continuation runs down, up, left or right)."""
    direction = str(rng.choice(list(TURNS)))
    bg = 0 if rng.random() < 0.6 else int(rng.integers(10))
    cols = colours(rng, int(rng.integers(1, 4)), exclude=[bg])
    density = float(rng.uniform(0.3, 0.8))

    def apply(g: Grid) -> Grid:
        turned = np.rot90(g, TURNS[direction])
        given = _given(turned, bg)
        p = _period(given)
        rows = np.arange(turned.shape[0]) % p
        return np.ascontiguousarray(np.rot90(given[rows], -TURNS[direction]))

    def draw(r: Rng):
        p, w = side(r, 1, 4), side(r, 3, 14)
        motif = np.where(r.random((p, w)) < density, r.choice(cols, size=(p, w)), bg)
        if not (motif != bg).any(axis=1).all():
            raise Redraw("a blank motif row")
        h = side(r, 2 * p + 1, 20)
        k = int(r.integers(2 * p, h))
        y = motif[np.arange(h) % p]
        x = y.copy()
        x[k:] = bg
        x, y = (np.ascontiguousarray(np.rot90(g, -TURNS[direction])) for g in (x, y))
        if not np.array_equal(apply(x), y):
            raise Redraw("a shorter period fits what is given")
        return sound_pair(x, y)

    return Rule(draw, apply, {"direction": direction, "bg": bg, "colours": cols})


def _continue_line(line: np.ndarray, bg: int) -> np.ndarray:
    used = np.nonzero(line != bg)[0]
    if len(used) == 0:
        return line.copy()
    seg = line[:used[-1] + 1]
    p = _period(seg[:, None])
    return seg[np.arange(len(line)) % p]


@family("continue_sequence_1d", "patterns")
def continue_sequence_1d(rng: Rng) -> Rule:
    """Each row starts with a repeating sequence of colours, then blank: the output repeats each row's own
    sequence to the grid's edge (rows run right, left, down or up)."""
    direction = str(rng.choice(list(TURNS)))
    turns = (TURNS[direction] + 1) % 4  # "right" is the frame the rows are continued in
    bg = 0 if rng.random() < 0.6 else int(rng.integers(10))
    cols = colours(rng, int(rng.integers(2, 5)), exclude=[bg])
    rows_hi = int(rng.choice([1, 3, 8]))

    def apply(g: Grid) -> Grid:
        turned = np.rot90(g, turns)
        out = np.stack([_continue_line(turned[i], bg) for i in range(turned.shape[0])])
        return np.ascontiguousarray(np.rot90(out, -turns))

    def draw(r: Rng):
        h, w = side(r, 1, rows_hi), side(r, 6, 20)
        y = np.full((h, w), bg)
        x = y.copy()
        for i in range(h):
            if h > 1 and r.random() < 0.2:
                continue
            p = side(r, 1, min(4, w // 2))
            seq = r.choice(cols + [bg], size=p)
            seq[0] = r.choice(cols)
            y[i] = seq[np.arange(w) % p]
            k_min = 2 * p + (p - 1 - int(np.nonzero(seq != bg)[0][-1]))  # two whole repeats shown
            if k_min >= w:
                y[i] = bg
                continue
            k = int(r.integers(k_min, w))
            x[i, :k] = y[i, :k]
        x, y = (np.ascontiguousarray(np.rot90(g, -turns)) for g in (x, y))
        if not np.array_equal(apply(x), y):
            raise Redraw("a shorter period fits what is shown")
        return sound_pair(x, y)

    return Rule(draw, apply, {"direction": direction, "bg": bg, "colours": cols})


_R180 = (lambda a: a[::-1, ::-1],)
SYMMETRIES = {  # the group's elements other than the identity, each a map of a grid onto its own shape
    "mirror_lr": (lambda a: a[:, ::-1],), "mirror_ud": (lambda a: a[::-1],), "rot180": _R180,
    "mirror_both": (lambda a: a[:, ::-1], lambda a: a[::-1]) + _R180,
    "rot90": (lambda a: np.rot90(a, 1), lambda a: np.rot90(a, 3)) + _R180, "transpose": (lambda a: a.T,),
}
SQUARE = ("rot90", "transpose")


def complete_symmetry(g: Grid, unknown: int, symmetry: str) -> Grid:
    """g with each `unknown` cell given the value of a known cell of its orbit under the symmetry."""
    out = g.copy()
    for f in SYMMETRIES[symmetry]:
        seen = f(g)
        fill = (out == unknown) & (seen != unknown)
        out[fill] = seen[fill]
    if (out == unknown).any():
        raise Redraw("a hidden cell with no visible image")
    return out


def symmetrise(g: Grid, symmetry: str) -> Grid:
    """g made invariant under the symmetry: each cell takes the value of the first cell of its orbit."""
    idx = np.arange(g.size).reshape(g.shape)
    rep = idx.copy()
    for f in SYMMETRIES[symmetry]:
        rep = np.minimum(rep, f(idx))
    return g.flat[rep]


@family("symmetry_complete", "patterns")
def symmetry_complete(rng: Rng) -> Rule:
    """A grid symmetric under a mirror or a rotation has blocks hidden under a noise colour: the output is the
    grid completed (or the hidden block alone)."""
    symmetry = str(rng.choice(list(SYMMETRIES)))
    unknown = int(rng.integers(10))
    cols = colours(rng, int(rng.integers(2, 6)), exclude=[unknown])
    weights = rng.dirichlet(np.ones(len(cols)))
    answer = str(rng.choice(["grid", "grid", "patch"]))
    patches = 1 if answer == "patch" else int(rng.integers(1, 3))

    def apply(g: Grid) -> Grid:
        return _answer(g, complete_symmetry(g, unknown, symmetry), unknown, answer)

    def draw(r: Rng):
        h = side(r, 5, 16)
        w = h if symmetry in SQUARE else side(r, 5, 16)
        y = symmetrise(r.choice(cols, size=(h, w), p=weights), symmetry)
        x = _hide(r, y, unknown, patches)
        out = _answer(x, y, unknown, answer)
        if not np.array_equal(apply(x), out):
            raise Redraw("a hidden cell with no visible image")
        return sound_pair(x, out)

    return Rule(draw, apply, {"symmetry": symmetry, "noise": unknown, "colours": cols, "answer": answer})


def checker(g: Grid, bg: int, target: int, first: int, second: int) -> Grid:
    """Every object of colour `target` painted as a checkerboard, `first` on its top-left cell's parity."""
    out = g.copy()
    for o in objects(g, bg):
        if o.colour == target:
            parity = (o.cells[:, 0] - o.top + o.cells[:, 1] - o.left) % 2
            out[o.cells[:, 0], o.cells[:, 1]] = np.where(parity == 0, first, second)
    return out


@family("checker_fill", "patterns")
def checker_fill(rng: Rng) -> Rule:
    """Rectangles of one colour are filled with a checkerboard of two colours (the top-left cell takes the first);
    objects of other colours stay."""
    bg = 0 if rng.random() < 0.6 else int(rng.integers(10))
    target, other, *rest = colours(rng, 5, exclude=[bg])
    first, second = [(target, other), (other, target), (other, rest[0])][int(rng.integers(3))]
    distract = rest[1:] if rng.random() < 0.6 else []

    def apply(g: Grid) -> Grid:
        return checker(g, bg, target, first, second)

    def draw(r: Rng):
        h, w = side(r, 6, 18), side(r, 6, 18)
        n = int(r.integers(1, 4))
        masks = [np.ones((side(r, 2, 6), side(r, 2, 6)), bool) for _ in range(n)]
        cols = [target] * n
        for _ in range(int(r.integers(0, 4)) if distract else 0):
            masks.append(np.ones((side(r, 1, 4), side(r, 1, 4)), bool))
            cols.append(int(r.choice(distract)))
        x = scatter_fast(r, np.full((h, w), bg), masks, cols)
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "target": target, "first": first, "second": second})


@family("stripes_from_seed", "patterns")
def stripes_from_seed(rng: Rng) -> Rule:
    """A seed of colours along one edge is expanded into stripes across the grid, the seed repeated to its end."""
    edge = str(rng.choice(list(EDGES)))
    bg = 0 if rng.random() < 0.7 else int(rng.integers(10))
    cols = colours(rng, int(rng.integers(2, 5)), exclude=[bg])
    gaps = bool(rng.random() < 0.3)

    def apply(g: Grid) -> Grid:
        to_left, back = EDGES[edge]
        turned = to_left(g)
        if (turned[:, 1:] != bg).any():
            raise Redraw("more than a seed")
        seed = _given(turned[:, :1], bg)[:, 0]
        rows = seed[np.arange(turned.shape[0]) % len(seed)]
        return np.ascontiguousarray(back(np.repeat(rows[:, None], turned.shape[1], axis=1)))

    def draw(r: Rng):
        h, w = side(r, 5, 20), side(r, 2, 16)
        seed = r.choice(cols + [bg] * gaps, size=side(r, 2, h // 2))
        seed[-1] = r.choice(cols)
        x = np.full((h, w), bg)
        x[:len(seed), 0] = seed
        x = np.ascontiguousarray(EDGES[edge][1](x))
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"edge": edge, "bg": bg, "colours": cols})
