"""Movement: gravity and objects moving until contact."""
from __future__ import annotations

import numpy as np

from .family import Grid, Redraw, Rng, Rule, family
from .grids import background, colours, objects, polyomino, scene, side

# direction -> the quarter turns that bring it to "down" (rules work downwards on a turned grid, then turn back)
TURNS = {"down": 0, "left": 1, "up": 2, "right": 3}  # np.rot90 turns anticlockwise


def fall(col: np.ndarray, bg: int) -> np.ndarray:
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
        fallen = np.stack([fall(turned[:, c], bg) for c in range(turned.shape[1])], axis=1)
        return np.ascontiguousarray(np.rot90(fallen, -TURNS[direction]))

    def draw(r: Rng) -> Grid:
        h, w = side(r, 3, 12), side(r, 3, 12)
        g = np.where(r.random((h, w)) < density, r.choice(cols, size=(h, w)), bg)
        if (g == bg).all():
            raise Redraw("empty grid")
        return g

    return Rule(draw, apply, {"direction": direction, "colours": cols})


def _drop(g: Grid, cells: np.ndarray, bg: int) -> int:
    """How far the cells can fall down together through background (the cells themselves do not block)."""
    H = g.shape[0]
    occ = g != bg
    occ[cells[:, 0], cells[:, 1]] = False
    below = np.where(occ, np.arange(H)[:, None], H)  # first blocked row at or below each cell
    below = np.minimum.accumulate(below[::-1], axis=0)[::-1]
    nxt = np.vstack([below[1:], np.full((1, g.shape[1]), H)])
    return int((nxt[cells[:, 0], cells[:, 1]] - cells[:, 0] - 1).min())


def settle(g: Grid, bg: int, moves=lambda colour: True) -> Grid:
    """Objects (4-connected, one colour each) whose colour `moves` fall down as rigid bodies, the lowest first and
    again until none can fall further; the others stay where they are, as obstacles."""
    out = g.copy()
    bodies = [o.cells for o in objects(g, bg) if moves(o.colour)]
    bodies.sort(key=lambda c: -int(c[:, 0].max()))
    moved = True
    while moved:
        moved = False
        for i, cells in enumerate(bodies):
            d = _drop(out, cells, bg)
            if d > 0:
                vals = out[cells[:, 0], cells[:, 1]]
                out[cells[:, 0], cells[:, 1]] = bg
                bodies[i] = cells = cells + [d, 0]
                out[cells[:, 0], cells[:, 1]] = vals
                moved = True
    return out


def _turned(g: Grid, direction: str, f) -> Grid:
    """f applied to the grid turned so that `direction` points down, then turned back."""
    return np.ascontiguousarray(np.rot90(f(np.rot90(g, TURNS[direction])), -TURNS[direction]))


def _objects_input(rng: Rng, bg: int, cols: list[int], lo: int = 2, hi: int = 8):
    def draw(r: Rng) -> Grid:
        masks = [polyomino(r, int(r.integers(lo, hi + 1)), 4, 4) for _ in range(int(r.integers(2, 7)))]
        return scene(r, masks, [int(r.choice(cols)) for _ in masks], bg, 6, 16, room=2.5)[0]
    return draw


@family("gravity_objects", "movement")
def gravity_objects(rng: Rng) -> Rule:
    """Objects fall in one direction as rigid bodies until they rest on the wall or on another object."""
    direction = str(rng.choice(list(TURNS)))
    bg = background(rng)
    cols = colours(rng, int(rng.integers(1, 4)), exclude=[bg])
    return Rule(_objects_input(rng, bg, cols), lambda g: _turned(g, direction, lambda t: settle(t, bg)),
                {"direction": direction, "background": bg})


@family("slide_colour", "movement")
def slide_colour(rng: Rng) -> Rule:
    """Only the objects of one colour slide in one direction until they meet the wall or anything else; the
    objects of other colours stay put, as obstacles."""
    direction = str(rng.choice(list(TURNS)))
    bg = background(rng)
    mover, *others = colours(rng, int(rng.integers(2, 4)), exclude=[bg])
    pal = [mover, *others]

    def draw(r: Rng) -> Grid:
        masks = [polyomino(r, int(r.integers(1, 8)), 4, 4) for _ in range(int(r.integers(3, 8)))]
        cols = [mover] + [int(r.choice(pal)) for _ in masks[1:]]
        return scene(r, masks, cols, bg, 6, 16, room=2.5)[0]

    moves = lambda c: c == mover  # noqa: E731
    return Rule(draw, lambda g: _turned(g, direction, lambda t: settle(t, bg, moves)),
                {"direction": direction, "background": bg, "colour": mover})


@family("move_to_wall", "movement")
def move_to_wall(rng: Rng) -> Rule:
    """Every object moves in one direction until it touches the wall (each on its own lane, none blocks another)."""
    direction = str(rng.choice(list(TURNS)))
    bg = background(rng)
    cols = colours(rng, int(rng.integers(1, 4)), exclude=[bg])

    def down(t: Grid) -> Grid:
        out = np.full_like(t, bg)
        for o in objects(t, bg):
            box = out[t.shape[0] - o.shape[0]:, o.left:o.left + o.shape[1]]
            if (box[o.mask] != bg).any():
                raise Redraw("two objects meet at the wall")
            box[o.mask] = o.grid[o.mask]
        return out

    def draw(r: Rng) -> Grid:
        h, w = side(r, 5, 16), side(r, 5, 16)
        t, c = np.full((h, w), bg), int(r.integers(0, 3))
        while c < w:  # lanes left to right, a column or two apart, some left empty
            mh, mw = min(4, h), int(r.integers(1, min(4, w - c) + 1))
            m = polyomino(r, int(r.integers(1, min(8, mh * mw) + 1)), mh, mw)
            if r.random() < 0.75:
                top = int(r.integers(0, h - m.shape[0] + 1))
                t[top:top + m.shape[0], c:c + m.shape[1]][m] = int(r.choice(cols))
            c += m.shape[1] + int(r.integers(1, 3))
        return np.ascontiguousarray(np.rot90(t, -TURNS[direction]))

    return Rule(draw, lambda g: _turned(g, direction, down), {"direction": direction, "background": bg})


@family("move_until_contact", "movement")
def move_until_contact(rng: Rng) -> Rule:
    """A full line of one colour crosses the grid; the objects on each side move towards it until they touch it
    (or an object already resting against it)."""
    horizontal = bool(rng.random() < 0.5)
    bg = background(rng)
    line, *cols = colours(rng, int(rng.integers(2, 4)), exclude=[bg])

    def down(t: Grid) -> Grid:  # t has the line as a row
        rows = [i for i in range(t.shape[0]) if (t[i] == line).all()]
        if len(rows) != 1:
            raise Redraw("not one line")
        i = rows[0]
        out = t.copy()
        out[:i] = settle(t[:i], bg)
        out[i + 1:] = settle(t[i + 1:][::-1], bg)[::-1]
        return out

    def draw(r: Rng) -> Grid:
        g = _objects_input(r, bg, cols, 1, 6)(r)
        i = int(r.integers(1, g.shape[0] - 1))
        g = np.insert(g, i, line, axis=0)[:30]
        return g if horizontal else np.ascontiguousarray(g.T)

    def apply(g: Grid) -> Grid:
        return down(g) if horizontal else np.ascontiguousarray(down(g.T).T)

    return Rule(draw, apply, {"horizontal": horizontal, "background": bg, "line": line})
