"""The end-of-run report: a summary, a table of tasks, and each task's grids as pictures.

Which source proposed what (the LLM's decoding, the grid model): the table counts each task's candidates by source,
and each attempt's picture names the sources of its candidate ("fallback": the writer's answer).

Pictures are drawn straight from the grids (ARC palette, one cell = a square of pixels, a grey
grid line) and embedded in one self-contained HTML file, so a Kaggle notebook can show it inline.
"""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np

from ..core.config import RunConfig
from ..core.folders import write_text_atomic
from ..core.pictures import CSS, cell_size, figure
from ..core.tasks import Task, TaskSet

TIME_SPLIT = ("difficulty_seconds", "train_seconds", "prefill_seconds", "decode_seconds", "rescore_seconds")


def write_report(path: str, taskset: TaskSet, records: Sequence, summary: dict, pictures: bool = True) -> str:
    """Write report.html; returns its path."""
    tasks = {t.id: t for t in taskset.tasks}
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>arc-ttt report</title><style>{CSS}</style>",
             "<h1>arc-ttt run report</h1>", "<table>"]
    for k, v in summary.items():
        val = f"{v:.4f}" if isinstance(v, float) and k.endswith("score") else v
        parts.append(f"<tr><th class='l'>{e(str(k))}</th><td class='l'>{e(str(val))}</td></tr>")
    parts.append("</table><h2>Tasks</h2><table><tr><th>#</th><th>task</th><th>status</th><th>mode</th>"
                 "<th>steps</th><th>loss first → last</th><th>views</th><th>seconds</th>"
                 "<th>difficulty s</th><th>train s</th><th>prefill s</th><th>decode s</th><th>rescore s</th>"
                 "<th>correct</th><th>candidates</th><th>note</th></tr>")
    for i, r in enumerate(records):
        loss = (f"{r.loss_first:.3f} → {r.loss_last:.3f}" if r.loss_first is not None else "")
        correct = "" if r.correct is None else f"{sum(r.correct)}/{len(r.correct)}"
        cls = "" if r.correct is None else (" class='ok'" if all(r.correct) else " class='bad'")
        note = r.error or r.reason
        parts.append(f"<tr><td>{i}</td><td class='l'><a href='#t{i}'>{e(r.id)}</a></td><td>{e(r.status)}</td>"
                     f"<td>{e(r.mode)}</td><td>{r.steps}</td><td>{loss}</td><td>{r.views}</td>"
                     f"<td>{r.seconds:.1f}</td>"
                     + "".join(f"<td>{getattr(r, k, 0.0) or 0.0:.1f}</td>" for k in TIME_SPLIT)
                     + f"<td{cls}>{correct}</td><td class='l'>{e(r.sources_found())}</td>"
                     f"<td class='l'>{e(note[:120])}</td></tr>")
    parts.append("</table>")
    parts += policy_table(records)
    if pictures:
        parts.append("<h2>Attempts</h2>")
        for i, r in enumerate(records):
            task = tasks.get(r.id)
            parts.append(f"<div class='task' id='t{i}'><b>{e(r.id)}</b> — {e(r.status)}")
            for j, (a1, a2) in enumerate(r.attempts):
                inp = task.test[j].input if isinstance(task, Task) else None
                truth = task.test[j].output if isinstance(task, Task) else None
                shown = [g for g in (inp, a1, a2, truth) if g is not None]
                cell = cell_size(shown)
                ok = (lambda g: None if truth is None else bool(np.array_equal(np.asarray(g), truth)))
                parts.append("<div class='row'>")
                if inp is not None:
                    parts.append(figure(f"test {j} input", inp, cell))
                parts.append(figure(f"attempt 1 · {r.proposed_by(j, a1)}", a1, cell, ok(a1)))
                parts.append(figure(f"attempt 2 · {r.proposed_by(j, a2)}", a2, cell, ok(a2)))
                if truth is not None:
                    parts.append(figure("truth", truth, cell))
                parts.append("</div>")
            parts.append("</div>")
    write_text_atomic(path, "\n".join(parts))  # a kill mid-write leaves the last whole report
    return path


def policy_table(records: Sequence) -> list[str]:
    """budget.policy=learned: per task the steps chosen and why: each action's predicted gain (the chosen one in
    bold) and its cost on the planner's estimates, lambda, the PID's output, and the gate's decision."""
    rows = [(i, r) for i, r in enumerate(records) if getattr(r, "policy", None)]
    if not rows:
        return []
    e = html.escape
    actions = rows[0][1].policy["actions"]
    target = rows[0][1].policy.get("target", "score")
    parts = [f"<h2>Learned policy: predicted gain per action</h2><p>gain in {e(str(target))} over no TTT; the plan "
             "takes per task the action of largest gain - lambda x cost (seconds), lambda the smallest at which every "
             "remaining task's plan fits the time left (the budget corrected by the PID's output u). The gate stops "
             "after 2 steps when the remaining steps are predicted to add nothing.</p>",
             "<table><tr><th>#</th><th>task</th><th>chosen</th><th>trained</th>"
             + "".join(f"<th>{a} steps</th>" for a in actions)
             + "<th>lambda</th><th>u</th><th>gate</th></tr>"]
    for i, r in rows:
        p = r.policy
        cells = []
        for a, g, c in zip(p["actions"], p["gains"], p["costs"]):
            text = f"{g:+.3f}" + (f" / {c:.0f}s" if c is not None else " / n.a.")
            cells.append(f"<td><b>{text}</b></td>" if a == p["chosen"] else f"<td>{text}</td>")
        gate = p.get("gate")
        gate_text = "" if gate is None else (f"{'stopped' if gate['stopped'] else 'went on'}: loss "
                                             f"{gate['loss_after_2']:.3f}, further {gate['further_gain']:+.3f}")
        parts.append(f"<tr><td>{i}</td><td class='l'><a href='#t{i}'>{e(r.id)}</a></td><td>{p['chosen']}</td>"
                     f"<td>{r.steps}</td>" + "".join(cells) + f"<td>{p['lambda']:.3g}</td><td>{p['pid_u']:+.3f}</td>"
                     f"<td class='l'>{e(gate_text)}</td></tr>")
    parts.append("</table>")
    return parts


def summarize(records: Sequence, cfg: RunConfig, seconds: float, score: float | None,
              task_score: float | None) -> dict:
    """The run in a few numbers: the `summary` of log.json and the head of the report."""
    by_status: dict[str, int] = {}
    for r in records:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    return {
        "tasks": len(records),
        "status": by_status,
        "score": score,
        "task_score": task_score,
        "seconds": round(seconds, 2),
        "budget_seconds": cfg.budget.seconds,
        "train_steps": sum(r.steps for r in records),
        "train_seconds": round(sum(r.train_seconds for r in records), 2),
        "infer_seconds": round(sum(r.infer_seconds for r in records), 2),
        **{k: round(sum(getattr(r, k, 0.0) or 0.0 for r in records), 2) for k in TIME_SPLIT if k != "train_seconds"},
    }
