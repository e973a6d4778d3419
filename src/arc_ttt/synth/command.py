"""The `arc-ttt synth` sub-command: list the families, write tasks for fine-tuning, show them as pictures."""
from __future__ import annotations

import argparse
import os
import time

from ..core.errors import UserError
from .catalog import FAMILIES, by_prior
from .gallery import write_gallery
from .generate import generate, write


def cmd_synth(args: argparse.Namespace) -> int:
    if args.list:
        for prior, names in by_prior().items():
            print(f"{prior} ({len(names)}):")
            for n in names:
                print(f"  {n:<28} {FAMILIES[n].doc.splitlines()[0] if FAMILIES[n].doc else ''}")
        print(f"{len(FAMILIES)} families, {len(by_prior())} priors")
        return 0
    if not args.out and not args.show:
        raise UserError("arc-ttt synth: give --out DIR (tasks for fine-tuning), --show [PAGE] (pictures), or --list")
    names = args.families.split(",") if args.families else None
    start = time.perf_counter()
    batch = generate(args.n, names, args.seed)
    seconds = time.perf_counter() - start
    print(f"{len(batch.tasks)} tasks verified, {len(batch.refusals)} refused, in {seconds:.1f} s "
          f"({len(batch.tasks) / max(seconds, 1e-9):.0f} tasks/s)")
    for r in batch.refusals[:5]:
        print(f"  refused {r.family} (seed {r.seed}, index {r.index}): {r.reason}")
    if args.out:
        files = write(args.out, batch, args.seed)
        print(f"{args.out}: {len(files) // 2} challenges/solutions pairs and manifest.txt; train on them with "
              f"data.generated=[{args.out}] and data.generated_share (docs/finetuning.md)")
    if args.show:
        page = args.show if args.show != "-" else os.path.join(args.out or ".", "synth.html")
        print(f"pictures: {write_gallery(page, batch)}")
    return 0


def add_synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="the kit's task generator: rule families -> verified ARC tasks for fine-tuning")
    p.add_argument("--out", help="folder for the tasks (one challenges + solutions file per family)")
    p.add_argument("--n", type=int, default=1000, help="tasks to make, the families taken in turn (default 1000)")
    p.add_argument("--families", help="comma-separated family names (default: all; see --list)")
    p.add_argument("--seed", type=int, default=0, help="the same seed makes the same tasks")
    p.add_argument("--show", nargs="?", const="-", metavar="PAGE",
                   help="an HTML page of sample tasks as pictures (default OUT/synth.html)")
    p.add_argument("--list", action="store_true", help="the families by prior, and stop")
    p.set_defaults(func=cmd_synth)
