"""Candidate sources: the LLM's decoding is the default one and changes nothing; another source's candidates join
the same pool and are re-scored and ranked with the LLM's, each candidate naming who proposed it."""
import math

import numpy as np
import pytest
import torch
from conftest import OracleLM, random_task

from arc_ttt.core.clock import Deadline
from arc_ttt.core.config import InferenceConfig
from arc_ttt.core.ranking import Candidate, rank, restrict
from arc_ttt.core.formats.symbols import GridCodec
from arc_ttt.core.tasks import Task
from arc_ttt.core.views import ViewPlan
from arc_ttt.modeling.decoding import generate_candidates
from arc_ttt.modeling.predict import predict_task
from arc_ttt.modeling.selection import select
from arc_ttt.modeling.sources import LLMSource

CFG = InferenceConfig(n_views=8, n_score_views=4, decoding="dfs", selection="both", batch_size=4)


@pytest.fixture(scope="module")
def codec(tokenizer):
    return GridCodec.from_tokenizer(tokenizer)


@pytest.fixture(scope="module")
def setup(codec, tokenizer):
    """A two-test-input task and an oracle LM: per test input, 5 generation views decode the truth, 3 a
    distractor; the scoring views know the truth. (oracle, task, truths)"""
    rng = np.random.default_rng(5)
    (first, truth0), (second, truth1) = random_task(rng), random_task(rng)
    task = Task("two", first.train, (first.test[0], second.test[0]))
    oracle = OracleLM(codec, len(tokenizer))
    views = ViewPlan().generation(task, CFG.n_views)
    for pair, truth in zip(task.test, (truth0, truth1)):
        for i, v in enumerate(views):
            oracle.teach(v, pair.input, truth if i % 3 else (truth + 1) % 10)
        for v in ViewPlan().scoring(task, CFG.n_score_views):
            if not any(v.key == g.key for g in views):
                oracle.teach(v, pair.input, truth)
    return oracle, task, (truth0, truth1)


def evidence(ranked):
    """Everything the ranking decides on, and its outcome, per candidate in rank order (sources aside)."""
    return [(c.grid.shape, c.grid.tobytes(), c.views, c.logprobs, c.votes, c.view_nlls, c.score) for c in ranked]


class FixedSource:
    """A second model's stand-in: proposes given grids for each test input, as decoded under the first view."""

    def __init__(self, name, grids, logprob):
        self.name, self.grids, self.logprob, self.calls = name, grids, logprob, []

    def propose(self, task, test_index, views, cfg, deadline, times):
        self.calls.append((test_index, [v.key for v in views]))
        return [Candidate(g, [views[0].key], [self.logprob]) for g in self.grids[test_index]]


def test_the_llm_source_is_the_default_and_changes_nothing(setup, codec):
    """predict_task alone, with the LLM source named, and decoding + selection called directly: the same
    candidates, votes, NLLs, scores and attempts (the same calls on the same inputs: exactly equal)."""
    oracle, task, truths = setup
    default = predict_task(oracle, codec, task, CFG, plan=ViewPlan(seed=0))
    named = predict_task(oracle, codec, task, CFG, sources=[LLMSource(oracle, codec)], plan=ViewPlan(seed=0))
    views = ViewPlan().generation(task, CFG.n_views)
    with torch.inference_mode():
        direct = [select(oracle, codec, task, ti, generate_candidates(oracle, codec, task, ti, views, CFG, Deadline()),
                         CFG, Deadline(), plan=ViewPlan(seed=0)) for ti in range(task.n_test)]
    for ranked, truth in zip(direct, truths):  # the truth first (5 votes, likelier), the distractor second
        assert [c.votes for c in ranked] == [5, 3] and ranked[0].score > ranked[1].score
        np.testing.assert_array_equal(ranked[0].grid, truth)
    for pred in (default, named):
        assert [evidence(r) for r in pred.candidates] == [evidence(r) for r in direct]
        assert all(c.sources == ["llm"] for ranked in pred.candidates for c in ranked)
        for (a1, a2), ranked in zip(pred.attempts, direct):
            np.testing.assert_array_equal(a1, ranked[0].grid)
            np.testing.assert_array_equal(a2, ranked[1].grid)
        assert pred.stopped_by == "done" and pred.views == CFG.n_views


def test_a_second_source_joins_the_pool_and_is_ranked_with_the_llms(setup, codec):
    """A grid the LLM also found gains the other source's vote and names both; a grid only the other source
    found is re-scored by the LLM under the scoring views and ranked among the rest by the same rule."""
    oracle, task, _ = setup
    alone = predict_task(oracle, codec, task, CFG, plan=ViewPlan(seed=0))
    shared = alone.candidates[0][-1]  # the LLM's second choice, which the extra vote does not lift
    novel = np.full((3, 3), 7, dtype=np.uint8)
    assert all(c.grid.shape != novel.shape for ranked in alone.candidates for c in ranked)
    other = FixedSource("grid", {0: [shared.grid.copy(), novel], 1: [novel]}, math.log(0.5))
    pooled = predict_task(oracle, codec, task, CFG, sources=[LLMSource(oracle, codec), other], plan=ViewPlan(seed=0))
    keys = [v.key for v in ViewPlan().generation(task, CFG.n_views)]
    assert other.calls == [(0, keys), (1, keys)]  # once per test input, under the prediction's views
    for ti, ranked in enumerate(pooled.candidates):
        by_grid = {(c.grid.shape, c.grid.tobytes()): c for c in ranked}
        new = by_grid.pop((novel.shape, novel.tobytes()))
        assert new.sources == ["grid"] and new.views == [keys[0]] and new.votes == 1  # p = 0.5 >= the threshold
        assert len(new.view_nlls) == CFG.n_score_views and new.score == pytest.approx(1 - new.mean_nll)
        before = {(c.grid.shape, c.grid.tobytes()): c for c in alone.candidates[ti]}
        assert by_grid.keys() == before.keys()
        for key, c in by_grid.items():
            was = before[key]
            if ti == 0 and key == (shared.grid.shape, shared.grid.tobytes()):
                assert c.sources == ["llm", "grid"] and c.views == was.views + [keys[0]]
                assert c.votes == was.votes + 1 and c.logprobs == was.logprobs + [math.log(0.5)]
            else:
                assert (c.sources, c.views, c.logprobs, c.votes) == (["llm"], was.views, was.logprobs, was.votes)
        scores = [c.score for c in ranked]
        assert scores == sorted(scores, reverse=True) and ranked[-1] is new  # a grid nobody else knows: unlikely
        np.testing.assert_array_equal(pooled.attempts[ti][0], alone.attempts[ti][0])


def test_a_pooled_run_restricted_to_one_source_is_that_source_alone(setup, codec):
    """issue 37's table from one run: the pool with both sources, restricted to the LLM's copies, ranks as the LLM
    alone did (same candidates, views, votes and order; the NLLs up to float32 batching); restricted to the other
    source, its grids with its own votes. Each source's seconds are recorded apart."""
    oracle, task, _ = setup
    alone = predict_task(oracle, codec, task, CFG, plan=ViewPlan(seed=0))
    shared = alone.candidates[0][-1]
    novel = np.full((3, 3), 7, dtype=np.uint8)
    other = FixedSource("grid", {0: [shared.grid.copy(), novel], 1: [novel]}, math.log(0.05))  # under the threshold
    pooled = predict_task(oracle, codec, task, CFG, sources=[LLMSource(oracle, codec), other], plan=ViewPlan(seed=0))
    assert set(pooled.source_seconds) == {"llm", "grid"} and all(s >= 0 for s in pooled.source_seconds.values())
    for ti in range(task.n_test):
        llm = rank(restrict(pooled.candidates[ti], ["llm"], CFG.vote_threshold), CFG.selection)
        assert [(c.grid.tobytes(), c.views, c.logprobs, c.votes) for c in llm] == \
               [(c.grid.tobytes(), c.views, c.logprobs, c.votes) for c in alone.candidates[ti]]
        for a, b in zip(llm, alone.candidates[ti]):
            assert a.view_nlls == pytest.approx(b.view_nlls, rel=1e-5) and a.sources == ["llm"]
        grid = restrict(pooled.candidates[ti], ["grid"], CFG.vote_threshold)
        assert sorted(c.grid.tobytes() for c in grid) == sorted(g.tobytes() for g in other.grids[ti])
        assert all(c.votes == 0 and c.sources == c.origins == ["grid"] and c.view_nlls for c in grid)
