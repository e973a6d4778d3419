"""Candidates and the rules that rank them into two attempts, without a model.

A candidate keeps its evidence: which sources proposed it (the LLM's decoding, another model), which views
decoded it and with what probability, how many of those paths were likely enough to count as a vote, and its
NLL under each scoring view. Ranking is a pure function of that evidence, so a log can be re-ranked offline
under another rule (`arc-ttt rescore`), as ARChitects did with their evaluation tool.

Rules (higher score is better):
    vote:  votes (greedy: views that produced it; DFS: paths whose probability reached the threshold)
    poe:   -(mean NLL over the scoring views)          product of experts (PoE paper, ARChitects)
    both:  votes - mean NLL                           NVARC: hit count minus mean augmented NLL
Ties break on votes, then the best generation log-prob, then the grid bytes: deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

RULES = ("vote", "poe", "both")


@dataclass
class Candidate:
    grid: np.ndarray  # in the ORIGINAL frame (after the view's inverse)
    views: list[str]  # keys of the views whose decoding produced it
    logprobs: list[float]  # full-vocabulary log-probability of the path, per producing view
    votes: int = 0  # producing views whose path probability reached the threshold
    view_nlls: list[float] | None = None  # NLL under each scoring view (None: not re-scored)
    score: float | None = None  # filled by `rank`
    sources: list[str] = field(default_factory=list)  # names of the sources that proposed it, first seen first
    origins: list[str] = field(default_factory=list)  # per producing view (parallel to views): its source's name

    @property
    def mean_nll(self) -> float | None:
        return float(np.mean(self.view_nlls)) if self.view_nlls else None

    def to_dict(self) -> dict:
        return {"grid": np.asarray(self.grid).tolist(), "views": list(self.views),
                "logprobs": [round(x, 5) for x in self.logprobs], "votes": self.votes,
                "view_nlls": None if self.view_nlls is None else [round(x, 5) for x in self.view_nlls],
                "score": self.score, "sources": list(self.sources), "origins": list(self.origins)}

    @classmethod
    def from_dict(cls, d: dict) -> "Candidate":
        """From a log's candidate; a log written before sources (or origins) were recorded names none."""
        return cls(np.asarray(d["grid"], dtype=np.uint8), list(d.get("views", [])), list(d.get("logprobs", [])),
                   int(d.get("votes", 0)), d.get("view_nlls"), sources=list(d.get("sources", [])),
                   origins=list(d.get("origins", [])))


def grid_key(grid: np.ndarray) -> tuple:
    return grid.shape, np.ascontiguousarray(grid, dtype=np.uint8).tobytes()


def merge(raw: Sequence[Candidate], threshold: float | None) -> list[Candidate]:
    """One Candidate per distinct grid (first-seen order), collecting every copy's views, log-probs and sources.
    Under DFS a copy is a vote only when its path probability reaches `threshold`, the search's own cut;
    under greedy decoding (`threshold` None) each view's answer is its vote, however unsure the path."""
    min_logprob = -math.inf if threshold is None else math.log(threshold)
    merged: dict[tuple, Candidate] = {}
    for c in raw:
        m = merged.setdefault(grid_key(c.grid), Candidate(c.grid, [], []))
        m.views += c.views
        m.logprobs += c.logprobs
        m.votes += int(sum(lp >= min_logprob for lp in c.logprobs))
        m.sources += [s for s in c.sources if s not in m.sources]
        m.origins += c.origins
    return list(merged.values())


def restrict(candidates: Sequence[Candidate], sources: Sequence[str], threshold: float | None) -> list[Candidate]:
    """The merged candidates as a run whose only sources were `sources` would have had them: each keeps the copies
    those sources proposed (views, log-probs, and so votes, counted again by `merge` under `threshold`) and its
    scoring NLLs, which do not depend on who proposed it; one that none of them proposed is dropped. So one run
    with every source is also the run with fewer, paired by construction (issue 37's table)."""
    raw = []
    for c in candidates:
        if len(c.origins) != len(c.views):
            raise ValueError("a candidate without its views' sources (a log written before they were recorded): "
                             "it cannot be restricted to some sources")
        raw += [Candidate(c.grid, [v], [lp], sources=[o], origins=[o])
                for v, lp, o in zip(c.views, c.logprobs, c.origins) if o in sources]
    nlls = {grid_key(c.grid): c.view_nlls for c in candidates}
    kept = merge(raw, threshold)
    for c in kept:
        c.view_nlls = nlls[grid_key(c.grid)]
    return kept


def rank(candidates: Sequence[Candidate], rule: str) -> list[Candidate]:
    """Fill `score` under `rule`, best first. Without view NLLs (no time to re-score) the vote decides."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}: choose one of {', '.join(RULES)}")
    for c in candidates:
        nll = c.mean_nll
        if rule == "vote" or nll is None:
            c.score = float(c.votes)
        elif rule == "poe":
            c.score = -nll
        else:
            c.score = c.votes - nll
    return sorted(candidates, key=lambda c: (-c.score, -c.votes, -max(c.logprobs, default=-np.inf), grid_key(c.grid)))


def rank_of(truth: np.ndarray, ranked: Sequence[Candidate]) -> int | None:
    """1-based rank of the true grid among ranked candidates, None when no candidate is right."""
    key = grid_key(np.asarray(truth, dtype=np.uint8))
    return next((i + 1 for i, c in enumerate(ranked) if grid_key(c.grid) == key), None)


@dataclass
class RuleResult:
    rule: str
    outputs: int = 0  # test outputs with a known truth
    top2: int = 0  # truth ranked 1 or 2: what the Kaggle metric counts
    found: int = 0  # truth among the candidates at all (the same for every rule)
    ranks: list[int] = field(default_factory=list)  # the truth's rank where found
    per_task: dict[str, list[bool]] = field(default_factory=dict)  # task id -> top-2 hit per test output (pairing)

    def row(self) -> dict:
        n = max(1, self.outputs)
        return {"rule": self.rule, "outputs": self.outputs, "top2": round(self.top2 / n, 4),
                "oracle": round(self.found / n, 4), "top1": round(sum(r == 1 for r in self.ranks) / n, 4),
                "mean_rank": round(float(np.mean(self.ranks)), 2) if self.ranks else None}


def rescore(tasks: Sequence[dict], solutions: dict, rules: Sequence[str] = RULES, *,
            sources: Sequence[str] | None = None, threshold: float | None = None) -> list[RuleResult]:
    """Re-rank the candidates a run logged (log.json `tasks`) under each rule, without the model, and
    report where the true answer lands; with `sources`, only what those sources proposed (`restrict`, votes
    counted under `threshold`: the run's DFS threshold, None under greedy)."""
    results = [RuleResult(rule) for rule in rules]
    for t in tasks:
        truths = solutions.get(t["id"])
        if truths is None:
            continue
        per_test = t.get("candidates") or []
        for i, truth in enumerate(truths):
            cands = [Candidate.from_dict(d) for d in (per_test[i] if i < len(per_test) else [])]
            if sources is not None:
                cands = restrict(cands, sources, threshold)
            for res in results:
                ranked = rank(cands, res.rule)
                r = rank_of(np.asarray(truth, dtype=np.uint8), ranked)
                res.outputs += 1
                res.per_task.setdefault(t["id"], []).append(r is not None and r <= 2)
                if r is not None:
                    res.found += 1
                    res.ranks.append(r)
                    res.top2 += r <= 2
    return results
