"""benchmarks/accuracy/selection.py: the rules re-rank the same logged candidates, per task, averaged over seeds, and are
paired by task against the configured rule."""
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def selection():
    return load_benchmark("selection")


def cand(grid, votes, nll):
    return {"grid": grid, "views": ["v"] * max(votes, 1), "logprobs": [-0.1] * max(votes, 1), "votes": votes,
            "view_nlls": [nll]}


def test_rules_are_scored_per_task_over_seeds_and_paired(selection):
    truth = [[1]]
    popular, right, third = cand([[2]], 5, 3.0), cand(truth, 1, 0.5), cand([[3]], 4, 2.0)
    # t1: votes rank the truth 3rd, poe 1st; t2: the truth is never found; seed 1 drops t1's third candidate
    seed0 = {"tasks": [{"id": "t1", "candidates": [[popular, right, third]]}, {"id": "t2", "candidates": [[popular]]}]}
    seed1 = {"tasks": [{"id": "t1", "candidates": [[popular, right]]}, {"id": "t2", "candidates": [[popular]]},
                       {"id": "t3", "candidates": [[right]]}]}  # t3: not in seed 0, left out of the pairing
    solutions = {"t1": [truth], "t2": [truth], "t3": [truth]}
    scores = selection.per_task_scores([seed0, seed1], solutions, ("vote", "poe"))
    assert scores == {"vote": {"t1": 0.5, "t2": 0.0}, "poe": {"t1": 1.0, "t2": 0.0}}
    summary = selection.summarise(scores, "poe")
    d = summary["differences"]["vote - poe"]
    assert d["mean"] == pytest.approx(-0.25) and d["tasks_worse"] == 1 and d["tasks_better"] == 0
    assert summary["rules"]["poe"]["mean"] == pytest.approx(0.5)


def test_a_missing_run_folder_is_named_with_what_is_there(selection, tmp_path):
    (tmp_path / "row5-seed0").mkdir()
    with pytest.raises(SystemExit, match=r"no run log at .*row6-seed0.*\['row5-seed0'\]"):
        selection.read_log(str(tmp_path / "row6-seed0"))
