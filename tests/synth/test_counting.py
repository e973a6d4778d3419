import numpy as np
import pytest

from arc_ttt.synth.family import Redraw
from conftest import rule_with


def test_count_objects_bar_counts_the_target_colours_objects_only():
    rule = rule_with("count_objects_bar", bg=0, vertical=False)
    t = rule.params["target"]
    o = rule.params["others"][0] if rule.params["others"] else t
    x = np.array([[t, t, 0, t],
                  [0, 0, 0, 0],
                  [t, 0, o, o]])
    n = 3 if o != t else 4
    assert rule.apply(x).tolist() == [[t] * n]
    column = rule_with("count_objects_bar", bg=0, vertical=True)
    t = column.params["target"]
    assert column.apply(np.array([[t, 0, t]])).tolist() == [[t], [t]]


def test_colour_histogram_sorts_the_bars_longest_first():
    rule = rule_with("colour_histogram", bg=0, by_objects=False, vertical=False)
    a, b = rule.params["palette"][:2]
    x = np.array([[a, 0, b], [b, b, 0]])
    assert rule.apply(x).tolist() == [[b, b, b], [a, 0, 0]]
    tall = rule_with("colour_histogram", bg=0, by_objects=True, vertical=True)
    a, b = tall.params["palette"][:2]
    x = np.array([[a, 0, b], [0, 0, b], [b, b, 0]])  # a: one object, b: two
    assert tall.apply(x).tolist() == [[b, 0], [b, a]]
    with pytest.raises(Redraw):
        rule.apply(np.array([[a, b]]))  # a tie


def test_majority_colour_is_a_square_of_the_most_frequent_colour():
    rule = rule_with("majority_colour", bg=0, k=2)
    a, b = rule.params["palette"][:2]
    assert rule.apply(np.array([[a, b, b], [0, 0, 0]])).tolist() == [[b, b], [b, b]]


def test_compare_counts_answers_the_colour_with_more_objects():
    rule = rule_with("compare_counts", bg=0, answer="colour")
    a, b = rule.params["palette"][:2]
    x = np.array([[a, a, a, 0, b], [a, a, a, 0, 0], [0, 0, 0, 0, b]])  # one big a, two small b
    assert rule.apply(x).tolist() == [[b]]
    keep = rule_with("compare_counts", bg=0, answer="keep")
    a, b = keep.params["palette"][:2]
    x = np.array([[a, a, a, 0, b], [a, a, a, 0, 0], [0, 0, 0, 0, b]])
    assert keep.apply(x).tolist() == [[0, 0, 0, 0, b], [0, 0, 0, 0, 0], [0, 0, 0, 0, b]]


def test_count_to_grid_size_makes_an_n_by_n_square():
    for diagonal in (False, True):
        rule = rule_with("count_to_grid_size", bg=0, diagonal=diagonal)
        a = rule.params["palette"][0]
        x = np.array([[a, 0, a, 0], [0, 0, 0, 0], [0, a, a, 0]])
        want = [[a, 0, 0], [0, a, 0], [0, 0, a]] if diagonal else [[a] * 3] * 3
        assert rule.apply(x).tolist() == want
