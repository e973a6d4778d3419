import numpy as np
import pytest
import torch
from conftest import OracleLM, random_task, ticking

from arc_ttt.core.config import InferenceConfig
from arc_ttt.core.ranking import Candidate, merge, rank, rank_of, rescore
from arc_ttt.core.formats.codec import grid_symbols
from arc_ttt.core.formats.symbols import GridCodec
from arc_ttt.core.views import ViewPlan, sample_views
from arc_ttt.core.formats.grammar import GridGrammar
from arc_ttt.modeling.batching import build_prompt, grid_ids_tensor, grid_logprobs
from arc_ttt.modeling.predict import predict_task
from arc_ttt.modeling import selection
from arc_ttt.core.clock import Deadline, FakeClock
from arc_ttt.modeling.selection import poe_nll

from fixtures.poe_reference import poe_nll_per_view, view_nll  # the former per-view path: the reference


@pytest.fixture(scope="module")
def codec(tokenizer):
    return GridCodec.from_tokenizer(tokenizer)


def grid(*rows):
    return np.array(rows, dtype=np.uint8)


def test_merge_collects_views_and_logprobs_of_identical_grids():
    a, b = grid([1, 2], [3, 4]), grid([1, 2])
    raw = [Candidate(a, ["v1"], [-1.0]), Candidate(b, ["v2"], [-2.0]), Candidate(a.copy(), ["v3"], [-0.5])]
    merged = merge(raw, threshold=0.3)
    assert len(merged) == 2
    np.testing.assert_array_equal(merged[0].grid, a)
    assert merged[0].views == ["v1", "v3"] and merged[0].logprobs == [-1.0, -0.5]
    assert merged[1].views == ["v2"]
    # only paths at or above the threshold vote: p = 0.37 and 0.61 do, p = 0.14 does not
    assert merged[0].votes == 2 and merged[1].votes == 0


def test_rank_is_deterministic_and_follows_the_mode():
    def cands():
        return [Candidate(grid([1]), ["a"], [-1.0], votes=1, view_nlls=[3.0, 5.0]),
                Candidate(grid([2]), ["b", "c"], [-3.0, -2.0], votes=2, view_nlls=[30.0, 30.0]),
                Candidate(grid([3]), ["d"], [-1.0], votes=1, view_nlls=[4.0, 4.0]),
                Candidate(grid([4]), ["e"], [-0.2], votes=1, view_nlls=None)]
    by_vote = [int(c.grid[0, 0]) for c in rank(cands(), "vote")]
    assert by_vote == [2, 4, 1, 3]  # votes, then best log-prob, then the grid
    assert by_vote == [int(c.grid[0, 0]) for c in rank(cands()[::-1], "vote")]
    assert [int(c.grid[0, 0]) for c in rank(cands()[:3], "poe")] == [1, 3, 2]  # lowest NLL first
    both = rank(cands()[:3], "both")
    assert [int(c.grid[0, 0]) for c in both] == [1, 3, 2]
    scores = {int(c.grid[0, 0]): c.score for c in both}
    assert scores[1] == pytest.approx(1 - 4.0) and scores[2] == pytest.approx(2 - 30.0)  # votes - mean NLL
    assert rank_of(grid([3]), both) == 2 and rank_of(grid([9]), both) is None


def naive_nll(model, codec, prompt, grid_in_view):
    """One uncached forward over prompt + answer, full-vocabulary log-probs like decoding."""
    toks = grid_symbols(grid_in_view)
    ids = torch.tensor([[*prompt.tolist(), *[codec.grid_token_ids[k] for k in toks[:-1]]]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:]
    allowed = torch.from_numpy(GridGrammar().masks(toks))
    logp = grid_logprobs(logits, grid_ids_tensor(codec, "cpu"), allowed)
    return -float(logp[torch.arange(len(toks)), torch.tensor(toks)].sum())


def test_poe_matches_uncached_scoring_and_ignores_view_order(tiny_model, codec, small_tasks):
    task = small_tasks[3]
    truth = task.test[0].output
    rng = np.random.default_rng(0)
    grids = [truth, rng.integers(0, 10, (3, 5)).astype(np.uint8), rng.integers(0, 10, (1, 1)).astype(np.uint8),
             np.rot90(truth).copy()]
    views = sample_views(task, 4, seed=2)
    nll = poe_nll(tiny_model, codec, task, 0, grids, views, batch_size=3)
    assert nll.shape == (4, 4)
    expected = [[naive_nll(tiny_model, codec, build_prompt(codec, v.apply(task), 0, 8192), v.apply_grid(g))
                 for v in views] for g in grids]
    np.testing.assert_allclose(nll, expected, rtol=1e-4)
    shuffled = poe_nll(tiny_model, codec, task, 0, grids, views[::-1], batch_size=2)
    np.testing.assert_allclose(shuffled[:, ::-1], nll, rtol=1e-5)
    alone = [poe_nll(tiny_model, codec, task, 0, [g], views, batch_size=1)[0] for g in grids]
    np.testing.assert_allclose(alone, nll, rtol=1e-4)


def scoring_case():
    """A task with non-square grids (transposing views change the prompt's length) and 5 grids to score."""
    rng = np.random.default_rng(1)
    task, truth = random_task(rng, shape=(2, 4))
    return task, [truth, rng.integers(0, 10, (2, 7)).astype(np.uint8), np.rot90(truth).copy(),
            rng.integers(0, 10, (1, 1)).astype(np.uint8), (truth + 3) % 10]


class CountForwards:
    def __init__(self, model):
        self.calls, self.rows = 0, []
        self.handle = model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        self.calls += 1
        self.rows.append(kwargs["input_ids"].shape[0])


def test_batched_scoring_equals_per_view_scoring_in_few_forwards(tiny_model, codec, monkeypatch):
    """All (grid, view) pairs: one left-padded prefill per `batch_size` views, then as few scoring
    forwards as the budgets allow; the numbers are the per-view path's (fp32: rounding only)."""
    task, grids = scoring_case()
    views = sample_views(task, 5, seed=4)
    lengths = {len(build_prompt(codec, v.apply(task), 0, 8192)) for v in views}
    assert len(lengths) > 1  # prompts of different lengths: the left padding is exercised
    reference = poe_nll_per_view(tiny_model, codec, task, 0, grids, views, batch_size=2)
    counter = CountForwards(tiny_model)
    try:
        nll = poe_nll(tiny_model, codec, task, 0, grids, views, batch_size=3)
        assert counter.calls == 4 and counter.rows == [3, 3 * len(grids), 2, 2 * len(grids)]
        np.testing.assert_allclose(nll, reference, rtol=1e-4)
        counter.calls, counter.rows = 0, []
        monkeypatch.setattr(selection, "LOGIT_BUDGET", 2 * 10 * tiny_model.config.vocab_size)  # 2 rows of 10 tokens
        small = poe_nll(tiny_model, codec, task, 0, grids, views, batch_size=3)
        assert counter.rows[0] == 3 and max(counter.rows[1:]) <= 3 and counter.calls > 4
        np.testing.assert_allclose(small, reference, rtol=1e-4)
    finally:
        counter.handle.remove()


def test_batched_scoring_in_bf16_equals_per_view_scoring_up_to_bf16_rounding(tiny_model, codec):
    """bf16 keeps 8 significant bits (relative step 2^-8 = 0.4%); the batched path changes matmul shapes, hence
    rounding, not the computation: the NLLs (sums of ~10-20 log-probs computed in fp32 from bf16 logits)
    agree to a few bf16 steps, and rank the grids the same way."""
    import copy
    model = copy.deepcopy(tiny_model).to(torch.bfloat16)
    task, grids = scoring_case()
    views = sample_views(task, 4, seed=4)
    old = poe_nll_per_view(model, codec, task, 0, grids, views, batch_size=2)
    new = poe_nll(model, codec, task, 0, grids, views, batch_size=4)
    np.testing.assert_allclose(new, old, rtol=2e-2)
    assert (new.mean(1).argsort() == old.mean(1).argsort()).all()


def test_batched_scoring_stops_between_forwards_on_whole_views(tiny_model, codec, monkeypatch):
    task, grids = scoring_case()
    views = sample_views(task, 4, seed=4)
    monkeypatch.setattr(selection, "LOGIT_BUDGET", 2 * 10 * tiny_model.config.vocab_size)

    def score(cap: float):
        """The scores within `cap` seconds when each forward of the model takes one second; the seconds taken."""
        with ticking(tiny_model, FakeClock()) as clock:
            nll = poe_nll(tiny_model, codec, task, 0, grids, views, batch_size=2, deadline=Deadline(clock, cap))
        return nll, clock()

    full, took = score(1e9)
    assert full.shape == (len(grids), 4)
    seen = []
    for cap in range(int(took) + 1):  # the deadline passes after `cap` forwards
        part, spent = score(cap)
        np.testing.assert_allclose(part, full[:, :part.shape[1]], rtol=1e-5)  # whole views, the first ones
        assert spent <= cap + 1  # checked between forwards: one may end past the deadline
        seen.append(part.shape[1])
    assert seen == sorted(seen) and {0, 2, 4} <= set(seen)  # groups of 2 views (batch_size)


@pytest.mark.parametrize("mode", ["vote", "poe", "both"])
def test_true_answer_wins_when_most_views_agree(codec, tokenizer, mode):
    rng = np.random.default_rng(5)
    task, truth = random_task(rng)
    distractor = (truth + 1) % 10
    cfg = InferenceConfig(n_views=8, n_score_views=8, selection=mode, decoding="dfs", batch_size=4)
    views = sample_views(task, 8, seed=0)
    oracle = OracleLM(codec, len(tokenizer))
    for i, v in enumerate(views):  # 5 views see the truth, 3 a distractor
        oracle.teach(v, task.test[0].input, truth if i % 3 else distractor)
    for v in ViewPlan().scoring(task, 8):  # the scoring experts know the truth where not taught yet
        if not any(v.key == g.key for g in views):
            oracle.teach(v, task.test[0].input, truth)
    pred = predict_task(oracle, codec, task, cfg, plan=ViewPlan(seed=0))
    first, second = pred.attempts[0]
    np.testing.assert_array_equal(first, truth)
    np.testing.assert_array_equal(second, distractor)
    best, runner_up = pred.candidates[0]
    assert len(best.views) == 5 and len(runner_up.views) == 3
    assert (best.votes, runner_up.votes) == (5, 3)  # the oracle's paths are likely: each counts
    if mode != "vote":
        assert best.mean_nll < runner_up.mean_nll
    assert best.score > runner_up.score


def test_prediction_splits_its_time_into_prefill_decoding_and_rescoring(tiny_model, codec, small_tasks):
    for decoding in ("greedy", "dfs"):
        cfg = InferenceConfig(n_views=2, n_score_views=2, decoding=decoding, selection="both", max_candidates=2)
        with ticking(tiny_model, FakeClock()) as clock:  # each forward one second
            pred = predict_task(tiny_model, codec, small_tasks[0], cfg, clock=clock)
        phases = (pred.prefill_seconds, pred.decode_seconds, pred.rescore_seconds)
        assert all(t > 0 for t in phases)
        assert sum(phases) == pred.seconds  # every forward in exactly one phase (whole seconds: exact)


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


class LeakyOracle(OracleLM):
    """Splits its mass on every answer token evenly with a token that is never legal in a grid ("x")."""

    def forward(self, *args, **kw):
        out = super().forward(*args, **kw)
        hot = out.logits.max(-1).values > 0
        out.logits[..., self.codec_x] = torch.where(hot, torch.full_like(hot, 12.0, dtype=out.logits.dtype),
                                                    out.logits[..., self.codec_x])
        return out


def test_probabilities_come_from_the_whole_vocabulary(codec, tokenizer):
    """A model putting half its mass on an illegal token: decoding must not renormalise it away."""
    rng = np.random.default_rng(7)
    task, truth = random_task(rng, shape=(2, 3))
    oracle = LeakyOracle(codec, len(tokenizer))
    oracle.codec_x = tokenizer.convert_tokens_to_ids("x")
    views = sample_views(task, 2, seed=0)
    for v in views:
        oracle.teach(v, task.test[0].input, truth)
    n_tokens = len(grid_symbols(truth))  # 2 rows of 3 cells, 2 newlines, the end marker (a transposing view: 10)
    cfg = InferenceConfig(n_views=2, n_score_views=2, selection="both", decoding="greedy", dfs_threshold=0.1)
    pred = predict_task(oracle, codec, task, cfg, plan=ViewPlan(seed=0))
    best = pred.candidates[0][0]
    np.testing.assert_array_equal(best.grid, truth)
    # p = (1/2)^9 or (1/2)^10 per path: far below dfs_threshold, but under greedy decoding each view's answer is
    # its vote (the threshold gates DFS paths only); the same mass is missing when re-scored
    want = sorted(len(grid_symbols(v.apply_grid(truth))) * np.log(0.5) for v in views)
    assert sorted(best.logprobs) == pytest.approx(want, abs=1e-2)
    assert best.votes == 2
    prompt = build_prompt(codec, task, 0, 8192)
    nll = view_nll(oracle, codec, prompt, [grid_symbols(truth)], batch_size=1)
    assert nll[0] == pytest.approx(n_tokens * np.log(2), abs=1e-2)


def test_rescore_ranks_a_logged_run_under_each_rule():
    truth = [[1, 2]]
    lucky = {"grid": [[3, 3]], "views": ["a", "b", "c"], "logprobs": [-0.1, -0.1, -0.1], "votes": 3, "view_nlls": [9.0, 9.0]}
    right = {"grid": truth, "views": ["d"], "logprobs": [-1.0], "votes": 1, "view_nlls": [1.0, 2.0]}
    other = {"grid": [[0]], "views": ["e"], "logprobs": [-2.0], "votes": 0, "view_nlls": [5.0, 5.0]}
    tasks = [{"id": "t1", "candidates": [[lucky, right, other]]}, {"id": "t2", "candidates": [[other]]}]
    rows = {r.rule: r.row() for r in rescore(tasks, {"t1": [truth], "t2": [[[7]]]})}
    assert rows["vote"]["top1"] == 0.0 and rows["vote"]["top2"] == 0.5  # ranked 2nd of 3 by votes
    assert rows["poe"]["top1"] == 0.5 and rows["poe"]["mean_rank"] == 1.0  # lowest mean NLL
    assert rows["both"]["top1"] == 0.5  # 1 - 1.5 beats 3 - 9
    assert all(r["oracle"] == 0.5 and r["outputs"] == 2 for r in rows.values())
    by_task = {r.rule: r.per_task for r in rescore(tasks, {"t1": [truth], "t2": [[[7]]]}, ["vote", "poe"])}
    assert by_task == {"vote": {"t1": [True], "t2": [False]}, "poe": {"t1": [True], "t2": [False]}}


def test_votes_greedy_every_view_dfs_paths_above_the_threshold():
    """Greedy: a view's answer is a vote however unlikely its path; DFS: only paths at or above the threshold."""
    from arc_ttt.core.ranking import Candidate, merge
    g, h = np.array([[1, 2]], dtype=np.uint8), np.array([[3]], dtype=np.uint8)
    raw = [Candidate(g, ["a"], [np.log(0.05)]), Candidate(g, ["b"], [np.log(0.5)]), Candidate(h, ["c"], [np.log(0.01)])]
    greedy = {c.grid.tobytes(): c.votes for c in merge(raw, None)}
    dfs = {c.grid.tobytes(): c.votes for c in merge(raw, 0.2)}
    assert greedy == {g.tobytes(): 2, h.tobytes(): 1}
    assert dfs == {g.tobytes(): 1, h.tobytes(): 0}
