import numpy as np
import pytest

from arc_ttt.synth.family import Redraw
from conftest import rule_with


def halves_input(rule, left, right):
    """The input of a halves rule: the two 0/1 halves in their colours on either side of the separator."""
    p = rule.params
    a = np.where(np.array(left) == 1, p["first"], p["bg"])
    b = np.where(np.array(right) == 1, p["second"], p["bg"])
    sep = np.full((a.shape[0], 1), p["separator"])
    x = np.hstack([a, sep, b])
    return x if p["split"] == "vertical" else x.T


LEFT, RIGHT = [[1, 1, 0], [0, 1, 0]], [[1, 0, 0], [1, 1, 0]]
EXPECTED = {"and": [[1, 0, 0], [0, 1, 0]], "or": [[1, 1, 0], [1, 1, 0]], "xor": [[0, 1, 0], [1, 0, 0]],
            "nor": [[0, 0, 1], [0, 0, 1]], "left_not_right": [[0, 1, 0], [0, 0, 0]]}


def test_each_halves_family_combines_the_halves_cell_by_cell():
    for op, want in EXPECTED.items():
        for split in ("vertical", "horizontal"):
            rule = rule_with(f"halves_{op}", split=split)
            left, right = (LEFT, RIGHT) if split == "vertical" else (np.array(LEFT).T, np.array(RIGHT).T)
            x = halves_input(rule, left, right)  # horizontal: LEFT above the separator row, RIGHT below
            expected = np.where(np.array(want) == 1, rule.params["out"], rule.params["bg"])
            assert rule.apply(x).tolist() == expected.tolist(), (op, split)


def test_a_grid_without_the_separator_in_the_middle_is_redrawn():
    rule = rule_with("halves_and", split="vertical")
    x = halves_input(rule, LEFT, RIGHT)
    x[0, 3] = rule.params["bg"]
    with pytest.raises(Redraw):
        rule.apply(x)
