"""The commit run's format check: the probes it reads, its decision on given NLLs, its limit against its calibration,
and a real model that reads one format and not another (a tiny Llama that learned the probes in the kit's layout)."""
import dataclasses
import json
import math
import os
import re
import string

import numpy as np
import pytest
import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from arc_ttt.core.formats.codec import LossOn
from arc_ttt.core.config import ModelConfig, RunConfig
from arc_ttt.core.formats import codec_for
from arc_ttt.core.tasks import Pair, Task
from arc_ttt.delivery import environment as E
from arc_ttt.delivery import formatcheck as F
from conftest import ROOT, tiny_llama

COMMIT = dataclasses.replace(E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, input_root="/nonexistent"),
                             placeholder_test=True)
RERUN = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_IS_COMPETITION_RERUN": "True"}, input_root="/nonexistent")
LOCAL = E.detect({}, input_root="/nonexistent", modules={})


def grid(h, w, seed):
    return np.random.default_rng(seed).integers(0, 10, (h, w)).astype(np.uint8)


def task(tid, n_train=3, solved=True, shape=(2, 3)):
    train = tuple(Pair(grid(*shape, i), grid(*shape, 100 + i)) for i in range(n_train))
    return Task(tid, train, (Pair(grid(*shape, 50), grid(*shape, 51) if solved else None),))


# --- the probes -----------------------------------------------------------------------------------

def test_probes_are_the_quick_tasks_solutions_and_the_first_tasks_last_demonstrations():
    tasks = [task("a"), task("b", solved=False), task("c", n_train=1), *(task(f"t{i}") for i in range(10))]
    chosen = F.choose_probes(tasks, quick=2)
    assert [(p.task_id, p.kind) for p in chosen if p.kind == "solution"] == [("a", "solution")]  # b has no answer
    demos = [p for p in chosen if p.kind == "demo"]
    assert [p.task_id for p in demos] == ["a", "b", "t0", "t1", "t2", "t3", "t4", "t5"]  # c has one demonstration
    assert demos[0].pairs == tasks[0].train and chosen[0].pairs == (*tasks[0].train, tasks[0].test[0])
    # no quick limit (not the placeholder): up to SOLUTION_PROBES of the first tasks
    assert len([p for p in F.choose_probes(tasks, None) if p.kind == "solution"]) == 3  # a, c, t0 of the first 4
    assert F.Probe("x", "demo", (Pair(grid(1, 1, 0), grid(3, 4, 0)),)).answer_tokens == 3 * 5 + 1


def test_a_long_probe_drops_leading_demonstrations_and_the_loss_covers_only_its_answer(tokenizer):
    codec = codec_for("kit", tokenizer)
    probe = F.Probe("a", "solution", (*task("a", n_train=4, shape=(5, 5)).train, task("a", shape=(5, 5)).test[0]))
    whole = F.encode_probe(codec, probe, max_tokens=10_000)
    assert len(whole) == len(codec.encode_pairs(probe.pairs, LossOn.LAST))
    assert whole.loss_mask.sum() == probe.answer_tokens  # the kit writes the answer as the count says
    pair_len = len(codec.encode_pairs(probe.pairs[:2])) - len(codec.encode_pairs(probe.pairs[:1]))
    cut = F.encode_probe(codec, probe, max_tokens=len(whole) - 1)
    assert len(cut) == len(whole) - pair_len and cut.loss_mask.sum() == probe.answer_tokens
    assert F.encode_probe(codec, probe, max_tokens=2 * pair_len - 1) is None  # not even one demonstration fits


# --- the decision -----------------------------------------------------------------------------------

def probes_of(n, shape=(2, 2)):
    return [F.Probe(f"t{i}", "demo", (Pair(grid(*shape, i), grid(*shape, i)),) * 2) for i in range(n)]


def test_the_verdict_passes_up_to_the_limit_and_fails_above_naming_the_way_out():
    probes = probes_of(3)  # 2x2 answers: 7 tokens each
    at_limit = F.verdict("kit", probes, [7 * 0.2, 7 * 0.4, 7 * 0.6], limit=0.4)
    assert at_limit.tokens == 21 and math.isclose(at_limit.nll_per_token, 0.4) and at_limit.passed
    assert at_limit.problem() is None and "passed" in at_limit.lines()[0]
    above = F.verdict("marc", probes, [7 * 0.2, 7 * 0.4, 7 * 0.61], limit=0.4)
    assert not above.passed and "FAILED" in above.lines()[0] and "t2/demo 0.61" in above.lines()[1]
    problem = above.problem()
    assert "prompt format 'marc'" in problem and "FORMAT_NLL_LIMIT" in problem and "arc_format.json" in problem
    nothing = F.verdict("kit", [], [], limit=0.4)  # every probe too long: nothing to judge, the run says more
    assert nothing.passed and "nothing checked" in nothing.lines()[0]


def test_the_limit_separates_the_readings_it_was_calibrated_on():
    """NLL_LIMIT against benchmarks/formats/results/format_check_nll_limit.json (benchmarks/formats/format_check.py): the kit's demonstration
    model in its format passes, the same weights in a wrong format and SmolLM2-135M that never saw ARC fail."""
    with open(os.path.join(ROOT, "benchmarks", "formats", "results", "format_check_nll_limit.json")) as f:
        result = json.load(f)
    assert result["limit"] == F.NLL_LIMIT, "NLL_LIMIT changed: run benchmarks/formats/format_check.py (or --recheck)"
    kinds = {r["format_is"] for r in result["runs"].values()}
    assert {"right", "wrong"} <= kinds
    for name, run in result["runs"].items():
        for figure in (run["nll_per_token"], run["check_choice_nll_per_token"]):
            assert (figure <= F.NLL_LIMIT) is (run["format_is"] == "right"), (name, figure)


# --- with a model -----------------------------------------------------------------------------------

def never_called(_):
    raise AssertionError("the scoring rerun and runs off Kaggle never load the model for the check")


@pytest.mark.parametrize("env", [RERUN, LOCAL], ids=["scoring-rerun", "local"])
def test_the_check_runs_on_the_commit_run_only(env):
    assert F.check_format(env, RunConfig(), "kit", [task("a")], quick=1, loader=never_called) is None


def test_a_model_that_does_not_load_is_left_to_the_run(capsys):
    def broken(_):
        raise OSError("model.safetensors: header too large")

    assert F.check_format(COMMIT, RunConfig(), "kit", [task("a")], quick=1, loader=broken) is None
    assert "format check skipped, the model did not load (OSError: model.safetensors" in capsys.readouterr().out


def wide_tokenizer():
    """One token per character for the kit's and ARChitects' layouts alike (letters, digits, +/-=, newline): a
    vocabulary that speaks both, as a full-vocabulary tokenizer does."""
    symbols = ["<pad>", "<s>", "</s>", "<unk>", *dict.fromkeys(string.digits + string.ascii_letters + "\n+/-=")]
    tok = Tokenizer(models.WordLevel({s: i for i, s in enumerate(symbols)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


@pytest.fixture(scope="module")
def kit_reader(small_tasks):
    """A tiny Llama trained on the check's probes of two real tasks in the kit's layout, answers only, until it
    knows them: it reads that layout well, and ARChitects' (which its tokenizer also speaks) as a stranger."""
    tok, tasks = wide_tokenizer(), small_tasks[:2]
    codec = codec_for("kit", tok)
    seqs = [codec.encode_pairs(p.pairs, LossOn.LAST) for p in F.choose_probes(tasks, quick=2)]
    width = max(len(s) for s in seqs)
    ids = torch.tensor([[*s.ids, *[tok.pad_token_id] * (width - len(s))] for s in seqs])
    labels = torch.tensor([[*np.where(s.loss_mask, s.ids, -100), *[-100] * (width - len(s))] for s in seqs])
    attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    model = tiny_llama(tok).train()
    # lr 3e-3 for 120 steps ends near 0.005 on every CPU kernel tried; lr 1e-2 for 60 oscillated, and where it
    # stopped (0.26 or 0.73 nats) depended on the CPU's kernels (AVX2 or AVX512), across the check's limit of 0.6
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(120):
        model(input_ids=ids, attention_mask=attention, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        learnt = model(input_ids=ids, attention_mask=attention, labels=labels).loss.item()
    assert learnt < 0.1, f"the fixture's model did not learn its probes ({learnt:.3f} nats a token)"
    return model.eval(), tok, tasks


@pytest.mark.parametrize("fmt,passes", [("kit", True), ("architects", False)])
def test_the_commit_run_passes_the_format_a_model_learned_and_fails_another(kit_reader, fmt, passes, capsys):
    model, tok, tasks = kit_reader
    cfg = dataclasses.replace(RunConfig(), model=ModelConfig(path="in-memory", device="cpu"))
    if passes:
        found = F.check_format(COMMIT, cfg, fmt, tasks, quick=2, loader=lambda _: (model, tok))
        assert found.passed and found.nll_per_token < F.NLL_LIMIT and len(found.scores) == 4
        assert f"format check ({fmt}): NLL " in capsys.readouterr().out
    else:
        wanted = re.escape(f"in prompt format 'architects', above the limit {F.NLL_LIMIT:g}")
        with pytest.raises(F.FormatCheckFailed, match=wanted):
            F.check_format(COMMIT, cfg, fmt, tasks, quick=2, loader=lambda _: (model, tok))
        assert "FAILED" in capsys.readouterr().out
