"""Capacity at equal tokens: short fine-tuning runs from one start, compared on both dev sets, paired by task.

    flock /tmp/arc-cpu.lock .venv/bin/python benchmarks/training/capacity.py                   (all variants; resumable)
    .venv/bin/python benchmarks/training/capacity.py --variants r16,r64 --steps 2 --out /tmp/cap.json     (smoke)
    .venv/bin/python benchmarks/training/capacity.py --table-only                               (the table from finished runs)

Every variant is `arc-ttt finetune --config configs/finetune-local.yaml` with the same seed, so the same samples in
the same order (equal tokens), `--steps` optimizer steps on a cosine schedule of that length, the answer-vocabulary
loss, evaluated before and after on both dev sets (benchmarks/dev_tasks.json: held-out training tasks;
benchmarks/dev_eval_tasks.json: held-out evaluation tasks), task i under D8 element i % 8, no TTT:
    r16        LoRA r16 (alpha 32, rsLoRA), lr 1e-3: what the committed adapter is
    r64        LoRA r64, the same alpha and lr (rsLoRA keeps the update size across ranks)
    full       every weight trains, fp32 weights (bf16 weights would round lr-sized updates away), lr 1e-4: a
               reference ceiling, not shippable (the committed artefact stays at most 40 MB)
    r16-cont   the committed adapter's run continued (its r16 adapter as the start, not a fresh one)
    synth25    r16 with 25% of the samples drawn from the kit's generated tasks (`arc-ttt synth --out runs/synth-s0
    synth50    --n 20000 --seed 0`), 50% for synth50; generated tasks are smaller, so these run the steps at which
               their samples hold as many tokens as r16's (equal tokens, not equal steps); r16 is the 0% arm
Each run lives in runs/capacity/<variant> and resumes where it stopped (a session may end mid-run). The table: per
variant and dev set, the NLL per output token and the share of tasks whose teacher-forced argmax writes the last
output whole; each variant minus r16, paired by task (NLL: per-task means), with 90% bootstrap intervals.
Writes benchmarks/training/results/capacity_r64_vs_r16.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from arc_ttt.core.config import FinetuneConfig, load_config
from arc_ttt.lab.stats import bootstrap_mean, paired_difference
from arc_ttt.core.formats import codec_for, resolve
from arc_ttt.modeling.loading import load_tokenizer
from arc_ttt.runner.finetune import CARD, finetune, run_corpus, sample_sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import provenance, write_result  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
CONFIG = os.path.join(ROOT, "configs", "finetune-local.yaml")
OUT = os.path.join(ROOT, "benchmarks", "training", "results", "capacity_r64_vs_r16.json")
RUNS = os.path.join(ROOT, "runs", "capacity")
COMMON = ["train.loss_vocab=answer", "eval.dev=benchmarks/dev_tasks.json",
          "eval.dev_eval=benchmarks/dev_eval_tasks.json", "eval.greedy_tasks=0", "output.keep_adapters=false",
          "output.merge=false"]
VARIANTS = {
    "r16": ["lora.r=16", "train.lr=1e-3"],
    "r64": ["lora.r=64", "train.lr=1e-3", "eval.at_start=false"],  # before training: r16's figure (zero-init B)
    "full": ["train.mode=full", "model.dtype=float32", "train.lr=1e-4", "eval.at_start=false"],
    "r16-cont": ["lora.r=16", "train.lr=1e-3", "train.init_adapter=configs/adapters/smollm2-135m-arc"],
    "synth25": ["lora.r=16", "train.lr=1e-3", "eval.at_start=false", "data.generated=[runs/synth-s0]",
                "data.generated_share=0.25"],
    "synth50": ["lora.r=16", "train.lr=1e-3", "eval.at_start=false", "data.generated=[runs/synth-s0]",
                "data.generated_share=0.5"],
}
EQUAL_TOKENS = {"synth25", "synth50"}  # steps chosen so the samples hold r16's tokens
SETS = ("dev", "dev_eval")


def variant_config(name: str, steps: int, runs: str) -> tuple[FinetuneConfig, list[str]]:
    if name in EQUAL_TOKENS:
        steps = matched_steps(load_config(CONFIG, [*COMMON, *VARIANTS[name]], cls=FinetuneConfig),
                              sample_tokens(variant_config("r16", steps, runs)[0], steps))
    sets = [*COMMON, *VARIANTS[name], f"train.steps={steps}", f"eval.every_steps={steps}",
            f"output.dir={os.path.join(runs, name)}"]
    return load_config(CONFIG, sets, cls=FinetuneConfig), sets


def _samples(cfg: FinetuneConfig):
    """The run's samples in order, tokenised (deterministic: the seed and the index fix each one)."""
    codec = codec_for(resolve(cfg.model.format, cfg.model.path), load_tokenizer(cfg.model))
    corpus = run_corpus(cfg, codec)
    k = 0
    while True:
        yield len(sample_sequence(corpus, k, codec, cfg)[0].ids)
        k += 1


def sample_tokens(cfg: FinetuneConfig, steps: int) -> int:
    per_step = cfg.train.grad_accum * cfg.train.batch_size
    return sum(t for t, _ in zip(_samples(cfg), range(steps * per_step)))


def matched_steps(cfg: FinetuneConfig, tokens: int) -> int:
    """The fewest steps whose samples hold at least `tokens` tokens."""
    per_step, total, n = cfg.train.grad_accum * cfg.train.batch_size, 0, 0
    for t in _samples(cfg):
        total, n = total + t, n + 1
        if total >= tokens and n % per_step == 0:
            return n // per_step


def run_variant(name: str, steps: int, runs: str) -> dict:
    """The finished run's card: run (or resume) it when it is not finished."""
    cfg, _ = variant_config(name, steps, runs)
    card_path = os.path.join(cfg.output.dir, CARD)
    if os.path.exists(card_path):
        with open(card_path) as f:
            card = json.load(f)
        if card.get("finished"):
            return card
    resume = os.path.exists(os.path.join(cfg.output.dir, "checkpoint"))
    t0 = time.monotonic()
    cwd = os.getcwd()
    os.chdir(ROOT)  # the config's paths are relative to the kit
    try:
        result = finetune(cfg, resume=resume, progress_bar=False)
    finally:
        os.chdir(cwd)
    print(f"{name}: {'finished' if result.finished else 'stopped'} at step {result.progress.step} "
          f"({time.monotonic() - t0:.0f} s this session)", flush=True)
    return result.card


def figures(card: dict, which: str, at: str) -> dict:
    e = card["holdout"][at] or {}
    return {"nll": e.get(f"{which}_nll"), "exact": e.get(f"{which}_exact"), "per_task": e.get(f"{which}_per_task", {})}


def table(cards: dict[str, dict]) -> dict:
    """Per variant and dev set: NLL and exact share after (and before) training; each variant minus r16, paired."""
    out: dict = {}
    base = cards.get("r16")
    for name, card in cards.items():
        row = {"tokens": card["tokens"], "steps": card["steps"], "train_seconds": card["train_seconds"],
               "trainable": card.get("trainable_parameters"), "loss_last_50": card["loss_last_50"]}
        for which in SETS:
            after, before = figures(card, which, "after"), figures(card, which, "before")
            nll = {k: v[0] for k, v in after["per_task"].items()}
            exact = {k: v[1] for k, v in after["per_task"].items()}
            row[which] = {"nll": after["nll"], "nll_before": before["nll"], "exact": after["exact"],
                          "exact_ci": bootstrap_mean(list(exact.values())).to_dict(),
                          "per_task": after["per_task"]}  # so a later variant pairs with this one without a rerun
            if base is not None and name != "r16":
                b = figures(base, which, "after")["per_task"]
                row[which]["minus_r16"] = {
                    "nll": paired_difference(nll, {k: v[0] for k, v in b.items()}).to_dict(),
                    "exact": paired_difference(exact, {k: v[1] for k, v in b.items()}).to_dict()}
        out[name] = row
    return out


def print_table(rows: dict) -> None:
    print(f"\n{'variant':<10} {'tokens':>9} {'dev nll':>8} {'exact':>6} {'eval nll':>9} {'exact':>6}   "
          f"{'dev nll - r16':>24} {'dev-eval nll - r16':>24}")
    for name, r in rows.items():
        def diff(which: str) -> str:
            d = r[which].get("minus_r16")
            return "" if d is None else f"{d['nll']['mean']:+.4f} [{d['nll']['lo']:+.4f}, {d['nll']['hi']:+.4f}]"
        print(f"{name:<10} {r['tokens']:>9} {r['dev']['nll']:>8.4f} {r['dev']['exact']:>6.3f} "
              f"{r['dev_eval']['nll']:>9.4f} {r['dev_eval']['exact']:>6.3f}   {diff('dev'):>24} {diff('dev_eval'):>24}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {list(VARIANTS)}")
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps per run (4 sequences each; default 100)")
    ap.add_argument("--runs", default=RUNS, help="where the runs live (default runs/capacity)")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--table-only", action="store_true", help="no training: the table from the finished runs")
    args = ap.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    load_start = os.getloadavg()
    cards = {}
    for name in names:
        if args.table_only:
            path = os.path.join(args.runs, name, CARD)
            if os.path.exists(path):
                cards[name] = json.load(open(path))
            continue
        cards[name] = run_variant(name, args.steps, args.runs)
    done = {k: c for k, c in cards.items() if c.get("finished")}
    rows = table(done)
    print_table(rows)
    result = {"kind": "capacity at equal tokens", "steps": args.steps, "config": os.path.relpath(CONFIG, ROOT),
              "common_overrides": COMMON, "variants": {k: VARIANTS[k] for k in names}, "rows": rows,
              "unfinished": sorted(set(names) - set(done)),
              "columns": {"nll": "NLL per output token over the dev set's tasks (task i under D8 element i % 8), "
                                 "normalised over the answer tokens, no TTT",
                          "exact": "share of tasks whose teacher-forced argmax writes the last output whole",
                          "minus_r16": "paired by task (NLL: each task's mean per token), 90% bootstrap interval"},
              "load": {"start": load_start, "end": os.getloadavg()},
              "provenance": provenance(variant_config(names[0], args.steps, args.runs)[0], config_file=CONFIG,
                                       overrides=COMMON)}
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
