import numpy as np
from conftest import rule_with


def test_repair_tiling_fills_the_patch_from_the_period():
    rule = rule_with("repair_tiling", answer="grid")
    n, (a, b) = rule.params["noise"], rule.params["colours"][:2]
    whole = np.tile([[a, b, b], [b, b, a]], (3, 2))  # 6 x 6, motif 2 x 3
    x = whole.copy()
    x[1:3, 2:4] = n
    assert rule.apply(x).tolist() == whole.tolist()
    patch = rule_with("repair_tiling", answer="patch")
    n, (a, b) = patch.params["noise"], patch.params["colours"][:2]
    x = np.tile([[a, b, b], [b, b, a]], (3, 2))
    x[1:3, 2:4] = n
    assert patch.apply(x).tolist() == [[a, b], [b, a]]


def test_continue_rows_repeats_the_given_rows_to_the_end():
    rule = rule_with("continue_rows", direction="down", bg=0)
    a = rule.params["colours"][0]
    x = np.array([[a, 0, a], [0, a, 0], [a, 0, a], [0, a, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert rule.apply(x).tolist() == [[a, 0, a], [0, a, 0]] * 3 + [[a, 0, a]]
    right = rule_with("continue_rows", direction="right", bg=0)
    a = right.params["colours"][0]
    x = np.array([[a, 0, a, 0, 0, 0, 0], [a, a, a, a, 0, 0, 0]])  # columns (a, a), (0, a), shown twice
    assert right.apply(x).tolist() == [[a, 0, a, 0, a, 0, a], [a] * 7]


def test_continue_sequence_1d_continues_each_row_on_its_own():
    rule = rule_with("continue_sequence_1d", direction="right", bg=0)
    a, b = rule.params["colours"][:2]
    x = np.array([[a, b, a, b, 0, 0, 0],
                  [a, 0, a, 0, a, 0, 0],
                  [0, 0, 0, 0, 0, 0, 0],
                  [a, a, b, a, a, b, 0]])
    assert rule.apply(x).tolist() == [[a, b, a, b, a, b, a],
                                      [a, 0, a, 0, a, 0, a],
                                      [0, 0, 0, 0, 0, 0, 0],
                                      [a, a, b, a, a, b, a]]


def test_symmetry_complete_reads_hidden_cells_from_their_mirror_image():
    rule = rule_with("symmetry_complete", symmetry="mirror_lr", answer="grid")
    n, (a, b) = rule.params["noise"], rule.params["colours"][:2]
    y = np.array([[a, b, b, a], [b, a, a, b], [a, a, a, a]])
    x = y.copy()
    x[0:2, 0:1] = n
    assert rule.apply(x).tolist() == y.tolist()
    turn = rule_with("symmetry_complete", symmetry="rot180", answer="patch")
    n, (a, b) = turn.params["noise"], turn.params["colours"][:2]
    x = np.array([[a, b, b], [n, a, b], [b, b, a]])  # the turn takes the hidden (1, 0) to (1, 2)
    assert turn.apply(x).tolist() == [[b]]


def test_checker_fill_paints_each_target_rectangle_from_its_corner():
    rule = rule_with("checker_fill", bg=0)
    t, f, s = rule.params["target"], rule.params["first"], rule.params["second"]
    x = np.array([[t, t, t, 0, 0],
                  [t, t, t, 0, t],
                  [0, 0, 0, 0, t]])
    assert rule.apply(x).tolist() == [[f, s, f, 0, 0],
                                      [s, f, s, 0, f],
                                      [0, 0, 0, 0, s]]


def test_stripes_from_seed_cycles_the_seed_across_the_grid():
    rule = rule_with("stripes_from_seed", edge="left", bg=0)
    a, b = rule.params["colours"][:2]
    x = np.array([[a, 0, 0], [b, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert rule.apply(x).tolist() == [[a] * 3, [b] * 3, [a] * 3, [b] * 3, [a] * 3]
    top = rule_with("stripes_from_seed", edge="top", bg=0)
    a, b = top.params["colours"][:2]
    x = np.array([[a, b, 0, 0, 0], [0, 0, 0, 0, 0]])
    assert top.apply(x).tolist() == [[a, b, a, b, a]] * 2
    bottom = rule_with("stripes_from_seed", edge="bottom", bg=0)
    a, b = bottom.params["colours"][:2]
    x = np.array([[0, 0, 0, 0, 0], [a, b, b, 0, 0]])
    assert bottom.apply(x).tolist() == [[a, b, b, a, b]] * 2
