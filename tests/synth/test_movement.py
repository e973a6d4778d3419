import numpy as np
import pytest

from arc_ttt.synth.family import Redraw
from conftest import rule_with


def test_gravity_drops_cells_in_their_column_keeping_their_order():
    g = np.array([[1, 0, 2],
                  [0, 0, 0],
                  [3, 0, 0]])
    assert rule_with("gravity", direction="down").apply(g).tolist() == [[0, 0, 0], [1, 0, 0], [3, 0, 2]]
    assert rule_with("gravity", direction="left").apply(g).tolist() == [[1, 2, 0], [0, 0, 0], [3, 0, 0]]


def test_gravity_objects_drop_as_rigid_bodies_and_stack():
    g = np.array([[0, 1, 1, 4],
                  [0, 1, 0, 0],
                  [0, 0, 0, 0],
                  [2, 0, 0, 0],
                  [0, 0, 0, 3]])
    assert rule_with("gravity_objects", direction="down", background=0).apply(g).tolist() == \
        [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 4], [2, 1, 0, 3]]


def test_slide_colour_moves_one_colour_and_stops_it_at_obstacles():
    rule = rule_with("slide_colour", direction="right", background=0)
    C = rule.params["colour"]
    X = next(c for c in range(1, 10) if c != C)
    g = np.array([[C, 0, 0, X, 0],
                  [0, C, 0, 0, 0]])
    assert rule.apply(g).tolist() == [[0, 0, C, X, 0], [0, 0, 0, 0, C]]


def test_move_to_wall_moves_each_object_to_the_wall_and_refuses_a_shared_lane():
    g = np.array([[0, 0, 0],
                  [0, 2, 0],
                  [0, 2, 0],
                  [3, 0, 0]])
    rule = rule_with("move_to_wall", direction="up", background=0)
    assert rule.apply(g).tolist() == [[3, 2, 0], [0, 2, 0], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(Redraw):
        rule.apply(np.array([[0], [1], [0], [2]]))


def test_move_until_contact_brings_both_sides_to_the_line():
    rule = rule_with("move_until_contact", horizontal=True, background=0)
    L = rule.params["line"]
    a, b = [c for c in range(1, 10) if c != L][:2]
    g = np.array([[a, 0, 0],
                  [0, 0, 0],
                  [L, L, L],
                  [0, 0, 0],
                  [0, b, b]])
    assert rule.apply(g).tolist() == [[0, 0, 0], [a, 0, 0], [L, L, L], [0, b, b], [0, 0, 0]]
