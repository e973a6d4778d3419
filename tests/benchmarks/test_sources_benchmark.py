"""benchmarks/accuracy/sources.py: one run with both sources read as three (the LLM alone, both, the grid model
alone), per task over seeds, each paired with the LLM alone; and two labels (conditions) paired by task."""
import json

import pytest
from conftest import load_benchmark

from arc_ttt.core.config import GridSourceConfig, InferenceConfig, to_dict


@pytest.fixture(scope="module")
def sources():
    return load_benchmark("sources")


def cand(grid, nll, *origins):
    return {"grid": grid, "views": [f"v{i}" for i in range(len(origins))], "logprobs": [-0.1] * len(origins),
            "votes": len(origins), "view_nlls": [nll], "sources": sorted(set(origins)), "origins": list(origins)}


def log(tasks, **inference):
    cfg = to_dict(InferenceConfig(sources=["llm", "grid"], grid=GridSourceConfig(path="g"), **inference))
    return {"config": {"inference": cfg}, "tasks": tasks}


def task(tid, candidates, llm_s, grid_s, total):
    return {"id": tid, "candidates": [candidates], "seconds": total,
            "source_seconds": {"llm": llm_s, "grid": grid_s}}


TRUTH, WRONG, OTHER = [[1]], [[2]], [[3]]


def test_the_settings_are_read_from_one_run_and_paired_with_the_llm_alone(sources):
    # t1: only the grid model finds the truth, and the LLM's re-scoring ranks it first: grid and both solve it;
    # t2: only the LLM finds it, and the grid model's two likelier wrong grids push it to 3rd when both propose;
    # t3: both find it
    t1 = task("t1", [cand(TRUTH, 0.1, "grid"), cand(WRONG, 0.5, "llm"), cand(OTHER, 0.6, "llm")], 4.0, 2.0, 10.0)
    t2 = task("t2", [cand(WRONG, 0.1, "grid"), cand(OTHER, 0.2, "grid"), cand(TRUTH, 0.3, "llm")], 4.0, 2.0, 10.0)
    t3 = task("t3", [cand(TRUTH, 0.1, "llm", "grid")], 4.0, 2.0, 10.0)
    solutions = {"t1": [TRUTH], "t2": [TRUTH], "t3": [TRUTH]}
    scores = sources.setting_scores([log([t1, t2, t3], selection="poe")], solutions)
    assert scores["llm"]["score"] == {"t1": 0.0, "t2": 1.0, "t3": 1.0}
    assert scores["llm+grid"]["score"] == {"t1": 1.0, "t2": 0.0, "t3": 1.0}  # t2's truth ranked 3rd of the pool
    assert scores["grid"]["score"] == {"t1": 1.0, "t2": 0.0, "t3": 1.0}
    assert scores["llm+grid"]["found"] == {"t1": 1.0, "t2": 1.0, "t3": 1.0}
    assert scores["grid"]["found"]["t2"] == 0.0
    assert scores["llm"]["seconds"]["t1"] == 8.0 and scores["grid"]["seconds"]["t1"] == 6.0  # less the other source
    assert scores["llm+grid"]["seconds"]["t1"] == 10.0
    out = sources.table({"none": scores})
    d = out["labels"]["none"]["differences"]["llm+grid - llm"]
    assert d["mean"] == pytest.approx(0.0) and (d["tasks_better"], d["tasks_worse"]) == (1, 1)
    assert out["labels"]["none"]["settings"]["llm"]["score"]["mean"] == pytest.approx(2 / 3, abs=1e-5)  # 5 places


def test_seeds_are_averaged_and_labels_paired_on_common_tasks(sources):
    solved = task("t1", [cand(TRUTH, 0.1, "llm")], 1.0, 1.0, 3.0)
    missed = task("t1", [cand(WRONG, 0.1, "llm")], 1.0, 1.0, 3.0)
    extra = task("t2", [cand(TRUTH, 0.1, "grid")], 1.0, 1.0, 3.0)
    solutions = {"t1": [TRUTH], "t2": [TRUTH]}
    a = sources.setting_scores([log([solved]), log([missed, extra])], solutions)  # t2 in one seed only: left out
    assert a["llm"]["score"] == {"t1": 0.5}
    b = sources.setting_scores([log([solved, extra])], solutions)
    out = sources.table({"none": a, "llm": b})
    d = out["between_labels"]["llm: llm - none"]
    assert d["mean"] == pytest.approx(0.5) and d["n"] == 1


def test_a_run_without_the_grid_source_is_refused(sources):
    only_llm = {"config": {"inference": to_dict(InferenceConfig())}, "tasks": []}
    with pytest.raises(SystemExit, match=r"sources \['llm'\]; it needs \[llm, grid\]"):
        sources.setting_scores([only_llm], {})


def test_a_stopped_run_is_read_from_its_journal_under_a_finished_runs_config(sources, tmp_path):
    finished, stopped = tmp_path / "finished", tmp_path / "stopped"
    finished.mkdir(), stopped.mkdir()
    (finished / "log.json").write_text(json.dumps(log([], selection="vote")))
    rec = task("t1", [cand(TRUTH, 0.1, "llm")], 1.0, 1.0, 3.0)
    (stopped / "journal.jsonl").write_text(json.dumps(rec) + "\n" + '{"id": "t2", "cut by a ki')
    with pytest.raises(SystemExit, match="give --config-from"):
        sources.read_run(str(stopped), None)
    got, partial = sources.read_run(str(stopped), str(finished))
    assert partial and got["tasks"] == [rec] and got["config"]["inference"]["selection"] == "vote"
    assert sources.read_run(str(finished), None) == (json.loads((finished / "log.json").read_text()), False)
