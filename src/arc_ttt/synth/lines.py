"""Lines: rays from marked cells, lines joining cells, full rows and columns, a frame round the grid."""
from __future__ import annotations

import numpy as np

from .family import Grid, Redraw, Rng, Rule, family
from .grids import background, colours, polyomino, scene, side

STEPS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1),
         "up_left": (-1, -1), "up_right": (-1, 1), "down_left": (1, -1), "down_right": (1, 1)}


def _rays(g: Grid, starts: np.ndarray, dirs: list[str], bg: int, *, stop: bool, colour: int | None = None) -> Grid:
    """Each start cell sends a ray in each direction over the background, in its own colour (or `colour`), to the
    edge (`stop`: until the first non-background cell). Redraw where rays of two colours would share a cell."""
    out, painted = g.copy(), np.zeros(g.shape, bool)
    H, W = g.shape
    for r0, c0 in starts.tolist():
        col = g[r0, c0] if colour is None else colour
        for d in dirs:
            dr, dc = STEPS[d]
            r, c = r0 + dr, c0 + dc
            while 0 <= r < H and 0 <= c < W:
                if g[r, c] != bg:
                    if stop:
                        break
                elif painted[r, c] and out[r, c] != col:
                    raise Redraw("two colours of ray cross")
                else:
                    out[r, c], painted[r, c] = col, True
                r, c = r + dr, c + dc
    return out


def _cells(r: Rng, h: int, w: int, n: int) -> np.ndarray:
    """n distinct random cells of an h x w grid, as (row, column) rows."""
    flat = r.choice(h * w, size=min(n, h * w), replace=False)
    return np.column_stack(np.divmod(flat, w))


def _markers(r: Rng, bg: int, pal: list[int], lo: int = 5, hi: int = 16, n_hi: int = 5) -> Grid:
    h, w = side(r, lo, hi), side(r, lo, hi)
    g = np.full((h, w), bg)
    for rr, cc in _cells(r, h, w, int(r.integers(1, n_hi + 1))).tolist():
        g[rr, cc] = int(r.choice(pal))
    return g


@family("extend_rays", "lines")
def extend_rays(rng: Rng) -> Rule:
    """Every marked cell sends a ray of its colour in one or more fixed directions, over everything, to the edge."""
    dirs = [["up"], ["down"], ["left"], ["right"], ["left", "right"], ["up", "down"],
            ["up", "down", "left", "right"]][int(rng.integers(7))]
    bg = background(rng)
    pal = colours(rng, int(rng.integers(1, 3)), exclude=[bg])

    def apply(g: Grid) -> Grid:
        return _rays(g, np.argwhere(g != bg), dirs, bg, stop=False)

    return Rule(lambda r: _markers(r, bg, pal), apply, {"directions": dirs, "background": bg})


@family("diagonal_rays", "lines")
def diagonal_rays(rng: Rng) -> Rule:
    """Every marked cell sends rays of its colour along one, two or all four diagonals, to the edge."""
    dirs = [["down_right"], ["down_left"], ["up_right"], ["up_left"], ["up_left", "down_right"],
            ["up_right", "down_left"], ["up_left", "up_right", "down_left", "down_right"]][int(rng.integers(7))]
    bg = background(rng)
    pal = colours(rng, int(rng.integers(1, 3)), exclude=[bg])

    def apply(g: Grid) -> Grid:
        return _rays(g, np.argwhere(g != bg), dirs, bg, stop=False)

    return Rule(lambda r: _markers(r, bg, pal, n_hi=4), apply, {"directions": dirs, "background": bg})


@family("ray_until_obstacle", "lines")
def ray_until_obstacle(rng: Rng) -> Rule:
    """Cells of one colour send a ray in a fixed direction that stops at the first obstacle (or the edge); the
    ray has the marker's colour or a fixed colour."""
    d = str(rng.choice(["up", "down", "left", "right"]))
    bg = background(rng)
    marker, ray, *obst = colours(rng, int(rng.integers(3, 5)), exclude=[bg])
    ray = ray if rng.random() < 0.5 else marker

    def apply(g: Grid) -> Grid:
        starts = np.argwhere(g == marker)
        if len(starts) == 0:
            raise Redraw("no marker")
        return _rays(g, starts, [d], bg, stop=True, colour=ray)

    def draw(r: Rng) -> Grid:
        masks = [polyomino(r, int(r.integers(1, 7)), 3, 3) for _ in range(int(r.integers(1, 5)))]
        g = scene(r, masks, [int(r.choice(obst)) for _ in masks], bg, 6, 16)[0]
        dr, dc = STEPS[d]
        for _ in range(int(r.integers(1, 5))):
            cells = np.argwhere(g != bg) if r.random() < 0.7 else _cells(r, *g.shape, 1)
            rr, cc = cells[int(r.integers(len(cells)))] - int(r.integers(2, 6)) * np.array([dr, dc])
            if 0 <= rr < g.shape[0] and 0 <= cc < g.shape[1] and g[rr, cc] == bg:
                g[rr, cc] = marker
        return g

    return Rule(draw, apply, {"direction": d, "background": bg, "marker": marker, "ray": ray})


@family("connect_same_colour", "lines")
def connect_same_colour(rng: Rng) -> Rule:
    """Two cells of one colour on the same row or column are joined by a line (their colour, or a fixed one);
    cells whose colour appears once are left alone."""
    bg = background(rng)
    fixed = colours(rng, 1, exclude=[bg])[0] if rng.random() < 0.4 else None
    pal = colours(rng, 6, exclude=[bg] + ([fixed] if fixed is not None else []))

    def apply(g: Grid) -> Grid:
        out, joined = g.copy(), 0
        for col in np.unique(g).tolist():
            cells = np.argwhere(g == col)
            if col == bg or len(cells) != 2 or not (cells[0] == cells[1]).any():
                continue
            (r0, c0), (r1, c1) = cells.tolist()
            seg = (slice(r0, r1 + 1), slice(c0 + 1, c1)) if r0 == r1 else (slice(r0 + 1, r1), slice(c0, c1 + 1))
            if (out[seg] != bg).any():
                raise Redraw("a line would cross something")
            out[seg] = col if fixed is None else fixed
            joined += 1
        if not joined:
            raise Redraw("nothing to join")
        return out

    def draw(r: Rng) -> Grid:
        h, w = side(r, 5, 18), side(r, 5, 18)
        g = np.full((h, w), bg)
        n = int(r.integers(1, 5))
        for col in pal[:n]:
            row, a, b = int(r.integers(h)), *sorted(int(v) for v in r.choice(w, 2, replace=False))
            if b - a < 2:
                continue
            (g.T if r.random() < 0.5 and max(a, b, row) < min(h, w) else g)[row, [a, b]] = col
        for rr, cc in _cells(r, h, w, int(r.integers(0, 3))).tolist():
            g[rr, cc] = pal[n + int(r.integers(6 - n))] if g[rr, cc] == bg else g[rr, cc]
        return g

    return Rule(draw, apply, {"background": bg, "line": fixed})


@family("draw_border", "lines")
def draw_border(rng: Rng) -> Rule:
    """A one-cell frame of a fixed colour is drawn round the edge of the grid, over whatever is there."""
    bg = background(rng)
    frame = colours(rng, 1, exclude=[bg])[0]
    pal = colours(rng, int(rng.integers(1, 4)), exclude=[bg, frame])

    def apply(g: Grid) -> Grid:
        out = g.copy()
        out[[0, -1]] = frame
        out[:, [0, -1]] = frame
        return out

    def draw(r: Rng) -> Grid:
        masks = [polyomino(r, int(r.integers(1, 9)), 4, 4) for _ in range(int(r.integers(0, 5)))]
        if not masks:
            return np.full((side(r, 3, 20), side(r, 3, 20)), bg)
        return scene(r, masks, [int(r.choice(pal)) for _ in masks], bg, 3, 20)[0]

    return Rule(draw, apply, {"background": bg, "frame": frame})


@family("cross_lines", "lines")
def cross_lines(rng: Rng) -> Rule:
    """Each marked cell paints its whole row, its whole column, or both (per task) in its colour; where lines
    cross, the rows (or the columns, per task) lie on top."""
    which = str(rng.choice(["rows", "columns", "both"]))
    rows_on_top = bool(rng.random() < 0.5)
    bg = background(rng)
    pal = colours(rng, 4, exclude=[bg])

    def apply(g: Grid) -> Grid:
        cells = np.argwhere(g != bg)
        if len(cells) == 0 or len(set(cells[:, 0])) < len(cells) or len(set(cells[:, 1])) < len(cells):
            raise Redraw("no markers, or two on one row or column")
        out = g.copy()
        order = ["columns", "rows"] if rows_on_top else ["rows", "columns"]
        for kind in order:
            if which in (kind, "both"):
                for r, c in cells.tolist():
                    if kind == "rows":
                        out[r] = g[r, c]
                    else:
                        out[:, c] = g[r, c]
        out[cells[:, 0], cells[:, 1]] = g[cells[:, 0], cells[:, 1]]
        return out

    def draw(r: Rng) -> Grid:
        h, w = side(r, 4, 16), side(r, 4, 16)
        n = int(r.integers(1, min(4, h, w) + 1))
        g = np.full((h, w), bg)
        g[r.choice(h, n, replace=False), r.choice(w, n, replace=False)] = r.choice(pal, n)
        return g

    return Rule(draw, apply, {"lines": which, "rows_on_top": rows_on_top, "background": bg})
