import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import ticking, tiny_llama
from torch.optim.optimizer import register_optimizer_step_pre_hook

from arc_ttt.core.clock import FakeClock
from arc_ttt.modeling import figures, lora, runtime, ttt
from arc_ttt.core.views import ViewPlan
from arc_ttt.core.tasks import Pair
from arc_ttt.core.formats.codec import Encoded
from arc_ttt.core.formats.codec import pair_tokens
from arc_ttt.core.formats.symbols import GridCodec

EXACT = ttt.TTTConfig(autocast="off", warmup=0.0)


@pytest.fixture
def codec(tokenizer):
    return GridCodec.from_tokenizer(tokenizer)


@pytest.fixture
def model(tokenizer):
    """A private tiny Llama with fresh adapters (attaching mutates the model: never the shared fixture)."""
    return lora.attach(tiny_llama(tokenizer), lora.LoraSettings(r=8, alpha=16))


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def loss_grads(model, seqs: list[Encoded], pad_id: int) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = ttt.batch_loss(model, ttt.collate(seqs, pad_id, torch.device("cpu")))
    loss.backward()
    return loss.item(), grads(model)


# ---------------------------------------------------------------------------- data

def test_whole_task_sequences_cover_views(small_tasks, codec):
    task = small_tasks[0]
    data = ttt.build_sequences(task, codec, ttt.TTTConfig(), n=8, plan=ViewPlan(seed=3))
    assert not data.inference_only and "dropped" not in data.note
    assert len(data.sequences) == 8
    assert len({s.ids.tobytes() for s in data.sequences}) > 1  # views differ
    for s in data.sequences:
        assert s.ids[0] == codec.bos_id
        # the targets are every demo's output (cells, a newline per row, end marker), whatever the orientation
        n = int(s.loss_mask.sum())
        assert sum(p.output.size + min(p.output.shape) + 1 for p in task.train) <= n
        assert n <= sum(p.output.size + max(p.output.shape) + 1 for p in task.train)
        targets = s.ids[s.loss_mask]
        assert set(targets.tolist()) <= set(codec.grid_token_ids)
        assert (targets == codec.end_id).sum() == len(task.train)
    assert ttt.build_sequences(task, codec, ttt.TTTConfig(), n=8, plan=ViewPlan(seed=3)).sequences[5].ids.tolist() == \
        data.sequences[5].ids.tolist()  # deterministic


def test_leave_one_out_sequences(small_tasks, codec):
    task = next(t for t in small_tasks if len(t.train) >= 3)
    cfg = ttt.TTTConfig(leave_one_out=True, whole_task=False, loss_on="last")
    data = ttt.build_sequences(task, codec, cfg, n=6)
    assert len(data.sequences) == 6
    for s in data.sequences:
        # loss only on the query (the held-out demo), which comes last and is complete
        targets = np.flatnonzero(s.loss_mask)
        assert s.ids[targets[-1]] == codec.end_id and targets[-1] == len(s) - 1
        assert (s.ids[s.loss_mask] == codec.end_id).sum() == 1
    # the query of sequence j is original demo j % k, seen through view j
    views = ViewPlan().ttt(replace(task, test=()), 6)  # TTT's own stream, drawn on the demos
    for j, (s, v) in enumerate(zip(data.sequences, views)):
        want = codec.encode_grid(v.apply_grid(task.train[j % len(task.train)].output)) + [codec.end_id]
        assert s.ids[-len(want):].tolist() == want
    both = ttt.build_sequences(task, codec, replace(cfg, whole_task=True), n=6)
    assert len(both.sequences) == 12


def test_length_cap_drops_demos(small_tasks, codec):
    task = max(small_tasks, key=lambda t: len(t.train))
    costs = sorted(pair_tokens(p) for p in task.train)
    cap = 1 + sum(costs[:-1])  # everything but the costliest pair fits
    data = ttt.build_sequences(task, codec, ttt.TTTConfig(max_len=cap), n=16)
    assert not data.inference_only and "dropped 1 demo" in data.note
    assert data.sequences and all(len(s) <= cap for s in data.sequences)  # under every D8 orientation
    assert all((s.ids == codec.end_id).sum() == len(task.train) - 1 for s in data.sequences)


def test_length_cap_under_transposes():
    """A wide, flat grid costs more tokens once transposed: the cap must hold for every view."""
    wide = Pair(np.zeros((1, 12), np.uint8), np.zeros((1, 12), np.uint8))
    from arc_ttt.core.tasks import Task
    from conftest import char_tokenizer

    codec = GridCodec.from_tokenizer(char_tokenizer())
    task = Task("wide", (wide, wide), (Pair(wide.input, None),))
    cap = 1 + 2 * pair_tokens(wide)
    data = ttt.build_sequences(task, codec, ttt.TTTConfig(max_len=cap), n=8)
    assert max(len(s) for s in data.sequences) == cap  # transposed views hit the cap exactly
    assert "dropped" not in data.note


def test_nothing_fits_is_inference_only(small_tasks, codec, model):
    task = small_tasks[0]
    data = ttt.build_sequences(task, codec, ttt.TTTConfig(max_len=min(pair_tokens(p) for p in task.train)), n=4)
    assert data.inference_only and data.sequences == [] and "inference only" in data.note
    result = ttt.train(model, data, EXACT)
    assert result.steps == 0 and result.stopped_by == "done"


def test_length_grouped_batches():
    rng = np.random.default_rng(0)
    lengths = rng.choice(np.arange(50, 900), size=64, replace=False).tolist()  # distinct
    batches = ttt.make_batches(lengths, batch_size=4, epochs=1.0, seed=0)
    assert sorted(itertools.chain(*batches)) == list(range(64))  # one epoch: every sequence once
    order = sorted(lengths)
    for b in batches:  # each batch is a run of neighbours in length order
        ls = sorted(lengths[i] for i in b)
        start = order.index(ls[0])
        assert ls == order[start:start + len(ls)]
    shuffled = [list(c) for c in np.array_split(rng.permutation(64), 16)]
    assert ttt.padding_fraction(lengths, batches) < 0.1 < ttt.padding_fraction(lengths, shuffled)
    assert len({tuple(b) for b in batches}) == len(batches)
    two_and_half = ttt.make_batches(lengths, batch_size=1, epochs=2.5, seed=1)
    counts = np.bincount(list(itertools.chain(*two_and_half)), minlength=64)
    assert len(two_and_half) == 160 and set(counts.tolist()) <= {2, 3}


# ---------------------------------------------------------------------------- the loss and its mask

def test_loss_matches_reference_masked_cross_entropy(model, small_tasks, codec):
    seqs = ttt.build_sequences(small_tasks[1], codec, ttt.TTTConfig(), n=3).sequences
    loss, got = loss_grads(model, seqs, codec.pad_id)
    model.zero_grad(set_to_none=True)
    total = 0.0
    for s in seqs:  # independent reference: full logits, log-softmax, pick the targets by the mask
        ids = torch.from_numpy(s.ids)[None]
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
        nll = -logp.gather(1, ids[0, 1:, None])[:, 0]
        total = total + nll[torch.from_numpy(s.loss_mask[1:])].sum()
    total.backward()
    assert loss == pytest.approx(total.item(), rel=1e-5)
    for n, g in grads(model).items():
        # fp32 sums over hundreds of tokens in another order: the error scales with the tensor, so compare
        # against its largest element (an absolute 1e-7 failed on a busy machine, 7.3e-7 off on 1 of 512)
        assert (got[n] - g).abs().max() <= 1e-4 * g.abs().max() + 1e-9, n


def test_tokens_outside_the_mask_contribute_no_gradient(model, small_tasks, codec):
    """Append non-target tokens (a junk query) and flip masked-out tokens: the gradient must not move."""
    s = ttt.build_sequences(small_tasks[2], codec, ttt.TTTConfig(), n=1).sequences[0]
    _, base = loss_grads(model, [s], codec.pad_id)

    def assert_same(a, b):  # equal up to float rounding (a longer sequence changes the kernels' blocking)
        for n in b:
            assert (a[n] - b[n]).abs().max() <= 1e-4 * b[n].abs().max() + 1e-9, n

    junk = np.array([codec.input_id, *codec.digit_ids[:5], codec.newline_id, codec.output_id, codec.digit_ids[7]])
    longer = Encoded(np.concatenate([s.ids, junk]), np.concatenate([s.loss_mask, np.zeros(len(junk), bool)]))
    _, with_junk = loss_grads(model, [longer], codec.pad_id)
    assert_same(with_junk, base)
    # padding next to a shorter sequence in the same batch must not leak into its gradient either
    short = Encoded(s.ids[:40], s.loss_mask[:40])
    _, alone = loss_grads(model, [short], codec.pad_id)
    _, pair = loss_grads(model, [short, longer], codec.pad_id)
    _, other = loss_grads(model, [longer], codec.pad_id)
    assert_same(pair, {n: alone[n] + other[n] for n in alone})
    # and making a target a non-target changes the gradient (the check above can fail)
    fewer = Encoded(s.ids, s.loss_mask & (np.arange(len(s)) < len(s) - 5))
    _, changed = loss_grads(model, [fewer], codec.pad_id)
    with pytest.raises(AssertionError):
        assert_same(changed, base)


def test_answer_head_loss_normalises_over_the_answer_tokens(model, small_tasks, codec):
    """The cut head's loss and gradients equal the whole model's, renormalised over the answer tokens."""
    data = ttt.build_sequences(small_tasks[1], codec, ttt.TTTConfig(loss_vocab="answer"), n=3)
    assert data.vocab == tuple(codec.grid_token_ids)
    head = model.get_output_embeddings()
    model.zero_grad(set_to_none=True)
    with ttt.answer_head(model, data.vocab) as label_map:
        assert model.get_output_embeddings().out_features == len(codec.grid_token_ids) < head.out_features
        loss = ttt.batch_loss(model, ttt.collate(data.sequences, codec.pad_id, torch.device("cpu"), label_map))
        loss.backward()
    got = grads(model)
    assert model.get_output_embeddings() is head
    model.zero_grad(set_to_none=True)
    vocab = torch.tensor(sorted(codec.grid_token_ids))
    total = 0.0
    for s in data.sequences:  # reference: the whole head, log-softmax over the answer columns only
        ids = torch.from_numpy(s.ids)[None]
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1, vocab].float(), -1)
        target = torch.searchsorted(vocab, ids[0, 1:])
        mask = torch.from_numpy(s.loss_mask[1:])
        total = total + -logp[mask].gather(1, target[mask, None]).sum()
    total.backward()
    assert loss.item() == pytest.approx(total.item(), rel=1e-5)
    for n, g in grads(model).items():  # fp32 sums in another order: compare against the tensor's largest element
        assert (got[n] - g).abs().max() <= 1e-4 * g.abs().max() + 1e-9, n
    # the whole vocabulary gives another loss (the check above can fail)
    whole = ttt.batch_loss(model, ttt.collate(data.sequences, codec.pad_id, torch.device("cpu")))
    assert whole.item() > total.item() * (1 + 1e-3)


def test_answer_head_covers_every_target(tokenizer, model, small_tasks, codec):
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(loss_vocab="answer"), n=2)
    assert ttt.target_ids(data.sequences) <= set(codec.grid_token_ids)
    with ttt.answer_head(model, None) as label_map:  # no vocabulary: the whole head
        assert label_map is None and model.get_output_embeddings().out_features == tokenizer.vocab_size


def test_answer_head_with_a_lora_adapter_on_the_head(tokenizer, small_tasks, codec):
    """A LoRA-adapted head (lora.train_lm_head, the Kaggle configs) is cut too: its A and B get the gradients of
    the renormalised loss, B only in the answer rows."""
    torch.manual_seed(0)
    m = lora.attach(tiny_llama(tokenizer), lora.LoraSettings(r=4, alpha=8, train_lm_head=True))
    head = m.get_output_embeddings()
    with torch.no_grad():  # B starts at zero: give the adapter something to say
        for p in head.lora_B.parameters():
            p.normal_(0, 0.5)
    data = ttt.build_sequences(small_tasks[1], codec, ttt.TTTConfig(loss_vocab="answer"), n=2)
    named = dict(m.named_parameters())
    a_name = next(n for n in named if "lm_head.lora_A" in n)
    b_name = next(n for n in named if "lm_head.lora_B" in n)
    m.zero_grad(set_to_none=True)
    with ttt.answer_head(m, data.vocab) as label_map:
        assert label_map is not None and m.get_output_embeddings() is not head
        ttt.batch_loss(m, ttt.collate(data.sequences, codec.pad_id, torch.device("cpu"), label_map)).backward()
    got = grads(m)
    assert m.get_output_embeddings() is head
    m.zero_grad(set_to_none=True)
    vocab = torch.tensor(sorted(codec.grid_token_ids))
    total = 0.0
    for s in data.sequences:  # reference: the whole adapted head, log-softmax over the answer columns
        ids = torch.from_numpy(s.ids)[None]
        logp = torch.log_softmax(m(input_ids=ids).logits[0, :-1, vocab].float(), -1)
        mask = torch.from_numpy(s.loss_mask[1:])
        total = total + -logp[mask].gather(1, torch.searchsorted(vocab, ids[0, 1:])[mask, None]).sum()
    total.backward()
    for n, g in grads(m).items():
        assert (got[n] - g).abs().max() <= 1e-4 * g.abs().max() + 1e-9, n
    assert got[a_name].abs().sum() > 0
    outside = torch.ones(tokenizer.vocab_size, dtype=torch.bool)
    outside[vocab] = False
    assert got[b_name][vocab].abs().sum() > 0 and got[b_name][outside].abs().sum() == 0
    result = ttt.train(m, data, EXACT)
    assert result.steps == 2 and all(np.isfinite(result.losses)) and m.get_output_embeddings() is head


def test_answer_head_trains_the_head_rows_when_the_head_weight_trains(tokenizer, small_tasks, codec):
    """Full fine-tuning (every weight trains) through the cut head: the head's answer rows get the renormalised
    loss's gradient, the other rows none, as with the whole head restricted to the answer columns."""
    torch.manual_seed(0)
    m = tiny_llama(tokenizer)
    m.train()
    head = m.get_output_embeddings()
    data = ttt.build_sequences(small_tasks[1], codec, ttt.TTTConfig(loss_vocab="answer"), n=2)
    m.zero_grad(set_to_none=True)
    with ttt.answer_head(m, data.vocab) as label_map:
        assert label_map is not None
        ttt.batch_loss(m, ttt.collate(data.sequences, codec.pad_id, torch.device("cpu"), label_map)).backward()
    got = head.weight.grad.clone()
    m.zero_grad(set_to_none=True)
    vocab = torch.tensor(sorted(codec.grid_token_ids))
    total = 0.0
    for s in data.sequences:  # reference: the whole head, log-softmax over the answer columns
        ids = torch.from_numpy(s.ids)[None]
        logp = torch.log_softmax(m(input_ids=ids).logits[0, :-1, vocab].float(), -1)
        mask = torch.from_numpy(s.loss_mask[1:])
        total = total + -logp[mask].gather(1, torch.searchsorted(vocab, ids[0, 1:])[mask, None]).sum()
    total.backward()
    want = head.weight.grad
    assert (got - want).abs().max() <= 1e-4 * want.abs().max()  # fp32, the same terms in another order
    outside = torch.ones(tokenizer.vocab_size, dtype=torch.bool)
    outside[vocab] = False
    assert got[vocab].abs().sum() > 0 and got[outside].abs().sum() == 0


def test_train_on_the_answer_head_matches_the_renormalised_loss(tokenizer, small_tasks, codec):
    """A first step's loss is the renormalised one, below the whole-vocabulary loss; the head is whole after."""
    data = ttt.build_sequences(small_tasks[1], codec, ttt.TTTConfig(loss_vocab="answer", batch_size=2), n=2)
    full = replace(data, vocab=None)
    first = {}
    for name, d in (("answer", data), ("full", full)):
        torch.manual_seed(0)
        m = lora.attach(tiny_llama(tokenizer), lora.LoraSettings(r=8, alpha=16))
        first[name] = ttt.train(m, d, replace(EXACT, batch_size=2), max_steps=1).losses[0]
        assert m.get_output_embeddings().out_features == tokenizer.vocab_size
    assert first["answer"] < first["full"]


def test_mean_output_nll_independent_of_batching(model, small_tasks, codec):
    seqs = ttt.build_sequences(small_tasks[3], codec, ttt.TTTConfig(), n=6).sequences
    seqs += ttt.build_sequences(small_tasks[4], codec, ttt.TTTConfig(), n=3).sequences
    one = figures.mean_output_nll(model, seqs, batch_size=1, autocast="off")
    four = figures.mean_output_nll(model, seqs, batch_size=4, autocast="off")
    assert one == pytest.approx(four, rel=1e-5)
    assert np.log(20) * 0.5 < one < np.log(20) * 2  # a random model is near-uniform over 20 tokens


# ---------------------------------------------------------------------------- the loop

@pytest.mark.parametrize("loss_vocab", ["answer", "full"])
def test_loss_falls_on_a_real_task(tokenizer, small_tasks, codec, loss_vocab):
    # a random base model learns mostly through the output layer, so adapt lm_head too
    model = lora.attach(tiny_llama(tokenizer), lora.LoraSettings(r=8, alpha=16, train_lm_head=True))
    task = small_tasks[5]
    data = ttt.build_sequences(task, codec, ttt.TTTConfig(loss_vocab=loss_vocab), n=16)

    def nll() -> float:  # over the vocabulary the loss normalises over
        return figures.mean_output_nll(model, data.sequences, vocab=data.vocab)

    before = nll()
    cfg = ttt.TTTConfig(lr=3e-3, batch_size=2)
    result = ttt.train(model, data, cfg, epochs=3)
    after = nll()
    assert result.steps == 24 and result.stopped_by == "done" and len(result.losses) == 24
    assert result.tokens == 3 * sum(len(s) for s in data.sequences)
    assert after < 0.9 * before  # a clear fall (the answer vocabulary starts near uniform, ln 12 = 2.48)
    assert np.mean(result.losses[-4:]) < np.mean(result.losses[:4])
    assert not model.training


def test_time_cap_stops_early_with_fake_clock(model, small_tasks, codec):
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=20)
    assert EXACT.grad_accum == 1  # one forward per step
    with ticking(model, FakeClock()) as clock:  # each forward one second
        result = ttt.train(model, data, EXACT, time_cap=5.0, clock=clock)
    # checked before each step: the steps starting at t=0..4 run, the one that would start at t=5 does not
    assert result.stopped_by == "time_cap" and result.steps == 5 and len(result.losses) == 5
    assert result.seconds == 5.0
    assert not model.training


def test_max_steps_budget(model, small_tasks, codec):
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=10)
    assert ttt.train(model, data, EXACT, max_steps=3).stopped_by == "max_steps"
    result = ttt.train(model, data.sequences, EXACT, max_steps=100)
    assert result.steps == 10 and result.stopped_by == "done"


def test_gradient_accumulation_equals_bigger_batch(tokenizer, small_tasks, codec):
    """The gradient the optimizer steps on is the same, to fp32 summation order, whether the step's two sequences
    come as one batch or as two accumulated micro-batches. Compared before AdamW, not after: its first step is
    lr * g / (|g| + eps), whose slope eps / (|g| + eps)^2 turns a rounding-sized difference in a near-zero gradient
    element into one of lr's size, and the rounding differs with the CPU's kernels (AVX2, AVX512, AMX)."""
    seqs = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=2).sequences
    assert len(seqs[0]) == len(seqs[1])  # same length: no padding, so both batchings see the same tokens
    stepped_on = []

    def capture(opt, args, kwargs):
        stepped_on.append([p.grad.detach().clone() for g in opt.param_groups for p in g["params"]])

    hook = register_optimizer_step_pre_hook(capture)
    try:
        for bs, ga in [(2, 1), (1, 2)]:
            m = lora.attach(tiny_llama(tokenizer), lora.LoraSettings(r=8))
            torch.manual_seed(0)
            for p in m.parameters():  # make lora_B non-zero so every adapter tensor gets a gradient
                if p.requires_grad:
                    torch.nn.init.normal_(p, std=0.02)
            r = ttt.train(m, seqs, replace(EXACT, batch_size=bs, grad_accum=ga, lr=1e-2))
            assert r.steps == 1
    finally:
        hook.remove()
    whole, accumulated = stepped_on
    assert len(whole) == len(accumulated) > 0
    scale = max(g.abs().max().item() for g in whole)
    assert scale > 0 and all(g.abs().max() > 0 for g in whole)  # every adapter tensor got a gradient
    for a, b in zip(whole, accumulated):
        # fp32 sums over a few hundred tokens and two batch elements, in another order: 1e-5 of the largest element
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * scale)


def test_checkpointing_and_half_precision_autocast_run(model, small_tasks, codec):
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=2)
    snap = lora.snapshot(model)
    plain = ttt.train(model, data, EXACT)
    lora.restore(model, snap)
    ckpt = ttt.train(model, data, replace(EXACT, grad_checkpointing=True))
    assert ckpt.losses == pytest.approx(plain.losses, rel=1e-5)
    assert not model.base_model.model.is_gradient_checkpointing
    lora.restore(model, snap)
    bf16 = ttt.train(model, data, replace(EXACT, autocast="bf16"))
    assert bf16.losses == pytest.approx(plain.losses, rel=0.05)
    lora.restore(model, snap)
    fp16 = ttt.train(model, data, replace(EXACT, autocast="fp16"))  # with loss scaling
    assert fp16.losses == pytest.approx(plain.losses, rel=0.05)
    assert any(not torch.equal(p, snap.tensors[n]) for n, p in model.named_parameters() if p.requires_grad)


F16, F32 = torch.float16, torch.float32


def test_fp16_weights_train_with_loss_scaling_on_cpu(tokenizer, small_tasks, codec, monkeypatch):
    """Colab's old spelling (float16 weights, autocast off) now trains with the GradScaler on, on CPU too:
    finite losses, fp32 adapters over the fp16 base, and the adapters move."""
    made = []

    class Spy(torch.amp.GradScaler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(torch.amp, "GradScaler", Spy)
    model = lora.attach(tiny_llama(tokenizer).to(F16),
                        lora.LoraSettings(r=8, train_embeddings=True, train_lm_head=True))
    assert runtime.weight_dtype(model) == F16
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {F32}  # peft's fp32 master adapters
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=4)
    result = ttt.train(model, data, replace(EXACT, lr=1e-2, autocast="off"))
    assert len(made) == 1 and made[0].is_enabled()
    assert result.steps == 4 and all(np.isfinite(result.losses))
    moved = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert any("embed_tokens.lora_" in n for n in moved) and any("lm_head.lora_" in n for n in moved)
    assert any("_proj.lora_" in n for n in moved)


def test_out_of_memory_propagates_and_leaves_eval_mode(model, small_tasks, codec):
    """The orchestrator catches CUDA OOM and retries smaller: simulate one mid-step on CPU."""
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(loss_vocab="answer"), n=4)
    calls = itertools.count()

    def explode(module, args, output):
        if next(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    handle = model.base_model.model.model.layers[0].register_forward_hook(explode)
    try:
        with pytest.raises(torch.OutOfMemoryError):
            ttt.train(model, data, EXACT)
    finally:
        handle.remove()
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert model.get_output_embeddings().out_features == model.config.vocab_size  # the head is whole again


def test_train_refuses_zero_trainable_parameters(tokenizer, small_tasks, codec):
    frozen = tiny_llama(tokenizer).requires_grad_(False)
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=2)
    with pytest.raises(ValueError, match="attach LoRA"):
        ttt.train(frozen, data, EXACT)


def test_lr_schedule_warmup_then_cosine():
    f = [ttt.lr_factor(s, 10, 0.2) for s in range(10)]
    assert f[0] == pytest.approx(0.5) and f[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[1:], f[2:])) and f[-1] < 0.05
    assert ttt.lr_factor(0, 1, 0.1) == 1.0  # a single step still learns


def test_no_ttt_sequence_is_an_inference_prompt(small_tasks, codec):
    """TTT draws its views from its own stream and skips the inference views (generation and scoring) by their
    effect on the task: no TTT sequence equals the demonstrations of an inference prompt, token for token, even
    for a two-colour task whose views are few."""
    from arc_ttt.core.config import InferenceConfig
    from arc_ttt.core.tasks import Pair, Task

    two = Task("two-colours", tuple(Pair(np.array([[0, 1], [1, 0]]) * k, np.array([[1, 1]]) * k) for k in (1, 1)),
               (Pair(np.array([[1, 0]]), np.array([[1]])),))
    icfg = InferenceConfig(n_views=8, n_score_views=8)
    for task in [two, *small_tasks[:6]]:
        seen = ViewPlan().inference(task, icfg.n_views, icfg.n_score_views)
        prompts = {tuple(codec.encode_pairs(v.apply(task).train).ids.tolist()) for v in seen}
        data = ttt.build_sequences(task, codec, ttt.TTTConfig(), n=32, plan=ViewPlan(seed=0), avoid=seen)
        assert data.sequences
        assert not prompts & {tuple(s.ids.tolist()) for s in data.sequences}, task.id
        # without `avoid` the two-colour task's first TTT views do repeat inference views: the test can fail
    plain = ttt.build_sequences(two, codec, ttt.TTTConfig(), n=32, plan=ViewPlan(seed=0))
    assert {tuple(codec.encode_pairs(v.apply(two).train).ids.tolist()) for v in ViewPlan().inference(two, icfg.n_views, icfg.n_score_views)} & \
        {tuple(s.ids.tolist()) for s in plain.sequences}


class PeekingModel(torch.nn.Module):
    """Predicts the next token by reading it (a perfect model), except at the positions in `wrong`."""

    def __init__(self, vocab: int, wrong=()):
        super().__init__()
        from types import SimpleNamespace

        self.vocab, self.wrong, self.anchor = vocab, set(wrong), torch.nn.Parameter(torch.zeros(()))
        self.config = SimpleNamespace(pad_token_id=0)

    def forward(self, input_ids, attention_mask=None, use_cache=False, logits_to_keep=None):
        from types import SimpleNamespace

        nxt = torch.roll(input_ids, -1, dims=1)
        for t in self.wrong:
            nxt[:, t] = (nxt[:, t] + 1) % self.vocab
        logits = 20.0 * torch.nn.functional.one_hot(nxt, self.vocab).float()
        return SimpleNamespace(logits=logits if logits_to_keep is None else logits[:, logits_to_keep])


def test_sequence_scores_say_whether_the_argmax_writes_the_last_output_whole(small_tasks, codec):
    """A wrong argmax inside the last output spoils it; one inside an earlier output does not; the NLL counts both."""
    seq = codec.encode_pairs(small_tasks[0].train, "all_outputs")
    targets = np.flatnonzero(seq.loss_mask[1:])  # positions that predict a target
    runs = np.split(targets, np.flatnonzero(np.diff(targets) > 1) + 1)
    assert len(runs) >= 2  # several outputs, each a run of targets
    vocab = int(seq.ids.max()) + 1
    perfect, = figures.sequence_scores(PeekingModel(vocab), [seq], autocast="off")
    assert perfect.last_exact and perfect.targets == len(targets) and perfect.nll < 1e-3
    early, = figures.sequence_scores(PeekingModel(vocab, [runs[0][1]]), [seq], autocast="off")
    late, = figures.sequence_scores(PeekingModel(vocab, [runs[-1][-1]]), [seq], autocast="off")
    assert early.last_exact and not late.last_exact
    assert early.nll == pytest.approx(late.nll) and early.nll > 19  # one token wrong by a margin of 20 nats
