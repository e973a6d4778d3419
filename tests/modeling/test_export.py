"""modeling.export: vocabulary shrinking keeps the kept tokens' log-probabilities, prepare_model and its CLI."""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import tied_tiny_llama, tiny_llama

from arc_ttt.cli import main as cli_main
from arc_ttt.core.config import LoraSettings, ModelConfig
from arc_ttt.core.folders import recover_folder
from arc_ttt.core.modelfolder import CARD_FILE, DEMO_MARKER, FORMAT_FILE, SHRUNK_TAG, read_merge_stamp
from arc_ttt.core.formats.symbols import GridCodec
from arc_ttt.core.views import sample_views
from arc_ttt.modeling import lora
from arc_ttt.modeling.embedded import ensure_arc_model
from arc_ttt.modeling.export import format_keep_ids, prepare_model, shrink_vocab
from arc_ttt.modeling.loading import load_model


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


class Killed(BaseException):
    """The process dies here: nothing after it runs (a BaseException passes `except Exception`, as a signal would)."""


def kill_the_commit_of(dst: str, monkeypatch, kill_at: int) -> list[str]:
    """Kill the `kill_at`-th step of the commit that replaces the folder `dst` (rename the old one aside, rename the
    new one in, remove the old one); the files written inside the folder on the way are left alone."""
    steps, rename, remove = [], os.replace, shutil.rmtree
    names = {dst, dst + ".tmp", dst + ".old"}

    def step(name):
        steps.append(name)
        if len(steps) == kill_at:
            raise Killed(name)

    def replace(src, to, *args, **kwargs):
        if os.fspath(src) in names and os.fspath(to) in names:
            step(f"rename {os.path.basename(src)}")
        return rename(src, to, *args, **kwargs)

    def rmtree(path, *args, **kwargs):
        if os.fspath(path) == dst + ".old" and os.path.exists(path):
            step("remove the old folder")
        return remove(path, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    return steps


@pytest.fixture(scope="module")
def tiny_adapter(tiny_src, tmp_path_factory):
    """A LoRA adapter of the tiny model with its fine-tune card, as `arc-ttt finetune` leaves it."""
    model, _ = load_model(ModelConfig(path=tiny_src, dtype="float32", device="cpu"))
    folder = str(tmp_path_factory.mktemp("adapter") / "adapter")
    lora.save_adapter(lora.attach(model, LoraSettings(r=2)), folder, card={"format": "kit", "steps": 6})
    assert read_card(folder) == {"format": "kit", "steps": 6, "adapter_bytes": lora.adapter_bytes(folder)}
    return folder


def read_card(folder: str) -> dict:
    with open(os.path.join(folder, CARD_FILE), encoding="utf-8") as f:
        return json.load(f)


def stamped_and_whole(folder: str, adapter: str) -> bool:
    """What a reader may take as current (weights under a stamp) has the adapter's card, its format, the demo
    marker and the vocabulary its stamp says."""
    stamp = read_merge_stamp(folder)
    if stamp is None:
        return not os.path.exists(os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        vocab = json.load(f)["vocab_size"]
    return (all(os.path.exists(os.path.join(folder, f)) for f in (CARD_FILE, FORMAT_FILE, DEMO_MARKER))
            and (vocab < 32) == stamp.endswith(SHRUNK_TAG) and read_card(folder) == read_card(adapter))


@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_a_merge_killed_at_any_step_of_its_rename_leaves_no_stamped_folder_without_its_card(
        tiny_src, tiny_adapter, tmp_path, monkeypatch, kill_at):
    dst = str(tmp_path / "arc")
    ensure_arc_model(dst, tiny_adapter, base=tiny_src, shrink=False)  # the old folder: the whole vocabulary
    assert stamped_and_whole(dst, tiny_adapter) and not read_merge_stamp(dst).endswith(SHRUNK_TAG)
    steps = kill_the_commit_of(dst, monkeypatch, kill_at)
    with pytest.raises(Killed):  # the new folder (its vocabulary cut) dies while it replaces the old one
        ensure_arc_model(dst, tiny_adapter, base=tiny_src, shrink=True)
    monkeypatch.undo()
    assert steps[-1] == ["rename arc", "rename arc.tmp", "remove the old folder"][kill_at - 1]
    recover_folder(dst)  # what a reader does first
    assert stamped_and_whole(dst, tiny_adapter)  # the old folder or the new one, each with its stamp, card and marker
    assert read_merge_stamp(dst).endswith(SHRUNK_TAG) == (kill_at == 3)
    ensure_arc_model(dst, tiny_adapter, base=tiny_src, shrink=True)  # the next call finishes the job
    assert stamped_and_whole(dst, tiny_adapter) and read_merge_stamp(dst).endswith(SHRUNK_TAG)
    assert sorted(os.listdir(tmp_path)) == ["arc"]
