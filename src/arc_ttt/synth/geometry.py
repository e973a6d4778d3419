"""Geometry: the whole grid or its objects turned, flipped, scaled, tiled, mirrored, moved."""
from __future__ import annotations

import numpy as np

from ..core.views import D8_NAMES, d8
from .family import Grid, Redraw, Rng, Rule, family
from .grids import colours, side


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
