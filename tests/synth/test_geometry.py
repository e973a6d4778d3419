import numpy as np
import pytest

from arc_ttt.synth.catalog import FAMILIES
from arc_ttt.synth.family import Redraw
from arc_ttt.synth.generate import rng_for
from conftest import rule_with


def test_d8_whole_applies_the_symmetry_it_names():
    g = np.array([[1, 2, 3], [4, 5, 6]])
    expected = {"r90": np.rot90(g), "r180": np.rot90(g, 2), "t": g.T}
    seen = set()
    for seed in range(200):
        rule = FAMILIES["d8_whole"].make(rng_for("d8_whole", seed, 0))
        name = rule.params["symmetry"]
        if name in expected:
            assert np.array_equal(rule.apply(g), expected[name])
            seen.add(name)
    assert seen == set(expected)


def test_scale_up_and_scale_down_are_inverse_and_scale_down_refuses_unscaled_grids():
    small = np.array([[1, 2], [0, 3]])
    big = [[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 3, 3], [0, 0, 3, 3]]
    assert rule_with("scale_up", factor=2).apply(small).tolist() == big
    assert rule_with("scale_down", factor=2).apply(np.array(big)).tolist() == small.tolist()
    with pytest.raises(Redraw):
        rule_with("scale_down", factor=2).apply(np.array([[1, 1], [1, 2]]))


def test_tile_and_the_mirrored_tilings():
    g = np.array([[1, 2, 0]])
    assert rule_with("tile", down=2, across=2).apply(g).tolist() == [[1, 2, 0, 1, 2, 0], [1, 2, 0, 1, 2, 0]]
    g = np.array([[1, 2], [0, 3]])
    assert rule_with("tile_mirrored", corner="tl").apply(g).tolist() == \
        [[1, 2, 2, 1], [0, 3, 3, 0], [0, 3, 3, 0], [1, 2, 2, 1]]
    assert rule_with("tile_mirrored", corner="br").apply(g).tolist() == \
        [[3, 0, 0, 3], [2, 1, 1, 2], [2, 1, 1, 2], [3, 0, 0, 3]]
    assert rule_with("mirror_concat", side="left").apply(g).tolist() == [[2, 1, 1, 2], [3, 0, 0, 3]]
    assert rule_with("mirror_concat", side="below").apply(g).tolist() == [[1, 2], [0, 3], [0, 3], [1, 2]]


def test_translate_objects_cuts_off_or_wraps_round():
    g = np.array([[0, 0, 0, 0],
                  [0, 5, 5, 0],
                  [0, 0, 5, 0]])
    cut = rule_with("translate_objects", step=(1, 2), wrap=False, background=0)
    assert cut.apply(g).tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 5]]
    wrap = rule_with("translate_objects", step=(1, 2), wrap=True)
    assert wrap.apply(g).tolist() == [[5, 0, 0, 0], [0, 0, 0, 0], [5, 0, 0, 5]]


def test_flip_objects_in_place_flips_each_inside_its_own_box():
    g = np.array([[1, 2, 0, 0, 0],
                  [0, 2, 0, 0, 3],
                  [0, 0, 0, 4, 3]])
    assert rule_with("flip_objects_in_place", flip="left_right", background=0).apply(g).tolist() == \
        [[2, 1, 0, 0, 0], [2, 0, 0, 3, 0], [0, 0, 0, 3, 4]]
    assert rule_with("flip_objects_in_place", flip="up_down", background=0).apply(g).tolist() == \
        [[0, 2, 0, 0, 0], [1, 2, 0, 4, 3], [0, 0, 0, 0, 3]]
