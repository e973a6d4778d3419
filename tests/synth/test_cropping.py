import numpy as np
import pytest

from arc_ttt.synth.family import Redraw
from conftest import rule_with


def test_crop_bbox_cuts_to_the_content():
    rule = rule_with("crop_bbox", bg=0)
    a = rule.params["palette"][0]
    x = np.array([[0, 0, 0, 0], [0, a, 0, 0], [0, 0, a, 0], [0, 0, 0, 0]])
    assert rule.apply(x).tolist() == [[a, 0], [0, a]]


def test_crop_framed_keeps_what_the_frame_encloses():
    for keep in (False, True):
        rule = rule_with("crop_framed", bg=0, keep_frame=keep)
        f, o = rule.params["frame"], rule.params["others"][0]
        x = np.array([[o, 0, 0, 0, 0, 0],
                      [0, f, f, f, f, 0],
                      [0, f, o, 0, f, o],
                      [0, f, f, f, f, 0]])
        assert rule.apply(x).tolist() == ([[f] * 4, [f, o, 0, f], [f] * 4] if keep else [[o, 0]])
    x[0, 0] = f  # a second piece of the frame colour: not one frame
    with pytest.raises(Redraw):
        rule.apply(x)


def test_crop_colour_cuts_the_box_of_one_colours_cells_with_what_lies_inside():
    rule = rule_with("crop_colour", bg=0)
    t, c = rule.params["target"], rule.params["clutter"][0]
    x = np.array([[c, 0, 0, c], [0, t, c, 0], [0, t, t, 0], [c, 0, 0, 0]])
    assert rule.apply(x).tolist() == [[t, c], [t, t]]


def test_crop_densest_picks_the_block_with_most_or_fewest_cells():
    for most in (True, False):
        rule = rule_with("crop_densest", bg=0, most=most)
        s, a = rule.params["separator"], rule.params["palette"][0]
        x = np.array([[a, a, s, 0, a, s, a, 0],
                      [a, 0, s, 0, 0, s, a, 0]])
        assert rule.apply(x).tolist() == ([[a, a], [a, 0]] if most else [[0, a], [0, 0]])
