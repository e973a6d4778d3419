"""The one-call GPU fine-tuning run, prepared and run here on the CPU with a tiny model: the packed samples are the
ones `arc-ttt finetune` draws, the weights travel in parts and come back whole, the run trains, evaluates both dev
sets, stops at its wall-clock cap and writes an adapter a later run can continue."""
import json
import os

import numpy as np
import pytest
import torch
from conftest import ROOT
from finetune_fixtures import task_folder, tiny_config, tiny_folder  # noqa: F401

from arc_ttt.core.formats.codec import Encoded
from arc_ttt.core.packed import join_parts, load_packed, pack, save_packed, split_files
from arc_ttt.modeling import ttt

DEV = os.path.join(ROOT, "benchmarks", "dev_tasks.json")
DEV_EVAL = os.path.join(ROOT, "benchmarks", "dev_eval_tasks.json")


def test_packed_sequences_come_back_as_they_were_in_one_byte_a_token(tmp_path, rng):
    seqs = [Encoded(rng.choice([5, 9, 300, 49151], size=n).astype(np.int64), rng.random(n) < 0.4)
            for n in (1, 7, 130, 64)]
    size = save_packed(str(tmp_path / "s.npz"), pack(seqs))
    back = load_packed(str(tmp_path / "s.npz"))
    assert len(back) == 4 and back.tokens == 202 and back.lengths().tolist() == [1, 7, 130, 64]
    for a, b in zip(seqs, (back[i] for i in range(4))):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.loss_mask, b.loss_mask)
    with np.load(tmp_path / "s.npz") as z:
        assert z["index"].dtype == np.uint8  # four distinct ids: one byte each, whatever their values
    assert size < 2000


def test_files_travel_in_parts_and_a_missing_or_foreign_part_is_named(tmp_path, rng):
    a, b = tmp_path / "a.bin", tmp_path / "b.gguf"
    a.write_bytes(rng.bytes(2500))
    b.write_bytes(rng.bytes(100))
    manifest = split_files([str(a), str(b)], str(tmp_path / "parts"), part_bytes=1000)
    assert [len(e["parts"]) for e in manifest["files"]] == [3, 1]
    assert max(os.path.getsize(tmp_path / "parts" / p) for e in manifest["files"] for p in e["parts"]) <= 1000
    joined = join_parts(str(tmp_path / "parts"), str(tmp_path / "there"))
    assert [open(p, "rb").read() for p in joined] == [a.read_bytes(), b.read_bytes()]
    (tmp_path / "parts" / "a.bin.part-01").write_bytes(rng.bytes(1000))
    with pytest.raises(ValueError, match="a.bin: joined parts do not match"):
        join_parts(str(tmp_path / "parts"), str(tmp_path / "again"))
    os.remove(tmp_path / "parts" / "a.bin.part-02")
    with pytest.raises(FileNotFoundError, match=r"a.bin: part\(s\) \['a.bin.part-02'\] missing"):
        join_parts(str(tmp_path / "parts"), str(tmp_path / "again"))


def test_token_batches_cover_every_sequence_once_within_the_budget(rng):
    lengths = rng.integers(5, 400, size=300).tolist() + [900]
    batches = ttt.token_batches(lengths, 1000, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(301))
    assert all(len(b) * max(lengths[i] for i in b) <= 1000 or len(b) == 1 for b in batches)
    assert ttt.padding_fraction(lengths, batches) < 0.05  # like lengths together
    assert batches != ttt.token_batches(lengths, 1000, seed=4)  # the order is shuffled by the seed


def small_devset(src: str, dst) -> str:
    """The first and last three tasks of a dev-set file: both strata, a tenth of the evaluation time."""
    whole = json.load(open(src))
    json.dump({**whole, "tasks": whole["tasks"][:3] + whole["tasks"][-3:]}, open(dst, "w"))
    return str(dst)


def pack_tiny(tmp_path, tiny_folder, task_folder, *extra, tokens=3000):  # noqa: F811
    from arc_ttt.runner.gpu_run import pack_run

    dev, dev_eval = small_devset(DEV, tmp_path / "dev.json"), small_devset(DEV_EVAL, tmp_path / "dev_eval.json")
    cfg = tiny_config(tiny_folder, task_folder, tmp_path / "unused", f"eval.dev={dev}", f"eval.dev_eval={dev_eval}",
                      "train.loss_vocab=answer", *extra)
    return cfg, pack_run(cfg, str(tmp_path / "pack"), tokens, part_bytes=20_000)


def test_the_pack_holds_the_samples_finetune_draws_and_the_weights_in_parts(tmp_path, tiny_folder,  # noqa: F811
                                                                           task_folder):  # noqa: F811
    from arc_ttt.core.formats import codec_for, resolve
    from arc_ttt.modeling.loading import load_tokenizer
    from arc_ttt.runner.finetune import run_corpus, sample_sequence

    cfg, spec = pack_tiny(tmp_path, tiny_folder, task_folder)
    samples = load_packed(str(tmp_path / "pack" / "samples.npz"))
    assert spec["tokens"] == samples.tokens >= 3000 and spec["samples"] == len(samples)
    codec = codec_for(resolve(cfg.model.format, cfg.model.path), load_tokenizer(cfg.model))
    corpus = run_corpus(cfg, codec)
    for k in (0, 1, len(samples) - 1):
        want, _ = sample_sequence(corpus, k, codec, cfg)
        assert np.array_equal(samples[k].ids, want.ids) and np.array_equal(samples[k].loss_mask, want.loss_mask)
    assert set(spec["eval"]) == {"holdout", "dev", "dev_eval"} and len(spec["eval"]["holdout"]) == 2
    assert len(spec["weights"]["parts"]) > len(spec["weights"]["files"])  # the model.safetensors came in parts
    assert spec["vocab"] == list(codec.grid_token_ids) and not spec["weights"]["gguf"]


def test_the_packed_run_trains_evaluates_both_dev_sets_and_writes_a_continuable_adapter(tmp_path, tiny_folder,  # noqa: F811
                                                                                        task_folder):  # noqa: F811
    from arc_ttt.runner.finetune import finetune
    from arc_ttt.runner.gpu_run import run_packed

    pack_tiny(tmp_path, tiny_folder, task_folder)
    card = run_packed(str(tmp_path / "pack"), str(tmp_path / "out"), max_seconds=1e6, batch_tokens=600, accum=1,
                      device="cpu", eval_every=2)
    assert card["finished"] and card["stop_reason"] == "done" and card["steps"] == card["planned_steps"] >= 3
    assert card["tokens"] == card["packed_tokens"]  # one pass, every sample once
    before, after = card["holdout"]["before"], card["holdout"]["after"]
    assert after["nll"] < before["nll"] and np.mean(card["losses"][-2:]) < card["losses"][0]  # lr 1e-2, tiny model
    for which in ("dev", "dev_eval"):  # the tiny model learns nothing general: their figures exist, that is all
        assert np.isfinite(after[f"{which}_nll"]) and 0 <= after[f"{which}_exact"] <= 1
        assert len(after[f"{which}_per_task"]) > 0
    assert [e["step"] for e in card["holdout"]["history"]] == [0, *range(2, card["steps"], 2), card["steps"]]
    saved = json.loads((tmp_path / "out" / "adapter" / "finetune.json").read_text())
    assert saved["tokens"] == card["tokens"] and (tmp_path / "out" / "finetune.json").exists()
    # the adapter is an ordinary one: a CPU run continues it
    cont = finetune(tiny_config(tiny_folder, task_folder, tmp_path / "cont", "train.loss_vocab=answer",
                                f"train.init_adapter={tmp_path / 'out' / 'adapter'}", "train.steps=1",
                                "output.merge=false"), progress_bar=False)
    assert cont.card["holdout"]["before"]["nll"] == pytest.approx(after["nll"], rel=1e-3)


def test_the_packed_run_stops_at_its_cap_with_what_it_learnt(tmp_path, tiny_folder, task_folder):  # noqa: F811
    from arc_ttt.runner.gpu_run import run_packed

    pack_tiny(tmp_path, tiny_folder, task_folder)
    ticks = iter(range(10_000))
    card = run_packed(str(tmp_path / "pack"), str(tmp_path / "out"), max_seconds=5, batch_tokens=600, accum=1,
                      device="cpu", clock=lambda: float(next(ticks)))  # a second a reading: start, load, 3 steps
    assert not card["finished"] and card["stop_reason"].startswith("max_seconds=5 reached after 2 of")
    assert 0 < card["steps"] < card["planned_steps"] and (tmp_path / "out" / "adapter" / "adapter_model.safetensors").exists()
    assert torch.isfinite(torch.tensor(card["losses"])).all()
