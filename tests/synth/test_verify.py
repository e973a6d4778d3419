"""The verifier refuses each kind of unsound task, naming why."""
import numpy as np

from arc_ttt.synth.family import Family, Redraw, Rule
from arc_ttt.synth.verify import problems

FLIP = Rule(draw=lambda r: None, apply=lambda g: g[:, ::-1].copy())
FAM = Family("flip", "geometry", make=lambda r: FLIP)


def pairs(*inputs, rule=FLIP):
    return [(np.array(x), rule.apply(np.array(x))) for x in inputs]


def test_a_sound_task_passes():
    assert problems(pairs([[1, 2]], [[3, 0, 0]], [[4, 5], [6, 0]], [[7, 8, 9]]), FAM, FLIP) == []


def test_an_output_the_rule_does_not_reproduce_is_refused():
    ps = pairs([[1, 2]], [[3, 0, 0]], [[7, 8, 9]])
    ps[1] = (ps[1][0], np.array([[3, 0, 1]]))
    assert problems(ps, FAM, FLIP) == ["pair 1: the rule recomputed on the input gives another output"]


def test_output_equal_to_input_is_refused_unless_the_family_allows_it():
    ps = pairs([[1, 2]], [[3, 0, 3]], [[7, 8, 9]])
    assert "pair 1: output equals input" in problems(ps, FAM, FLIP)
    allowing = Family("flip", "geometry", make=lambda r: FLIP, identity_ok=True)
    assert problems(ps, allowing, FLIP) == []


def test_grids_outside_arc_rules_are_refused():
    big = np.zeros((31, 2), int)
    big[0, 0] = 1
    ps = pairs([[1, 2]], [[3, 0, 0]], [[7, 8, 9]])
    ps[0] = (big, big[:, ::-1])
    ps[2] = (np.array([[1, 12]]), np.array([[12, 1]]))
    found = problems(ps, FAM, FLIP)
    assert any("pair 0 input: shape (31, 2) outside 1-30" in f for f in found)
    assert any("pair 2 input: colours outside 0-9" in f for f in found)


def test_repeated_inputs_and_constant_outputs_are_refused():
    assert "two pairs share an input" in problems(pairs([[1, 2]], [[1, 2]], [[7, 8, 9]]), FAM, FLIP)
    const = Rule(draw=lambda r: None, apply=lambda g: np.array([[5]]))
    ps = pairs([[1, 2]], [[3, 4]], [[7, 8]], rule=const)
    found = problems(ps, Family("c", "counting", make=lambda r: const), const)
    assert "every demo output is the same grid" in found and "the test output is the most frequent demo output" in found


def test_a_test_output_a_trivial_rule_guesses_is_refused():
    recolour = Rule(draw=lambda r: None, apply=lambda g: np.where(g > 0, 0, g))  # everything -> background
    ps = pairs([[1, 2]], [[3, 0, 4]], [[0, 0, 9], [0, 0, 0]], rule=recolour)
    found = problems(ps, Family("erase", "colour", make=lambda r: recolour), recolour)
    assert "the test output is a flat fill" in found


def test_a_rule_undefined_on_its_input_is_refused():
    def picky(g):
        if g.sum() > 10:
            raise Redraw("too much")
        return g[:, ::-1].copy()
    rule = Rule(draw=lambda r: None, apply=picky)
    ps = [(np.array([[1, 2]]), np.array([[2, 1]])), (np.array([[9, 8]]), np.array([[8, 9]])),
          (np.array([[1, 3]]), np.array([[3, 1]]))]
    assert problems(ps, FAM, rule) == ["pair 1: the rule is undefined on its own input (too much)"]
