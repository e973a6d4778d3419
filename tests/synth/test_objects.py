"""The object families on small hand-made grids: which object is picked, and what happens to it."""
import numpy as np
import pytest

from arc_ttt.synth.family import Redraw
from conftest import rule_with


G = np.array([[1, 1, 0, 2],
              [1, 0, 0, 2],
              [0, 0, 0, 0],
              [3, 0, 0, 0]])


def test_recolour_largest_and_smallest_pick_by_cell_count_and_refuse_ties():
    rule = rule_with("recolour_largest", background=0)
    C = rule.params["colour"]
    assert rule.apply(G).tolist() == \
        [[C, C, 0, 2], [C, 0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 0]]
    assert rule_with("recolour_smallest", background=0, colour=5).apply(G).tolist() == \
        [[1, 1, 0, 2], [1, 0, 0, 2], [0, 0, 0, 0], [5, 0, 0, 0]]
    with pytest.raises(Redraw):
        rule_with("recolour_largest", background=0).apply(np.array([[1, 0, 2]]))


def test_keep_largest_erases_the_rest_and_extract_largest_crops_it():
    assert rule_with("keep_largest", background=0).apply(G).tolist() == \
        [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert rule_with("extract_largest", background=0).apply(G).tolist() == [[1, 1], [1, 0]]


def test_remove_small_erases_objects_under_the_threshold():
    g = np.array([[1, 1, 0, 2],
                  [1, 0, 0, 0],
                  [0, 0, 0, 0],
                  [3, 3, 0, 3]])
    assert rule_with("remove_small", background=0, min_size=2).apply(g).tolist() == \
        [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [3, 3, 0, 0]]
    assert rule_with("remove_small", background=0, min_size=3).apply(g).tolist() == \
        [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_recolour_by_size_follows_the_tasks_table():
    rule = rule_with("recolour_by_size", background=0)
    (s0, a), (s1, b) = sorted(rule.params["table"].items())[:2]
    src = rule.params["colour"]
    g = np.zeros((3, 7), int)
    g[0, :s0], g[2, :s1] = src, src
    out = [[a] * s0 + [0] * (7 - s0), [0] * 7, [b] * s1 + [0] * (7 - s1)]
    assert rule.apply(g).tolist() == out
    missing = next(s for s in range(1, 8) if s not in rule.params["table"])
    with pytest.raises(Redraw):
        rule.apply(np.array([[src] * missing]))


def test_recolour_by_shape_matches_the_template_exactly_or_turned():
    for turned in (False, True):
        rule = rule_with("recolour_by_shape", background=0, turned=turned)
        t, C = np.array(rule.params["template"], bool), rule.params["colour"]
        other = next(c for c in range(1, 10) if c != C)
        g = np.zeros((9, 9), int)
        g[:t.shape[0], :t.shape[1]][t] = other
        g[5:5 + t.shape[1], 5:5 + t.shape[0]][np.rot90(t)] = other
        g[8, 0] = other
        want = g.copy()
        want[:t.shape[0], :t.shape[1]][t] = C
        if turned or np.array_equal(np.rot90(t), t):
            want[5:5 + t.shape[1], 5:5 + t.shape[0]][np.rot90(t)] = C
        assert rule.apply(g).tolist() == want.tolist()


def test_the_odd_object_out_by_colour_or_by_shape_is_recoloured_or_cropped():
    by_colour = np.array([[1, 0, 1, 1, 0, 2],
                          [1, 0, 0, 0, 0, 2],
                          [0, 0, 1, 0, 0, 0]])
    by_shape = np.array([[4, 4, 0, 4, 4, 0],
                         [0, 0, 0, 0, 0, 0],
                         [4, 4, 0, 4, 0, 0],
                         [0, 0, 0, 4, 4, 0]])
    rule = rule_with("recolour_unique", background=0, by="colour")
    C = rule.params["colour"]
    assert rule.apply(by_colour).tolist() == [[1, 0, 1, 1, 0, C], [1, 0, 0, 0, 0, C], [0, 0, 1, 0, 0, 0]]
    rule = rule_with("recolour_unique", background=0, by="shape")
    C = rule.params["colour"]
    assert rule.apply(by_shape).tolist() == \
        [[4, 4, 0, 4, 4, 0], [0, 0, 0, 0, 0, 0], [4, 4, 0, C, 0, 0], [0, 0, 0, C, C, 0]]
    assert rule_with("extract_unique", background=0, by="colour").apply(by_colour).tolist() == [[2], [2]]
    assert rule_with("extract_unique", background=0, by="shape").apply(by_shape).tolist() == [[4, 0], [4, 4]]
    with pytest.raises(Redraw):  # two colours, each twice: no odd one
        rule_with("extract_unique", background=0, by="colour").apply(np.array([[1, 0, 1, 0, 2, 0, 2]]))
