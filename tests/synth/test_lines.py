"""The line families on small hand-made grids: rays, joins, full rows and columns, the frame."""
import numpy as np
import pytest

from arc_ttt.synth.family import Redraw
from conftest import rule_with


def test_extend_rays_reach_the_edge_and_refuse_two_colours_on_one_cell():
    g = np.array([[0, 3, 0, 0],
                  [0, 0, 0, 0],
                  [5, 0, 0, 0],
                  [0, 0, 5, 0]])
    rule = rule_with("extend_rays", directions=["right"], background=0)
    assert rule.apply(g).tolist() == [[0, 3, 3, 3], [0, 0, 0, 0], [5, 5, 5, 5], [0, 0, 5, 5]]
    with pytest.raises(Redraw):
        rule.apply(np.array([[5, 0, 1, 0]]))
    assert rule_with("extend_rays", directions=["up", "down"], background=0).apply(g).tolist() == \
        [[5, 3, 5, 0], [5, 3, 5, 0], [5, 3, 5, 0], [5, 3, 5, 0]]


def test_diagonal_rays_run_along_their_diagonal():
    g = np.array([[2, 0, 3, 0],
                  [0, 0, 0, 0],
                  [0, 0, 0, 0],
                  [0, 0, 0, 0]])
    assert rule_with("diagonal_rays", directions=["down_right"], background=0).apply(g).tolist() == \
        [[2, 0, 3, 0], [0, 2, 0, 3], [0, 0, 2, 0], [0, 0, 0, 2]]


def test_ray_until_obstacle_stops_before_the_first_obstacle():
    rule = rule_with("ray_until_obstacle", direction="down", background=0)
    M, R = rule.params["marker"], rule.params["ray"]
    X = next(c for c in range(1, 10) if c not in (M, R))
    g = np.array([[M, 0, M],
                  [0, 0, 0],
                  [X, 0, 0],
                  [0, 0, 0]])
    assert rule.apply(g).tolist() == [[M, 0, M], [R, 0, R], [X, 0, R], [0, 0, R]]


def test_connect_same_colour_joins_aligned_pairs_only():
    g = np.array([[1, 0, 0, 1],
                  [0, 0, 0, 0],
                  [2, 0, 0, 0],
                  [0, 0, 3, 0],
                  [2, 0, 0, 0]])
    assert rule_with("connect_same_colour", line=None, background=0).apply(g).tolist() == \
        [[1, 1, 1, 1], [0, 0, 0, 0], [2, 0, 0, 0], [2, 0, 3, 0], [2, 0, 0, 0]]
    L = 4
    fixed = rule_with("connect_same_colour", background=0, line=L)
    assert fixed.apply(g).tolist() == [[1, L, L, 1], [0, 0, 0, 0], [2, 0, 0, 0], [L, 0, 3, 0], [2, 0, 0, 0]]
    crossing = np.array([[0, 1, 0], [2, 0, 2], [0, 1, 0]])
    with pytest.raises(Redraw):
        fixed.apply(crossing)


def test_draw_border_frames_the_grid():
    rule = rule_with("draw_border", background=0)
    F = rule.params["frame"]
    g = np.array([[0, 1, 0], [0, 0, 0], [2, 0, 0], [0, 0, 0]])
    assert rule.apply(g).tolist() == [[F, F, F], [F, 0, F], [F, 0, F], [F, F, F]]


def test_cross_lines_paint_rows_and_columns_with_the_chosen_one_on_top():
    g = np.array([[0, 0, 0, 0],
                  [0, 4, 0, 0],
                  [0, 0, 0, 6],
                  [0, 0, 0, 0]])
    assert rule_with("cross_lines", lines="both", rows_on_top=True, background=0).apply(g).tolist() == \
        [[0, 4, 0, 6], [4, 4, 4, 4], [6, 6, 6, 6], [0, 4, 0, 6]]
    assert rule_with("cross_lines", lines="both", rows_on_top=False, background=0).apply(g).tolist() == \
        [[0, 4, 0, 6], [4, 4, 4, 6], [6, 4, 6, 6], [0, 4, 0, 6]]
    assert rule_with("cross_lines", lines="rows", background=0).apply(g).tolist() == \
        [[0, 0, 0, 0], [4, 4, 4, 4], [6, 6, 6, 6], [0, 0, 0, 0]]
    with pytest.raises(Redraw):
        rule_with("cross_lines", lines="rows", background=0).apply(np.array([[1, 0, 2]]))
