"""The learned TTT policy: which action (0, 2, 4, 8, 16 or 32 steps) each task gets, and when to stop early.

A small linear model per action predicts the gain of training a task that many steps over not training it,
from features the run knows before training (the difficulty NLL, prompt tokens, demo count, output area). The
plan picks, per task, argmax_a gain_a - lambda x cost_a; lambda is the smallest value at which the whole remaining
plan fits the time left (the Lagrange multiplier of the budget), corrected during the run by a PID controller on
spent against planned time (PID-Lagrangian). After 2 steps a second model, which also sees the TTT loss of those
steps, predicts what the remaining steps add; when that is no more than a margin, training stops (the gate).

Everything here is numpy on arrays; the planner (core.planner) calls it and the files are read at the edges
(`load_policy`). The model is fitted offline, by ridge regression of the gain per action on an effort table
(benchmarks/planner/effort.py's JSON), in the lab (`arc_ttt.lab.policyfit.fit_policy`); its card says what it was
trained on. The product only reads a fitted policy.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .folders import write_json_atomic

ACTIONS = (0, 2, 4, 8, 16, 32)
PLAN_FEATURES = ("difficulty", "log_prompt_tokens", "demos", "log_output_area")  # known before any training
# ... and after the gate's 2 steps: the TTT loss then, and its share of the difficulty (the demo loss before)
GATE_FEATURES = ("loss_after_2", "loss_left_2")
GATE_STEPS = 2
TARGETS = ("score", "found", "nll")
KIND = "arc-ttt effort policy"


class PolicyFileError(FileNotFoundError):
    """The learned policy's file is missing or is not a policy."""


# ---- features ---------------------------------------------------------------------------------------
def derived_features(raw: dict) -> dict[str, float | None]:
    """The model's features from raw measurements (an effort table's `features`, or a TaskCost's fields);
    sizes on a log scale (their effect on the gain is more nearly linear there). Missing values stay None."""
    def log(v):
        return math.log(v) if v is not None and v > 0 else None

    out = {k: raw.get(k) for k in ("difficulty", "demos", "loss_after_2")}
    d, l2 = out["difficulty"], out["loss_after_2"]
    out["loss_left_2"] = l2 / d if d is not None and l2 is not None and d > 0 else None
    out["log_prompt_tokens"] = log(raw.get("prompt_tokens"))
    out["log_output_area"] = log(raw.get("output_area"))
    return out


def feature_matrix(rows: Sequence[dict], names: Sequence[str]) -> np.ndarray:
    """(rows, features) float matrix; NaN where a feature is missing or not finite."""
    X = np.full((len(rows), len(names)), np.nan)
    for i, r in enumerate(rows):
        for j, n in enumerate(names):
            v = r.get(n)
            if v is not None and math.isfinite(float(v)):
                X[i, j] = float(v)
    return X


@dataclass(frozen=True)
class Linear:
    """gain[:, a] = [1, z(x)] @ weights[:, a], z = (x - mean) / scale; a missing feature is imputed by its mean."""

    features: tuple[str, ...]
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weights: np.ndarray  # (1 + F, A)

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = np.nan_to_num((np.atleast_2d(X) - self.mean) / self.scale, nan=0.0)
        return np.hstack([np.ones((len(Z), 1)), Z]) @ self.weights

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Linear":
        return cls(tuple(d["features"]), np.asarray(d["mean"], float), np.asarray(d["scale"], float),
                   np.asarray(d["weights"], float))


@dataclass(frozen=True)
class Neighbours:
    """gain = the mean of the k nearest training tasks' gains in standardised features (missing: the mean). The
    gate's model: whether the loss after 2 steps says "learned already" is a threshold, which a line cannot draw
    (a linear gate predicted +0.03 to +0.09 for tasks whose gain was exactly flat, on the synthetic table)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    points: np.ndarray  # (N, F) standardised
    values: np.ndarray  # (N, A)
    k: int = 5

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = np.nan_to_num((np.atleast_2d(X) - self.mean) / self.scale, nan=0.0)
        d = ((Z[:, None, :] - self.points[None]) ** 2).sum(-1)
        near = np.argsort(d, axis=1, kind="stable")[:, :min(self.k, len(self.points))]
        return self.values[near].mean(axis=1)

    def to_dict(self) -> dict:
        return {"type": "neighbours", "features": list(self.features), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "points": self.points.tolist(), "values": self.values.tolist(), "k": self.k}

    @classmethod
    def from_dict(cls, d: dict) -> "Neighbours":
        return cls(tuple(d["features"]), np.asarray(d["mean"], float), np.asarray(d["scale"], float),
                   np.asarray(d["points"], float), np.asarray(d["values"], float), int(d["k"]))


def model_from_dict(d: dict):
    return Neighbours.from_dict(d) if d.get("type") == "neighbours" else Linear.from_dict(d)


# ---- the policy ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LearnedPolicy:
    actions: tuple[int, ...]
    plan: Linear  # gain of each action over 0 steps, from PLAN_FEATURES
    gate: Neighbours | Linear | None  # gain of each action over GATE_STEPS steps, from GATE_FEATURES
    target: str = "score"  # what the gain is a gain of (score, found, or the truth NLL's decrease)
    card: dict = field(default_factory=dict)

    def gains(self, rows: Sequence[dict]) -> np.ndarray:
        """(tasks, actions) predicted gain over 0 steps; 0 steps gains 0 by definition."""
        G = self.plan.predict(feature_matrix(rows, self.plan.features))
        G[:, self.actions.index(0)] = 0.0
        return G

    def further_gain(self, row: dict, steps: int) -> float:
        """Predicted gain of training on to `steps` (snapped down to an action) over stopping at GATE_STEPS."""
        if self.gate is None or steps <= GATE_STEPS:
            return math.inf
        a = max(i for i, s in enumerate(self.actions) if s <= steps)
        g = self.gate.predict(feature_matrix([row], self.gate.features))[0]
        return float(g[a] - g[self.actions.index(GATE_STEPS)])

    def to_dict(self) -> dict:
        return {"kind": KIND, "version": 1, "actions": list(self.actions), "target": self.target,
                "plan": self.plan.to_dict(), "gate": None if self.gate is None else self.gate.to_dict(),
                "card": self.card}

    @classmethod
    def from_dict(cls, d: dict) -> "LearnedPolicy":
        return cls(tuple(int(a) for a in d["actions"]), Linear.from_dict(d["plan"]),
                   None if d.get("gate") is None else model_from_dict(d["gate"]), d.get("target", "score"),
                   d.get("card", {}))


def save_policy(policy: LearnedPolicy, path: str) -> str:
    write_json_atomic(path, policy.to_dict(), indent=1)  # makes the folder too
    return path


def load_policy(path: str | None) -> LearnedPolicy:
    """The policy in `path`; a clear error naming the file when it is missing or not a policy."""
    if not path:
        raise PolicyFileError("budget.policy=learned needs budget.policy_file: no policy file is configured")
    if not os.path.isfile(path):
        raise PolicyFileError(f"budget.policy=learned: the policy file {path} does not exist (fit one with "
                              "benchmarks/planner/policy.py --fit EFFORT_JSON --policy-out FILE)")
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if d.get("kind") != KIND:
            raise ValueError(f"kind {d.get('kind')!r}, expected {KIND!r}")
        return LearnedPolicy.from_dict(d)
    except (ValueError, KeyError, TypeError) as e:
        raise PolicyFileError(f"budget.policy=learned: {path} is not a policy file ({e})") from None


# ---- the plan: argmax gain - lambda x cost, lambda fitted to the budget ---------------------------------------
def choose(gains: np.ndarray, costs: np.ndarray, lam: float) -> np.ndarray:
    """Per task the index of the action maximising gain - lam x cost; a NaN or infinite cost is not allowed.
    Ties go to the cheaper action (actions are ordered by cost), which keeps the choice monotone in lam."""
    allowed = np.isfinite(costs)
    value = np.where(allowed, gains - lam * np.where(allowed, costs, 0.0), -np.inf)
    order = np.argsort(np.where(allowed, costs, np.inf), axis=1, kind="stable")  # cheapest first
    best = np.argmax(np.take_along_axis(value, order, axis=1), axis=1)  # first maximum = the cheapest
    return order[np.arange(len(order)), best]


def total_cost(costs: np.ndarray, idx: np.ndarray) -> float:
    return float(costs[np.arange(len(idx)), idx].sum()) if len(idx) else 0.0


def solve_lambda(gains: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """The smallest lambda >= 0 whose plan fits `budget` (the plan's cost is non-increasing in lambda); inf when
    not even every task's cheapest action fits. Bisection on a log scale, ending on the side that fits."""
    if not len(gains) or total_cost(costs, choose(gains, costs, 0.0)) <= budget:
        return 0.0
    cheapest = np.nanmin(np.where(np.isfinite(costs), costs, np.nan), axis=1)
    if float(np.sum(cheapest)) > budget:
        return math.inf
    lo, hi = 0.0, 1e-9
    while total_cost(costs, choose(gains, costs, hi)) > budget:
        lo, hi = hi, hi * 4
        if hi > 1e15:  # only the cheapest actions fit
            return hi
    for _ in range(60):
        mid = math.sqrt(lo * hi) if lo > 0 else hi / 2
        lo, hi = (lo, mid) if total_cost(costs, choose(gains, costs, mid)) <= budget else (mid, hi)
    return hi


@dataclass
class PID:
    """u = kp e + ki sum(e) + kd (e - e_prev); the integral is clipped (anti-windup) so that a long stretch off
    plan cannot leave lambda pinned long after the error is gone."""

    kp: float = 1.0
    ki: float = 0.2
    kd: float = 0.0
    limit: float = 3.0  # u and ki x integral at most this (the budget shrinks by at most e^3 = 20x) ...
    low: float = -3.0  # ... and at least this: 0 where only u > 0 acts (the planner's), so no unused windup
    integral: float = 0.0
    last: float | None = None
    u: float = 0.0

    def update(self, error: float) -> float:
        self.integral += error
        if self.ki:
            self.integral = float(np.clip(self.integral, self.low / self.ki, self.limit / self.ki))
        d = 0.0 if self.last is None else error - self.last
        self.last = error
        self.u = float(np.clip(self.kp * error + self.ki * self.integral + self.kd * d, self.low, self.limit))
        return self.u


@dataclass
class Gate:
    """The learned policy's early stop, called by training after GATE_STEPS steps with their losses; remembers
    what it predicted and decided, for the task's record."""

    policy: LearnedPolicy
    row: dict  # the task's features
    steps: int  # planned
    min_gain: float = 0.0
    decision: dict | None = None

    def __call__(self, losses: Sequence[float]) -> bool:
        loss = float(losses[GATE_STEPS - 1])
        d = self.row.get("difficulty")
        row = {**self.row, "loss_after_2": loss, "loss_left_2": loss / d if d else None}
        further = self.policy.further_gain(row, self.steps)
        stop = further <= self.min_gain
        self.decision = {"loss_after_2": round(row["loss_after_2"], 5), "further_gain": round(further, 5),
                         "stopped": stop}
        return stop
