"""The grid primitives the families share: the fast readers agree with the plain ones, the drawers keep their
promises."""
import numpy as np

from arc_ttt.synth import grids


def test_objects_fast_finds_the_same_objects_as_objects():
    r = np.random.default_rng(0)
    for _ in range(300):
        h, w = r.integers(1, 16, 2)
        g = np.where(r.random((h, w)) < r.random(), r.integers(1, int(r.integers(2, 5)), (h, w)), 0)
        bg = int(r.integers(0, 2))
        for diagonal in (False, True):
            for single in (False, True):
                a = grids.objects(g, bg, diagonal=diagonal, single_colour=single)
                b = grids.objects_fast(g, bg, diagonal=diagonal, single_colour=single)
                assert [(o.top, o.left, o.colour, o.size) for o in a] == [(o.top, o.left, o.colour, o.size) for o in b]
                assert all(np.array_equal(x.grid, y.grid) for x, y in zip(a, b))


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
        assert len(grids.objects_fast(m.astype(int))) == 1
    masks = [grids.polyomino(r, 5) for _ in range(4)]
    g, spots = grids.scene(r, masks, [1, 1, 1, 1], bg=0)
    assert len(grids.objects_fast(g, diagonal=True)) == 4 and len(spots) == 4
