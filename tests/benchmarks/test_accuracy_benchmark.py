"""benchmarks/accuracy/accuracy.py's arithmetic: a row is the mean over seeds per task, then over tasks with an interval;
two rows are compared task by task. Its replay: decoding memoised by a candidate source."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import load_benchmark

from arc_ttt.core import devset
from arc_ttt.core.clock import Deadline, FakeClock
from arc_ttt.core.config import InferenceConfig
from arc_ttt.core.ranking import Candidate



@pytest.fixture(scope="module")
def accuracy():
    return load_benchmark("accuracy")


def seed_result(seed, scores, ranks, nlls):
    per_task = {t: {"score": s, "truth_rank": r, "truth_nll": n} for t, s, r, n in zip("abcd", scores, ranks, nlls)}
    return {"seed": seed, "score": sum(scores) / 4, "score_per_output": sum(scores) / 4, "seconds": 10.0,
            "per_task": per_task}


def test_a_row_averages_seeds_per_task_then_tasks(accuracy):
    seeds = [seed_result(0, [1, 0, 0, 0], [[1], [3], [None], [None]], [[0.1], [0.5], [0.9], [1.0]]),
             seed_result(1, [1, 1, 0, 0], [[1], [2], [None], [4]], [[0.2], [0.4], [0.8], [1.0]])]
    row = accuracy.summarise("r", 8, 8, [], seeds)
    assert row["score"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert row["found"] == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert row["top2"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert row["truth_nll"] == pytest.approx((0.15 + 0.45 + 0.85 + 1.0) / 4)
    assert row["truth_rank"] == pytest.approx((1 + 3 + 1 + 2 + 4) / 5)
    assert row["seconds"] == 20.0 and row["test_outputs"] == 4
    ci = row["ci"]["score"]
    assert ci["lo"] <= row["score"] <= ci["hi"] and ci["n"] == 4


def test_rows_are_compared_task_by_task(accuracy):
    a = accuracy.summarise("a", 8, 8, [], [seed_result(0, [1, 1, 0, 0], [[1], [1], [None], [None]], [[0.1]] * 4)])
    b = accuracy.summarise("b", 8, 8, [], [seed_result(0, [1, 0, 0, 1], [[1], [5], [None], [2]], [[0.3]] * 4)])
    c = accuracy.compare(a, b)
    assert c["score"]["mean"] == pytest.approx(0.0) and c["discordant"] == {"a_better": 1, "b_better": 1}
    assert c["truth_nll"]["mean"] == pytest.approx(-0.2) and c["truth_nll"]["hi"] == pytest.approx(-0.2)
    assert accuracy.find_row([a, b], "2") is b and accuracy.find_row([a, b], "a") is a


def result(seed, tasks, scores, partial):
    """A result file of one row under one seed (a stopped run's partial row, or a finished one)."""
    per_task = {t: {"score": s, "correct": [bool(s)], "truth_rank": [1 if s else None], "truth_nll": [0.5]}
                for t, s in zip(tasks, scores)}
    seed_row = {"seed": seed, "score": sum(scores) / len(scores), "score_per_output": 0.0, "seconds": 5.0,
                "per_task": per_task}
    row = {"name": "final default config", "steps": 8, "views": 8, "per_seed": [seed_row]}
    base = {"model": "m", "config": "c", "overrides": [], "steps": 8, "views": 8, "tasks": list(tasks),
            "task_tokens": {t: 100 for t in tasks}, "total_seconds": 5.0, "rows": [], "comparisons": []}
    return {**base, "partial_row": row} if partial else {**base, "rows": [{**row, "overrides": []}]}


def test_seeds_from_two_runs_are_joined_on_their_common_tasks(accuracy, tmp_path):
    """A run stopped after seed 0 (its partial row) and a run of seed 1 on fewer tasks make one row: the shared
    tasks, each seed's score recomputed over them; files that disagree on the effort are refused."""
    a, b, bad, out = (str(tmp_path / n) for n in ("a.json", "b.json", "bad.json", "out.json"))
    json.dump(result(0, "abcd", [1, 0, 0, 1], partial=True), open(a, "w"))
    json.dump(result(1, "abc", [1, 1, 0], partial=False), open(b, "w"))
    assert accuracy.combine_files([a, b], "final default config", out) == 0
    combined = json.load(open(out))
    assert combined["tasks"] == ["a", "b", "c"] and combined["seeds"] == [0, 1] and "partial_row" not in combined
    row = combined["rows"][0]
    assert row["score_by_seed"] == pytest.approx([1 / 3, 2 / 3]) and row["score"] == pytest.approx(0.5)
    assert row["per_task"]["score"] == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert row["seconds"] is None  # seed 0's seconds were spent on 4 tasks, not these 3
    json.dump({**result(2, "abc", [0, 0, 0], partial=False), "steps": 16}, open(bad, "w"))
    with pytest.raises(SystemExit, match="steps"):
        accuracy.combine_files([a, bad], "final default config", out)
    with pytest.raises(SystemExit, match="measured twice"):
        accuracy.combine_files([a, a], "final default config", out)


def test_a_stratum_measured_apart_joins_its_seed(accuracy, tmp_path):
    """Seed 0 on tasks a-b and, in another run, on c-d is one seed on a-d (its seconds summed); with seed 1 on a-b
    only, the row keeps the tasks both seeds have."""
    s0ab, s0cd, s1ab, out = (str(tmp_path / n) for n in ("s0ab.json", "s0cd.json", "s1ab.json", "out.json"))
    json.dump({**result(0, "ab", [1, 0], partial=False), "dataset": "dev"}, open(s0ab, "w"))
    json.dump({**result(0, "cd", [1, 1], partial=False), "dataset": "dev, stratum long"}, open(s0cd, "w"))
    json.dump(result(1, "ab", [0, 0], partial=False), open(s1ab, "w"))
    assert accuracy.combine_files([s0ab, s0cd], "final default config", out) == 0
    combined = json.load(open(out))
    row = combined["rows"][0]
    assert combined["tasks"] == ["a", "b", "c", "d"] and combined["seeds"] == [0]
    assert row["score"] == pytest.approx(0.75) and row["seconds"] == 10.0
    assert set(combined["task_tokens"]) == set("abcd") and combined["dataset"] == "dev"
    accuracy.combine_files([s0ab, s0cd, s1ab], "final default config", out)
    combined = json.load(open(out))
    assert combined["tasks"] == ["a", "b"] and combined["seeds"] == [0, 1]
    assert combined["rows"][0]["per_task"]["score"] == {"a": 0.5, "b": 0.0}


def test_a_stratum_of_the_dev_set_is_chosen_by_its_name(accuracy, tmp_path):
    """--stratum keeps the dev set's tasks of that stratum, in the file's order; an unknown one names the strata."""
    dev = tmp_path / "dev.json"
    entries = [("007bbfb7", "short"), ("00d62c1b", "long"), ("017c7c7b", "short")]
    json.dump({"tasks": [{"id": i, "source": "arc-agi-1:train", "tokens": 1, "stratum": s} for i, s in entries]},
              open(dev, "w"))
    tasks, what = accuracy.choose_tasks(str(dev), None, "short")
    assert [t.id for t in tasks] == ["007bbfb7", "017c7c7b"] and what.endswith("stratum short")
    assert [t.id for t in accuracy.choose_tasks(str(dev), None)[0]] == [i for i, _ in entries]
    with pytest.raises(SystemExit, match="strata: \\['long', 'short'\\]"):
        accuracy.choose_tasks(str(dev), None, "medium")


def test_two_files_are_paired_on_the_tasks_and_seeds_both_measured(accuracy, tmp_path):
    """A 2-seed file against a 1-seed file on fewer tasks: the difference is over the shared seed and tasks."""
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    two = result(0, "abcd", [1, 1, 0, 1], partial=False)
    two["rows"][0]["per_seed"].append({**result(1, "abcd", [0, 0, 0, 0], partial=False)["rows"][0]["per_seed"][0]})
    json.dump(two, open(a, "w"))
    json.dump(result(0, "abc", [1, 0, 0], partial=False), open(b, "w"))
    c = accuracy.compare_files(a, b, "final default config", None)
    assert c["tasks"] == 3 and c["seeds"] == [0]
    assert c["score"]["mean"] == pytest.approx(1 / 3, abs=1e-5) and c["discordant"] == {"a_better": 1, "b_better": 0}
    other = result(0, "abc", [1, 0, 0], partial=False)
    other["rows"][0]["name"] = "greedy"  # two settings measured as different rows
    json.dump(other, open(b, "w"))
    assert accuracy.compare_files(a, b, "final default config", None, row_b="greedy")["score"] == c["score"]
    json.dump(result(5, "abc", [1, 0, 0], partial=False), open(b, "w"))
    with pytest.raises(SystemExit, match="no seed"):
        accuracy.compare_files(a, b, "final default config", None)


def truth_only(result_file):
    """The same file as measured by --truth-only: no candidates, so no score, rank or correct; the NLL raised."""
    for s in result_file["rows"][0]["per_seed"]:
        s.update(score=None, score_per_output=None)
        for t in s["per_task"].values():
            t.update(score=None, correct=None, truth_rank=None, truth_nll=[t["truth_nll"][0] + 0.25])
    return result_file


def test_a_truth_only_row_has_the_truth_nll_alone_and_pairs_on_it(accuracy, tmp_path):
    """--truth-only (settings that change training, judged on the truth's NLL at half the cost): its row leaves
    score, found and top2 empty instead of counting zeros, and a comparison with a full row is on truth_nll only."""
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    json.dump(truth_only(result(0, "abcd", [1, 0, 0, 1], partial=False)), open(a, "w"))
    json.dump(result(0, "abcd", [1, 0, 0, 1], partial=False), open(b, "w"))
    seeds = json.load(open(a))["rows"][0]["per_seed"]
    row = accuracy.summarise("r", 8, 8, [], seeds)
    assert row["score"] is None and row["found"] is None and row["top2"] is None and row["truth_rank"] is None
    assert row["truth_nll"] == pytest.approx(0.75) and set(row["ci"]) == {"truth_nll"}
    assert row["test_outputs"] == 4
    assert "truth_nll 0.750" in accuracy.describe(row) and "score" not in accuracy.describe(row)
    c = accuracy.compare_files(a, b, "final default config", None)
    assert set(c) == {"a", "b", "truth_nll", "tasks", "seeds"}
    assert c["truth_nll"]["mean"] == pytest.approx(0.25) and c["truth_nll"]["lo"] == pytest.approx(0.25)
    assert accuracy.seed_on(seeds[0], ["a", "b"])["score"] is None


class CountingSource:
    """A source whose every proposal takes 5 s on the fake clock: one candidate per view."""

    name = "llm"

    def __init__(self, clock):
        self.clock, self.calls = clock, 0

    def propose(self, task, test_index, views, cfg, deadline, times):
        self.calls += 1
        self.clock.advance(5.0)
        return [Candidate(np.full((1, 1), test_index, dtype=np.uint8), [v.key], [-1.0]) for v in views]


def test_the_memo_source_decodes_once_per_adapter_and_settings(accuracy):
    """Rows that differ in selection alone replay the decoding (and count its seconds); another adapter, other
    decoding settings or a decoding cut short by its deadline decode again."""
    clock = FakeClock()
    inner, adapter = CountingSource(clock), [("t", 8, 0)]
    memo = accuracy.MemoSource(inner, lambda: adapter[0], clock)
    view = SimpleNamespace(key="v1")
    task = SimpleNamespace(id="t")
    cfg = InferenceConfig()
    first = memo.propose(task, 0, [view], cfg, Deadline(clock), None)
    first[0].votes = 99  # selection works on what it is given: the memo keeps its own copy
    again = memo.propose(task, 0, [view], cfg, Deadline(clock), None)
    assert inner.calls == 1 and memo.replayed == 5.0 and memo.name == "llm"
    assert again[0].votes == 0 and again[0].views == ["v1"]
    memo.propose(task, 0, [view], InferenceConfig(decoding="greedy"), Deadline(clock), None)
    adapter[0] = ("initial", 0)
    memo.propose(task, 0, [view], cfg, Deadline(clock), None)
    assert inner.calls == 3
    memo.propose(task, 1, [view], cfg, Deadline(clock, clock() + 1.0), None)  # cut short: never replayed
    memo.propose(task, 1, [view], cfg, Deadline(clock), None)
    assert inner.calls == 5 and memo.replayed == 5.0


def test_the_replay_engine_gives_its_model_engine_the_memo_source(accuracy):
    inner = SimpleNamespace(model=None, codec=None, sources=None)
    engine = accuracy.ReplayEngine(inner, {})
    assert inner.sources == [engine.memo] and engine.memo.adapter() == ("initial",)
    engine.adapter = ("t", 8, 0)
    assert engine.memo.adapter() == ("t", 8, 0) and engine.replayed_generation == 0.0
    grid = SimpleNamespace(name="grid")  # inference.sources [llm, grid]: the grid model proposes as loaded
    both = SimpleNamespace(model=None, codec=None, sources=[SimpleNamespace(name="llm"), grid])
    engine = accuracy.ReplayEngine(both, {})
    assert both.sources == [engine.memo, grid]


def test_a_dev_row_is_also_weighted_to_the_evaluation_sets_length_mix(accuracy):
    """On dev-set tasks the row carries the score weighted by core.devset.EVAL_MIX; on others (here toy ids) none."""
    strata = devset.strata_by_id([accuracy.DEV])
    ids = {s: [i for i, t in strata.items() if t == s][:2] for s in ("short", "medium", "long")}
    chosen = [*ids["short"], *ids["medium"], *ids["long"]]
    solved = [1, 1, 0, 1, 0, 0]  # short 1, medium 0.5, long 0
    per_task = {i: {"score": s, "truth_rank": [1 if s else None], "truth_nll": [0.1]} for i, s in zip(chosen, solved)}
    row = accuracy.summarise("r", 8, 8, [], [{"seed": 0, "score": 0.5, "score_per_output": 0.5, "seconds": 1.0,
                                              "per_task": per_task}])
    mix = devset.EVAL_MIX
    want = (mix["short"] * 1 + mix["medium"] * 0.5) / sum(mix.values())
    assert row["score_eval_mix"]["mean"] == pytest.approx(want, abs=1e-5) and row["score"] == pytest.approx(0.5)
    assert f"length mix {want:.3f}" in accuracy.describe(row)
    toy = accuracy.summarise("t", 8, 8, [], [seed_result(0, [1, 0, 0, 0], [[1], [3], [None], [None]], [[0.1]] * 4)])
    assert toy["score_eval_mix"] is None and "length mix" not in accuracy.describe(toy)
