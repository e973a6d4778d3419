"""Replay an effort table through the planner: uniform, heuristic and learned effort against the oracle (issue 24).

    .venv/bin/python benchmarks/planner/policy.py                                 (reads benchmarks/planner/results/effort_table.json)
    .venv/bin/python benchmarks/planner/policy.py --table T.json --out P.json     (any table, e.g. a smoke one)
    .venv/bin/python benchmarks/planner/policy.py --fit T.json --policy-out F.json  (the learned policy from all of a table)
    .venv/bin/python benchmarks/planner/policy.py --strata short,medium --out P.json  (the tasks of some size strata only)

At budgets of 25%, 50% and 100% of full effort (every task trained to the table's last level and predicted
there, plus the difficulty pass), each policy plans the table's tasks with the kit's planner on a simulated
clock (lab.simulate.replay_table): a task's seconds are the table's, its outcome the one at the largest
measured level not above the steps it trained. The learned policy is cross-fitted (k folds over tasks, so no
task's own row trains the model that plans it). The oracle is the best allocation with hindsight (a
multiple-choice knapsack on the table's outcomes and seconds, score first, then the truth's NLL), the ceiling.

Per policy and budget: the expected score (mean over tasks) and the truth's NLL per answer token, with 90%
bootstrap intervals over tasks, and per budget the paired difference learned - heuristic (bootstrap over tasks
of the per-task differences). The intervals resample tasks with their outcomes in this one replay; they do not
re-run the replay, in which tasks share the budget. Before any policy, what the steps buy: per level the
score and truth NLL, each level paired against the one below, and the gains of harder against easier tasks
(`level_summary`). Writes `--out` (default benchmarks/planner/results/policy_heuristic_vs_learned.json) and a
plot beside it (.png).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from arc_ttt.core.config import BudgetConfig
from arc_ttt.core.policy import TARGETS, save_policy
from arc_ttt.lab.policyfit import cross_fit, fit_policy
from arc_ttt.lab.stats import LEVEL, bootstrap_mean, paired_difference
from arc_ttt.lab.simulate import full_effort_seconds, replay_table, table_priors

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import pyplot, write_result  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
TABLE = os.path.join(ROOT, "benchmarks", "planner", "results", "effort_table.json")
OUT = os.path.join(ROOT, "benchmarks", "planner", "results", "policy_heuristic_vs_learned.json")
POLICIES = ("uniform", "heuristic", "learned", "oracle")
BUDGETS = (0.25, 0.5, 1.0)


def budget_config(table: dict, seconds: float, policy: str, gate: bool = BudgetConfig.gate) -> BudgetConfig:
    """The kit's budget settings for a replay: no margin (the budget is the budget), the table's levels as the
    step range, the table's views only (no fewer-views rung), priors from the table's medians."""
    levels = [int(x) for x in table["levels"]]
    positive = [x for x in levels if x > 0]
    return BudgetConfig(seconds=seconds, safety_margin=0.0, min_margin_seconds=0.0, max_steps=max(levels),
                        min_steps=min(positive) if positive else 1, min_views=int(table.get("views", 1)),
                        task_overhead_seconds=0.0, difficulty_share=1.0, policy=policy, gate=gate,
                        policy_file="(cross-fitted in memory)" if policy == "learned" else None, **table_priors(table))


def outcomes(table: dict, key: str) -> np.ndarray:
    levels = [int(x) for x in table["levels"]]
    return np.array([[next(lv[key] for lv in t["levels"] if lv["steps"] == s) for s in levels] for t in table["tasks"]],
                    dtype=float)


def level_costs(table: dict) -> np.ndarray:
    """(tasks, levels) seconds of training to each level and predicting there."""
    keys = ("train_seconds", "prefill_seconds", "decode_seconds", "rescore_seconds")
    return sum(outcomes(table, k) for k in keys)


def oracle(table: dict, budget: float, bins: int = 20000) -> np.ndarray:
    """Per task the level index of the best allocation with hindsight within `budget` seconds (the difficulty pass
    paid first), or -1 for no prediction at all (no cost, no score: the run's fallback): a multiple-choice knapsack
    by dynamic programming on costs rounded up to budget/bins, maximising the score and, among equal scores, the
    truth's NLL's decrease. The rounding is given back as slack (one bin per task), so an allocation that fits
    exactly is found; the oracle may then overspend by at most tasks/bins of the budget (its row's seconds)."""
    C = level_costs(table)
    nll = np.nan_to_num(outcomes(table, "truth_nll"), nan=0.0)
    value = outcomes(table, "score") * 1000.0 - nll
    n, a = C.shape
    C = np.hstack([C, np.zeros((n, 1))])  # the last column: no prediction
    value = np.hstack([value, -nll[:, :1]])
    left = budget - sum(t.get("difficulty_seconds", 0.0) for t in table["tasks"])
    if left <= 0:
        return np.full(n, -1)
    cap = bins + n
    units = np.ceil(C / left * bins).astype(int)
    best = np.full(cap + 1, -np.inf)
    best[0] = 0.0
    choice = np.zeros((n, cap + 1), dtype=int)
    for j in range(n):
        new = np.full(cap + 1, -np.inf)
        for k in range(a + 1):
            u = units[j, k]
            if u > cap:
                continue
            cand = np.full(cap + 1, -np.inf)
            cand[u:] = best[:cap + 1 - u] + value[j, k]
            better = cand > new
            new[better], choice[j, better] = cand[better], k
        best = new
    b = int(np.argmax(best))
    picks = np.zeros(n, dtype=int)
    for j in range(n - 1, -1, -1):
        picks[j] = choice[j, b]
        b -= units[j, picks[j]]
    return np.where(picks == a, -1, picks)


def bootstrap(x: np.ndarray, boot: int, seed: int = 0) -> list[float]:
    """The mean's 90% bootstrap interval over tasks (lab.stats, as the accuracy benchmark's)."""
    ci = bootstrap_mean(list(x), resamples=boot, seed=seed)
    return [round(ci.lo, 4), round(ci.hi, 4)]


def paired(ids: list[str], a: np.ndarray, b: np.ndarray, boot: int, seed: int = 0) -> list[float]:
    """Mean of a - b task by task with its 90% interval: lab.stats.paired_difference, as every other decision."""
    c = paired_difference(dict(zip(ids, a)), dict(zip(ids, b)), resamples=boot, seed=seed)
    return [round(c.mean, 4), round(c.lo, 4), round(c.hi, 4)]


def level_summary(table: dict, boot: int = 10_000, seed: int = 0) -> dict:
    """What the steps buy before any policy: per level the mean score and truth NLL with their intervals (all
    tasks, and per stratum), each level against the one below it paired by task, and whether harder tasks gain
    more (the heuristic's premise): the gains 0 -> each level of the tasks above the median difficulty against
    those at or below it. A level k is the adapter after k steps of one schedule to the last level, not a k-step run."""
    levels = [int(x) for x in table["levels"]]
    ids = [t["id"] for t in table["tasks"]]
    score, nll = outcomes(table, "score"), outcomes(table, "truth_nll")
    seconds = level_costs(table)
    stratum = np.array([t.get("stratum") or "all" for t in table["tasks"]])

    def ci(x):
        return [round(float(np.nanmean(x)), 4), *bootstrap(x, boot, seed)]

    rows = []
    for j, lv in enumerate(levels):
        row = {"steps": lv, "score": ci(score[:, j]), "truth_nll": ci(nll[:, j]),
               "seconds": round(float(seconds[:, j].mean()), 2),
               "by_stratum": {s: {"tasks": int((stratum == s).sum()),
                                  "score": round(float(score[stratum == s, j].mean()), 4),
                                  "truth_nll": round(float(np.nanmean(nll[stratum == s, j])), 4)}
                              for s in sorted(set(stratum))}}
        if j:
            row["minus_previous"] = {"score": paired(ids, score[:, j], score[:, j - 1], boot, seed),
                                     "truth_nll": paired(ids, nll[:, j], nll[:, j - 1], boot, seed)}
        rows.append(row)
    difficulty = np.array([t["features"].get("difficulty") or np.nan for t in table["tasks"]], dtype=float)
    hard = difficulty > np.nanmedian(difficulty)
    harder = {str(lv): {"score_gain_hard": round(float((score[hard, j] - score[hard, 0]).mean()), 4),
                        "score_gain_easy": round(float((score[~hard, j] - score[~hard, 0]).mean()), 4),
                        "nll_gain_hard": round(float((nll[hard, 0] - nll[hard, j]).mean()), 4),
                        "nll_gain_easy": round(float((nll[~hard, 0] - nll[~hard, j]).mean()), 4)}
              for j, lv in enumerate(levels) if lv}
    return {"levels": rows, "harder_tasks_gain_more": {"split": "difficulty above the median vs at or below",
                                                       "hard_tasks": int(hard.sum()), "easy_tasks": int((~hard).sum()),
                                                       "by_level": harder}}


def evaluate(table: dict, *, target: str = "score", k: int = 5, boot: int = 10_000, seed: int = 0, ridge: float = 1.0,
             out: str | None = OUT, gate: bool = BudgetConfig.gate) -> dict:
    """Every policy at every budget on the table; the result (and the file at `out`, with a plot beside it)."""
    full = full_effort_seconds(table)
    levels = [int(x) for x in table["levels"]]
    learned = cross_fit(table, k=k, seed=seed, target=target, ridge=ridge)
    rows, per_task = [], {}
    for frac in BUDGETS:
        budget = frac * full
        for name in POLICIES:
            if name == "oracle":
                picks = oracle(table, budget)
                rows_ = np.arange(len(picks))
                none = picks < 0
                at = np.where(none, 0, picks)
                score = np.where(none, 0.0, outcomes(table, "score")[rows_, at])
                nll = outcomes(table, "truth_nll")[rows_, at]  # no prediction: the NLL without TTT, as in replay
                steps = np.where(none, 0, np.array(levels)[at])
                spent = float(np.where(none, 0.0, level_costs(table)[rows_, at]).sum()
                              + sum(t.get("difficulty_seconds", 0.0) for t in table["tasks"]))
                gated, no_pred = 0, int(none.sum())
            else:
                cfg = budget_config(table, budget, name, gate)
                res, spent = replay_table(table, cfg, learned if name == "learned" else None)
                score = np.array([r["score"] for r in res])
                nll = np.array([r["truth_nll"] for r in res])
                steps = np.array([r["steps"] for r in res])
                gated = sum(r["gated"] for r in res)
                no_pred = sum(not r["predicted"] for r in res)
            per_task[(name, frac)] = (score, nll)
            rows.append({"policy": name, "budget": frac, "budget_seconds": round(budget, 2),
                         "score": round(float(score.mean()), 4), "truth_nll": round(float(np.nanmean(nll)), 4),
                         "ci": bootstrap(score, boot, seed), "truth_nll_ci": bootstrap(nll, boot, seed),
                         "seconds": round(spent, 2), "mean_steps": round(float(steps.mean()), 2),
                         "steps_by_level": {str(s): int((steps == s).sum()) for s in levels}, "gated": int(gated),
                         "without_prediction": int(no_pred)})
    ids, versus = [t["id"] for t in table["tasks"]], {}
    for frac in BUDGETS:
        (ls, ln), (hs, hn) = per_task[("learned", frac)], per_task[("heuristic", frac)]
        s_, n_ = paired(ids, ls, hs, boot, seed), paired(ids, ln, hn, boot, seed)
        versus[str(frac)] = {"score": s_[0], "score_ci": s_[1:], "truth_nll": n_[0], "truth_nll_ci": n_[1:]}
    result = {"table": {"model": table.get("model"), "tasks": len(table["tasks"]), "levels": levels,
                        "views": table.get("views"), "complete": table.get("complete"), "quick": table.get("quick"),
                        "dev_set": table.get("dev_set"), "strata": table.get("strata", "all")},
              "full_effort_seconds": round(full, 2), "target": target, "gate": gate, "folds": k, "ridge": ridge,
              "bootstrap": boot,
              "ci_level": LEVEL, "rows": rows, "paired_learned_minus_heuristic": versus,
              "steps": level_summary(table, boot, seed)}
    if out:
        write_result(out, result)
        plot(result, os.path.splitext(out)[0] + ".png")
    return result


def plot(result: dict, path: str) -> str | None:
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, ci in zip(axes, ("score", "truth_nll"), ("ci", "truth_nll_ci")):
        for i, name in enumerate(POLICIES):
            rows = [r for r in result["rows"] if r["policy"] == name]
            x = np.arange(len(rows)) + (i - 1.5) * 0.08
            y = np.array([r[key] for r in rows])
            err = np.array([[r[key] - r[ci][0], r[ci][1] - r[key]] for r in rows]).T
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name)
        ax.set_xticks(range(len(BUDGETS)), [f"{int(b * 100)}%" for b in BUDGETS])
        ax.set_xlabel("budget (share of full effort)")
        ax.set_title(f"{key} (90% bootstrap CI)")
        ax.legend()
    t = result["table"]
    fig.suptitle(f"replay of {t['tasks']} tasks, model {t['model']}{' (SMOKE)' if t.get('quick') else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=TABLE)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--target", default="score", choices=TARGETS, help="the gain the learned policy predicts")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--boot", type=int, default=10_000)
    ap.add_argument("--ridge", type=float, default=1.0)
    ap.add_argument("--gate", action=argparse.BooleanOptionalAction, default=BudgetConfig.gate,
                    help="the learned policy's early stop after 2 steps (default: budget.gate's default, off)")
    ap.add_argument("--fit", metavar="TABLE", help="fit the learned policy on all of TABLE and write --policy-out")
    ap.add_argument("--policy-out", help="where --fit writes the policy")
    ap.add_argument("--strata", help="only the table's tasks of these size strata, comma-separated (e.g. short,medium)")
    args = ap.parse_args()
    if args.fit:
        if not args.policy_out:
            ap.error("--fit needs --policy-out")
        table = json.load(open(args.fit))
        policy = fit_policy(table, target=args.target, ridge=args.ridge, source=os.path.relpath(args.fit, ROOT))
        print(f"wrote {save_policy(policy, args.policy_out)}: {policy.card['trained_on']['n_tasks']} tasks, "
              f"levels {list(policy.actions)}, target {args.target}")
        return 0
    table = json.load(open(args.table))
    if args.strata:
        keep = set(args.strata.split(","))
        table = {**table, "tasks": [t for t in table["tasks"] if t.get("stratum") in keep], "strata": sorted(keep)}
        if not table["tasks"]:
            ap.error(f"--strata {args.strata}: no task of {args.table} is in these strata")
    if not table.get("complete") or table.get("quick"):
        print(f"note: {args.table} is {'a smoke table' if table.get('quick') else 'incomplete'}; the replay is not "
              "the issue's result")
    result = evaluate(table, target=args.target, k=args.folds, boot=args.boot, ridge=args.ridge, out=args.out,
                      gate=args.gate)
    print(f"full effort {result['full_effort_seconds']:.0f} s, {result['table']['tasks']} tasks, target {args.target}, "
          f"gate {'on' if args.gate else 'off'}")
    print(f"{'policy':<10} {'budget':>6} {'score':>6} {'90% CI':>16} {'truth NLL':>9} {'steps':>6} {'seconds':>9}")
    for r in result["rows"]:
        print(f"{r['policy']:<10} {r['budget']:>6} {r['score']:>6.3f} {str(r['ci']):>16} {r['truth_nll']:>9.3f} "
              f"{r['mean_steps']:>6.1f} {r['seconds']:>9.0f}")
    for b, d in result["paired_learned_minus_heuristic"].items():
        print(f"learned - heuristic at {b}: score {d['score']:+.3f} {d['score_ci']}, truth NLL {d['truth_nll']:+.3f} "
              f"{d['truth_nll_ci']}")
    summary = result["steps"]
    print("what the steps buy (level k = the adapter after k steps of one schedule; mean [90% CI]; paired vs the "
          "level below):")
    for r in summary["levels"]:
        d = r.get("minus_previous")
        print(f"  {r['steps']:>3} steps: score {r['score'][0]:.3f} [{r['score'][1]:.3f}, {r['score'][2]:.3f}]  truth NLL "
              f"{r['truth_nll'][0]:.3f}  {r['seconds']:.0f} s" + (
                  f"  | vs below: score {d['score'][0]:+.3f} [{d['score'][1]:+.3f}, {d['score'][2]:+.3f}], truth NLL "
                  f"{d['truth_nll'][0]:+.3f} [{d['truth_nll'][1]:+.3f}, {d['truth_nll'][2]:+.3f}]" if d else ""))
    h = summary["harder_tasks_gain_more"]
    print(f"harder tasks gain more? ({h['hard_tasks']} above the median difficulty, {h['easy_tasks']} at or below; "
          "gain over 0 steps, hard / easy)")
    for lv, g in h["by_level"].items():
        print(f"  {lv:>3} steps: score {g['score_gain_hard']:+.3f} / {g['score_gain_easy']:+.3f}, truth NLL "
              f"{g['nll_gain_hard']:+.3f} / {g['nll_gain_easy']:+.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
