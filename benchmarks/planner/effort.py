"""The effort table: what each TTT step count buys on each dev task, and what it costs (issue 24).

    flock /tmp/arc-cpu.lock .venv/bin/python benchmarks/planner/effort.py                 (hours on the 2-core CPU; resumes)
    .venv/bin/python benchmarks/planner/effort.py --quick --out /tmp/effort-smoke.json   (smoke: 2 tasks, levels 0 and 2, 2 views)

Per dev task (benchmarks/dev_tasks.json, `--tasks FILE`; never the evaluation tasks): one TTT run to the last level
(32 steps) with the adapter copied after 0, 2, 4, 8, 16 and 32 steps, and at each copy the default inference of
configs/local.yaml (DFS, product-of-experts selection) with its views: the score (2 attempts; fraction of the
test outputs solved), `found` (fraction of test outputs whose truth is among the candidates), the truth's
teacher-forced NLL per answer token (mean over the product-of-experts scoring views, the grid tokens normalised as
the scorer does), and the seconds of each phase. A copy at k steps is the adapter after k steps of a 32-step
schedule (warmup and cosine decay over 32 steps), which is not a k-step run's adapter: the table measures one
schedule, stopped early, which is what the learned policy's gate does.

Per task it also records features known before or early in training: the difficulty NLL (the planner's), the
mean entropy of the next-token distribution over the grid tokens at the demo outputs' positions (base model),
prompt tokens, demo count, the largest demo output's area, the TTT loss per step (the loss after 2 steps is the
gate's feature), and at 0 steps the greedy path log-probability (mean over views of each view's likeliest path)
and how many views agree (the share of views that decoded the most decoded candidate).

Cost (`git show 8151a4d14104:benchmarks/results/effort_smoke.json`, 2 short tasks, 2 views, levels 0 and 2, on the 2-core CPU at load 4-5):
126 s and 372 s per task; a TTT step 7.8 s and 22 s (2 steps, warm-up included), inference 45-231 s per level
at 2 views. The full table (8 views, 6 levels, 32 steps, 48 tasks up to 2048 tokens) is of the order of a day
of this CPU; `--views` and `--levels` trade the default inference or the levels for time.

Writes `--out` (default benchmarks/planner/results/effort_table.json) after every task, and on a second call skips the tasks it
already holds when the settings match (model, config, levels, views); `--fresh` starts over. Also a plot
(`--out` with .png): score and truth NLL against steps, one line per size stratum.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch

from arc_ttt.core.config import RunConfig, load_config
from arc_ttt.core.devset import read_devset, load_dev_tasks
from arc_ttt.core.ranking import Candidate
from arc_ttt.core.tasks import Task
from arc_ttt.core.formats.codec import LossOn
from arc_ttt.core.views import ViewPlan
from arc_ttt.modeling import lora, ttt
from arc_ttt.modeling.engine import ModelEngine
from arc_ttt.modeling.runtime import autocast_context, model_device
from arc_ttt.modeling.selection import poe_nll

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import provenance, pyplot, uptime, write_result  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
OUT = os.path.join(ROOT, "benchmarks", "planner", "results", "effort_table.json")
CONFIG = os.path.join(ROOT, "configs", "local.yaml")
DEV = os.path.join(ROOT, "benchmarks", "dev_tasks.json")
MODEL = os.path.join(ROOT, "models", "smollm2-135m-arc")
LEVELS = (0, 2, 4, 8, 16, 32)
SETTINGS = ("model", "config", "levels", "views", "score_views", "seed")  # must match to resume

COLUMNS = {
    "score": "2 attempts: fraction of the task's test outputs solved",
    "found": "fraction of the task's test outputs whose truth is among all candidates",
    "truth_nll": "the truth's NLL per answer token, teacher-forced, mean over the scoring views and test outputs",
    "train_seconds": "training seconds to reach this level (one run to the last level; snapshot copies excluded)",
    "prefill_seconds / decode_seconds / rescore_seconds": "the default inference's phases at this level",
    "infer_seconds": "the default inference's wall seconds at this level",
    "nll_seconds": "measuring truth_nll (not part of a run's cost)",
}


class SnapshotCap:
    """A training cap that never stops training: between steps it copies the adapter at the levels asked and
    notes the training seconds so far (less its own copying)."""

    def __init__(self, model, levels, clock=time.monotonic):
        self.model, self.levels, self.clock = model, set(levels), clock
        self.snaps: dict[int, lora.AdapterSnapshot] = {}
        self.seconds: dict[int, float] = {}
        self.overhead = 0.0

    def reached(self, elapsed: float, steps_done: int, losses=()) -> bool:
        if steps_done in self.levels and steps_done not in self.snaps:
            t = self.clock()
            self.snaps[steps_done] = lora.snapshot(self.model)
            self.seconds[steps_done] = elapsed - self.overhead
            self.overhead += self.clock() - t
        return False


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


@torch.no_grad()
def demo_entropy(engine: ModelEngine, task: Task) -> float:
    """Mean entropy (nats) of the model's next-token distribution over the grid tokens where the demo outputs
    are predicted (the difficulty pass's positions), under the current adapter."""
    model, codec, c = engine.model, engine.codec, engine.cfg.ttt
    demos = ttt.fit_demos(task.train, c.max_len, codec.overhead, codec.pair_cost)
    if not demos:
        return float("nan")
    enc = codec.encode_pairs(demos, LossOn.ALL_BUT_FIRST if len(demos) > 1 else LossOn.ALL_OUTPUTS)
    device = model_device(model)
    batch = ttt.collate([enc], ttt.pad_id(model), device)
    with autocast_context(c.autocast, device):
        logits = model(input_ids=batch.ids, attention_mask=batch.attention, use_cache=False).logits
    at = (batch.labels[0] != ttt.IGNORE).nonzero().squeeze(1)
    grid = torch.tensor(codec.grid_token_ids, device=device)
    logp = torch.log_softmax(logits[0, at].float()[:, grid], dim=-1)
    return float(-(logp.exp() * logp).sum(-1).mean())


def truth_nll(engine: ModelEngine, task: Task) -> float:
    """The truth's NLL per answer token under the scoring views, mean over views and test outputs."""
    cfg = engine.cfg
    views = ViewPlan.of(cfg.views, cfg.seed).scoring(task, cfg.inference.n_score_views)
    per_output = []
    for ti, pair in enumerate(task.test):
        nll = poe_nll(engine.model, engine.codec, task, ti, [pair.output], views, max_len=cfg.inference.max_len,
                      batch_size=cfg.inference.batch_size)
        per_output.append(float(nll[0].mean()) / len(engine.codec.answer_symbols(pair.output)))
    return float(np.mean(per_output))


def level_zero_features(candidates: list[list[Candidate]], views: int) -> dict:
    """Greedy path log-probability (mean over views of the likeliest path a view decoded) and the share of views
    that decoded the most decoded candidate, from the first test output's candidates at 0 steps."""
    cands = candidates[0] if candidates else []
    best: dict[str, float] = {}
    for c in cands:
        for v, lp in zip(c.views, c.logprobs):
            best[v] = max(best.get(v, -math.inf), lp)
    agree = max((len(set(c.views)) for c in cands), default=0)
    return {"greedy_logprob": float(np.mean(list(best.values()))) if best else None,
            "views_agree": agree / max(1, views)}


def measure_task(engine: ModelEngine, task: Task, levels, views: int, clock=time.monotonic) -> dict:
    """One task's row: features, the loss curve, and the outcome and seconds at each level."""
    cost = engine.cost(task)
    t0 = clock()
    difficulty = engine.difficulty(task)  # resets the adapter first
    difficulty_seconds = clock() - t0
    entropy = demo_entropy(engine, task)
    cap = SnapshotCap(engine.model, [lv for lv in levels if lv > 0], clock)
    last = max(levels)
    if last > 0:
        tr = engine.train(task, last, cap, 0)
        cap.snaps.setdefault(tr.steps, lora.snapshot(engine.model))  # the last step is never followed by a check
        cap.seconds.setdefault(tr.steps, tr.seconds - cap.overhead)
    else:
        tr = None
    snaps = {0: engine.initial, **cap.snaps}
    seconds = {0: 0.0, **cap.seconds}
    blind = task.blind()
    rows, zero = [], {}
    for lv in levels:
        reached = max(s for s in snaps if s <= lv)  # a run that stopped short (inference only, time) stays there
        lora.restore(engine.model, snaps[reached])
        pred = engine.predict(blind, views, 1e9, 0)
        truths = [p.output for p in task.test]
        solved = [any(a is not None and same(a, t) for a in att) for att, t in zip(pred.attempts, truths)]
        found = [any(same(c.grid, t) for c in cands) for cands, t in zip(pred.candidates, truths)]
        t1 = clock()
        nll = truth_nll(engine, task)
        nll_seconds = clock() - t1
        if lv == 0:
            zero = level_zero_features(pred.candidates, views)
        rows.append({"steps": lv, "steps_reached": reached, "score": float(np.mean(solved)),
                     "found": float(np.mean(found)), "truth_nll": nll,
                     "train_seconds": round(seconds[reached], 3), "infer_seconds": round(pred.seconds, 3),
                     "prefill_seconds": round(pred.prefill_seconds, 3), "decode_seconds": round(pred.decode_seconds, 3),
                     "rescore_seconds": round(pred.rescore_seconds, 3), "nll_seconds": round(nll_seconds, 3),
                     "candidates": sum(len(c) for c in pred.candidates), "views_done": pred.views})
    engine.reset()
    losses = list(tr.losses) if tr else []
    features = {"difficulty": difficulty, "entropy": entropy, "prompt_tokens": cost.prompt_tokens,
                "demos": len(task.train), "output_area": max(p.output.size for p in task.train),
                "train_tokens_per_step": cost.train_tokens_per_step, "answer_tokens": cost.answer_tokens,
                "loss_after_2": losses[1] if len(losses) >= 2 else None, **zero}
    return {"id": task.id, "n_test": task.n_test, "features": features, "losses": [round(x, 5) for x in losses],
            "train_stopped_by": tr.stopped_by + (f" ({tr.note})" if tr and tr.note else "") if tr else "",
            "difficulty_seconds": round(difficulty_seconds, 3), "levels": rows}


def plot(table: dict, path: str) -> str | None:
    """Score and truth NLL against steps, mean per size stratum; None (and why, printed) without matplotlib."""
    plt = pyplot()
    if plt is None:
        return None
    levels = table["levels"]
    x = np.arange(len(levels))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    strata = sorted({t.get("stratum") or "all" for t in table["tasks"]})
    for s in strata:
        rows = [t for t in table["tasks"] if (t.get("stratum") or "all") == s]
        for ax, key in zip(axes, ("score", "truth_nll")):
            y = np.array([[lv[key] for lv in t["levels"]] for t in rows], dtype=float)
            ax.plot(x, np.nanmean(y, axis=0), marker="o", label=f"{s} ({len(rows)} tasks)")
    for ax, title in zip(axes, ("score (2 attempts)", "truth NLL per answer token")):
        ax.set_xticks(x, [str(v) for v in levels])
        ax.set_xlabel("TTT steps (adapter after k steps of one 32-step run)")
        ax.set_title(title)
        ax.legend()
    fig.suptitle(f"effort table: {len(table['tasks'])} tasks{' (SMOKE)' if table.get('quick') else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=DEV, help="dev-set file (default benchmarks/dev_tasks.json)")
    ap.add_argument("--model", default=MODEL, help="model folder (default models/smollm2-135m-arc)")
    ap.add_argument("--out", default=OUT, help="JSON output (default benchmarks/planner/results/effort_table.json)")
    ap.add_argument("--limit", type=int, help="only the first N tasks of the file")
    ap.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    ap.add_argument("--quick", action="store_true", help="smoke: 2 tasks, levels 0 and 2, 2 views; needs --out")
    ap.add_argument("--views", type=int, help="views for generation and scoring (default: the config's, 8); fewer is "
                    "cheaper but is not the default inference")
    ap.add_argument("--levels", help=f"comma-separated step counts (default {','.join(map(str, LEVELS))})")
    args = ap.parse_args()
    levels = tuple(int(x) for x in args.levels.split(",")) if args.levels else LEVELS
    views = args.views
    if 0 not in levels or sorted(set(levels)) != list(levels):
        ap.error("--levels: increasing step counts from 0")
    if args.quick:
        levels, views, args.limit = (0, 2), 2, min(args.limit or 2, 2)
        if os.path.abspath(args.out) == OUT:
            ap.error("--quick never writes the real table: give --out (e.g. /tmp/effort-smoke.json)")

    model = os.path.abspath(args.model)
    overrides = [f"model.path={model}"] + ([f"inference.n_views={views}", f"inference.n_score_views={views}"]
                                           if views else [])
    cfg: RunConfig = load_config(CONFIG, overrides)
    views = cfg.inference.n_views
    entries = read_devset(args.tasks)
    tasks = load_dev_tasks(args.tasks)
    if args.limit:
        entries, tasks = entries[:args.limit], tasks[:args.limit]
    settings = {"model": os.path.relpath(model, ROOT), "config": os.path.relpath(CONFIG, ROOT), "levels": list(levels),
                "views": views, "score_views": cfg.inference.n_score_views, "seed": cfg.seed}
    done: dict[str, dict] = {}
    if os.path.exists(args.out) and not args.fresh:
        with open(args.out) as f:
            old = json.load(f)
        if any(old.get(k) != settings[k] for k in SETTINGS):
            print(f"{args.out} was made with other settings ({ {k: old.get(k) for k in SETTINGS} }); "
                  "--fresh to start over, or another --out")
            return 2
        done = {t["id"]: t for t in old["tasks"]}
    todo = [(e, t) for e, t in zip(entries, tasks) if t.id not in done]
    print(f"{len(entries)} tasks from {os.path.relpath(args.tasks, ROOT)}, {len(done)} already in {args.out}, "
          f"{len(todo)} to go; levels {list(levels)}, {views} views, model {settings['model']}", flush=True)

    load_before = uptime()
    t_start = time.monotonic()
    engine = ModelEngine.load(cfg)
    load_seconds = time.monotonic() - t_start
    src = json.load(open(args.tasks))

    def table(complete: bool) -> dict:
        rows = [done[e.id] for e in entries if e.id in done]
        return {"kind": "effort table", **settings, "quick": args.quick, "complete": complete,
                "dev_set": {"path": os.path.relpath(os.path.abspath(args.tasks), ROOT), "seed": src.get("seed"),
                            "tasks": len(entries)},
                "columns": COLUMNS, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                "torch": torch.__version__, "device": str(model_device(engine.model))},
                "load": {"before": load_before, "now": uptime()}, "model_load_seconds": round(load_seconds, 1),
                "provenance": provenance(cfg, config_file=CONFIG, overrides=overrides),
                "tasks": rows}

    for e, task in todo:
        t0 = time.monotonic()
        row = measure_task(engine, task, levels, views)
        row.update(stratum=e.stratum, tokens=e.tokens, seconds=round(time.monotonic() - t0, 1))
        done[task.id] = row
        write_result(args.out, table(complete=False))
        print(f"  {task.id} ({e.stratum}, {e.tokens} tok) {row['seconds']:.0f} s: " + "  ".join(
            f"{lv['steps']}: s={lv['score']:.2f} f={lv['found']:.2f} nll={lv['truth_nll']:.3f} "
            f"t={lv['train_seconds']:.0f}+{lv['infer_seconds']:.0f}" for lv in row["levels"]), flush=True)
    result = table(complete=len(done) >= len(entries))
    write_result(args.out, result)
    png = plot(result, os.path.splitext(args.out)[0] + ".png")
    print(f"wrote {args.out}" + (f" and {png}" if png else "") + f"; {time.monotonic() - t_start:.0f} s; "
          f"load before: {load_before}; now: {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
