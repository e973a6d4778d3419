"""The grid primitives the families share: the vectorised readers agree with a plain flood fill, the drawers keep their
promises."""
import numpy as np

from arc_ttt.synth import grids


_N4 = ((1, 0), (-1, 0), (0, 1), (0, -1))
_N8 = _N4 + ((1, 1), (1, -1), (-1, 1), (-1, -1))


def flood_fill_objects(grid, bg=0, *, diagonal=False, single_colour=True):
    """The reference: a plain flood fill from each unseen cell in reading order, as (top, left, colour, size, box)."""
    H, W = grid.shape
    seen = np.zeros((H, W), bool)
    out = []
    for r0 in range(H):
        for c0 in range(W):
            if seen[r0, c0] or grid[r0, c0] == bg:
                continue
            stack, cells = [(r0, c0)], []
            seen[r0, c0] = True
            while stack:
                r, c = stack.pop()
                cells.append((r, c))
                for dr, dc in (_N8 if diagonal else _N4):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < H and 0 <= cc < W and not seen[rr, cc] and grid[rr, cc] != bg and \
                            (not single_colour or grid[rr, cc] == grid[r0, c0]):
                        seen[rr, cc] = True
                        stack.append((rr, cc))
            cells = np.array(cells)
            top, left = cells.min(axis=0)
            box = np.full(tuple(cells.max(axis=0) - cells.min(axis=0) + 1), bg, dtype=grid.dtype)
            box[cells[:, 0] - top, cells[:, 1] - left] = grid[cells[:, 0], cells[:, 1]]
            vals, counts = np.unique(grid[cells[:, 0], cells[:, 1]], return_counts=True)
            out.append((int(top), int(left), int(vals[np.argmax(counts)]), len(cells), box))
    return out


def test_objects_are_the_flood_fills_objects():
    r = np.random.default_rng(0)
    for _ in range(300):
        h, w = r.integers(1, 16, 2)
        g = np.where(r.random((h, w)) < r.random(), r.integers(1, int(r.integers(2, 5)), (h, w)), 0)
        bg = int(r.integers(0, 2))
        for diagonal in (False, True):
            for single in (False, True):
                want = flood_fill_objects(g, bg, diagonal=diagonal, single_colour=single)
                got = grids.objects(g, bg, diagonal=diagonal, single_colour=single)
                assert [(o.top, o.left, o.colour, o.size) for o in got] == [w[:4] for w in want]
                assert all(np.array_equal(o.grid, w[4]) for o, w in zip(got, want))


def test_labels_name_each_component_by_its_first_cell():
    g = np.array([[1, 1, 0, 2],
                  [0, 1, 0, 2],
                  [3, 0, 1, 0]])
    assert grids.labels(g).tolist() == [[0, 0, -1, 3], [-1, 0, -1, 3], [8, -1, 10, -1]]
    assert grids.labels(g, diagonal=True)[2, 2] == 0  # touches (1, 1) by a corner
    assert grids.labels(g, single_colour=False, diagonal=True)[0, 3] == 0


def test_enclosed_marks_background_cut_off_from_the_edge():
    g = np.array([[0, 1, 1, 1, 0],
                  [0, 1, 0, 1, 0],
                  [0, 1, 1, 1, 0],
                  [1, 0, 1, 0, 0]])
    assert np.argwhere(grids.enclosed(g)).tolist() == [[1, 2]]


def test_polyomino_place_and_scene_keep_their_promises():
    r = np.random.default_rng(1)
    for n in range(1, 20):
        m = grids.polyomino(r, n, 4, 6)
        assert m.sum() == n and m.shape[0] <= 4 and m.shape[1] <= 6 and m.any(0).all() and m.any(1).all()
        assert len(grids.objects(m.astype(int))) == 1
    masks = [grids.polyomino(r, 5) for _ in range(4)]
    g, spots = grids.scene(r, masks, [1, 1, 1, 1], bg=0)
    assert len(grids.objects(g, diagonal=True)) == 4 and len(spots) == 4
