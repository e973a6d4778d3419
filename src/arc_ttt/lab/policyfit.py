"""Fitting the learned TTT policy offline, from an effort table (benchmarks/planner/effort.py's JSON): the lab's side of
`core.policy`, which the run only reads.

The plan model is a ridge regression of each action's gain over 0 steps on standardised features; the gate
model the k nearest tasks' gains over GATE_STEPS. `cross_fit` is the honest replay: no task is planned by a
model its own row trained.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.policy import (GATE_FEATURES, GATE_STEPS, PLAN_FEATURES, TARGETS, LearnedPolicy, Linear, Neighbours,
                           derived_features, feature_matrix)


def fit_linear(X: np.ndarray, Y: np.ndarray, features: Sequence[str], ridge: float = 1.0) -> Linear:
    """Ridge regression of every column of Y on the standardised features (the intercept is not penalised).
    With a few dozen tasks a plain least-squares fit would chase noise; the ridge pulls towards the mean gain."""
    mean = np.nanmean(X, axis=0) if len(X) else np.zeros(X.shape[1])
    mean = np.where(np.isfinite(mean), mean, 0.0)
    scale = np.nanstd(X, axis=0) if len(X) else np.ones(X.shape[1])
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    Z = np.nan_to_num((X - mean) / scale, nan=0.0)
    A = np.hstack([np.ones((len(Z), 1)), Z])
    penalty = ridge * np.eye(A.shape[1])
    penalty[0, 0] = 0.0
    W = np.linalg.solve(A.T @ A + penalty + 1e-9 * np.eye(A.shape[1]), A.T @ Y)
    return Linear(tuple(features), mean, scale, W)


def fit_neighbours(X: np.ndarray, Y: np.ndarray, features: Sequence[str], k: int = 5) -> Neighbours:
    lin = fit_linear(X, Y, features)  # for its standardisation
    Z = np.nan_to_num((X - lin.mean) / lin.scale, nan=0.0)
    return Neighbours(tuple(features), lin.mean, lin.scale, Z, np.asarray(Y, float), k)


# ---- fitting from an effort table -------------------------------------------------------------------------
def table_rows(table: dict) -> list[dict]:
    """Per task of an effort table: its derived features, id and stratum."""
    out = []
    for t in table["tasks"]:
        row = derived_features(t.get("features", {}))
        row.update(id=t["id"], stratum=t.get("stratum"))
        out.append(row)
    return out


def table_outcomes(table: dict, key: str) -> tuple[tuple[int, ...], np.ndarray]:
    """(levels, (tasks, levels) array of `key` at each level)."""
    levels = tuple(int(x) for x in table["levels"])
    Y = np.array([[next(lv[key] for lv in t["levels"] if lv["steps"] == s) for s in levels] for t in table["tasks"]],
                 dtype=float)
    return levels, Y


def table_gains(table: dict, target: str = "score") -> tuple[tuple[int, ...], np.ndarray]:
    """Gain of each level over 0 steps: score or found up, or the truth's NLL down."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: choose {', '.join(TARGETS)}")
    levels, Y = table_outcomes(table, "truth_nll" if target == "nll" else target)
    G = Y[:, :1] - Y if target == "nll" else Y - Y[:, :1]
    return levels, np.nan_to_num(G, nan=0.0)


def fit_policy(table: dict, target: str = "score", ridge: float = 1.0, tasks: Sequence[str] | None = None,
               source: str = "", neighbours: int = 5) -> LearnedPolicy:
    """The policy fitted on `tasks` (default all) of an effort table. The gate model is fitted when the table has
    the gate's level and the loss after it."""
    levels, G = table_gains(table, target)
    if 0 not in levels:
        raise ValueError("the effort table has no 0-step level to measure gains from")
    rows = table_rows(table)
    keep = np.array([tasks is None or r["id"] in set(tasks) for r in rows])
    rows = [r for r, k in zip(rows, keep) if k]
    G = G[keep]
    plan = fit_linear(feature_matrix(rows, PLAN_FEATURES), G, PLAN_FEATURES, ridge)
    gate = None
    if GATE_STEPS in levels and any(r.get("loss_after_2") is not None for r in rows):
        after = G - G[:, [levels.index(GATE_STEPS)]]
        gate = fit_neighbours(feature_matrix(rows, GATE_FEATURES), after, GATE_FEATURES, k=neighbours)
    card = {"trained_on": {"table": source, "model": table.get("model"), "dev_set": table.get("dev_set"),
                           "tasks": [r["id"] for r in rows], "n_tasks": len(rows), "levels": list(levels),
                           "views": table.get("views"), "table_complete": table.get("complete"),
                           "quick": table.get("quick", False)},
            "target": target, "ridge": ridge, "neighbours": neighbours,
            "method": "plan: ridge regression of the gain per action over 0 steps on standardised features; gate: "
            "the mean gain over 2 steps of the k nearest tasks in standardised gate features; missing features "
            "imputed by the training mean",
            "mean_gain_per_action": dict(zip(map(str, levels), np.round(G.mean(0), 4).tolist()))}
    return LearnedPolicy(levels, plan, gate, target, card)


@dataclass(frozen=True)
class CrossFitted:
    """K-fold replay: each task is planned by the policy fitted without its fold, so no task's own row trains
    the model that plans it. Rows are routed by their `id`; the interface is LearnedPolicy's."""

    folds: dict  # task id -> LearnedPolicy fitted on the other folds

    @property
    def _any(self) -> LearnedPolicy:
        return next(iter(self.folds.values()))

    @property
    def actions(self) -> tuple[int, ...]:
        return self._any.actions

    @property
    def target(self) -> str:
        return self._any.target

    @property
    def gate(self):
        return self._any.gate

    def gains(self, rows: Sequence[dict]) -> np.ndarray:
        return np.concatenate([self.folds[r["id"]].gains([r]) for r in rows]) if rows else np.zeros((0, 0))

    def further_gain(self, row: dict, steps: int) -> float:
        return self.folds[row["id"]].further_gain(row, steps)


def cross_fit(table: dict, k: int = 5, seed: int = 0, **fit_kwargs) -> CrossFitted:
    """Folds drawn by `seed` over the table's tasks; one policy per fold, fitted on the others."""
    ids = [t["id"] for t in table["tasks"]]
    order = np.random.default_rng(seed).permutation(len(ids))
    fold_of = {ids[j]: f % max(1, min(k, len(ids))) for f, j in enumerate(order)}
    fitted = {}
    for f in sorted(set(fold_of.values())):
        train = [i for i in ids if fold_of[i] != f] or ids
        fitted[f] = fit_policy(table, tasks=train, **fit_kwargs)
    return CrossFitted({i: fitted[fold_of[i]] for i in ids})


