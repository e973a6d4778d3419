"""Tasks drawn from the families, verified, and written as Kaggle challenges/solutions files.

A task is fixed by (family, seed, index): the same three give the same task on any machine. Its id says where
it came from, `synth-<family>-<seed>-<index>`, so the corpus guard and a reader can trace it.
"""
from __future__ import annotations

import os
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..core.config import ConfigError
from ..core.folders import write_json_atomic
from ..core.tasks import Pair, Task, to_kaggle
from .catalog import FAMILIES
from .family import Family, Redraw
from .verify import problems

TASK_TRIES = 12  # fresh parameters per task before the family is refused for this task
PAIR_TRIES = 40  # inputs drawn per pair before the parameters are given up
DEMOS = (3, 4)  # demonstrations per task (ARC's are mostly 2-5); one test pair follows


@dataclass(frozen=True)
class Refusal:
    family: str
    seed: int
    index: int
    reason: str


@dataclass
class Batch:
    tasks: list[Task] = field(default_factory=list)
    params: dict[str, dict] = field(default_factory=dict)  # task id -> the rule's drawn parameters
    refusals: list[Refusal] = field(default_factory=list)

    def per_family(self) -> dict[str, dict[str, int]]:
        made = Counter(t.id.split("-")[1] for t in self.tasks)
        refused = Counter(r.family for r in self.refusals)
        return {f: {"tasks": made[f], "refused": refused[f]} for f in sorted(set(made) | set(refused))}


def task_id(name: str, seed: int, index: int) -> str:
    return f"synth-{name}-{seed}-{index}"


def rng_for(name: str, seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(name.encode()), seed, index])


def _draw_pairs(rule, rng, n: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(PAIR_TRIES):
        try:
            drawn = rule.draw(rng)
            x, y = drawn if isinstance(drawn, tuple) else (drawn, rule.apply(drawn.copy()))
        except Redraw:
            continue
        if all(x.shape != p.shape or not np.array_equal(x, p) for p, _ in pairs):
            pairs.append((np.asarray(x), np.asarray(y)))
        if len(pairs) == n:
            return pairs
    return None


def make_task(fam: Family, seed: int, index: int) -> tuple[Task, dict] | Refusal:
    """One verified task of `fam` with its parameters, or the reason none could be made."""
    rng = rng_for(fam.name, seed, index)
    reason = "no parameters drawn"
    for _ in range(TASK_TRIES):
        try:
            rule = fam.make(rng)
        except Redraw as e:
            reason = f"parameters: {e}"
            continue
        pairs = _draw_pairs(rule, rng, int(rng.integers(DEMOS[0], DEMOS[1] + 1)) + 1)
        if pairs is None:
            reason = f"fewer than the pairs needed in {PAIR_TRIES} draws"
            continue
        found = problems(pairs, fam, rule)
        if found:
            reason = found[0]
            continue
        grids = [Pair(x.astype(np.uint8), y.astype(np.uint8)) for x, y in pairs]
        return Task(task_id(fam.name, seed, index), tuple(grids[:-1]), tuple(grids[-1:])), rule.params
    return Refusal(fam.name, seed, index, reason)


def generate(n: int, names: list[str] | None = None, seed: int = 0) -> Batch:
    """n tasks, the families taken in turn (task i is family i mod F, its index i // F)."""
    names = names or sorted(FAMILIES)
    unknown = [f for f in names if f not in FAMILIES]
    if unknown:
        raise ConfigError(f"unknown families {unknown}; `arc-ttt synth --list` shows them")
    batch = Batch()
    for i in range(n):
        got = make_task(FAMILIES[names[i % len(names)]], seed, i // len(names))
        if isinstance(got, Refusal):
            batch.refusals.append(got)
        else:
            batch.tasks.append(got[0])
            batch.params[got[0].id] = got[1]
    return batch


def write(out: str, batch: Batch, seed: int) -> list[str]:
    """One challenges file and its solutions file per family (the corpus reads both), and a manifest."""
    os.makedirs(out, exist_ok=True)
    by_family: dict[str, list[Task]] = {}
    for t in batch.tasks:
        by_family.setdefault(t.id.split("-")[1], []).append(t)
    written = []
    for name, tasks in sorted(by_family.items()):
        for kind, obj in zip(("challenges", "solutions"), to_kaggle(tasks)):
            path = os.path.join(out, f"synth-{name}_{kind}.json")
            write_json_atomic(path, obj)
            written.append(path)
    manifest = {"seed": seed, "tasks": len(batch.tasks), "families": batch.per_family(),
                "refusals": [r.__dict__ for r in batch.refusals[:200]]}
    write_json_atomic(os.path.join(out, "manifest.txt"), manifest, indent=1)
    return written
