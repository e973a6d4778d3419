"""The topology families on small hand-made grids: enclosed areas, holes, outlines, inside and outside, boxes."""
import numpy as np
import pytest

from arc_ttt.synth.family import Redraw
from conftest import rule_with


def test_fill_enclosed_fills_only_what_cannot_reach_the_edge():
    rule = rule_with("fill_enclosed", background=0)
    F = rule.params["fill"]
    a, b = [c for c in range(1, 10) if c != F][:2]
    g = np.array([[a, a, a, 0, 0],
                  [a, 0, a, 0, b],
                  [a, a, a, b, 0],
                  [0, 0, 0, 0, 0]])
    want = g.copy()
    want[1, 1] = F
    assert rule.apply(g).tolist() == want.tolist()


def test_fill_holes_with_the_objects_colour_or_a_fixed_one():
    g = np.array([[3, 3, 3, 0],
                  [3, 0, 3, 0],
                  [3, 3, 3, 0]])
    own = rule_with("fill_holes", fill=None, background=0)
    assert own.apply(g).tolist() == [[3, 3, 3, 0], [3, 3, 3, 0], [3, 3, 3, 0]]
    with pytest.raises(Redraw):
        own.apply(np.array([[3, 3, 4], [3, 0, 4], [3, 4, 4]]))
    assert rule_with("fill_holes", fill=7, background=0).apply(g).tolist() == \
        [[3, 3, 3, 0], [3, 7, 3, 0], [3, 3, 3, 0]]


def test_recolour_by_holes_counts_each_objects_holes():
    rule = rule_with("recolour_by_holes", background=0)
    (k0, a), (k1, b) = sorted(rule.params["table"].items())[:2]
    src = rule.params["colour"]
    g = np.zeros((7, 7), int)
    g[0:3], g[4:7] = src, src
    for i in range(k0):
        g[1, 1 + 2 * i] = 0
    for i in range(k1):
        g[5, 1 + 2 * i] = 0
    want = np.where(g == src, 0, g)
    want[0:3][g[0:3] == src], want[4:7][g[4:7] == src] = a, b
    assert rule.apply(g).tolist() == want.tolist()


def test_outline_objects_empties_the_inside_or_paints_it():
    g = np.zeros((5, 6), int)
    g[1:4, 1:5] = 5
    want = g.copy()
    want[2, 2:4] = 0
    assert rule_with("outline_objects", inside=0, background=0).apply(g).tolist() == want.tolist()
    want[2, 2:4] = 8
    assert rule_with("outline_objects", inside=8, background=0).apply(g).tolist() == want.tolist()


def test_inside_outside_acts_on_the_marks_on_one_side_of_the_frame():
    rule = rule_with("inside_outside", inside=True, recolour=False, background=0)
    F, M = rule.params["frame"], rule.params["mark"]
    g = np.array([[M, 0, 0, 0, 0, 0],
                  [0, F, F, F, F, 0],
                  [0, F, M, 0, F, M],
                  [0, F, 0, M, F, 0],
                  [0, F, F, F, F, 0]])
    want = g.copy()
    want[2, 2] = want[3, 3] = 0
    assert rule.apply(g).tolist() == want.tolist()
    rule = rule_with("inside_outside", inside=False, recolour=True, background=0)
    F, M, N = rule.params["frame"], rule.params["mark"], rule.params["colour"]
    g = np.where(g == g[1, 1], F, np.where(g == g[0, 0], M, 0))
    want = g.copy()
    want[0, 0] = want[2, 5] = N
    assert rule.apply(g).tolist() == want.tolist()


def test_box_objects_draws_a_box_round_each_object_and_refuses_one_on_the_edge():
    rule = rule_with("box_objects", background=0)
    B = rule.params["box"]
    c = next(v for v in range(1, 10) if v != B)
    g = np.zeros((5, 6), int)
    g[2, 2:4] = c
    assert rule.apply(g).tolist() == [[0, 0, 0, 0, 0, 0], [0, B, B, B, B, 0], [0, B, c, c, B, 0],
                                      [0, B, B, B, B, 0], [0, 0, 0, 0, 0, 0]]
    with pytest.raises(Redraw):
        rule.apply(np.array([[c, 0, 0], [0, 0, 0], [0, 0, 0]]))
