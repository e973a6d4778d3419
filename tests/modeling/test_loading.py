import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from arc_ttt.modeling import loading as model_mod
from arc_ttt.modeling import lora, ttt
from arc_ttt.core.views import sample_views
from arc_ttt.cli import main as cli_main
from arc_ttt.modeling.loading import (ModelConfig, cuda_compute_dtype, format_keep_ids, load_model, prepare_model,
                                     resolve_dtype, shrink_vocab, tiny_llama)
from arc_ttt.core.symbolformat import GridCodec


def tied_tiny_llama(tokenizer, seed=1):
    """Like tiny_llama but with lm_head tied to the input embedding (SmolLM2, Gemma and Qwen-small do this)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


def arc_sequences(tasks, tokenizer, n_views=2):
    """Real ARC tasks under a few augmented views, encoded with `tokenizer`'s grid codec."""
    codec = GridCodec.from_tokenizer(tokenizer)
    return [codec.encode_pairs(v.apply(t).train).ids for t in tasks for v in sample_views(t, n_views, seed=1)]


@torch.no_grad()
def next_token_logprobs(model, ids: np.ndarray, keep: list[int] | None = None) -> torch.Tensor:
    logits = model(input_ids=torch.from_numpy(ids)[None]).logits[0].float()
    if keep is not None:
        logits = logits[:, keep]
    return torch.log_softmax(logits, dim=-1)


def assert_shrunk_equivalent(original, shrunk, tok, new_tok, tasks):
    keep = format_keep_ids(tok)
    old_seqs, new_seqs = arc_sequences(tasks, tok), arc_sequences(tasks, new_tok)
    for old, new in zip(old_seqs, new_seqs):
        np.testing.assert_array_equal(new, [keep.index(i) for i in old])  # the same text, renumbered
        want = next_token_logprobs(original, old, keep)  # restricted to kept tokens, renormalised
        got = next_token_logprobs(shrunk, new)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_format_keep_ids_on_smollm2(smollm2_tokenizer):
    keep = format_keep_ids(smollm2_tokenizer)
    codec = GridCodec.from_tokenizer(smollm2_tokenizer)
    assert set(codec.format_token_ids) <= set(keep)
    assert smollm2_tokenizer.eos_token_id in keep and smollm2_tokenizer.bos_token_id in keep
    assert len(keep) <= 20


def test_shrink_vocab_keeps_logprobs_on_real_arc(smollm2_tokenizer, small_tasks):
    original = tiny_llama(smollm2_tokenizer)
    shrunk = tiny_llama(smollm2_tokenizer)  # same seed: same weights; shrink_vocab works in place
    shrunk, new_tok = shrink_vocab(shrunk, smollm2_tokenizer)
    n = len(format_keep_ids(smollm2_tokenizer))
    assert shrunk.get_input_embeddings().weight.shape[0] == n == shrunk.get_output_embeddings().weight.shape[0]
    assert shrunk.config.vocab_size == n == len(new_tok)
    assert_shrunk_equivalent(original, shrunk, smollm2_tokenizer, new_tok, small_tasks[:4])


def test_shrink_vocab_tied_embeddings_stay_tied(smollm2_tokenizer, small_tasks):
    original = tied_tiny_llama(smollm2_tokenizer)
    shrunk, new_tok = shrink_vocab(tied_tiny_llama(smollm2_tokenizer), smollm2_tokenizer)
    assert shrunk.get_output_embeddings().weight is shrunk.get_input_embeddings().weight
    assert_shrunk_equivalent(original, shrunk, smollm2_tokenizer, new_tok, small_tasks[4:6])


def test_shrunk_tokenizer_speaks_the_format(smollm2_tokenizer):
    _, tok = shrink_vocab(tiny_llama(smollm2_tokenizer, hidden=16, layers=1), smollm2_tokenizer)
    codec = GridCodec.from_tokenizer(tok)  # runs the full one-token-per-symbol check
    grid = np.array([[0, 1, 2], [9, 8, 7]], dtype=np.uint8)
    ids = codec.encode_grid(grid) + [codec.end_id]
    np.testing.assert_array_equal(codec.decode(ids), grid)
    assert tok.decode(ids) == "012\n987\nE"
    assert tok.encode(tok.eos_token + "I0\n", add_special_tokens=False) == [tok.eos_token_id, codec.input_id,
                                                                          codec.digit_ids[0], codec.newline_id]
    for role in ("bos", "eos", "pad"):  # the special tokens keep their roles
        old = getattr(smollm2_tokenizer, f"{role}_token")
        assert getattr(tok, f"{role}_token") == old
        assert getattr(tok, f"{role}_token_id") is not None


@pytest.fixture(scope="module")
def tiny_src(tmp_path_factory, smollm2_tokenizer):
    """A tied tiny Llama with the SmolLM2 tokenizer, saved as a local HF folder."""
    src = str(tmp_path_factory.mktemp("src"))
    tied_tiny_llama(smollm2_tokenizer).save_pretrained(src)
    smollm2_tokenizer.save_pretrained(src)
    return src


def test_prepare_model_shrink_round_trip(tiny_src, tmp_path, small_tasks):
    dst = str(tmp_path / "shrunk")
    prepare_model(tiny_src, dst, shrink_vocab=True, dtype="float32")
    assert not os.path.exists(dst + ".tmp") and not os.path.exists(dst + ".old")  # core.folders leaves nothing
    original, tok = load_model(ModelConfig(path=tiny_src, dtype="float32", device="cpu"))
    shrunk, new_tok = load_model(ModelConfig(path=dst, dtype="float32", device="cpu"))
    cfg = shrunk.config
    assert cfg.vocab_size == len(new_tok) == len(format_keep_ids(tok))
    assert (cfg.eos_token_id, cfg.bos_token_id, cfg.pad_token_id) == (
        new_tok.eos_token_id, new_tok.bos_token_id, new_tok.pad_token_id)
    assert shrunk.get_output_embeddings().weight.data_ptr() == shrunk.get_input_embeddings().weight.data_ptr()
    assert_shrunk_equivalent(original, shrunk, tok, new_tok, small_tasks[:2])


def test_cli_prepare_model(tiny_src, tmp_path, capsys):
    dst = str(tmp_path / "cli")
    assert cli_main(["prepare-model", tiny_src, dst, "--shrink-vocab", "--dtype", "bfloat16"]) == 0
    with open(os.path.join(dst, "config.json")) as f:
        assert json.load(f)["dtype"] == "bfloat16"
    model, tok = load_model(ModelConfig(path=dst, dtype="float32", device="cpu"))
    assert len(tok) == model.config.vocab_size < 32
    assert dst in capsys.readouterr().out


def test_4bit_nf4_loading_and_lora_step_on_cpu(tiny_src, small_tasks):
    """QLoRA on CPU: bitsandbytes nf4 weights, bf16/fp32 compute, LoRA adapters that train."""
    model, tok = load_model(ModelConfig(path=tiny_src, dtype="float32", device="cpu", load_in_4bit=True))
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Linear4bit" in kinds
    model = lora.attach(model, lora.LoraSettings(r=4))
    codec = GridCodec.from_tokenizer(tok)
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    result = ttt.train(model, data, ttt.TTTConfig(lr=1e-2, autocast="off"))
    assert result.steps == 2 and all(np.isfinite(result.losses))
    moved = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert moved and all("lora_" in n for n in moved)


def test_thread_count_uses_the_usable_cpus_unless_omp_num_threads_is_set(monkeypatch):
    monkeypatch.setattr(model_mod.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert model_mod.thread_count({}) == 3  # the affinity mask, not the machine's core count
    assert model_mod.thread_count({"OMP_NUM_THREADS": "1"}) == 1
    assert model_mod.thread_count({"OMP_NUM_THREADS": "4,2"}) == 4  # a nesting list: the outer level
    assert model_mod.thread_count({"OMP_NUM_THREADS": ""}) == 3  # empty or invalid: ignored
    assert model_mod.thread_count({"OMP_NUM_THREADS": "0"}) == 3
    monkeypatch.setattr(model_mod.os, "sched_getaffinity", lambda pid: set(), raising=False)
    assert model_mod.thread_count({}) == 1


def test_configure_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert model_mod.configure_threads({"OMP_NUM_THREADS": "1"}) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise():
    code = "import os, arc_ttt; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


@pytest.mark.parametrize("capability, dtype", [((6, 0), torch.float16), ((7, 5), torch.float16),
                                               ((8, 0), torch.bfloat16), ((8, 9), torch.bfloat16),
                                               ((9, 0), torch.bfloat16)],
                         ids=["P100", "T4", "A100", "L4", "H100"])
def test_auto_dtype_on_cuda_by_compute_capability(monkeypatch, capability, dtype):
    """bf16 only on real bf16 hardware (>= 8.0); a T4 reports is_bf16_supported() True by emulation: fp16."""
    assert cuda_compute_dtype(capability) == dtype
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", torch.device("cuda")) == dtype
    assert resolve_dtype("float32", torch.device("cuda")) == torch.float32  # an explicit dtype is kept
