"""Confidence intervals for benchmark figures: a mean over tasks, and the paired difference of two settings.

ARC scores move in steps of one task, and two settings compared on the same tasks differ on few of them: the
honest figure is the mean with a bootstrap interval over tasks, and for a decision the paired difference (each
task against itself) with its interval. A difference whose interval straddles 0 decides nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

LEVEL = 0.90
RESAMPLES = 10_000


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float
    n: int
    level: float = LEVEL

    def to_dict(self) -> dict:
        return {"mean": round(self.mean, 5), "lo": round(self.lo, 5), "hi": round(self.hi, 5), "n": self.n,
                "level": self.level}

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.lo:+.3f}, {self.hi:+.3f}]"


def bootstrap_mean(values: Sequence[float], *, level: float = LEVEL, resamples: int = RESAMPLES,
                   seed: int = 0) -> Interval:
    """The mean and its percentile-bootstrap interval over the items (tasks); NaNs are left out."""
    x = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    if not len(x):
        return Interval(float("nan"), float("nan"), float("nan"), 0, level)
    rng = np.random.default_rng(seed)
    return _percentile_interval(float(x.mean()), x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1),
                                len(x), level)


def _percentile_interval(point: float, resampled: np.ndarray, n: int, level: float) -> Interval:
    """The point estimate with the central `level` of its bootstrap replicates."""
    tail = (1 - level) / 2 * 100
    return Interval(point, float(np.percentile(resampled, tail)), float(np.percentile(resampled, 100 - tail)), n, level)


def paired_difference(a: dict[str, float], b: dict[str, float], **kw) -> Interval:
    """Mean of a[k] - b[k] over the keys (tasks) both have, with its bootstrap interval."""
    keys = sorted(set(a) & set(b))
    return bootstrap_mean([a[k] - b[k] for k in keys], **kw)


def stratified_mean(values: dict[str, float], strata: dict[str, str], weights: dict[str, float], *,
                    level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0) -> Interval | None:
    """The mean of each stratum's tasks, weighted by `weights` (renormalised over the strata the tasks cover), with
    a stratified bootstrap interval (tasks resampled within their stratum). None when a task has no weighted
    stratum: a figure over part of the tasks would pass for all of them."""
    groups: dict[str, list[float]] = {}
    for k, v in values.items():
        if strata.get(k) not in weights:
            return None
        if v is not None and not np.isnan(v):
            groups.setdefault(strata[k], []).append(v)
    if not groups:
        return None
    total = sum(weights[g] for g in groups)
    rng = np.random.default_rng(seed)
    point, boots = 0.0, np.zeros(resamples)
    for g, vals in groups.items():
        x, w = np.asarray(vals, dtype=float), weights[g] / total
        point += w * x.mean()
        boots += w * x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    return _percentile_interval(float(point), boots, sum(len(v) for v in groups.values()), level)
