"""Fine-tuning throughput: the recipe's step before and after the answer-head loss, and plain HF `Trainer` + peft,
side by side in one run on the same samples.

    flock /tmp/arc-cpu.lock .venv/bin/python benchmarks/training/finetune_speed.py            (about 8 minutes here, idle)
    .venv/bin/python benchmarks/training/finetune_speed.py --steps 1 --rounds 1 --out /tmp/fs.json     (smoke)

Every setting trains SmolLM2-135M (models/smollm2-135m, the base `arc-ttt finetune --config
configs/finetune-local.yaml` starts from, bf16 on CPUs with AVX512-BF16) with the config's LoRA on the samples that
run draws first (task and random view per sample index, 4 sequences a step, batch 1, so no padding at all):
    full vocab        `arc-ttt finetune` as it was: next-token loss over the 49,152-way head
    answer vocab      `train.loss_vocab: answer`: the head cut to the answer's tokens (ttt.answer_head)
    HF Trainer+peft   transformers.Trainer on the same peft model and samples, its own loss (all positions'
                      logits, whole vocabulary), batch 1 x 4 accumulation
The settings take turns, `--steps` optimizer steps each per round, over `--rounds` rounds on new samples, so load
drift on a shared machine hits every setting alike; the first step of each setting is a warm-up, not counted.
tokens/s = sequence tokens of the counted steps / their seconds. A profile of one answer-vocab step says where the
time goes. Writes benchmarks/training/results/finetune_answer_vocab_vs_whole.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from arc_ttt.core.config import FinetuneConfig, load_config
from arc_ttt.modeling import ttt
from arc_ttt.modeling.embedded import ensure_default_model
from arc_ttt.runner.finetune import Session, sample_sequence, setup, train_step

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import provenance, write_result  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
CONFIG = os.path.join(ROOT, "configs", "finetune-local.yaml")
OUT = os.path.join(ROOT, "benchmarks", "training", "results", "finetune_answer_vocab_vs_whole.json")
OURS = {"full vocab": "full", "answer vocab": "answer"}
HF = "HF Trainer+peft"


def session(vocab: str, scratch: str) -> Session:
    cfg = load_config(CONFIG, [f"train.loss_vocab={vocab}", "eval.at_start=false", f"output.dir={scratch}/{vocab}"],
                      cls=FinetuneConfig)
    return setup(cfg, os.path.join(scratch, vocab, "checkpoint"), resume=False)


def timed_steps(s: Session, n: int) -> list[tuple[float, int]]:
    """(seconds, tokens) of n recipe steps: `train_step` as `arc-ttt finetune` runs it."""
    out = []
    for _ in range(n):
        tokens, t0 = s.prog.tokens, time.perf_counter()
        train_step(s)
        out.append((time.perf_counter() - t0, s.prog.tokens - tokens))
    return out


class HFRunner:
    """Plain transformers.Trainer over the same peft model class and samples: what a competitor would write."""

    def __init__(self, s: Session, scratch: str):
        from transformers import TrainerCallback, TrainingArguments

        self.s, self.times = s, []
        tc = s.cfg.train
        self.args = TrainingArguments(output_dir=os.path.join(scratch, "hf"), per_device_train_batch_size=1,
                                      gradient_accumulation_steps=tc.grad_accum, learning_rate=tc.lr,
                                      lr_scheduler_type="constant", max_grad_norm=tc.max_grad_norm or 0.0,
                                      use_cpu=True, report_to=[], save_strategy="no", logging_strategy="no",
                                      disable_tqdm=True, dataloader_num_workers=0, seed=s.cfg.seed,
                                      train_sampling_strategy="sequential")  # step i: samples 4i..4i+3, as ours
        times = self.times

        class Clock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                times.append(time.perf_counter())

            def on_step_end(self, args, state, control, **kw):
                times[-1] = time.perf_counter() - times[-1]

        self.callback = Clock()

    def steps(self, first_sample: int, n: int) -> list[tuple[float, int]]:
        from transformers import Trainer, default_data_collator

        tc = self.s.cfg.train
        k = tc.grad_accum * tc.batch_size
        seqs = [sample_sequence(self.s.corpus, first_sample + j, self.s.codec, self.s.cfg)[0]
                for j in range(n * k)]
        data = [{"input_ids": torch.from_numpy(q.ids).long(),
                 "attention_mask": torch.ones(len(q.ids), dtype=torch.long),
                 "labels": torch.from_numpy(np.where(q.loss_mask, q.ids, ttt.IGNORE)).long()} for q in seqs]
        args = self.args
        args.max_steps = n
        trainer = Trainer(model=self.s.model, args=args, train_dataset=data, data_collator=default_data_collator,
                          callbacks=[self.callback])
        trainer.train()
        seconds = self.times[-n:]
        return [(t, sum(len(q.ids) for q in seqs[i * k:(i + 1) * k])) for i, t in enumerate(seconds)]


def profile_step(s: Session) -> dict:
    """Self CPU seconds of one recipe step by operator group."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_step(s)
    groups = {"attention (sdpa)": ("scaled_dot_product",), "matmul": ("aten::mm", "aten::addmm", "aten::bmm"),
              "loss (log_softmax)": ("log_softmax", "nll_loss"), "copies and fills": ("aten::copy_", "aten::fill_")}
    out = {g: 0.0 for g in groups}
    total = 0.0
    for e in prof.key_averages():
        sec = e.self_cpu_time_total / 1e6
        total += sec
        for g, keys in groups.items():
            if any(k in e.key for k in keys):
                out[g] += sec
                break
    out["other"] = total - sum(out.values())
    return {k: round(v, 3) for k, v in out.items()} | {"total": round(total, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3, help="counted optimizer steps per setting per round (default 3)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of turns, each on new samples (default 2)")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    import tempfile

    ensure_default_model()
    load_start = os.getloadavg()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        sessions = {name: session(vocab, scratch) for name, vocab in OURS.items()}
        sessions[HF] = session("full", scratch + "/hf-base")
        hf = HFRunner(sessions[HF], scratch)
        measured: dict[str, list[tuple[float, int]]] = {name: [] for name in sessions}
        cfg = sessions["full vocab"].cfg
        per_step = cfg.train.grad_accum * cfg.train.batch_size
        for r in range(args.rounds):
            first = r * (args.steps + 1) * per_step
            for name, s in sessions.items():
                if name == HF:
                    got = hf.steps(first, args.steps + 1)
                else:
                    s.prog.step = first // per_step  # the same samples as every other setting this round
                    got = timed_steps(s, args.steps + 1)
                measured[name] += got[1:]  # the first step of a turn warms up
                tok = sum(n for _, n in got[1:]) / sum(t for t, _ in got[1:])
                print(f"round {r}: {name:<16} {tok:7.1f} tok/s over {args.steps} steps", flush=True)
        breakdown = profile_step(sessions["answer vocab"])
        breakdown_full = profile_step(sessions["full vocab"])
    rows = {}
    for name, m in measured.items():
        seconds, tokens = sum(t for t, _ in m), sum(n for _, n in m)
        rows[name] = {"tokens_per_s": round(tokens / seconds, 1), "seconds": round(seconds, 2), "tokens": tokens,
                      "steps": len(m), "s_per_step": [round(t, 2) for t, _ in m]}
    new, old, plain = (rows[k]["tokens_per_s"] for k in ("answer vocab", "full vocab", HF))
    result = {"kind": "fine-tuning throughput", "config": os.path.relpath(CONFIG, ROOT), "rows": rows,
              "speedup_vs_today": round(new / old, 3), "speedup_vs_hf_peft": round(new / plain, 3),
              "target": ">= 1.5x both", "profile_one_step_s": {"answer vocab": breakdown, "full vocab": breakdown_full},
              "notes": "torch.compile measured apart (benchmarks/README.md): 187 s to compile, no faster step here",
              "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "python": platform.python_version(), "dtype": str(sessions["answer vocab"].model.dtype),
                          "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
              "seconds": round(time.perf_counter() - t_start, 1),
              "provenance": provenance(sessions["answer vocab"].cfg, config_file=CONFIG)}
    print(f"\n{'setting':<18} {'tok/s':>8} {'s/step':>8}")
    for name, r in rows.items():
        print(f"{name:<18} {r['tokens_per_s']:>8.1f} {np.mean(r['s_per_step']):>8.2f}")
    print(f"answer vocab vs today {result['speedup_vs_today']:.2f}x, vs HF Trainer+peft "
          f"{result['speedup_vs_hf_peft']:.2f}x; one step's time (answer vocab): {breakdown}")
    write_result(args.out, result)
    print(f"load {load_start} -> {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
