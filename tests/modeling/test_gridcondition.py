"""`condition: llm`: the grid network reading a frozen LLM's last hidden states over the task's prompt (the LLM
source's prompt, or a demonstration left out of its own), through a trainable projection and cross-attention. The
LLM gets no gradient and is not saved; its features are cached by prompt, bounded; the LLM a grid model was trained
on is kept in its card and another is refused. Tiny random models only (conftest.tiny_llama)."""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import tiny_llama

from arc_ttt.core import formats
from arc_ttt.core.config import LoraSettings, ModelConfig
from arc_ttt.core.errors import MissingInputError, UserError
from arc_ttt.core.gridconfig import SAME_FEATURES, GridLLMConfig, GridModelConfig, llm_record, probe_distance
from arc_ttt.core.tasks import Pair, Task
from arc_ttt.core.views import IDENTITY, View
from arc_ttt.modeling import gridcondition as gc
from arc_ttt.modeling import gridmodel as gm
from arc_ttt.modeling import lora
from arc_ttt.modeling.batching import build_prompt
from arc_ttt.modeling.embedded import ensure_arc_model
from arc_ttt.modeling.loading import load_model

LLM_HIDDEN = 32
TINY = GridModelConfig(canvas=4, hidden=16, heads=2, layers=2, n=2, T=2, n_sup=2, prefix=2, mlp_multiple=16,
                       condition="llm")
VIEW = View(d8=1, colors=(0, 3, 1, 2, 4, 5, 6, 7, 8, 9), order=(2, 0, 1))  # a turn, colours and the demos' order


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread here


def task(seed=0) -> Task:
    rng = np.random.default_rng(seed)

    def grid():
        return rng.integers(0, 4, (int(rng.integers(2, 5)), int(rng.integers(2, 5)))).astype(np.uint8)

    return Task("t", tuple(Pair(grid(), grid()) for _ in range(3)), (Pair(grid(), None), Pair(grid(), None)))


@pytest.fixture
def encoder(tokenizer):
    llm = gc.freeze(tiny_llama(tokenizer, hidden=LLM_HIDDEN, layers=1))
    codec = formats.codec_for("kit", tokenizer)
    return gc.FeatureEncoder(llm, codec, llm_record("models/tiny", None, codec.name, LLM_HIDDEN))


def conditioned(seed=0) -> gm.GridModel:
    torch.manual_seed(seed)
    return gm.GridModel(TINY, rows=3, llm_hidden=LLM_HIDDEN)


def demo_batch(t: Task, encoder, view=IDENTITY):
    pairs = gm.pairs_that_fit(t.train, TINY.canvas)
    cells = gm.canvases([view.apply_grid(p.input) for p in pairs], TINY.canvas, "cpu")
    targets = gm.canvases([view.apply_grid(p.output) for p in pairs], TINY.canvas, "cpu")
    return cells, targets, encoder.demos(t, view, pairs, "cpu")


# ---------------------------------------------------------------------------- the network

def test_a_conditioned_step_has_the_shapes_and_a_finite_loss(encoder):
    model, t = conditioned(), task()
    cells, targets, feats = demo_batch(t, encoder)
    assert feats.states.shape[0] == feats.mask.shape[0] == 3 and feats.states.shape[-1] == LLM_HIDDEN
    assert feats.mask.sum(1).tolist() == [len(encoder.demo_prompt(t, IDENTITY, i)) for i in range(3)]
    y, z = model.initial_state(3)
    y, z, logits, q = model.step(model.embed_input(cells, model.task(torch.tensor([0, 1, 2]))), y, z, feats)
    assert logits.shape == (3, 16, gm.CLASSES) and q.shape == (3,) and y.shape == (3, 2 + 16, 16)
    loss, _, _ = gm.supervision_loss(logits, q, targets, torch.ones(3, dtype=torch.bool))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="features missing"):
        model.step(model.embed_input(cells, model.task(torch.tensor([0, 1, 2]))), y, z)
    with pytest.raises(ValueError, match="llm_hidden"):
        gm.GridModel(TINY, rows=3)


def test_the_features_change_the_answer():
    """Cross-attention reads the features: other features, other logits (random weights; not a tolerance)."""
    model = conditioned()
    cells = torch.zeros(1, 16, dtype=torch.long)
    vec = model.task(torch.tensor([0]))
    a = gm.final_logits(model, cells, vec, features=gc.Features.pad([torch.randn(5, LLM_HIDDEN)]))[0]
    b = gm.final_logits(model, cells, vec, features=gc.Features.pad([torch.randn(5, LLM_HIDDEN)]))[0]
    assert not torch.equal(a, b)


def test_padding_is_never_read():
    """A prompt padded beside a longer one gives the same logits as alone: the mask hides the padding (fp32, sums
    of a different length: 1e-5 of logits of order 1)."""
    model = conditioned()
    short, long = torch.randn(3, LLM_HIDDEN), torch.randn(7, LLM_HIDDEN)
    cells = torch.zeros(2, 16, dtype=torch.long)
    vec = model.task(torch.tensor([0, 0]))
    together = gm.final_logits(model, cells, vec, features=gc.Features.pad([short, long]))[0]
    alone = gm.final_logits(model, cells[:1], vec[:1], features=gc.Features.pad([short]))[0]
    assert torch.allclose(together[0], alone[0], atol=1e-5)
    both = gc.Features.cat([gc.Features.pad([short]), gc.Features.pad([long])])
    assert torch.equal(both.states, gc.Features.pad([short, long]).states) and both.mask.sum(1).tolist() == [3, 7]


def test_the_llm_gets_no_gradient_and_is_not_saved(encoder, tmp_path):
    """A backward through the conditioned model reaches the projection and the cross-attention, never the LLM; the
    saved weights are the grid model's alone (its network, table and conditioning) with the LLM's record beside."""
    model, t = conditioned(), task()
    cells, targets, feats = demo_batch(t, encoder)
    stats = gm.deep_supervision(model, cells, targets, lambda: model.task(torch.tensor([0, 1, 2])),
                                lambda loss: loss.backward() or True, features=feats)
    assert all(np.isfinite(s["loss"]) for s in stats)
    assert model.condition.project.weight.grad.abs().sum() > 0
    assert all(c.kv.weight.grad.abs().sum() > 0 and c.q.weight.grad.abs().sum() > 0 for c in model.condition.cross)
    assert all(not p.requires_grad and p.grad is None for p in encoder.model.parameters())
    assert not encoder.model.training
    counts = gm.count_parameters(model)
    assert counts["conditioning"] == LLM_HIDDEN * 16 + TINY.layers * 4 * 16 * 16
    gm.save_grid_model(model, str(tmp_path / "m"), {}, encoder.record)
    saved = torch.load(tmp_path / "m" / gm.WEIGHTS, weights_only=True)
    assert set(saved) == set(model.state_dict()) and all(not k.startswith(("model.", "lm_head")) for k in saved)
    assert sum(v.numel() for k, v in saved.items() if k not in ("y_init", "z_init")) == sum(counts.values())
    assert json.loads((tmp_path / "m" / "grid_model.json").read_text())["llm"] == encoder.record
    with pytest.raises(ValueError, match="record missing"):
        gm.save_grid_model(model, str(tmp_path / "n"), {})


# ---------------------------------------------------------------------------- prompts and the cache

def test_prompts_are_the_llm_sources_and_leave_the_demonstration_out(encoder):
    """A test input's prompt is the one decoding builds under the view; a demonstration's holds the others (in the
    view's order, under the view) and then its input, never its own output."""
    t, codec = task(), encoder.codec
    seen = VIEW.apply(t)
    assert np.array_equal(encoder.test_prompt(t, VIEW, 1), build_prompt(codec, seen, 1, encoder.max_len))
    assert np.array_equal(encoder.test_prompt(t, VIEW, 1), codec.encode_prompt(seen.train, seen.test[1].input))
    for i in range(3):
        others = [p for j, p in zip(VIEW.order, seen.train) if j != i]
        expected = codec.encode_prompt(others, VIEW.apply_grid(t.train[i].input))
        assert np.array_equal(encoder.demo_prompt(t, VIEW, i), expected)
    short = gc.FeatureEncoder(encoder.model, codec, encoder.record, max_len=40)
    assert len(short.test_prompt(t, VIEW, 0)) <= 40 < len(encoder.test_prompt(t, VIEW, 0))  # demos dropped, as decoding


def test_features_are_cached_by_prompt_and_the_cache_is_bounded(encoder):
    calls = []
    encoder.model.register_forward_hook(lambda *_: calls.append(1))
    t = task()
    a, b = encoder.test_prompt(t, IDENTITY, 0), encoder.test_prompt(t, IDENTITY, 1)
    first = encoder.features(a)
    again = encoder.features(a.copy())
    assert again is first and len(calls) == 1 and (encoder.hits, encoder.misses) == (1, 1)
    assert first.shape == (len(a), LLM_HIDDEN) and not first.requires_grad
    size = first.numel() * first.element_size()
    one = gc.FeatureEncoder(encoder.model, encoder.codec, encoder.record, cache_mb=1.5 * size / 2 ** 20)
    x = one.features(a)
    one.features(b)  # b in, a out: past the bound, the least recently used goes
    assert list(one.cache.values())[0].shape[0] == len(b) and len(one.cache) == 1 and one.held <= one.limit
    y = one.features(a)
    assert y is not x and torch.equal(x, y) and one.misses == 3  # recomputed: the same tensor, bit for bit
    none = gc.FeatureEncoder(encoder.model, encoder.codec, encoder.record, cache_mb=0)
    none.features(a)
    none.features(a)
    assert none.misses == 2 and not none.cache
    assert encoder.stats()["computed"] == 1 and encoder.stats()["reused"] == 1


def test_a_run_llm_gives_its_base_models_features(tokenizer):
    """In a run the LLM carries its TTT adapter; the features are the base model's (adapter switched off), and
    features computed under inference mode (where a run predicts) can still be read by a step with gradients."""
    codec = formats.codec_for("kit", tokenizer)
    base = gc.FeatureEncoder(gc.freeze(tiny_llama(tokenizer, hidden=LLM_HIDDEN, layers=1)), codec, {"hidden": 32})
    wrapped = lora.attach(tiny_llama(tokenizer, hidden=LLM_HIDDEN, layers=1), LoraSettings(r=4))
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_()  # an adapter that changes the model (B starts at zero)
    run = gc.FeatureEncoder(wrapped, codec, gc.run_record(wrapped, codec))
    ids = run.test_prompt(task(), IDENTITY, 0)
    with torch.inference_mode():
        feats = run.features(ids)
    assert torch.equal(feats, base.features(ids))
    adapted = wrapped(input_ids=torch.tensor(ids[None]), output_hidden_states=True).hidden_states[-1][0]
    assert not torch.equal(adapted.detach(), feats)
    model = conditioned()
    _, _, logits, _ = model.step(model.embed_input(torch.zeros(1, 16, dtype=torch.long), model.task(torch.tensor([0]))),
                                 *model.initial_state(1), gc.Features.pad([feats]))
    logits.sum().backward()  # an inference tensor here would refuse to be saved for backward
    record = gc.run_record(wrapped, codec)
    assert record["adapter"] is None and record["format"] == "kit"
    assert record["probe"] == gc.probe(base.model, codec)  # the base model's, its TTT adapter off


# ---------------------------------------------------------------------------- loading and the card

def test_a_grid_model_trained_on_one_llm_is_refused_with_another(encoder, tmp_path):
    model = conditioned()
    folder = str(tmp_path / "m")
    gm.save_grid_model(model, folder, {}, encoder.record)
    back = gm.load_grid_model(folder, llm=encoder.record)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())
    assert back.cfg == TINY
    same = llm_record(os.path.abspath("models/tiny"), None, "kit", LLM_HIDDEN)  # where the folder resolves to
    gm.load_grid_model(folder, llm=same)
    for other, says in ((llm_record("models/other", None, "kit", 32), "models/other"),
                        (llm_record("models/tiny", "configs/adapters/a", "kit", 32), "adapter configs/adapters/a"),
                        (llm_record("models/tiny", None, "architects", 32), "format architects"),
                        (llm_record("models/tiny", None, "kit", 48), "hidden 48")):
        with pytest.raises(UserError, match="models/tiny .*format kit, hidden 32") as err:
            gm.load_grid_model(folder, llm=other)
        assert says in str(err.value) and folder in str(err.value)
    with pytest.raises(UserError, match="no LLM was given"):
        gm.load_grid_model(folder)


def random_adapter(model, folder: str) -> str:
    """A LoRA adapter that changes `model` (B starts at zero), saved with a card naming the kit's format."""
    wrapped = lora.attach(model, LoraSettings(r=4))
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)  # std 1 makes a tiny random model so ill-conditioned that bf16 moves it 10%
    lora.save_adapter(wrapped, folder, card={"format": "kit"})
    return folder


def test_an_llm_is_known_by_what_it_computes_wherever_its_folder_lies(tiny_src, tmp_path):
    """Trained on base + adapter; run on that adapter merged into a vocabulary-shrunk bf16 folder, moved (as under
    /kaggle/input), loaded in float32 or bfloat16: the same LLM. The base alone, or a folder rebuilt at the trained
    path with other weights: refused, the gap named."""
    adapter = random_adapter(load_model(ModelConfig(path=tiny_src, dtype="float32", device="cpu"))[0],
                             str(tmp_path / "adapter"))
    trained = gc.load_encoder(GridLLMConfig(path=tiny_src, adapter=adapter, dtype="float32"), torch.device("cpu"))
    folder = str(tmp_path / "grid")
    gm.save_grid_model(gm.GridModel(TINY, rows=3, llm_hidden=trained.hidden), folder, {}, trained.record)
    merged = ensure_arc_model(str(tmp_path / "merged"), adapter, base=tiny_src, shrink=True)
    moved = shutil.copytree(merged, str(tmp_path / "kaggle" / "input" / "arc-model"))
    for dtype in ("float32", "bfloat16"):
        run = gc.load_encoder(GridLLMConfig(path=moved, dtype=dtype), torch.device("cpu")).record
        assert run["path"] != trained.record["path"] and run["adapter"] is None
        assert probe_distance(trained.record, run) < SAME_FEATURES / 2
        gm.load_grid_model(folder, llm=run)
    base = gc.load_encoder(GridLLMConfig(path=tiny_src, dtype="float32"), torch.device("cpu")).record
    rebuilt = {**trained.record, "probe": base["probe"]}  # the trained path and adapter, the base's weights
    for other in (base, rebuilt):
        with pytest.raises(UserError, match="differ by .* at most 0.07") as err:
            gm.load_grid_model(folder, llm=other)
        assert probe_distance(trained.record, other) > 2 * SAME_FEATURES and folder in str(err.value)


def test_the_trainer_loads_the_named_llm_frozen_with_its_adapter(tokenizer, tiny_model_dir, tmp_path):
    """model.llm: the folder, an adapter merged into it, the format resolved as the LLM path does (auto: the
    folder names none, so the kit's); the model frozen in eval mode; a missing folder named."""
    random_adapter(tiny_llama(tokenizer), str(tmp_path / "adapter"))
    cfg = GridLLMConfig(path=tiny_model_dir, adapter=str(tmp_path / "adapter"), dtype="float32", max_len=64)
    enc = gc.load_encoder(cfg, torch.device("cpu"))
    probe = gc.probe(enc.model, enc.codec)
    assert enc.record == llm_record(tiny_model_dir, str(tmp_path / "adapter"), "kit", 64, probe)
    assert enc.max_len == 64 and len(probe) == gc.PROBE_DIMS * len(enc.test_prompt(gc.PROBE_TASK, IDENTITY, 0))
    assert not enc.model.training and not any(p.requires_grad for p in enc.model.parameters())
    plain = gc.load_encoder(GridLLMConfig(path=tiny_model_dir, dtype="float32"), torch.device("cpu"))
    ids = enc.test_prompt(task(), IDENTITY, 0)
    assert not torch.equal(enc.features(ids), plain.features(ids))  # the adapter was merged
    assert plain.record["adapter"] is None
    with pytest.raises(MissingInputError, match="model.llm.path"):
        gc.load_encoder(GridLLMConfig(path=str(tmp_path / "nothing")), torch.device("cpu"))
