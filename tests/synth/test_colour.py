import numpy as np
import pytest

from arc_ttt.synth.family import Redraw
from conftest import rule_with


def test_colour_map_turns_the_sources_and_keeps_the_rest():
    rule = rule_with("colour_map", bg=0)
    pairs = rule.params["pairs"]
    (s, d), kept = pairs[0], 0 if not rule.params["kept"] else rule.params["kept"][0]
    x = np.array([[s, 0], [kept, s]])
    lut = {**{k: k for k in range(10)}, **{a: b for a, b in pairs}}
    assert rule.apply(x).tolist() == [[d, 0], [lut[kept], d]]


def test_swap_two_exchanges_the_two_colours():
    rule = rule_with("swap_two", bg=0)
    a, b = rule.params["swap"]
    x = np.array([[a, b, 0], [b, b, 0]])
    assert rule.apply(x).tolist() == [[b, a, 0], [a, a, 0]]


def test_recolour_to_majority_paints_every_cell_the_most_frequent_colour():
    rule = rule_with("recolour_to_majority", bg=0)
    a, b, c = rule.params["palette"][:3]
    x = np.array([[a, a, 0], [b, a, c]])
    assert rule.apply(x).tolist() == [[a, a, 0], [a, a, a]]
    with pytest.raises(Redraw):
        rule.apply(np.array([[a, b, 0]]))  # a tie


def test_recolour_by_marker_takes_the_corner_colour_and_erases_or_keeps_the_marker():
    for erase in (True, False):
        rule = rule_with("recolour_by_marker", bg=0, corner="top_left", erase=erase)
        m, a, b = rule.params["palette"][:3]
        x = np.array([[m, 0, 0, 0], [0, 0, a, a], [b, 0, 0, 0]])
        assert rule.apply(x).tolist() == [[0 if erase else m, 0, 0, 0], [0, 0, m, m], [m, 0, 0, 0]]


def test_erase_colour_removes_one_colour():
    rule = rule_with("erase_colour", bg=0)
    gone, keep = rule.params["erased"], rule.params["kept"][0]
    x = np.array([[gone, keep], [keep, gone]])
    assert rule.apply(x).tolist() == [[0, keep], [keep, 0]]


def test_background_swap_trades_the_background_and_the_main_colour():
    rule = rule_with("background_swap", bg=0)
    a, b = rule.params["palette"][:2]
    x = np.array([[a, a, 0], [b, 0, 0]])
    assert rule.apply(x).tolist() == [[0, 0, a], [b, a, a]]
