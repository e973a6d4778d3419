"""Colour: palette rules, a fixed colour mapping, swaps, recolouring to the majority or a marker, erasing."""
from __future__ import annotations

import numpy as np

from .family import Grid, Redraw, Rng, Rule, family
from .grids import colours, polyomino, scatter_fast, side, sound_pair

STYLES = ("noise", "objects")


def scene(r: Rng, h: int, w: int, bg: int, palette: list[int], style: str, must=(), weights=None,
          density: float = 0.35) -> Grid:
    """An h x w grid on `bg` with scattered cells ("noise") or small objects ("objects") of the palette's colours
    (drawn with `weights`); Redraw unless every colour of `must` is there."""
    if style == "noise":
        g = np.where(r.random((h, w)) < density, r.choice(palette, size=(h, w), p=weights), bg)
    else:
        n = max(len(must), int(r.integers(2, 3 + h * w // 20)))
        cols = [*must, *r.choice(palette, size=n - len(must), p=weights).tolist()]
        masks = [polyomino(r, side(r, 1, 6), 4, 4) for _ in cols]
        g = scatter_fast(r, np.full((h, w), bg), masks, [int(c) for c in cols])
    if not all((g == c).any() for c in must):
        raise Redraw("a colour the rule needs is missing")
    return g


def recolour(g: Grid, pairs) -> Grid:
    """g with every colour s of the (s, d) pairs turned into d at once (a swap is two pairs)."""
    lut = np.arange(10)
    for s, d in pairs:
        lut[s] = d
    return lut[g]


def majority(g: Grid, bg: int) -> int:
    """The most frequent colour other than `bg`; Redraw on a tie or when there is none."""
    vals, counts = np.unique(g[g != bg], return_counts=True)
    if len(vals) == 0 or (counts == counts.max()).sum() > 1:
        raise Redraw("no single most frequent colour")
    return int(vals[np.argmax(counts)])


def _setting(rng: Rng) -> tuple[int, str]:
    """A task's background (mostly black) and drawing style."""
    return (0 if rng.random() < 0.7 else int(rng.integers(10))), str(rng.choice(STYLES))


def some(r: Rng, palette: list[int], lo: int, hi: int) -> list[int]:
    """Between lo and hi (inclusive, at most all) distinct colours of the palette, in random order."""
    k = int(r.integers(lo, min(hi, len(palette)) + 1))
    return [int(c) for c in r.permutation(palette)[:k]]


def _sides(r: Rng) -> tuple[int, int]:
    return side(r, 3, 16), side(r, 3, 16)


@family("colour_map", "colour")
def colour_map(rng: Rng) -> Rule:
    """A fixed mapping turns some colours into others; the remaining colours stay."""
    bg, style = _setting(rng)
    n = int(rng.integers(1, 4))
    sources = colours(rng, n, exclude=[bg])
    pairs = [[s, colours(rng, 1, exclude=[bg, s])[0]] for s in sources]
    kept = colours(rng, int(rng.integers(0, 3)), exclude=[bg, *sources])

    def apply(g: Grid) -> Grid:
        return recolour(g, pairs)

    def draw(r: Rng):
        x = scene(r, *_sides(r), bg, sources + kept, style, must=sources)
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "pairs": pairs, "kept": kept, "style": style})


@family("swap_two", "colour")
def swap_two(rng: Rng) -> Rule:
    """Two colours trade places everywhere; the others stay."""
    bg, style = _setting(rng)
    a, b = colours(rng, 2, exclude=[bg])
    kept = colours(rng, int(rng.integers(0, 3)), exclude=[bg, a, b])

    def apply(g: Grid) -> Grid:
        return recolour(g, [(a, b), (b, a)])

    def draw(r: Rng):
        x = scene(r, *_sides(r), bg, [a, b] + kept, style, must=[a, b])
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "swap": [a, b], "kept": kept, "style": style})


@family("recolour_to_majority", "colour")
def recolour_to_majority(rng: Rng) -> Rule:
    """Every non-background cell takes the most frequent non-background colour."""
    bg, style = _setting(rng)
    palette = colours(rng, int(rng.integers(3, 7)), exclude=[bg])

    def apply(g: Grid) -> Grid:
        return np.where(g != bg, majority(g, bg), bg)

    def draw(r: Rng):
        cols = some(r, palette, 2, 4)
        x = scene(r, *_sides(r), bg, cols, style, weights=r.dirichlet(np.ones(len(cols))), density=0.5)
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "palette": palette, "style": style})


CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")


def _corner(shape: tuple[int, int], corner: str) -> tuple[int, int]:
    return (0 if corner.startswith("top") else shape[0] - 1), (0 if corner.endswith("left") else shape[1] - 1)


@family("recolour_by_marker", "colour")
def recolour_by_marker(rng: Rng) -> Rule:
    """A marker cell in a fixed corner gives its colour to every object; the marker is erased or kept."""
    bg = 0 if rng.random() < 0.7 else int(rng.integers(10))
    corner = str(rng.choice(CORNERS))
    erase = bool(rng.random() < 0.5)
    palette = colours(rng, int(rng.integers(4, 8)), exclude=[bg])

    def apply(g: Grid) -> Grid:
        at = _corner(g.shape, corner)
        marker = int(g[at])
        if marker == bg:
            raise Redraw("no marker")
        out = np.where(g != bg, marker, bg)
        out[at] = bg if erase else marker
        return out

    def draw(r: Rng):
        h, w = side(r, 5, 16), side(r, 5, 16)
        marker, *cols = some(r, palette, 2, 3)
        x = scene(r, h, w, bg, cols, "objects")
        at = _corner((h, w), corner)
        if (x[max(0, at[0] - 1):at[0] + 2, max(0, at[1] - 1):at[1] + 2] != bg).any():
            raise Redraw("an object at the marker's corner")
        x[at] = marker
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "corner": corner, "erase": erase, "palette": palette})


@family("erase_colour", "colour")
def erase_colour(rng: Rng) -> Rule:
    """Every cell of one colour is erased to the background; the other colours stay."""
    bg, style = _setting(rng)
    gone, *kept = colours(rng, int(rng.integers(2, 5)), exclude=[bg])

    def apply(g: Grid) -> Grid:
        return np.where(g == gone, bg, g)

    def draw(r: Rng):
        x = scene(r, *_sides(r), bg, [gone, *kept], style, must=[gone, kept[0]])
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "erased": gone, "kept": kept, "style": style})


@family("background_swap", "colour")
def background_swap(rng: Rng) -> Rule:
    """The background and the most frequent other colour trade places; any further colours stay."""
    bg, style = _setting(rng)
    palette = colours(rng, int(rng.integers(2, 6)), exclude=[bg])

    def apply(g: Grid) -> Grid:
        fg = majority(g, bg)
        return recolour(g, [(bg, fg), (fg, bg)])

    def draw(r: Rng):
        cols = some(r, palette, 1, 3)
        weights = r.dirichlet(np.ones(len(cols)))
        x = scene(r, *_sides(r), bg, cols, style, weights=weights, density=float(r.uniform(0.2, 0.45)))
        return sound_pair(x, apply(x))

    return Rule(draw, apply, {"bg": bg, "palette": palette, "style": style})
