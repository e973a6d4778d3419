"""Recipe: fine-tune a causal LM on ARC tasks, in the kit's text format, over the same augmented views as TTT.

    config -> corpus (sources, contamination guard, held-out tasks) -> model (+ LoRA) -> steps:
        sample k -> (task, random view) -> sequence (loss on outputs) -> AdamW, warmup + cosine
        every eval.every_steps: held-out NLL per output token + greedy exact match
        every output.checkpoint_minutes: checkpoint/ (resume continues from it, bit for bit)
    -> adapter/ (LoRA), model/ (merged, what `run` and `kernel build` take), finetune.json (the card)

Sample k of the run is a pure function of (seed, k): the task is the k-th of a per-epoch permutation and
the view is drawn from (seed, k). So a resumed run sees exactly the data the uninterrupted run would.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.clock import Deadline
from ..core.config import FinetuneConfig, to_dict
from ..core.corpus import Corpus, build_corpus, training_pairs
from ..core.tasks import Task
from ..core.formats.codec import Codec, Encoded
from ..core.formats.grammar import grammar_for
from ..core.formats import codec_for, resolve
from ..core.devset import load_dev_tasks
from ..core.errors import MissingInputError, UserError
from ..core.folders import recover_folder, write_json_atomic
from ..core.modelfolder import CARD_FILE
from ..core.views import IDENTITY, View, ViewPlan
from ..modeling import figures, lora, ttt
from ..modeling.batching import build_prompt
from ..modeling.decoding import greedy_batch, path_to_grid
from ..modeling.export import merge_into_folder, save_model
from ..modeling.loading import load_model
from ..modeling import runtime
from ..modeling.runtime import model_device, resolve_dtype
from .checkpoint import CHECKPOINT, Progress, fingerprint, load_checkpoint, save_checkpoint
from .logfile import attach_log, detach_log

log = logging.getLogger("arc_ttt.finetune")

GREEDY_SECONDS = 30.0  # per held-out test output: an untrained model may ramble up to a 30x30 grid
CARD = CARD_FILE


# ---------------------------------------------------------------------------- data

def fit(pairs, max_len: int, codec: Codec):
    """The pairs kept under the cap in the codec's prompt format, costliest dropped first (as TTT does)."""
    return ttt.fit_demos(tuple(pairs), max_len, codec.overhead, codec.pair_cost)


def usable(task: Task, max_len: int, codec: Codec) -> bool:
    """A task teaches something in context only when at least two of its pairs fit the cap."""
    return len(fit(task.train, max_len, codec)) >= 2


def whole_task_fits(task: Task, max_len: int, codec: Codec) -> bool:
    """Held-out tasks are whole within the cap, so their NLL and greedy figures see every demo."""
    pairs = training_pairs(task)
    return len(pairs) >= 2 and sum(codec.pair_cost(p) for p in pairs) + codec.overhead <= max_len


def run_corpus(cfg: FinetuneConfig, codec: Codec) -> Corpus:
    """The corpus a run trains on (the guard, the usable tasks, the held-out draw): `finetune` and the GPU pack."""
    return build_corpus(cfg.data, lambda t: usable(t, cfg.train.max_len, codec), seed=cfg.seed,
                        holdout_fits=lambda t: whole_task_fits(t, cfg.train.max_len, codec))


def sample_view(corpus: Corpus, k: int, codec: Codec, cfg: FinetuneConfig) -> tuple[Task, View]:
    """Sample k: its task (costliest demos dropped to fit) and one random view of it: any D8 element, colours
    and example order."""
    task = corpus.draw(k, cfg.seed)
    sub = replace(task, train=fit(task.train, cfg.train.max_len, codec))
    return sub, ViewPlan.of(cfg.views, cfg.seed).sample(sub, k)


def sample_sequence(corpus: Corpus, k: int, codec: Codec, cfg: FinetuneConfig) -> tuple[Encoded, View]:
    """Sample k encoded for training, with the view it was drawn under (the card counts the D8 elements)."""
    sub, view = sample_view(corpus, k, codec, cfg)
    return codec.encode_pairs(view.apply(sub).train, cfg.train.loss_on), view


def holdout_sequences(holdout: list[Task], codec: Codec, max_len: int, d8: int | None = 0) -> dict[str, Encoded]:
    """Each held-out task (by id) under D8 element `d8` (no other change), loss on every output. `d8=None`: task i
    under element i % 8, so a set of tasks sees every orientation in one pass (8 times cheaper than all eight)."""
    seqs = {}
    for i, t in enumerate(holdout):
        pairs = fit(training_pairs(t), max_len, codec)
        if len(pairs) >= 2:
            view = View(d8=i % 8 if d8 is None else d8)
            seqs[t.id] = codec.encode_pairs(view.apply(replace(t, train=pairs, test=())).train, "all_outputs")
    return seqs


def d8_nlls(model, codec: Codec, tasks: list[Task], max_len: int, autocast: str,
            vocab: tuple[int, ...] | None = None) -> list[float]:
    """NLL per output token of the tasks under each of the 8 D8 elements: a model that has seen only one
    orientation shows it here, not on the identity view alone."""
    return [figures.mean_output_nll(model, list(holdout_sequences(tasks, codec, max_len, k).values()), autocast=autocast,
                                vocab=vocab) for k in range(8)]


# ---------------------------------------------------------------------------- evaluation

@torch.inference_mode()
def greedy_exact(model, codec: Codec, tasks: list[Task], max_len: int) -> tuple[int, int]:
    """(test outputs solved, test outputs tried) by greedy decoding of the identity view; an output still
    unfinished after GREEDY_SECONDS counts as not solved."""
    solved = tried = 0
    for t in tasks:
        for i, pair in enumerate(t.test):
            if pair.output is None:
                continue
            prompt = build_prompt(codec, t.blind(), i, max_len - 2 * codec.answer_cost(t.train))
            deadline = Deadline(time.monotonic, time.monotonic() + GREEDY_SECONDS)
            (path,) = greedy_batch(model, codec, [prompt], grammar_for(t, i, codec), deadline)
            grid = None if path is None else path_to_grid(codec, path, IDENTITY)
            tried += 1
            solved += int(grid is not None and grid.shape == pair.output.shape and bool((grid == pair.output).all()))
    return solved, tried


def dev_figures(model, codec: Codec, tasks: list[Task], max_len: int, autocast: str,
                vocab: tuple[int, ...] | None) -> dict:
    """A dev set's `figures.sequence_figures`, task i under D8 element i % 8 (every orientation, one per task: 48
    forwards, not 384), per task too (for paired comparisons between checkpoints)."""
    return figures.sequence_figures(model, holdout_sequences(tasks, codec, max_len, d8=None), autocast, vocab)


def evaluate(model, codec: Codec, corpus: Corpus, cfg: FinetuneConfig, step: int,
             dev: list[Task] | None = None, dev_eval: list[Task] | None = None) -> dict:
    """Held-out NLL per output token, the mean over the 8 D8 views (`nll`) and the identity view's; greedy exact
    match; and on the development sets when given (what rank, lr and the checkpoint are chosen on: the held-out
    training tasks, `dev_*`, and the held-out evaluation tasks, `dev_eval_*`), `dev_figures`."""
    model.eval()
    vocab = ttt.loss_vocab(codec.grid_token_ids, cfg.train)
    per_view = d8_nlls(model, codec, corpus.holdout, cfg.train.max_len, cfg.train.autocast, vocab)
    solved, tried = greedy_exact(model, codec, corpus.holdout[:cfg.eval.greedy_tasks], cfg.train.max_len)
    out = {"step": step, "nll": round(float(np.mean(per_view)), 5), "nll_identity": round(per_view[0], 5),
           "exact": solved, "of": tried, "nll_over": cfg.train.loss_vocab}
    for name, tasks in (("dev", dev), ("dev_eval", dev_eval)):
        if tasks:
            got = dev_figures(model, codec, tasks, cfg.train.max_len, cfg.train.autocast, vocab)
            out.update({f"{name}_nll": got["nll"], f"{name}_exact": got["exact"], f"{name}_per_task": got["per_task"]})
    model.train()
    return out


# ---------------------------------------------------------------------------- the recipe

@dataclass
class FinetuneResult:
    out_dir: str
    progress: Progress
    finished: bool  # all planned steps done (else stopped by max_minutes: resume to continue)
    card: dict


def prepare_trainable(model, cfg: FinetuneConfig):
    if cfg.train.mode == "lora":
        model = lora.attach(model, cfg.lora)
        if cfg.train.init_adapter:
            lora.load_adapter_weights(model, cfg.train.init_adapter)
        return model
    if cfg.train.init_adapter:
        raise UserError("train.init_adapter continues a LoRA adapter: it needs train.mode: lora")
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def finetune(cfg: FinetuneConfig, *, resume: bool = False, clock: Callable[[], float] = time.monotonic,
             progress_bar: bool = True, on_step: Callable[[int], None] | None = None) -> FinetuneResult:
    """Run (or resume) the fine-tuning that `cfg` describes: setup -> train -> finish. `on_step(step)` is called
    after each optimizer step (tests use it to simulate a kill)."""
    out = cfg.output.dir
    ckpt = os.path.join(out, CHECKPOINT)
    recover_folder(ckpt)  # a save killed between its two renames left the checkpoint beside its place
    if not resume and os.path.exists(ckpt):
        raise UserError(f"{out} already holds a checkpoint: pass --resume to continue it, or choose another "
                         "output.dir")
    if resume and not os.path.exists(ckpt):
        raise MissingInputError(f"--resume: no checkpoint in {out}")
    os.makedirs(out, exist_ok=True)
    handler = attach_log(log, os.path.join(out, "train.log"), append=True)  # a resumed run adds to it
    try:
        session = setup(cfg, ckpt, resume)
        stop = train(session, clock, progress_bar, on_step)
        return finish(session, stop)
    finally:
        detach_log(log, handler)


@dataclass
class Session:
    """What one fine-tuning session holds: built by `setup`, stepped by `train`, closed by `finish`."""

    cfg: FinetuneConfig
    ckpt: str
    model: torch.nn.Module
    tokenizer: object
    codec: Codec
    corpus: Corpus
    dev: list[Task] | None
    dev_eval: list[Task] | None
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    prog: Progress


def setup(cfg: FinetuneConfig, ckpt: str, resume: bool) -> Session:
    """The model in its prompt format, the corpus (never the measured sets), the optimizer; from the checkpoint
    when resuming; the held-out figures before the first step."""
    tc = cfg.train
    model, tok = load_model(cfg.model)
    codec = codec_for(resolve(cfg.model.format, cfg.model.path), tok)  # refuses a tokenizer that cannot speak it
    corpus = run_corpus(cfg, codec)
    log.info("corpus: %s", json.dumps(corpus.summary()))
    dev = load_dev_tasks(cfg.eval.dev) if cfg.eval.dev else None
    dev_eval = load_dev_tasks(cfg.eval.dev_eval) if cfg.eval.dev_eval else None
    print(f"corpus: {len(corpus.train)} training tasks from {corpus.sources}; excluded as overlapping "
          f"{cfg.data.exclude}: {len(corpus.excluded.by_id)} by id, {len(corpus.excluded.by_grid)} by grid; "
          f"{len(corpus.holdout)} held out", file=sys.stderr)

    torch.manual_seed(cfg.seed)  # the LoRA initialisation: the same config gives the same run
    model = prepare_trainable(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched, scaler = ttt.build_optimizer(model, tc, tc.steps)
    prog = load_checkpoint(ckpt, model, opt, sched, scaler, cfg) if resume else Progress()
    prog.sessions += 1
    log.info("session %d from step %d of %d (%d trainable parameters)", prog.sessions, prog.step, tc.steps,
             sum(p.numel() for p in params))
    if tc.grad_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if not prog.evals and cfg.eval.at_start:
        prog.evals.append(evaluate(model, codec, corpus, cfg, 0, dev, dev_eval))
        log.info("held-out before training: %s", prog.evals[-1])
    return Session(cfg, ckpt, model, tok, codec, corpus, dev, dev_eval, params, opt, sched, scaler, prog)


def train(s: Session, clock: Callable[[], float], progress_bar: bool,
          on_step: Callable[[int], None] | None) -> str | None:
    """Optimizer steps until the last one, evaluating and checkpointing on the way. Returns why it stopped early
    (max_minutes, Ctrl-C), or None when every step is done."""
    tc, prog = s.cfg.train, s.prog
    start, session_start_seconds = clock(), prog.seconds
    last_ckpt, stop = start, None
    s.model.train()
    bar = tqdm(total=tc.steps, initial=prog.step, desc="finetune", unit="step", disable=not progress_bar,
               file=sys.stderr, dynamic_ncols=True)
    try:
        while prog.step < tc.steps:
            if tc.max_minutes is not None and prog.seconds >= tc.max_minutes * 60:
                stop = f"max_minutes={tc.max_minutes:g} reached"
                break
            t0 = clock()
            train_step(s)
            now = clock()
            prog.seconds = session_start_seconds + (now - start)
            bar.update(1)
            post = {"loss": f"{np.mean(prog.losses[-20:]):.3f}", "tok/s": f"{prog.tokens / max(prog.seconds, 1e-9):.0f}"}
            if tc.max_minutes is not None:
                post["left"] = f"{max(0.0, tc.max_minutes - prog.seconds / 60):.0f} min"
            bar.set_postfix(post, refresh=False)
            if prog.step % s.cfg.eval.every_steps == 0 or prog.step == tc.steps:
                evaluate_now(s)
            if now - last_ckpt >= s.cfg.output.checkpoint_minutes * 60 or prog.step == tc.steps:
                save_checkpoint(s.ckpt, s.model, s.opt, s.sched, s.scaler, prog, s.cfg)
                last_ckpt = clock()
                log.info("checkpoint at step %d (%.0f s of training, %d tokens)", prog.step, prog.seconds, prog.tokens)
            if on_step is not None:
                on_step(prog.step)
            log.debug("step %d loss %.4f (%.2f s)", prog.step, prog.losses[-1], now - t0)
    except KeyboardInterrupt:
        stop = "interrupted"  # checkpointed by `finish`, like a stop at max_minutes
    finally:
        bar.close()
    return stop


def train_step(s: Session) -> None:
    """One optimizer step over grad_accum x batch_size fresh samples, each a task under a random view; the sample
    index decides task and view, so a resumed run draws what an unbroken one would have."""
    tc, prog = s.cfg.train, s.prog
    first = prog.step * tc.grad_accum * tc.batch_size
    samples = [sample_sequence(s.corpus, first + j, s.codec, s.cfg) for j in range(tc.grad_accum * tc.batch_size)]
    seqs = [seq for seq, _ in samples]
    for _, view in samples:
        prog.d8_counts[view.d8] += 1
    device = model_device(s.model)
    with ttt.answer_head(s.model, ttt.loss_vocab(s.codec.grid_token_ids, tc), seqs) as label_map:
        micro = [ttt.collate(seqs[j:j + tc.batch_size], ttt.pad_id(s.model), device, label_map)
                 for j in range(0, len(seqs), tc.batch_size)]
        loss, tokens = ttt.optimizer_step(s.model, micro, s.opt, s.sched, s.scaler, s.params, tc.autocast,
                                          tc.max_grad_norm)
    prog.tokens += tokens
    prog.step += 1
    prog.losses.append(round(loss, 5))


def evaluate_now(s: Session) -> None:
    s.prog.evals.append(evaluate(s.model, s.codec, s.corpus, s.cfg, s.prog.step, s.dev, s.dev_eval))
    log.info("held-out at step %d: %s", s.prog.step, s.prog.evals[-1])
    if s.cfg.output.keep_adapters and s.cfg.train.mode == "lora":
        keep_adapter(s.model, s.cfg, s.prog.evals[-1])


def finish(s: Session, stop: str | None) -> FinetuneResult:
    """A checkpoint when stopped early; the card always; adapter and merged model when every step is done."""
    if stop is not None:
        save_checkpoint(s.ckpt, s.model, s.opt, s.sched, s.scaler, s.prog, s.cfg)
        log.info("stopped at step %d of %d: %s; --resume continues", s.prog.step, s.cfg.train.steps, stop)
    finished = s.prog.step >= s.cfg.train.steps
    card = write_outputs(s.model, s.tokenizer, s.codec, s.corpus, s.cfg, s.prog, finished)
    return FinetuneResult(s.cfg.output.dir, s.prog, finished, card)


def keep_adapter(model, cfg: FinetuneConfig, evaluation: dict) -> str:
    """adapters/step-N/: the adapter as it is now, with the evaluation that was just made of it (in one atomic
    step: never an adapter without its figures)."""
    folder = os.path.join(cfg.output.dir, "adapters", f"step-{evaluation['step']}")
    return lora.save_adapter(model, folder, resolve_dtype(cfg.output.adapter_dtype, torch.device("cpu")),
                             files={"evaluation.json": evaluation})


def write_outputs(model, tok, codec: Codec, corpus: Corpus, cfg: FinetuneConfig, prog: Progress,
                  finished: bool) -> dict:
    """The card always; the adapter and the merged model once every step is done, each with its card inside its
    atomic step (a kill leaves no folder without one)."""
    out = cfg.output.dir
    model.eval()
    card = make_card(corpus, cfg, prog, finished, codec.name, str(runtime.weight_dtype(model)).replace("torch.", ""))
    card["trainable_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if finished and cfg.train.mode == "lora":
        adapter = lora.save_adapter(model, os.path.join(out, "adapter"),
                                    resolve_dtype(cfg.output.adapter_dtype, torch.device("cpu")), card=card)
        card["adapter_bytes"] = lora.adapter_bytes(adapter)
    merged_dir = os.path.join(out, "model")
    if finished and cfg.output.merge and cfg.model.load_in_4bit:  # lora only (the config refuses full + 4-bit)
        merge_into_folder(cfg.model.path, adapter, merged_dir, dtype="float16")  # a 4-bit base cannot be saved
    elif finished and cfg.output.merge:  # the folder says which format the model speaks: the one it was trained in
        merged = model.merge_and_unload() if cfg.train.mode == "lora" else model
        save_model(merged, tok, merged_dir, format_name=codec.name, files={CARD: card})
    write_json_atomic(os.path.join(out, CARD), card)
    return card


def make_card(corpus: Corpus, cfg: FinetuneConfig, prog: Progress, finished: bool, format_name: str,
              dtype: str = "") -> dict:
    base = cfg.model.path
    name = None
    try:
        with open(os.path.join(base, "config.json"), encoding="utf-8") as f:
            name = json.load(f).get("_name_or_path")
    except OSError:
        pass
    return {
        "base_model": {"path": base, "name": name},
        "format": format_name,  # the prompt format (core.formats.names()); also in the merged folder's arc_format.json
        "mode": cfg.train.mode,
        "lora": to_dict(cfg.lora) if cfg.train.mode == "lora" else None,
        "data": corpus.summary(),
        "views": {**to_dict(cfg.views), "d8_counts": list(prog.d8_counts)},
        "dtype": dtype,  # the base weights' (bf16 on a CPU with native bf16, fp32 elsewhere)
        "train": to_dict(cfg.train),
        "seed": cfg.seed,
        "finished": finished,
        "steps": prog.step,
        "sequences": prog.step * cfg.train.batch_size * cfg.train.grad_accum,
        "tokens": prog.tokens,
        "train_seconds": round(prog.seconds, 1),
        "sessions": prog.sessions,
        "loss_first_50": round(float(np.mean(prog.losses[:50])), 4) if prog.losses else None,
        "loss_last_50": round(float(np.mean(prog.losses[-50:])), 4) if prog.losses else None,
        "holdout": {"before": prog.evals[0] if prog.evals and prog.evals[0]["step"] == 0 else None, "after": prog.evals[-1] if prog.evals else None,
                    "history": prog.evals},
        "config_digest": hashlib.sha256(json.dumps(fingerprint(cfg), sort_keys=True).encode()).hexdigest()[:12],
    }
