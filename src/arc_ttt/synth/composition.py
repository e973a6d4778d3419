"""Composition: two primitives in a row, each with its own drawn parameters, made of the other modules' rules."""
from __future__ import annotations

import numpy as np

from ..core.views import D8_NAMES, d8
from .colour import recolour, scene
from .cropping import crop_content, inside_frame
from .family import Grid, Redraw, Rng, Rule, family
from .grids import colours, side, sound_pair
from .movement import TURNS, fall
from .patterns import tile


def scale(g: Grid, s: int) -> Grid:
    """Every cell blown up to an s x s block."""
    return np.repeat(np.repeat(g, s, axis=0), s, axis=1)


def fallen(g: Grid, direction: str, bg: int) -> Grid:
    """movement's gravity: every non-background cell falls towards `direction` (turned to fall down)."""
    turned = np.rot90(g, TURNS[direction])
    out = np.stack([fall(turned[:, c], bg) for c in range(turned.shape[1])], axis=1)
    return np.ascontiguousarray(np.rot90(out, -TURNS[direction]))


def _bg(rng: Rng) -> int:
    return 0 if rng.random() < 0.7 else int(rng.integers(10))


def _mapping(rng: Rng, bg: int, palette: list[int]) -> list[list[int]]:
    """1-2 of the palette's colours, each mapped to another non-background colour."""
    sources = [int(c) for c in rng.permutation(palette)[:int(rng.integers(1, min(2, len(palette)) + 1))]]
    return [[s, colours(rng, 1, exclude=[bg, s])[0]] for s in sources]


@family("turn_then_scale", "composition")
def turn_then_scale(rng: Rng) -> Rule:
    """The grid turned or flipped by a fixed symmetry, then every cell scaled up to a square block."""
    k, s = int(rng.integers(1, 8)), int(rng.integers(2, 4))
    bg = _bg(rng)
    palette = colours(rng, int(rng.integers(1, 4)), exclude=[bg])

    def apply(g: Grid) -> Grid:
        return scale(d8(g, k), s)

    def draw(r: Rng):
        x = scene(r, side(r, 2, 5), side(r, 2, 5), bg, palette, "noise", density=float(r.uniform(0.3, 0.7)))
        if np.array_equal(d8(x, k), x):
            raise Redraw("the symmetry leaves the grid as it is")
        return x, apply(x)

    return Rule(draw, apply, {"symmetry": D8_NAMES[k], "scale": s, "bg": bg, "palette": palette})


@family("crop_then_flip", "composition")
def crop_then_flip(rng: Rng) -> Rule:
    """The content's bounding box cut out, then turned or flipped by a fixed symmetry."""
    k = int(rng.integers(1, 8))
    bg = _bg(rng)
    palette = colours(rng, int(rng.integers(1, 4)), exclude=[bg])

    def apply(g: Grid) -> Grid:
        return d8(crop_content(g, bg), k)

    def draw(r: Rng):
        H, W = side(r, 6, 18), side(r, 6, 18)
        h, w = side(r, 2, min(7, H - 2)), side(r, 2, min(7, W - 2))
        x = np.full((H, W), bg)
        t, left = int(r.integers(H - h + 1)), int(r.integers(W - w + 1))
        x[t:t + h, left:left + w] = scene(r, h, w, bg, palette, "noise", density=float(r.uniform(0.4, 0.8)))
        y = apply(x)
        if np.array_equal(y, crop_content(x, bg)):
            raise Redraw("the symmetry leaves the crop as it is")
        return x, y

    return Rule(draw, apply, {"symmetry": D8_NAMES[k], "bg": bg, "palette": palette})


@family("gravity_then_recolour", "composition")
def gravity_then_recolour(rng: Rng) -> Rule:
    """Every cell falls one way until it rests, then a fixed mapping recolours some colours."""
    direction = str(rng.choice(list(TURNS)))
    bg = _bg(rng)
    palette = colours(rng, int(rng.integers(1, 4)), exclude=[bg])
    pairs = _mapping(rng, bg, palette)

    def apply(g: Grid) -> Grid:
        return recolour(fallen(g, direction, bg), pairs)

    def draw(r: Rng):
        x = scene(r, side(r, 3, 12), side(r, 3, 12), bg, palette, "noise", must=[pairs[0][0]],
                  density=float(r.uniform(0.1, 0.4)))
        y = apply(x)
        if np.array_equal(fallen(x, direction, bg), x):
            raise Redraw("nothing falls")
        return sound_pair(x, y)

    return Rule(draw, apply, {"direction": direction, "bg": bg, "palette": palette, "pairs": pairs})


@family("colour_map_then_tile", "composition")
def colour_map_then_tile(rng: Rng) -> Rule:
    """A fixed mapping recolours some colours, then the grid is repeated a x b times."""
    bg = _bg(rng)
    palette = colours(rng, int(rng.integers(2, 5)), exclude=[bg])
    pairs = _mapping(rng, bg, palette)
    reps = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    if reps == (1, 1):
        reps = (1, 2) if rng.random() < 0.5 else (2, 1)

    def apply(g: Grid) -> Grid:
        return tile(recolour(g, pairs), g.shape[0] * reps[0], g.shape[1] * reps[1])

    def draw(r: Rng):
        h, w = side(r, 2, min(8, 30 // reps[0])), side(r, 2, min(8, 30 // reps[1]))
        x = scene(r, h, w, bg, palette, "noise", must=[pairs[0][0]], density=float(r.uniform(0.3, 0.8)))
        return x, apply(x)

    return Rule(draw, apply, {"bg": bg, "palette": palette, "pairs": pairs, "reps": list(reps)})


@family("denoise_then_crop", "composition")
def denoise_then_crop(rng: Rng) -> Rule:
    """Cells of a noise colour are erased, then the grid is cut to the bounding box of what remains."""
    bg = _bg(rng)
    noise, *palette = colours(rng, int(rng.integers(2, 5)), exclude=[bg])
    level = float(rng.uniform(0.02, 0.12))

    def apply(g: Grid) -> Grid:
        return crop_content(np.where(g == noise, bg, g), bg)

    def draw(r: Rng):
        H, W = side(r, 6, 18), side(r, 6, 18)
        h, w = side(r, 2, H - 2), side(r, 2, W - 2)
        x = np.full((H, W), bg)
        t, left = int(r.integers(H - h + 1)), int(r.integers(W - w + 1))
        x[t:t + h, left:left + w] = scene(r, h, w, bg, palette, "noise", density=float(r.uniform(0.4, 0.9)))
        spots = r.random((H, W)) < level
        x[spots & (x == bg)] = noise
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "noise": noise, "palette": palette})


@family("frame_then_scale", "composition")
def frame_then_scale(rng: Rng) -> Rule:
    """The inside of the one frame of a given colour is cut out, then scaled up by a fixed factor."""
    bg = _bg(rng)
    frame, *palette = colours(rng, int(rng.integers(2, 5)), exclude=[bg])
    s = int(rng.integers(2, 4))

    def apply(g: Grid) -> Grid:
        return scale(inside_frame(g, frame), s)

    def draw(r: Rng):
        H, W = side(r, 6, 16), side(r, 6, 16)
        h, w = side(r, 3, min(9, H)), side(r, 3, min(9, W))
        x = scene(r, H, W, bg, palette, "noise", density=float(r.uniform(0.0, 0.2)))
        t, left = int(r.integers(H - h + 1)), int(r.integers(W - w + 1))
        x[t:t + h, left:left + w] = frame
        x[t + 1:t + h - 1, left + 1:left + w - 1] = scene(r, h - 2, w - 2, bg, palette, "noise",
                                                          density=float(r.uniform(0.3, 0.8)))
        return x, apply(x)

    return Rule(draw, apply, {"bg": bg, "frame": frame, "palette": palette, "scale": s})
