import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import write_kaggle_files

from arc_ttt.cli import main
from arc_ttt.core.submission import SubmissionWriter, fallback_attempts, score_submission, validate_submission
from arc_ttt.core.tasks import InvalidTask, load_challenges


@pytest.fixture
def files(tmp_path, small_tasks):
    return write_kaggle_files(tmp_path, small_tasks[:4])


def test_writer_is_valid_from_the_start_and_after_each_update(tmp_path, files):
    c, _, challenges, solutions = files
    ts = load_challenges(c)
    path = tmp_path / "out" / "submission.json"
    w = SubmissionWriter(path, ts.tasks)
    assert validate_submission(challenges, json.loads(path.read_text())) == []
    for t in ts.valid:
        truth = [np.array(g) for g in solutions[t.id]]
        w.update(t.id, [(g, g) for g in truth])
        assert validate_submission(challenges, json.loads(path.read_text())) == []
    assert score_submission(solutions, json.loads(path.read_text())).output_mean == 1.0
    assert [p.name for p in path.parent.iterdir()] == ["submission.json"]  # no temp files left


def test_fallback_covers_invalid_tasks_and_every_test_input(small_tasks):
    t = small_tasks[0]
    fb = fallback_attempts(t)
    assert len(fb) == t.n_test
    np.testing.assert_array_equal(fb[0][0], t.test[0].input)
    assert fallback_attempts(InvalidTask("x", "bad", 3)) == [fallback_attempts(InvalidTask("x", "bad", 1))[0]] * 3


def test_writer_rejects_wrong_answers(tmp_path, small_tasks):
    w = SubmissionWriter(tmp_path / "s.json", small_tasks[:1])
    tid = small_tasks[0].id
    with pytest.raises(KeyError):
        w.update("nope", [])
    with pytest.raises(ValueError, match="answers for"):
        w.update(tid, [])
    with pytest.raises(ValueError, match="attempt_2"):
        w.update(tid, [(np.zeros((2, 2), np.uint8), np.full((1, 1), 12))] * small_tasks[0].n_test)


def test_validate_lists_every_problem():
    challenges = {"a": {"train": [], "test": [{"input": [[0]]}, {"input": [[0]]}]}, "b": {"test": [{"input": [[1]]}]}}
    sub = {"a": [{"attempt_1": [[1]]}], "c": []}
    problems = validate_submission(challenges, sub)
    assert "a: 1 entries for 2 test inputs" in problems
    assert "a[0]: no attempt_2" in problems
    assert "b: missing" in problems
    assert "c: not a task of the challenges file" in problems
    assert validate_submission(challenges, []) == ["top level is a list, expected an object of task ids"]
    bad = {"a": [{"attempt_1": [[1, 2], [3]], "attempt_2": [[True]]}] * 2, "b": [{"attempt_1": [[1]], "attempt_2": [[1]]}]}
    problems = validate_submission(challenges, bad)
    assert any("attempt_1: ragged" in p for p in problems) and any("attempt_2" in p and "bool" in p for p in problems)


def test_score_counts_either_attempt_and_averages_over_outputs():
    sol = {"a": [[[1]], [[2]]], "b": [[[3]]]}
    sub = {"a": [{"attempt_1": [[0]], "attempt_2": [[1]]}, {"attempt_1": [[0]], "attempt_2": [[0]]}],
           "b": [{"attempt_1": [[3]], "attempt_2": [[0]]}]}
    s = score_submission(sol, sub)
    assert s.per_task == {"a": [True, False], "b": [True]}
    assert s.output_mean == pytest.approx(2 / 3)
    assert s.task_mean == pytest.approx((0.5 + 1) / 2)
    assert score_submission(sol, {}).output_mean == 0.0
    assert score_submission({"a": [[[1, 1]]]}, {"a": [{"attempt_1": [[1], [1]], "attempt_2": [1, 1]}]}).n_correct == 0


def test_cli_validate_and_score(tmp_path, files, capsys):
    c, s, challenges, solutions = files
    sub = tmp_path / "submission.json"
    SubmissionWriter(sub, load_challenges(c).tasks)
    assert main(["validate", str(c), str(sub)]) == 0
    assert "valid (4 tasks" in capsys.readouterr().out
    assert main(["score", str(c), str(sub), str(s)]) == 0
    out = capsys.readouterr().out
    assert "score: " in out and all(tid in out for tid in challenges)
    broken = json.loads(sub.read_text())
    broken.pop(next(iter(broken)))
    sub.write_text(json.dumps(broken))
    assert main(["validate", str(c), str(sub)]) == 1
    assert ": missing" in capsys.readouterr().out
    sub.write_text('{"a": ')
    assert main(["validate", str(c), str(sub)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


@pytest.mark.e2e
def test_python_dash_m_entry_point(files, tmp_path):
    c, s, *_ = files
    out = subprocess.run([sys.executable, "-m", "arc_ttt", "validate", str(c), str(tmp_path / "none.json")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "cannot read" in out.stderr


WRITER_LOOP = """
import sys, numpy as np
from arc_ttt.core.submission import SubmissionWriter
from arc_ttt.core.tasks import load_challenges
ts = load_challenges(sys.argv[1])
w = SubmissionWriter(sys.argv[2], ts.tasks)
print("ready", flush=True)
i = 0
while True:
    i += 1
    for t in ts.valid:
        w.update(t.id, [(np.full((i % 30 + 1, 30), i % 10), p.input) for p in t.test])
"""


@pytest.mark.e2e
def test_kill_9_mid_write_always_leaves_a_valid_file(tmp_path, files):
    c, _, challenges, _ = files
    path = tmp_path / "submission.json"
    for trial in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER_LOOP, str(c), str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.07 * trial)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert validate_submission(challenges, json.loads(path.read_text())) == []
