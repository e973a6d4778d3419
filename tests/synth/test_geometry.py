import numpy as np

from arc_ttt.synth.catalog import FAMILIES
from arc_ttt.synth.generate import rng_for


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
