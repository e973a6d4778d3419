"""The end-of-run report: a summary, a table of tasks, and each task's grids as pictures.

Pictures are drawn straight from the grids (ARC palette, one cell = a square of pixels, a grey
grid line) and embedded in one self-contained HTML file, so a Kaggle notebook can show it inline.
"""
from __future__ import annotations

import base64
import html
import io
from typing import Sequence

import numpy as np

from ..core.config import RunConfig
from ..core.tasks import Task, TaskSet

# The usual ARC colours 0..9: black, blue, red, green, yellow, grey, magenta, orange, azure, maroon.
PALETTE = np.array([
    [0, 0, 0], [0, 116, 217], [255, 65, 54], [46, 204, 64], [255, 220, 0],
    [170, 170, 170], [240, 18, 190], [255, 133, 27], [127, 219, 255], [135, 12, 37],
], dtype=np.uint8)
LINE = np.array([85, 85, 85], dtype=np.uint8)
TIME_SPLIT = ("difficulty_seconds", "train_seconds", "prefill_seconds", "decode_seconds", "rescore_seconds")


def grid_image(grid: np.ndarray, cell: int = 12) -> np.ndarray:
    """H x W grid -> RGB image with `cell`-pixel squares separated by 1-pixel lines."""
    g = np.asarray(grid, dtype=np.int64)
    h, w = g.shape
    img = np.empty((h * (cell + 1) + 1, w * (cell + 1) + 1, 3), dtype=np.uint8)
    img[:] = LINE
    for r in range(h):
        y = r * (cell + 1) + 1
        row = np.repeat(PALETTE[g[r]], cell, axis=0).reshape(w, cell, 3)
        for c in range(w):
            x = c * (cell + 1) + 1
            img[y:y + cell, x:x + cell] = row[c]
    return img


def png_data_uri(img: np.ndarray) -> str:
    import matplotlib  # only when a picture is drawn: the report works without it

    matplotlib.use("Agg", force=False)
    from matplotlib import image as mpimg  # optional as above: the report works without matplotlib

    buf = io.BytesIO()
    mpimg.imsave(buf, img, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _cell_size(grids: Sequence[np.ndarray]) -> int:
    side = max(max(np.asarray(g).shape) for g in grids)
    return max(3, min(14, 160 // side))


def _figure(label: str, grid, cell: int, ok: bool | None = None) -> str:
    if grid is None:
        return f'<figure><div class="none">none</div><figcaption>{label}</figcaption></figure>'
    mark = "" if ok is None else (' <b class="ok">✓</b>' if ok else "")
    uri = png_data_uri(grid_image(np.asarray(grid), cell))
    shape = "x".join(map(str, np.asarray(grid).shape))
    return f'<figure><img src="{uri}" alt="{label}"><figcaption>{label} {shape}{mark}</figcaption></figure>'


CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.l{text-align:left}.ok{color:#1a7f37}.bad{color:#b42318}
.task{margin:1.2em 0;padding:.6em;border:1px solid #ddd;border-radius:6px}
.row{display:flex;gap:14px;align-items:flex-start;flex-wrap:wrap}figure{margin:0}
figcaption{font-size:12px;color:#555;text-align:center}.none{width:60px;height:60px;background:#eee;
display:flex;align-items:center;justify-content:center;color:#999;font-size:12px}
"""


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
                 "<th>correct</th><th>note</th></tr>")
    for i, r in enumerate(records):
        loss = (f"{r.loss_first:.3f} → {r.loss_last:.3f}" if r.loss_first is not None else "")
        correct = "" if r.correct is None else f"{sum(r.correct)}/{len(r.correct)}"
        cls = "" if r.correct is None else (" class='ok'" if all(r.correct) else " class='bad'")
        note = r.error or r.reason
        parts.append(f"<tr><td>{i}</td><td class='l'><a href='#t{i}'>{e(r.id)}</a></td><td>{e(r.status)}</td>"
                     f"<td>{e(r.mode)}</td><td>{r.steps}</td><td>{loss}</td><td>{r.views}</td>"
                     f"<td>{r.seconds:.1f}</td>"
                     + "".join(f"<td>{getattr(r, k, 0.0) or 0.0:.1f}</td>" for k in TIME_SPLIT)
                     + f"<td{cls}>{correct}</td>"
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
                cell = _cell_size(shown)
                ok = (lambda g: None if truth is None else bool(np.array_equal(np.asarray(g), truth)))
                parts.append("<div class='row'>")
                if inp is not None:
                    parts.append(_figure(f"test {j} input", inp, cell))
                parts.append(_figure("attempt 1", a1, cell, ok(a1)))
                parts.append(_figure("attempt 2", a2, cell, ok(a2)))
                if truth is not None:
                    parts.append(_figure("truth", truth, cell))
                parts.append("</div>")
            parts.append("</div>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
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
