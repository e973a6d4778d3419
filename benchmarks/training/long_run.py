"""A leg of the long run judged: each kept adapter against the leg's start (the committed adapter), paired by task.

    .venv/bin/python benchmarks/training/long_run.py    (runs/finetune-long -> benchmarks/training/results/long_run.json)
    .venv/bin/python benchmarks/training/long_run.py --run DIR --out F

`make finetune-long` evaluates before its first step (step 0: the adapter the leg continues) and every
eval.every_steps, keeping each later step's adapter (runs/finetune-long/adapters/step-N); the evaluations are read
from the leg's card, or its checkpoint while it runs. For both dev sets (benchmarks/dev_tasks.json: held-out training tasks;
benchmarks/dev_eval_tasks.json: held-out evaluation tasks): the NLL per output token, the share of tasks whose
teacher-forced argmax writes the answer whole, and each step minus step 0, paired by task, with 90% bootstrap
intervals. The verdict: a step **ships** when its NLL interval lies below zero on both sets and its exact share's
interval reaches zero or above on both (not worse beyond the noise); then its adapter replaces configs/adapters/smollm2-135m-arc (docs/finetuning.md, "The long
run: a relay of legs").
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from arc_ttt.lab.stats import bootstrap_mean, paired_difference

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import provenance, write_result  # noqa: E402

SETS = ("dev", "dev_eval")


def evaluations(run: str) -> dict[int, dict]:
    """step -> the leg's evaluation at that step: from its card (finetune.json, written when the leg stops or
    ends), else from its checkpoint (a leg still running)."""
    card, ckpt = os.path.join(run, "finetune.json"), os.path.join(run, "checkpoint", "progress.json")
    if os.path.exists(card):
        with open(card, encoding="utf-8") as f:
            history = json.load(f)["holdout"]["history"]
    elif os.path.exists(ckpt):
        with open(ckpt, encoding="utf-8") as f:
            history = json.load(f)["progress"]["evals"]
    else:
        raise SystemExit(f"{run}: neither finetune.json nor a checkpoint: no leg there")
    return {e["step"]: e for e in history}


def judge(evals: dict[int, dict]) -> dict:
    """Per step and set: NLL, exact share (with its interval) and the paired difference from step 0; the verdict."""
    if 0 not in evals:
        raise SystemExit("no step-0 evaluation: the leg's start was not evaluated (eval.at_start)")
    rows = {}
    for step, e in evals.items():
        row: dict = {}
        for which in SETS:
            now, start = e[f"{which}_per_task"], evals[0][f"{which}_per_task"]
            row[which] = {"nll": e[f"{which}_nll"], "exact": e[f"{which}_exact"],
                          "exact_ci": bootstrap_mean([v[1] for v in now.values()]).to_dict(),
                          "minus_start": {
                              "nll": paired_difference({k: v[0] for k, v in now.items()},
                                                       {k: v[0] for k, v in start.items()}).to_dict(),
                              "exact": paired_difference({k: v[1] for k, v in now.items()},
                                                         {k: v[1] for k, v in start.items()}).to_dict()}}
        # better NLL on both sets beyond the noise; exact match not worse beyond it (one task of 48 is noise)
        row["ships"] = step > 0 and all(row[w]["minus_start"]["nll"]["hi"] < 0 and
                                        row[w]["minus_start"]["exact"]["hi"] >= 0 for w in SETS)
        rows[step] = row
    return rows


def print_table(rows: dict) -> None:
    print(f"{'step':>5} {'dev nll':>8} {'exact':>6} {'eval nll':>9} {'exact':>6}   {'dev nll - start':>26} "
          f"{'dev-eval nll - start':>26}  ships")
    for step, r in rows.items():
        def diff(which: str) -> str:
            d = r[which]["minus_start"]["nll"]
            return f"{d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]"
        print(f"{step:>5} {r['dev']['nll']:>8.4f} {r['dev']['exact']:>6.3f} {r['dev_eval']['nll']:>9.4f} "
              f"{r['dev_eval']['exact']:>6.3f}   {diff('dev'):>26} {diff('dev_eval'):>26}  {r['ships']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default="runs/finetune-long")
    ap.add_argument("--out", default="benchmarks/training/results/long_run.json")
    args = ap.parse_args()
    rows = judge(evaluations(args.run))
    print_table(rows)
    card_path = os.path.join(args.run, "finetune.json")
    card = json.load(open(card_path, encoding="utf-8")) if os.path.exists(card_path) else {}
    write_result(args.out, {"provenance": provenance(config_file="configs/finetune-long.yaml"),
                            "run": {k: card.get(k) for k in ("steps", "tokens", "train_seconds", "finished", "seed",
                                                             "loss_first_50", "loss_last_50")},
                            "steps": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
