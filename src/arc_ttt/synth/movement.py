"""Movement: gravity and objects moving until contact."""
from __future__ import annotations

import numpy as np

from .family import Grid, Redraw, Rng, Rule, family
from .grids import colours, side

# direction -> the quarter turns that bring it to "down" (rules work downwards on a turned grid, then turn back)
TURNS = {"down": 0, "left": 1, "up": 2, "right": 3}  # np.rot90 turns anticlockwise


def _fall(col: np.ndarray, bg: int) -> np.ndarray:
    """One column's cells dropped to its bottom, their order kept."""
    kept = col[col != bg]
    return np.concatenate([np.full(len(col) - len(kept), bg, col.dtype), kept])


@family("gravity", "movement")
def gravity(rng: Rng) -> Rule:
    """Every non-background cell falls in one direction until it rests on the wall or another cell."""
    direction = str(rng.choice(list(TURNS)))
    bg, k = 0, int(rng.integers(1, 4))
    cols = colours(rng, k, exclude=[bg])
    density = float(rng.uniform(0.1, 0.35))

    def apply(g: Grid) -> Grid:
        turned = np.rot90(g, TURNS[direction])
        fallen = np.stack([_fall(turned[:, c], bg) for c in range(turned.shape[1])], axis=1)
        return np.ascontiguousarray(np.rot90(fallen, -TURNS[direction]))

    def draw(r: Rng) -> Grid:
        h, w = side(r, 3, 12), side(r, 3, 12)
        g = np.where(r.random((h, w)) < density, r.choice(cols, size=(h, w)), bg)
        if (g == bg).all():
            raise Redraw("empty grid")
        return g

    return Rule(draw, apply, {"direction": direction, "colours": cols})
