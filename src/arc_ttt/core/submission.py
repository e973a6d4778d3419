"""submission.json: an always-valid writer, the Kaggle validator and the competition metric.

Format: {task_id: [{"attempt_1": grid, "attempt_2": grid}, ...one per test input, in order]}.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .folders import write_json_atomic
from .tasks import GridError, InvalidTask, Task, to_grid

Attempts = tuple[np.ndarray, np.ndarray]
ZERO = np.zeros((1, 1), dtype=np.uint8)


def fallback_attempts(task: Task | InvalidTask) -> list[Attempts]:
    """What a task gets before (or instead of) a model answer: the test input itself, then 1x1 zero.

    Copying the input is right for a few ARC tasks and is always a legal grid.
    """
    if isinstance(task, InvalidTask):
        return [(ZERO, ZERO)] * task.n_test
    return [(p.input, ZERO) for p in task.test]


def _entry(attempts: Sequence[Attempts]) -> list[dict]:
    return [{"attempt_1": np.asarray(a1).tolist(), "attempt_2": np.asarray(a2).tolist()} for a1, a2 in attempts]


class SubmissionWriter:
    """Owns submission.json for a run. Valid from construction on; rewritten atomically on each update."""

    def __init__(self, path: str | os.PathLike, tasks: Iterable[Task | InvalidTask], write: bool = True):
        self.path = os.fspath(path)
        self._n_test: dict[str, int] = {}
        self._answers: dict[str, list[dict]] = {}
        for t in tasks:
            self._n_test[t.id] = t.n_test
            self._answers[t.id] = _entry(fallback_attempts(t))
        if write:
            self.flush()

    @property
    def ids(self):
        return self._answers.keys()

    def update(self, task_id: str, attempts: Sequence[Attempts], flush: bool = True) -> None:
        if task_id not in self._answers:
            raise KeyError(f"task {task_id!r} is not in this submission")
        if len(attempts) != self._n_test[task_id]:
            raise ValueError(f"task {task_id}: {len(attempts)} answers for {self._n_test[task_id]} test inputs")
        for i, (a1, a2) in enumerate(attempts):
            for name, g in (("attempt_1", a1), ("attempt_2", a2)):
                try:
                    to_grid(np.asarray(g).tolist())
                except GridError as e:
                    raise ValueError(f"task {task_id} test {i} {name}: {e}") from None
        self._answers[task_id] = _entry(attempts)
        if flush:
            self.flush()

    def as_dict(self) -> dict[str, list[dict]]:
        return dict(self._answers)

    def flush(self) -> None:
        write_json_atomic(self.path, self._answers)


def validate_submission(challenges: Mapping[str, Any], submission: Any) -> list[str]:
    """Every problem that would make Kaggle reject or mis-score the file; empty when it is fine."""
    if not isinstance(submission, dict):
        return [f"top level is a {type(submission).__name__}, expected an object of task ids"]
    problems = []
    for tid, task in challenges.items():
        n_test = len(task["test"]) if isinstance(task, dict) and isinstance(task.get("test"), list) else None
        if tid not in submission:
            problems.append(f"{tid}: missing")
            continue
        entry = submission[tid]
        if not isinstance(entry, list):
            problems.append(f"{tid}: expected a list of {{attempt_1, attempt_2}} objects, got {type(entry).__name__}")
            continue
        if n_test is not None and len(entry) != n_test:
            problems.append(f"{tid}: {len(entry)} entries for {n_test} test inputs")
        for i, item in enumerate(entry):
            if not isinstance(item, dict):
                problems.append(f"{tid}[{i}]: expected an object, got {type(item).__name__}")
                continue
            for name in ("attempt_1", "attempt_2"):
                if name not in item:
                    problems.append(f"{tid}[{i}]: no {name}")
                    continue
                try:
                    to_grid(item[name])
                except GridError as e:
                    problems.append(f"{tid}[{i}].{name}: {e}")
    for tid in submission:
        if tid not in challenges:
            problems.append(f"{tid}: not a task of the challenges file")
    return problems


@dataclass
class Score:
    per_task: dict[str, list[bool]] = field(default_factory=dict)  # task id -> hit per test output

    @property
    def n_outputs(self) -> int:
        return sum(len(v) for v in self.per_task.values())

    @property
    def n_correct(self) -> int:
        return sum(sum(v) for v in self.per_task.values())

    @property
    def output_mean(self) -> float:
        """Mean over test outputs (each counts 1 if either attempt matches exactly)."""
        return self.n_correct / self.n_outputs if self.n_outputs else 0.0

    @property
    def task_mean(self) -> float:
        """Mean over tasks of each task's fraction of test outputs solved (ARC Prize's per-task averaging)."""
        if not self.per_task:
            return 0.0
        return sum(sum(v) / len(v) for v in self.per_task.values()) / len(self.per_task)


def _same(a: Any, b: Any) -> bool:
    try:
        return np.array_equal(np.asarray(a), np.asarray(b)) and np.asarray(a).ndim == 2
    except (ValueError, TypeError):
        return False


def score_submission(solutions: Mapping[str, Sequence[Any]], submission: Mapping[str, Any]) -> Score:
    """The competition metric: a test output scores 1 if attempt_1 or attempt_2 equals it exactly."""
    score = Score()
    for tid, truths in solutions.items():
        entry = submission.get(tid) if isinstance(submission, dict) else None
        hits = []
        for i, truth in enumerate(truths):
            item = entry[i] if isinstance(entry, list) and i < len(entry) and isinstance(entry[i], dict) else {}
            hits.append(any(_same(item.get(k), truth) for k in ("attempt_1", "attempt_2")))
        score.per_task[tid] = hits
    return score
