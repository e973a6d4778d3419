"""Every family, as a property: whatever seed and index hypothesis draws, the task made is sound and repeatable."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from arc_ttt.synth.catalog import FAMILIES, PRIORS, by_prior
from arc_ttt.synth.generate import Refusal, make_task, rng_for
from arc_ttt.synth.verify import problems


def test_the_catalogue_spans_the_priors():
    assert set(by_prior()) <= set(PRIORS)
    assert sum(map(len, by_prior().values())) == len(FAMILIES)


@pytest.mark.parametrize("name", sorted(FAMILIES))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), index=st.integers(0, 10**6))
def test_the_rule_holds_on_what_the_family_generates(name, seed, index):
    fam = FAMILIES[name]
    got = make_task(fam, seed, index)
    assert not isinstance(got, Refusal), got
    task, params = got
    pairs = [(p.input, p.output) for p in (*task.train, *task.test)]
    rule = fam.make(rng_for(name, seed, index))  # the first draw of parameters, as make_task's first try
    again = make_task(fam, seed, index)[0]
    assert all(np.array_equal(a.output, b.output) for a, b in zip(task.train, again.train))
    if rule.params == params:  # the task came from the first parameters: recompute with an independent rule object
        assert problems(pairs, fam, rule) == []
