import numpy as np
import pytest
import torch
from conftest import tiny_llama
from torch import nn

from arc_ttt.core.views import ViewPlan
from arc_ttt.modeling import lora, ttt
from arc_ttt.core.formats.symbols import GridCodec

LLAMA_PROJECTIONS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


@pytest.fixture
def fresh_model(tokenizer):
    """A private tiny Llama: attaching LoRA mutates the model, so never use the shared session fixture."""
    return tiny_llama(tokenizer)


def adapter_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_auto_targets_llama(fresh_model):
    assert lora.find_targets(fresh_model) == LLAMA_PROJECTIONS
    model = lora.attach(fresh_model, lora.LoraSettings(r=4, alpha=8))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable}
    assert adapted == set(LLAMA_PROJECTIONS)
    # 2 layers x 7 projections x (A, B)
    assert len(trainable) == 2 * 7 * 2


def test_auto_targets_gpt2_conv1d(tokenizer, small_tasks):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=256,
                     bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(cfg).eval()
    assert lora.find_targets(model) == ["c_attn", "c_fc", "c_proj"]
    model = lora.attach(model, lora.LoraSettings(r=4))
    ids = torch.tensor([[1, 5, 6, 7, 14]])
    before = model(input_ids=ids).logits
    # LoRA B starts at zero: the adapted model is the base model until it trains.
    with model.disable_adapter():
        assert torch.allclose(model(input_ids=ids).logits, before)
    before = adapter_state(model)
    result = _train_on(model, small_tasks[0], tokenizer)
    assert result.steps == 4 and all(torch.isfinite(torch.tensor(result.losses)))
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters() if "lora_B" in n)


def test_nothing_matches_lists_module_names(fresh_model):
    with pytest.raises(ValueError, match="q_proj") as err:
        lora.attach(fresh_model, lora.LoraSettings(target_modules=["query", "value"]))
    assert "down_proj" in str(err.value)


def test_auto_is_every_linear_layer_and_fails_clearly_without_one():
    class Odd(nn.Module):  # an unknown architecture: peft's "all-linear" rule still applies
        def __init__(self):
            super().__init__()
            self.mixer = nn.Linear(4, 4)
            self.readout = nn.Linear(4, 4)

    assert lora.find_targets(Odd()) == ["mixer", "readout"]

    class ConvOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

    with pytest.raises(ValueError, match=r"no LoRA target module matched 'auto' in ConvOnly; .* named: none"):
        lora.find_targets(ConvOnly())
    with pytest.raises(ValueError, match=r"named: \['mixer', 'readout'\]"):
        lora.find_targets(Odd(), ["q_proj"])


def test_embeddings_and_lm_head_targets(fresh_model):
    model = lora.attach(fresh_model, lora.LoraSettings(r=4, train_embeddings=True, train_lm_head=True))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("embed_tokens.lora_embedding_A" in n for n in names)
    assert any("lm_head.lora_A" in n for n in names)


EMBED_ADAPTERS = ["embed_tokens.lora_embedding_A", "embed_tokens.lora_embedding_B", "lm_head.lora_A", "lm_head.lora_B"]


def embed_adapter_names(model) -> list[str]:
    """Which of EMBED_ADAPTERS (peft's names) ttt.embedding_adapter_parameters found, one entry per parameter."""
    ids = {id(p) for p in ttt.embedding_adapter_parameters(model)}
    names = [n for n, p in model.named_parameters() if id(p) in ids]
    return sorted(k for n in names for k in EMBED_ADAPTERS if f".{k}." in n)


def tied(model):
    """The tiny Llama with lm_head sharing the input embedding's weight (SmolLM2, Qwen3-4B do this)."""
    model.lm_head.weight = model.model.embed_tokens.weight
    model.config.tie_word_embeddings = True
    return model


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_embedding_lr_param_groups(tokenizer, tie):
    base = tied(tiny_llama(tokenizer)) if tie else tiny_llama(tokenizer)
    model = lora.attach(base, lora.LoraSettings(r=4, train_embeddings=True, train_lm_head=True))
    assert embed_adapter_names(model) == EMBED_ADAPTERS  # tied or not: two adapters over the frozen base
    groups = ttt.param_groups(model, ttt.TTTConfig(lr=1e-4, embedding_lr=1e-5))
    assert [g["lr"] for g in groups] == [1e-4, 1e-5]
    special = {id(p) for p in ttt.embedding_adapter_parameters(model)}
    assert {id(p) for p in groups[1]["params"]} == special
    assert all("_proj.lora_" in n for n, p in model.named_parameters() if p.requires_grad and id(p) not in special)
    assert sum(len(g["params"]) for g in groups) == len(lora.trainable_parameters(model))
    assert [g["lr"] for g in ttt.param_groups(model, ttt.TTTConfig(lr=1e-4))] == [1e-4]  # unset: one lr
    plain = lora.attach(tiny_llama(tokenizer), lora.LoraSettings(r=4))  # no embedding adapters: no empty group
    assert [g["lr"] for g in ttt.param_groups(plain, ttt.TTTConfig(lr=1e-4, embedding_lr=1e-5))] == [1e-4]


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_embedding_and_lm_head_adapters_train_at_their_own_lr(tokenizer, small_tasks, tie):
    """lr=0 for the projections, embedding_lr>0: only the embedding and lm_head adapters move, all four."""
    base = tied(tiny_llama(tokenizer)) if tie else tiny_llama(tokenizer)
    frozen = base.model.embed_tokens.weight.detach().clone()
    model = lora.attach(base, lora.LoraSettings(r=4, train_embeddings=True, train_lm_head=True))
    special = {id(p) for p in ttt.embedding_adapter_parameters(model)}
    codec = GridCodec.from_tokenizer(tokenizer)
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=4)
    model.zero_grad(set_to_none=True)
    ttt.batch_loss(model, ttt.collate(data.sequences[:1], 0, torch.device("cpu"))).backward()
    # at init lora_embedding_A and lm_head's lora_B are zero, so only their partners get a gradient at first
    assert all(p.grad is not None for p in ttt.embedding_adapter_parameters(model))
    assert any(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "embed_tokens.lora_" in n)
    assert any(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lm_head.lora_" in n)
    model.zero_grad(set_to_none=True)
    before = adapter_state(model)
    result = ttt.train(model, data, ttt.TTTConfig(lr=0.0, embedding_lr=1e-2, warmup=0.0, autocast="off"))
    assert result.steps == 4
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, before[n]) != (id(p) in special), n
    assert torch.equal(model.get_input_embeddings().weight, frozen)  # the (shared) base weight never trains
    if tie:
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


def _train_on(model, task, tokenizer, seed=0):
    codec = GridCodec.from_tokenizer(tokenizer)
    data = ttt.build_sequences(task, codec, ttt.TTTConfig(), n=4, plan=ViewPlan(seed=seed))
    return ttt.train(model, data, ttt.TTTConfig(lr=1e-2, warmup=0.0, autocast="off"))


@pytest.mark.parametrize("settings", [lora.LoraSettings(r=4),
                                      lora.LoraSettings(r=4, train_embeddings=True, train_lm_head=True)],
                         ids=["projections", "with-embeddings-and-lm-head"])
def test_restore_brings_back_initial_weights_in_place(fresh_model, small_tasks, tokenizer, settings):
    model = lora.attach(fresh_model, settings)
    initial = adapter_state(model)
    snap = lora.snapshot(model)
    ptrs = {n: p.data_ptr() for n, p in model.named_parameters() if p.requires_grad}
    _train_on(model, small_tasks[0], tokenizer)
    assert any(not torch.equal(initial[n], p) for n, p in model.named_parameters() if p.requires_grad)
    lora.restore(model, snap)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, initial[n]), n
            assert p.data_ptr() == ptrs[n]  # restored in place: optimisers and hooks keep working


def test_task_b_unaffected_by_task_a(fresh_model, small_tasks, tokenizer):
    model = lora.attach(fresh_model, lora.LoraSettings(r=4))
    snap = lora.snapshot(model)
    task_a, task_b = small_tasks[1], small_tasks[2]
    fresh = _train_on(model, task_b, tokenizer)
    fresh_b = adapter_state(model)

    lora.restore(model, snap)
    _train_on(model, task_a, tokenizer)
    lora.restore(model, snap)
    after_a = _train_on(model, task_b, tokenizer)
    assert after_a.losses == fresh.losses
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, fresh_b[n]), n


def test_restore_rejects_foreign_snapshot(tokenizer):
    a = lora.attach(tiny_llama(tokenizer), lora.LoraSettings(r=4))
    b = lora.attach(tiny_llama(tokenizer), lora.LoraSettings(r=4, train_lm_head=True))
    with pytest.raises(ValueError, match="snapshot does not match"):
        lora.restore(a, lora.snapshot(b))


def test_bf16_adapters_keep_their_optimizer_states_in_bf16_and_train(tokenizer, small_tasks):
    """lora.dtype bfloat16 (NVARC's r256 adapters): adapters and AdamW's moments in bf16, half of fp32's
    adapter+optimizer bytes; a TTT run still lowers the loss. Over fp16 weights it is refused."""
    from arc_ttt.core.config import LoraSettings

    settings = LoraSettings(r=8, train_embeddings=True, train_lm_head=True)
    fp32 = lora.attach(tiny_llama(tokenizer).to(torch.bfloat16), settings)
    bf16 = lora.attach(tiny_llama(tokenizer).to(torch.bfloat16), LoraSettings(**{**settings.__dict__, "dtype": "bfloat16"}))
    assert {p.dtype for p in lora.trainable_parameters(bf16).values()} == {torch.bfloat16}

    def state_bytes(model):
        params = list(lora.trainable_parameters(model).values())
        opt = torch.optim.AdamW(params, lr=1e-3)
        model(torch.tensor([[5, 6, 7, 14]]), labels=torch.tensor([[5, 6, 7, 14]])).loss.backward()
        opt.step()
        states = [t for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0]
        assert {t.dtype for t in states} == {params[0].dtype}
        return sum(t.numel() * t.element_size() for t in [*params, *states])

    assert state_bytes(bf16) * 2 == state_bytes(fp32)  # params + 2 moments: 6 bytes per value instead of 12
    codec = GridCodec.from_tokenizer(tokenizer)
    model = lora.attach(tiny_llama(tokenizer).to(torch.bfloat16), LoraSettings(r=8, dtype="bfloat16"))
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=8, plan=ViewPlan(seed=0))
    result = ttt.train(model, data, ttt.TTTConfig(lr=5e-3, warmup=0.0, autocast="off"), max_steps=8)
    assert result.steps == 8 and np.isfinite(result.losses).all() and result.losses[-1] < result.losses[0]
    with pytest.raises(ValueError, match="float16 weights"):
        lora.attach(tiny_llama(tokenizer).to(torch.float16), LoraSettings(r=8, dtype="bfloat16"))
