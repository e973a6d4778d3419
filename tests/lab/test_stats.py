"""lab.stats: bootstrap intervals over tasks and paired differences, the figures decisions are made on."""
import numpy as np
import pytest

from arc_ttt.lab.stats import bootstrap_mean, paired_difference, stratified_mean


def test_constant_values_have_a_zero_width_interval():
    ci = bootstrap_mean([0.25] * 48)
    assert ci.mean == ci.lo == ci.hi == 0.25 and ci.n == 48


def test_the_interval_holds_the_mean_and_shrinks_with_more_tasks():
    rng = np.random.default_rng(0)
    small = bootstrap_mean(rng.integers(0, 2, 24).astype(float))
    large = bootstrap_mean(rng.integers(0, 2, 480).astype(float))
    assert small.lo <= small.mean <= small.hi and large.lo <= large.mean <= large.hi
    assert large.hi - large.lo < small.hi - small.lo
    # a Bernoulli(0.5) mean over 24 tasks: standard error 0.10, so a 90% interval about +-0.17
    assert 0.25 < small.hi - small.lo < 0.42


def test_nan_items_are_left_out_and_an_empty_set_is_nan():
    assert bootstrap_mean([1.0, float("nan"), 0.0]).n == 2
    assert np.isnan(bootstrap_mean([]).mean)


def test_paired_difference_sees_a_consistent_gain_that_unpaired_noise_hides():
    """One task in four better by one point, the rest equal: the paired interval stays above 0."""
    rng = np.random.default_rng(1)
    base = {f"t{i}": float(x) for i, x in enumerate(rng.random(48))}
    better = {k: v + (1.0 if i % 4 == 0 else 0.0) for i, (k, v) in enumerate(base.items())}
    d = paired_difference(better, base)
    assert d.mean == pytest.approx(0.25) and d.lo > 0
    assert paired_difference(base, base).to_dict()["mean"] == 0.0
    assert paired_difference({"a": 1.0, "b": 0.0}, {"b": 1.0}).n == 1  # only tasks both have


def test_a_stratified_mean_weights_each_stratum_and_resamples_within_it():
    """Two strata, weighted 1:3: the point is the weighted mean of the stratum means, whatever their task counts;
    constant strata leave no spread; a task outside the weighted strata gives no figure at all."""
    values = {"a": 1.0, "b": 1.0, "c": 0.0, "d": 0.0, "e": 0.0, "f": 0.0}
    strata = {"a": "short", "b": "short", "c": "long", "d": "long", "e": "long", "f": "long"}
    ci = stratified_mean(values, strata, {"short": 1, "long": 3, "medium": 100})  # medium: no task, renormalised
    assert ci.mean == ci.lo == ci.hi == pytest.approx(0.25) and ci.n == 6
    noisy = stratified_mean({**values, "c": 1.0}, strata, {"short": 1, "long": 3})
    assert noisy.mean == pytest.approx(0.25 + 0.75 / 4) and noisy.lo < noisy.mean < noisy.hi
    assert noisy.lo >= 0.25  # the short stratum is all ones in every resample: only the long one moves
    assert stratified_mean({**values, "g": 1.0}, strata, {"short": 1, "long": 3}) is None
