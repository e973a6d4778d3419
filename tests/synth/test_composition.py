import numpy as np
from conftest import rule_with


def test_turn_then_scale_turns_then_blows_up_each_cell():
    rule = rule_with("turn_then_scale", symmetry="r90", scale=2)
    x = np.array([[1, 2], [3, 0]])  # turned a quarter anticlockwise: [[2, 0], [1, 3]]
    assert rule.apply(x).tolist() == [[2, 2, 0, 0], [2, 2, 0, 0], [1, 1, 3, 3], [1, 1, 3, 3]]


def test_crop_then_flip_cuts_the_content_then_flips_it():
    rule = rule_with("crop_then_flip", symmetry="t", bg=0)
    x = np.array([[0, 0, 0, 0], [0, 1, 2, 0], [0, 0, 3, 0]])
    assert rule.apply(x).tolist() == [[1, 0], [2, 3]]


def test_gravity_then_recolour_drops_the_cells_then_maps_their_colours():
    rule = rule_with("gravity_then_recolour", direction="down", bg=0)
    (s, d), = rule.params["pairs"][:1]
    other = next(c for c in range(1, 10) if c not in [p[0] for p in rule.params["pairs"]] and c != s)
    x = np.array([[s, other], [0, 0], [0, 0]])
    assert rule.apply(x).tolist() == [[0, 0], [0, 0], [d, other]]


def test_colour_map_then_tile_recolours_then_repeats():
    rule = rule_with("colour_map_then_tile", bg=0, reps=[1, 2])
    (s, d), = rule.params["pairs"][:1]
    other = next(c for c in range(1, 10) if c not in [p[0] for p in rule.params["pairs"]] and c != s)
    x = np.array([[s, 0], [0, other]])
    assert rule.apply(x).tolist() == [[d, 0, d, 0], [0, other, 0, other]]


def test_denoise_then_crop_erases_the_noise_then_cuts_to_what_is_left():
    rule = rule_with("denoise_then_crop", bg=0)
    n, a = rule.params["noise"], rule.params["palette"][0]
    x = np.array([[n, 0, 0, 0], [0, a, a, 0], [0, 0, a, n]])
    assert rule.apply(x).tolist() == [[a, a], [0, a]]


def test_frame_then_scale_cuts_the_inside_of_the_frame_then_scales_it():
    rule = rule_with("frame_then_scale", bg=0, scale=2)
    f, a = rule.params["frame"], rule.params["palette"][0]
    x = np.array([[a, 0, 0, 0], [f, f, f, 0], [f, a, f, a], [f, f, f, 0]])
    assert rule.apply(x).tolist() == [[a, a], [a, a]]
