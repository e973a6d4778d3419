import numpy as np

from arc_ttt.synth.catalog import FAMILIES
from arc_ttt.synth.generate import rng_for


def rule_with(name, **params):
    """The family's rule for the first seed whose drawn parameters include `params`."""
    for seed in range(500):
        rule = FAMILIES[name].make(rng_for(name, seed, 0))
        if all(rule.params.get(k) == v for k, v in params.items()):
            return rule
    raise AssertionError(f"{name}: no seed draws {params}")


def test_gravity_drops_cells_in_their_column_keeping_their_order():
    g = np.array([[1, 0, 2],
                  [0, 0, 0],
                  [3, 0, 0]])
    assert rule_with("gravity", direction="down").apply(g).tolist() == [[0, 0, 0], [1, 0, 0], [3, 0, 2]]
    assert rule_with("gravity", direction="left").apply(g).tolist() == [[1, 2, 0], [0, 0, 0], [3, 0, 0]]
