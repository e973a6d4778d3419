import numpy as np
import pytest
import torch

from arc_ttt.core.views import sample_views
from arc_ttt.core.config import InferenceConfig
from arc_ttt.core.textformat import GridCodec, grid_symbols
from arc_ttt.modeling.decoding import Candidate, GridGrammar, build_prompt, restricted_logprobs
from arc_ttt.modeling.predict import predict_task
from arc_ttt.modeling.selection import merge_candidates, poe_nll, rank
from test_inference import OracleLM, random_task


@pytest.fixture(scope="module")
def codec(tokenizer):
    return GridCodec.from_tokenizer(tokenizer)


def grid(*rows):
    return np.array(rows, dtype=np.uint8)


def test_merge_collects_views_and_logprobs_of_identical_grids():
    a, b = grid([1, 2], [3, 4]), grid([1, 2])
    raw = [Candidate(a, ["v1"], [-1.0]), Candidate(b, ["v2"], [-2.0]), Candidate(a.copy(), ["v3"], [-0.5])]
    merged = merge_candidates(raw)
    assert len(merged) == 2
    np.testing.assert_array_equal(merged[0].grid, a)
    assert merged[0].views == ["v1", "v3"] and merged[0].logprobs == [-1.0, -0.5]
    assert merged[1].views == ["v2"]


def test_rank_is_deterministic_and_follows_the_mode():
    def cands():
        return [Candidate(grid([1]), ["a"], [-1.0], poe_nll=4.0),
                Candidate(grid([2]), ["b", "c"], [-3.0, -2.0], poe_nll=30.0),
                Candidate(grid([3]), ["d"], [-1.0], poe_nll=4.0),
                Candidate(grid([4]), ["e"], [-0.2], poe_nll=None)]
    by_vote = [int(c.grid[0, 0]) for c in rank(cands(), "vote")]
    assert by_vote == [2, 4, 1, 3]  # votes, then best log-prob, then the grid
    assert by_vote == [int(c.grid[0, 0]) for c in rank(cands()[::-1], "vote")]
    assert [int(c.grid[0, 0]) for c in rank(cands()[:3], "poe")] == [1, 3, 2]  # lowest NLL first
    both = rank(cands()[:3], "both", n_score_views=2)
    assert [int(c.grid[0, 0]) for c in both] == [1, 3, 2]
    scores = {int(c.grid[0, 0]): c.score for c in both}
    assert scores[1] == pytest.approx(1 - 4.0 / 2) and scores[2] == pytest.approx(2 - 30.0 / 2)


def naive_nll(model, codec, prompt, grid_in_view):
    """One uncached forward over prompt + answer, restricted and renormalised like decoding."""
    toks = grid_symbols(grid_in_view)
    ids = torch.tensor([[*prompt.tolist(), *[codec.grid_token_ids[k] for k in toks[:-1]]]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:, list(codec.grid_token_ids)]
    allowed = torch.from_numpy(GridGrammar().masks(toks))
    logp = restricted_logprobs(logits, allowed)
    return -float(logp[torch.arange(len(toks)), torch.tensor(toks)].sum())


def test_poe_matches_uncached_scoring_and_ignores_view_order(tiny_model, codec, small_tasks):
    task = small_tasks[3]
    truth = task.test[0].output
    rng = np.random.default_rng(0)
    grids = [truth, rng.integers(0, 10, (3, 5)).astype(np.uint8), rng.integers(0, 10, (1, 1)).astype(np.uint8),
             np.rot90(truth).copy()]
    views = sample_views(task, 4, seed=2)
    total, scored = poe_nll(tiny_model, codec, task, 0, grids, views, batch_size=3)
    assert scored == 4
    expected = [sum(naive_nll(tiny_model, codec, build_prompt(codec, v.apply(task), 0, 8192), v.apply_grid(g))
                    for v in views) for g in grids]
    np.testing.assert_allclose(total, expected, rtol=1e-4)
    shuffled, _ = poe_nll(tiny_model, codec, task, 0, grids, views[::-1], batch_size=2)
    np.testing.assert_allclose(shuffled, total, rtol=1e-5)
    alone = [poe_nll(tiny_model, codec, task, 0, [g], views, batch_size=1)[0][0] for g in grids]
    np.testing.assert_allclose(alone, total, rtol=1e-4)


@pytest.mark.parametrize("mode", ["vote", "poe", "both"])
def test_true_answer_wins_when_most_views_agree(codec, tokenizer, mode):
    rng = np.random.default_rng(5)
    task, truth = random_task(rng)
    distractor = (truth + 1) % 10
    cfg = InferenceConfig(n_views=8, n_score_views=8, selection=mode, decoding="dfs", batch_size=4)
    views = sample_views(task, 8, seed=0, keep_background=cfg.keep_background)
    oracle = OracleLM(codec, len(tokenizer))
    for i, v in enumerate(views):  # 5 views see the truth, 3 a distractor
        oracle.teach(v, task.test[0].input, truth if i % 3 else distractor)
    pred = predict_task(oracle, codec, task, cfg, seed=0)
    first, second = pred.attempts[0]
    np.testing.assert_array_equal(first, truth)
    np.testing.assert_array_equal(second, distractor)
    best, runner_up = pred.candidates[0]
    assert len(best.views) == 5 and len(runner_up.views) == 3
    if mode != "vote":
        assert best.poe_nll < runner_up.poe_nll
    assert best.score > runner_up.score


def test_missing_attempts_are_none(codec, tokenizer):
    rng = np.random.default_rng(6)
    task, truth = random_task(rng)
    oracle = OracleLM(codec, len(tokenizer))
    views = sample_views(task, 3, seed=0)
    for v in views:
        oracle.teach(v, task.test[0].input, truth)
    pred = predict_task(oracle, codec, task, InferenceConfig(n_views=3, n_score_views=2))
    assert len(pred.candidates[0]) == 1
    np.testing.assert_array_equal(pred.attempts[0][0], truth)
    assert pred.attempts[0][1] is None
