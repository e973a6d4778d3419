"""Cropping: the output is a part of the input: the bounding box of the content, of one colour, the inside of a
frame, or the densest block of a grid split by lines."""
from __future__ import annotations

import numpy as np

from .colour import scene
from .family import Grid, Redraw, Rng, Rule, family
from .grids import bbox, colours, crop, polyomino, side, sound_pair, spot_by_tries


def crop_content(g: Grid, bg: int) -> Grid:
    """g cut to the bounding box of its non-background cells."""
    return crop(g, bbox(g != bg))


def _bg(rng: Rng) -> int:
    return 0 if rng.random() < 0.7 else int(rng.integers(10))


@family("crop_bbox", "cropping")
def crop_bbox(rng: Rng) -> Rule:
    """The output is the input cut to the bounding box of all its non-background cells."""
    bg = _bg(rng)
    palette = colours(rng, int(rng.integers(1, 5)), exclude=[bg])
    density = float(rng.uniform(0.3, 0.8))

    def apply(g: Grid) -> Grid:
        return crop_content(g, bg)

    def draw(r: Rng):
        H, W = side(r, 5, 20), side(r, 5, 20)
        h, w = side(r, 1, H - 2), side(r, 1, W - 2)
        x = np.full((H, W), bg)
        t, left = int(r.integers(H - h + 1)), int(r.integers(W - w + 1))
        x[t:t + h, left:left + w] = scene(r, h, w, bg, palette, "noise", density=density)
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "palette": palette})


def inside_frame(g: Grid, frame: int, keep_frame: bool = False) -> Grid:
    """What the one rectangular frame of colour `frame` encloses (with the frame itself when `keep_frame`)."""
    m = g == frame
    t, left, b, right = bbox(m)
    if b - t < 2 or right - left < 2:
        raise Redraw("a frame with no inside")
    border = m[t:b + 1, left:right + 1].copy()
    border[1:-1, 1:-1] = False
    if not (border[0].all() and border[-1].all() and border[:, 0].all() and border[:, -1].all()) or \
            m.sum() != border.sum():
        raise Redraw("the colour is not one frame")
    return crop(g, (t, left, b, right) if keep_frame else (t + 1, left + 1, b - 1, right - 1))


def _framed(r: Rng, h: int, w: int, frame: int, bg: int, palette: list[int], density: float) -> Grid:
    box = np.full((h, w), frame)
    box[1:-1, 1:-1] = scene(r, h - 2, w - 2, bg, palette, "noise", density=density)
    return box


@family("crop_framed", "cropping")
def crop_framed(rng: Rng) -> Rule:
    """The output is what a rectangular frame of one colour encloses (or the framed box), among frames of other
    colours and scattered cells."""
    bg = _bg(rng)
    frame, *others = colours(rng, int(rng.integers(3, 6)), exclude=[bg])
    keep_frame = bool(rng.random() < 0.3)
    clutter = float(rng.choice([0.0, 0.05, 0.15]))
    decoys = int(rng.integers(0, 3))

    def apply(g: Grid) -> Grid:
        return inside_frame(g, frame, keep_frame)

    def draw(r: Rng):
        H, W = side(r, 7, 20), side(r, 7, 20)
        x, occupied = np.full((H, W), bg), np.zeros((H, W), bool)
        for i in range(1 + decoys):
            h, w = side(r, 4, min(10, H - 1)), side(r, 4, min(10, W - 1))
            spot = spot_by_tries(r, occupied, h, w)
            if spot is None:
                if i == 0:
                    raise Redraw("no room for the frame")
                break
            col = frame if i == 0 else int(r.choice(others))
            x[spot[0]:spot[0] + h, spot[1]:spot[1] + w] = _framed(r, h, w, col, bg, others, r.uniform(0.2, 0.7))
            occupied[spot[0]:spot[0] + h, spot[1]:spot[1] + w] = True
        stray = (r.random((H, W)) < clutter) & ~occupied
        x[stray] = r.choice(others, size=int(stray.sum()))
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "frame": frame, "keep_frame": keep_frame, "others": others})


@family("crop_colour", "cropping")
def crop_colour(rng: Rng) -> Rule:
    """The output is the bounding box of the cells of one colour, cut from a cluttered grid (clutter included)."""
    bg = _bg(rng)
    target, *clutter = colours(rng, int(rng.integers(2, 5)), exclude=[bg])
    density = float(rng.uniform(0.1, 0.6))

    def apply(g: Grid) -> Grid:
        return crop(g, bbox(g == target))

    def draw(r: Rng):
        H, W = side(r, 5, 18), side(r, 5, 18)
        x = scene(r, H, W, bg, clutter, "noise", density=density)
        n = side(r, 2, 12)
        mask = polyomino(r, n, min(6, H - 1), min(6, W - 1))
        t, left = int(r.integers(H - mask.shape[0] + 1)), int(r.integers(W - mask.shape[1] + 1))
        x[t:t + mask.shape[0], left:left + mask.shape[1]][mask] = target
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "target": target, "clutter": clutter})


def _runs(is_line: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) spans between separator lines."""
    spans, start = [], None
    for i, line in enumerate([*is_line, True]):
        if not line and start is None:
            start = i
        elif line and start is not None:
            spans.append((start, i))
            start = None
    return spans


def blocks(g: Grid, separator: int) -> list[Grid]:
    """The blocks of a grid split by full rows and columns of the separator colour, in reading order."""
    rows, cols = _runs((g == separator).all(axis=1)), _runs((g == separator).all(axis=0))
    return [g[a:b, c:d] for a, b in rows for c, d in cols]


def pick_block(g: Grid, separator: int, bg: int, most: bool) -> Grid:
    """The block with the most (or fewest) non-background cells; Redraw on a tie."""
    parts = blocks(g, separator)
    counts = [int((p != bg).sum()) for p in parts]
    best = max(counts) if most else min(counts)
    if len(parts) < 2 or counts.count(best) > 1:
        raise Redraw("no single densest block")
    return parts[counts.index(best)].copy()


@family("crop_densest", "cropping")
def crop_densest(rng: Rng) -> Rule:
    """A grid split by lines into blocks: the output is the block with the most (or the fewest) coloured cells."""
    bg = _bg(rng)
    separator, *palette = colours(rng, int(rng.integers(2, 5)), exclude=[bg])
    most = bool(rng.random() < 0.65)
    border = bool(rng.random() < 0.3)

    def apply(g: Grid) -> Grid:
        return pick_block(g, separator, bg, most)

    def draw(r: Rng):
        nr, nc = side(r, 1, 3), side(r, 1, 3)
        if nr * nc < 2:
            raise Redraw("one block")
        bh, bw = side(r, 2, 6), side(r, 2, 6)
        x = np.full((nr * (bh + 1) + 1, nc * (bw + 1) + 1), separator)
        for i in range(nr):
            for j in range(nc):
                cols = [int(c) for c in r.permutation(palette)[:side(r, 1, 2)]]
                x[1 + i * (bh + 1):(i + 1) * (bh + 1), 1 + j * (bw + 1):(j + 1) * (bw + 1)] = \
                    scene(r, bh, bw, bg, cols, "noise", density=float(r.uniform(0.1, 0.9)))
        if not border:
            x = x[1:-1, 1:-1]
        return x, apply(x)

    return Rule(draw, apply, {"bg": bg, "separator": separator, "palette": palette, "most": most, "border": border})
