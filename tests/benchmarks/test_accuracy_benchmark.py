"""benchmarks/accuracy.py's arithmetic: a row is the mean over seeds per task, then over tasks with an interval;
two rows are compared task by task."""
import importlib.util
import os

import pytest
from conftest import ROOT



@pytest.fixture(scope="module")
def accuracy():
    spec = importlib.util.spec_from_file_location("accuracy_benchmark", os.path.join(ROOT, "benchmarks", "accuracy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
