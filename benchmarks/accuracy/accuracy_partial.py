#!/usr/bin/env python
"""A stopped accuracy run, summarised from its journal: the final default row, one seed, the tasks it finished.

    .venv/bin/python benchmarks/accuracy/accuracy_partial.py RUNS_DIR/row5-seed0/journal.jsonl OUT.json ["NOTE: the model, row, effort, seed"]

accuracy.py writes a seed only when it ends; a run stopped midway (a session ending) leaves its journal. This reads
it, scores the attempts against the dev set's solutions, and writes score, found and the seconds per phase per task
and per stratum, marked complete: false. The note in the output says which model and effort the run had.
"""
import json
import subprocess
import sys

import numpy as np
from arc_ttt.core import devset
from arc_ttt.lab import stats
NOTE = sys.argv[3] if len(sys.argv) > 3 else "(which model, row, effort and seed: not said)"
entries = {d.id: d for d in devset.read_devset("benchmarks/dev_tasks.json")}
truth = {t.id: t for t in devset.load_dev_tasks("benchmarks/dev_tasks.json")}
recs = [json.loads(l) for l in open(sys.argv[1])]
per_task = {}
for r in recs:
    t = truth[r["id"]]
    ok, found = [], []
    for i, p in enumerate(t.test):
        ok.append(any(x is not None and np.array_equal(np.asarray(x), p.output) for x in r["attempts"][i]))
        cands = r["candidates"][i] if i < len(r["candidates"]) else []
        found.append(any(np.array_equal(np.asarray(c["grid"]), p.output) for c in cands))
    per_task[r["id"]] = {"stratum": entries[r["id"]].stratum, "tokens": entries[r["id"]].tokens,
                         "score": float(np.mean(ok)), "found": float(np.mean(found)), "steps": r["steps"], "views": r["views"],
                         "seconds": round(r["seconds"], 1), "train": round(r["train_seconds"], 1),
                         "prefill": round(r["prefill_seconds"], 1), "decode": round(r["decode_seconds"], 1),
                         "rescore": round(r["rescore_seconds"], 1)}
by = {}
for name, _, _ in devset.STRATA:
    rows = [v for v in per_task.values() if v["stratum"] == name]
    if rows:
        by[name] = {"tasks": len(rows), "score": round(float(np.mean([v["score"] for v in rows])), 4),
                    "found": round(float(np.mean([v["found"] for v in rows])), 4),
                    "seconds_per_task": round(float(np.mean([v["seconds"] for v in rows])), 1)}
out = {"complete": False,
       "note": ("PARTIAL: a stopped benchmarks/accuracy/accuracy.py run, summarised from its journal by "
                "benchmarks/accuracy/accuracy_partial.py (no truth_nll: it lives in the benchmark's memory until a seed ends). "
                + NOTE),
       "tasks_done": len(per_task), "tasks": len(entries),
       "score_over_done": stats.bootstrap_mean([v["score"] for v in per_task.values()]).to_dict(),
       "found_over_done": round(float(np.mean([v["found"] for v in per_task.values()])), 4),
       "by_stratum": by, "per_task": per_task,
       "load": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(json.dumps({k: out[k] for k in ("tasks_done", "score_over_done", "found_over_done", "by_stratum")}, indent=1))
