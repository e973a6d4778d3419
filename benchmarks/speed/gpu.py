"""The kit's CUDA paths on randomly initialised models shaped like the winners', and what they project for an L4.

    .venv/bin/python benchmarks/speed/gpu.py                 (on a GPU: writes benchmarks/speed/results/gpu.json)
    .venv/bin/python benchmarks/speed/gpu.py --tiny --device cpu --out /tmp/gpu.json   (the suite's CPU check)

For each shape (NVARC's Qwen3-4B with its 16-token vocabulary, ARChitects' Llama-3.2-3B, marc's Llama-3 8B in 4-bit
nf4) and each half precision (bf16, fp16), through the kit's own code: the random model saved by the kit's save path
and loaded by `load_model` (4-bit through bitsandbytes for the 8B), LoRA attached, test-time training steps on a
synthetic task (`ttt.train`, gradient checkpointing on), batched DFS over augmented views (`generate_candidates`),
product-of-experts re-scoring (`poe_nll`), and the peak memory. Random weights write arbitrary grids, so the DFS call
is capped in time (it checks the code path; candidates found are reported), and the decoding speed is measured
apart: a batch of 8 rows decoding with the KV cache, seconds per step.

The L4 projection scales the measured seconds by the ratio of datasheet peaks (dense bf16/fp16 tensor TFLOPS for
training, prefill and re-scoring; memory bandwidth for decoding) between this GPU and an L4, and compares the peak
memory with the L4's 24 GB. It is a projection, not an L4 measurement: on the CPU (no datasheet peak) none is made.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
import transformers

from arc_ttt.core.config import InferenceConfig, LoraSettings, ModelConfig, TTTConfig
from arc_ttt.core.tasks import Pair, Task
from arc_ttt.core.formats.symbols import GridCodec
from arc_ttt.core.views import ViewPlan
from arc_ttt.modeling import lora, ttt
from arc_ttt.core.clock import Deadline
from arc_ttt.modeling.decoding import PhaseTimes, generate_candidates
from arc_ttt.modeling.export import save_model
from arc_ttt.modeling.loading import load_model
from arc_ttt.modeling.selection import poe_nll

if os.path.dirname(os.path.dirname(os.path.abspath(__file__))) not in sys.path:  # benchmarks/: provenance.py (also when a test loads this file by its path)
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from provenance import use_fixtures  # noqa: E402  benchmarks/provenance.py, on the path just above
use_fixtures()
from fixtures.tiny_models import char_tokenizer  # noqa: E402  tests/fixtures: the random models' tokenizer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "gpu.json")
DTYPES = ("bfloat16", "float16")


@dataclass(frozen=True)
class Shape:
    """A decoder shaped like a published checkpoint (its config.json's sizes; the weights are random)."""

    name: str
    like: str
    model_type: str  # "qwen3" | "llama"
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    load_in_4bit: bool
    lora_r: int

    def tiny(self) -> "Shape":
        """The same architecture at a few hundred thousand parameters, for the CPU check in the suite."""
        return dataclasses.replace(self, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2, head_dim=16,
                                   vocab=min(self.vocab, 512), lora_r=8)

    def config(self, tokenizer) -> transformers.PretrainedConfig:
        cls = transformers.Qwen3Config if self.model_type == "qwen3" else transformers.LlamaConfig
        return cls(vocab_size=max(self.vocab, len(tokenizer)), hidden_size=self.hidden,
                   intermediate_size=self.intermediate, num_hidden_layers=self.layers,
                   num_attention_heads=self.heads, num_key_value_heads=self.kv_heads, head_dim=self.head_dim,
                   max_position_embeddings=16384, tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                   eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


SHAPES = (
    Shape("qwen3-4b", "NVARC's Qwen3-4B, 16-token vocabulary", "qwen3", 2560, 9728, 36, 32, 8, 128, 16, False, 256),
    Shape("llama-3.2-3b", "ARChitects' Llama-3.2-3B", "llama", 3072, 8192, 28, 24, 8, 128, 128256, False, 64),
    Shape("llama-3-8b-4bit", "marc's Llama-3 8B, nf4 (QLoRA)", "llama", 4096, 14336, 32, 32, 8, 128, 128256, True, 128),
)

# Datasheet peaks: dense half-precision tensor TFLOPS and memory bandwidth (GB/s), by a name in the device string.
PEAKS = {"H200": (989.0, 4800.0), "H100": (989.0, 3350.0), "A100": (312.0, 2039.0), "L40S": (362.0, 864.0),
         "L4": (121.0, 300.0), "T4": (65.0, 320.0)}
L4_MEMORY_GIB = 24 * 1e9 / 2**30  # 22.4 GiB
DECODE_ROWS = 8  # the configs' inference.batch_size: DFS advances this many rows per forward


@dataclass(frozen=True)
class Workload:
    """One task's work as the projection counts it (a 2-hour config's limits and a typical ARC answer)."""

    steps: int = 64
    views: int = 16
    answer_tokens: int = 110  # a 10x10 answer: 100 cells and 10 row ends
    score_views: int = 16
    candidates: int = 4


def synthetic_task(side: int, n_train: int = 3, seed: int = 0) -> Task:
    """A task of random side x side grids: the sequence length grows as n_train * 2 * side * (side + 1)."""
    rng = np.random.default_rng(seed)

    def grid():
        return rng.integers(0, 10, (side, side)).astype(np.uint8)

    return Task(f"synthetic{side}", tuple(Pair(grid(), grid()) for _ in range(n_train)), (Pair(grid(), grid()),))


def peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # the process's peak RSS (KiB on Linux)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


@torch.inference_mode()
def decode_step_seconds(model, codec: GridCodec, task: Task, device: torch.device, *, rows: int, tokens: int) -> float:
    """Seconds per decoding step of `rows` rows with the KV cache (a prompt prefilled, then `tokens` greedy steps)."""
    prompt = torch.as_tensor(codec.encode_prompt(task.train, task.test[0].input), device=device).repeat(rows, 1)
    out = model(input_ids=prompt, use_cache=True)
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    out = model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)  # warm-up step
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(tokens):
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        out = model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)
    _sync(device)
    return (time.perf_counter() - t0) / tokens


def measure(shape: Shape, dtype: str, device: torch.device, *, side: int, steps: int, views: int,
            dfs_cap: float, decode_tokens: int, workdir: str) -> dict:
    """One shape in one dtype through the kit's load, TTT, DFS and PoE paths; seconds, tokens and peak memory."""
    tokenizer = char_tokenizer()
    codec = GridCodec.from_tokenizer(tokenizer)
    folder = os.path.join(workdir, shape.name)
    with torch.device(device):
        torch.manual_seed(0)
        random_model = transformers.AutoModelForCausalLM.from_config(shape.config(tokenizer), dtype=torch.bfloat16)
    save_model(random_model, tokenizer, folder, format_name="kit")
    del random_model
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    (model, _), load_s = _timed(device, lambda: load_model(ModelConfig(
        path=folder, dtype=dtype, device=str(device), load_in_4bit=shape.load_in_4bit)))
    quantized = bool(getattr(model, "is_loaded_in_4bit", False))
    model = lora.attach(model, LoraSettings(r=shape.lora_r, alpha=16, train_embeddings=not shape.load_in_4bit,
                                            train_lm_head=not shape.load_in_4bit))
    task = synthetic_task(side)
    # the half precision under test for weights and autocast alike (fp16: loss scaling, as on a T4)
    cfg = TTTConfig(max_len=16384, warmup=0.0, grad_checkpointing=True,
                    autocast="bf16" if dtype == "bfloat16" else "fp16")
    data = ttt.build_sequences(task, codec, cfg, n=steps + 1, plan=ViewPlan(seed=0))
    ttt.train(model, data.sequences[:1], cfg, max_steps=1)  # warm-up: kernels, allocator, autocast caches
    result, train_s = _timed(device, lambda: ttt.train(model, data.sequences[1:], cfg, max_steps=steps))
    view_list = ViewPlan(keep_background=False).generation(task, views)
    times = PhaseTimes()
    icfg = InferenceConfig(decoding="dfs", dfs_threshold=0.1, max_candidates=4, batch_size=8, max_len=16384)
    # random weights may write a 30x30 grid on every path: the search is capped, and decoding counted per token
    deadline = Deadline(time.monotonic, time.monotonic() + dfs_cap)
    candidates, dfs_s = _timed(device, lambda: generate_candidates(model, codec, task, 0, view_list, icfg, deadline,
                                                                   times))
    grids = [c.grid for c in candidates[:4]] or [task.test[0].input]
    step_s = decode_step_seconds(model, codec, task, device, rows=DECODE_ROWS, tokens=decode_tokens)
    nll, poe_s = _timed(device, lambda: poe_nll(model, codec, task, 0, grids, view_list, max_len=16384))
    row = {"dtype": dtype, "quantized_4bit": quantized, "load_seconds": round(load_s, 3),
           "train_steps": result.steps, "train_tokens_per_step": round(result.tokens / max(1, result.steps)),
           "seconds_per_step": round(train_s / max(1, result.steps), 4), "loss_finite": bool(np.isfinite(result.losses).all()),
           "views": views, "dfs_seconds": round(dfs_s, 3), "dfs_prefill_seconds": round(times.prefill, 3),
           "dfs_candidates": len(candidates), "decode_rows": DECODE_ROWS, "decode_step_seconds": round(step_s, 5),
           "poe_seconds": round(poe_s, 3), "poe_pairs": int(np.asarray(nll).size), "peak_gib": round(peak_gib(device), 3)}
    del model
    shutil.rmtree(folder, ignore_errors=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def device_peaks(name: str | None) -> tuple[float, float] | None:
    """(TFLOPS, GB/s) of the datasheet entry whose key is in the device name (longest key first: "L40S" before
    "L4"), or None (the CPU, an unknown GPU)."""
    if not name:
        return None
    for key in sorted(PEAKS, key=len, reverse=True):
        if key in name:
            return PEAKS[key]
    return None


def l4_projection(row: dict, device_name: str | None, work: Workload = Workload()) -> dict | None:
    """Minutes per task and 120 / 240-task totals on one L4 and on 4x L4, from `row`'s measured seconds scaled by
    the peak ratios; None when the device has no datasheet peak."""
    peaks = device_peaks(device_name)
    if peaks is None:
        return None
    compute = peaks[0] / PEAKS["L4"][0]  # > 1: this GPU is faster, the L4 takes that much longer
    bandwidth = peaks[1] / PEAKS["L4"][1]
    train = work.steps * row["seconds_per_step"] * compute
    prefill = row["dfs_prefill_seconds"] / max(1, row["views"]) * work.views * compute
    decode = math.ceil(work.views / row["decode_rows"]) * work.answer_tokens * row["decode_step_seconds"] * bandwidth
    scoring = row["poe_seconds"] / max(1, row["poe_pairs"]) * work.candidates * work.score_views * compute
    per_task = train + prefill + decode + scoring
    totals = {f"{n}_tasks": {"hours_1xL4": round(n * per_task / 3600, 2), "hours_4xL4": round(n * per_task / 4 / 3600, 2)}
              for n in (120, 240)}
    return {"minutes_per_task": round(per_task / 60, 2), "seconds": {"train": round(train, 1), "prefill": round(prefill, 1),
            "decode": round(decode, 1), "rescore": round(scoring, 1)},
            "fits_24gb": row["peak_gib"] <= L4_MEMORY_GIB, "compute_ratio": round(compute, 2),
            "bandwidth_ratio": round(bandwidth, 2), "workload": dataclasses.asdict(work), **totals}


def run(shapes, device: torch.device, *, side: int, steps: int, views: int, dfs_cap: float,
        decode_tokens: int) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    out = {"device": name, "torch": torch.__version__, "transformers": transformers.__version__,
           "cuda": torch.version.cuda, "synthetic_side": side, "shapes": {}}
    workdir = tempfile.mkdtemp(prefix="arc-ttt-gpu-")
    try:
        for shape in shapes:
            rows = {}
            for dtype in DTYPES:
                row = measure(shape, dtype, device, side=side, steps=steps, views=views, dfs_cap=dfs_cap,
                              decode_tokens=decode_tokens, workdir=workdir)
                row["l4_projection"] = l4_projection(row, name if device.type == "cuda" else None)
                rows[dtype] = row
                print(f"{shape.name:<16} {dtype:<9} {row['seconds_per_step']:.3f} s/step "
                      f"({row['train_tokens_per_step']} tok), decode {row['decode_step_seconds'] * 1000:.1f} ms/step "
                      f"x {DECODE_ROWS} rows, DFS {row['dfs_seconds']:.2f} s / {views} views, "
                      f"PoE {row['poe_seconds']:.2f} s, peak {row['peak_gib']:.2f} GiB"
                      + (f", L4: {row['l4_projection']['minutes_per_task']} min/task" if row["l4_projection"] else ""))
            out["shapes"][shape.name] = {"like": shape.like, "parameters": dataclasses.asdict(shape), "runs": rows}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny models of the same architectures (the CPU check)")
    parser.add_argument("--shapes", default=",".join(s.name for s in SHAPES))
    parser.add_argument("--side", type=int, help="synthetic grid side (default 20 on a GPU: ~2500 tokens per step)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--views", type=int, default=None)
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)
    wanted = args.shapes.split(",")
    unknown = sorted(set(wanted) - {s.name for s in SHAPES})
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}; known: {', '.join(s.name for s in SHAPES)}")
    shapes = [s.tiny() if args.tiny else s for s in SHAPES if s.name in wanted]
    side = args.side or (3 if args.tiny else 20)
    result = run(shapes, torch.device(args.device), side=side, steps=args.steps or (2 if args.tiny else 8),
                 views=args.views or (2 if args.tiny else 16), dfs_cap=1.0 if args.tiny else 30.0,
                 decode_tokens=8 if args.tiny else 64)
    result["tiny"] = args.tiny
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
