"""How fast the task generator makes verified tasks: per family and over the catalogue, on one core.

    .venv/bin/python benchmarks/speed/synth_speed.py [--per-family 200] [--seed 0]

Time is the process's CPU time (one thread: the generator is pure numpy on small arrays), so a busy machine
changes the wall-clock figure beside it but hardly the CPU figure; the load is written beside both. The issue's
target: at least 100 verified tasks (400 pairs) per CPU second. Writes benchmarks/speed/results/synth_speed.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from arc_ttt.synth.catalog import FAMILIES, by_prior
from arc_ttt.synth.generate import generate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import git_state, write_result  # noqa: E402
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "synth_speed.json")


def measure(names: list[str], n: int, seed: int) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    batch = generate(n, names, seed)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    pairs = sum(len(t.train) + len(t.test) for t in batch.tasks)
    return {"tasks": len(batch.tasks), "refused": len(batch.refusals), "pairs": pairs, "cpu_seconds": round(cpu, 3),
            "wall_seconds": round(wall, 3), "tasks_per_cpu_second": round(len(batch.tasks) / max(cpu, 1e-9), 1),
            "pairs_per_cpu_second": round(pairs / max(cpu, 1e-9), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-family", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    load_start = os.getloadavg()
    families = {name: measure([name], args.per_family, args.seed) for name in sorted(FAMILIES)}
    overall = measure(sorted(FAMILIES), args.per_family * len(FAMILIES), args.seed + 1)
    slowest = sorted(families, key=lambda f: families[f]["tasks_per_cpu_second"])[:5]
    print(f"{'family':<28} {'tasks/cpu s':>12} {'pairs/cpu s':>12} {'refused':>8}")
    for name in slowest:
        r = families[name]
        print(f"{name:<28} {r['tasks_per_cpu_second']:>12.0f} {r['pairs_per_cpu_second']:>12.0f} {r['refused']:>8}")
    print(f"{'all ' + str(len(FAMILIES)) + ' families':<28} {overall['tasks_per_cpu_second']:>12.0f} "
          f"{overall['pairs_per_cpu_second']:>12.0f} {overall['refused']:>8}   (target: 100 tasks / 400 pairs)")
    write_result(args.out, {"kind": "task generator speed", "families": len(FAMILIES), "priors": by_prior(),
                            "per_family_tasks": args.per_family, "seed": args.seed, "overall": overall,
                            "slowest": slowest, "per_family": families,
                            "load": {"start": load_start, "end": os.getloadavg()}, "git": git_state()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
