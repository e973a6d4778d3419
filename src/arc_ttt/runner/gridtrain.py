"""Recipe: train the recursive grid model (`arc-ttt train-grid`) on the fine-tuning corpus, TRM's way.

    config -> corpus (the same sources and contamination guard as `finetune`; pairs that fit the canvas)
           -> model (network + one embedding row per task and view; with condition llm, the frozen LLM loaded once
              and a projection + cross-attention to its features: modeling/gridcondition.py) -> batches:
        batch b -> samples b*B.. -> (task, one of its pairs, one of its views_per_task views) -> canvases
        deep supervision: up to n_sup optimizer steps on the batch (AdamW on the network, sign-SGD on its rows)
        every eval.every_steps: held-out and dev exact match and per-cell accuracy (a fresh embedding: the mean row,
            or fitted on the task's demonstrations)
        every output.checkpoint_minutes, between batches: checkpoint/ (resume continues it bit for bit)
    -> model/ (weights + sizes + task ids), grid.json (the card)

Sample k is a pure function of (seed, k) and a batch's halting exploration of (seed, b), so a resumed run draws
exactly what an unbroken one would; an LLM's features, cached or not, are computed one prompt a forward, the same.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.config import to_dict
from ..core.corpus import Corpus, build_corpus
from ..core.errors import UserError
from ..core.devset import load_dev_tasks
from ..core.folders import atomic_folder, recover_folder, write_json_atomic
from ..core.gridconfig import GridConfig, describe_llm
from ..core.tasks import Pair, Task
from ..core.views import IDENTITY, View, ViewPlan
from ..modeling import gridcondition as gc
from ..modeling import gridmodel as gm
from ..modeling.runtime import autocast_context, model_device, resolve_device
from .logfile import attach_log, detach_log

log = logging.getLogger("arc_ttt.gridtrain")
CARD, CHECKPOINT, MODEL = "grid.json", "checkpoint", "model"
UNFINGERPRINTED = {"eval", "output"}  # sections that may change on resume; and train.max_minutes, train.device


# ---------------------------------------------------------------------------- data

def grid_corpus(cfg: GridConfig) -> Corpus:
    """finetune's corpus with the grid model's "usable": a task with a pair that fits the canvas; a held-out task
    also needs a demonstration and every solved test pair on it."""
    canvas = cfg.model.canvas

    def holdout_fits(t: Task) -> bool:
        tests = [p for p in t.test if p.output is not None]
        return bool(tests) and bool(gm.pairs_that_fit(t.train, canvas)) and len(gm.pairs_that_fit(tests, canvas)) == len(tests)

    return build_corpus(cfg.data, lambda t: bool(gm.pairs_that_fit(t.train, canvas)), seed=cfg.seed,
                        holdout_fits=holdout_fits)


@dataclass
class Batch:
    cells: torch.Tensor  # (batch, canvas^2) classes of the inputs under their views
    targets: torch.Tensor  # the outputs', likewise
    rows: torch.Tensor  # each sample's embedding row: task index * views_per_task + view index
    d8: list[int]
    features: gc.Features | None = None  # condition llm: the LLM's, over each sample's leave-one-out prompt


class Pool:
    """The tasks trained on (ARC, then generated), their embedding rows and their fixed views; sample k."""

    def __init__(self, corpus: Corpus, cfg: GridConfig):
        self.corpus, self.cfg = corpus, cfg
        self.tasks = [*corpus.train, *corpus.generated]
        self.index = {t.id: i for i, t in enumerate(self.tasks)}
        self.rows = len(self.tasks) * cfg.train.views_per_task
        self._views: dict[int, tuple[View, ...]] = {}

    def views(self, i: int) -> tuple[View, ...]:
        """Task i's views: the identity first, then distinct ones (D8 walked in order, colours drawn); fixed by
        (task, seed), made once."""
        if i not in self._views:
            plan = ViewPlan.of(self.cfg.views, self.cfg.seed)
            self._views[i] = tuple(plan.fixed(self.tasks[i], self.cfg.train.views_per_task))
        return self._views[i]

    def sample(self, k: int) -> tuple[int, View, Pair]:
        task = self.corpus.draw(k, self.cfg.seed)
        i = self.index[task.id]
        rng = np.random.default_rng([self.cfg.seed, k])
        pairs = gm.pairs_that_fit(task.train, self.cfg.model.canvas)
        pair = pairs[int(rng.integers(len(pairs)))]
        v = int(rng.integers(len(self.views(i))))
        return i * self.cfg.train.views_per_task + v, self.views(i)[v], pair

    def batch(self, b: int, device: torch.device, encoder: gc.FeatureEncoder | None = None) -> Batch:
        size, canvas, per = self.cfg.train.batch_size, self.cfg.model.canvas, self.cfg.train.views_per_task
        drawn = [self.sample(b * size + j) for j in range(size)]
        features = encoder and encoder.pairs([(self.tasks[r // per], view, p) for r, view, p in drawn], device)
        return Batch(gm.canvases([view.apply_grid(p.input) for _, view, p in drawn], canvas, device),
                     gm.canvases([view.apply_grid(p.output) for _, view, p in drawn], canvas, device),
                     torch.tensor([r for r, _, _ in drawn], device=device), [view.d8 for _, view, _ in drawn],
                     features)

    def min_halt(self, b: int, device: torch.device) -> torch.Tensor:
        """TRM's exploration: a share of the samples may not halt before a random step in 2..n_sup."""
        rng = np.random.default_rng([self.cfg.seed, b, 1])
        size, n_sup = self.cfg.train.batch_size, self.cfg.model.n_sup
        explore = rng.random(size) < self.cfg.train.halt_exploration
        least = rng.integers(2, n_sup + 1, size) if n_sup >= 2 else np.zeros(size, dtype=np.int64)
        return torch.tensor(np.where(explore, least, 0), device=device)


# ---------------------------------------------------------------------------- prediction and evaluation

def trained_vectors(model: gm.GridModel, pool: Pool, task_id: str) -> list[tuple[View, torch.Tensor]]:
    """A task trained on: each of its views with its own embedding row, the identity first."""
    i, per = pool.index[task_id], pool.cfg.train.views_per_task
    return [(view, model.task.weight[i * per + v].detach()) for v, view in enumerate(pool.views(i))]


def unseen_vector(model: gm.GridModel, task: Task, cfg: GridConfig, amp, encoder=None) -> torch.Tensor:
    """A task never trained on: the mean embedding row, fitted on its demonstrations when eval.fit_steps > 0."""
    start = model.task.weight.detach().mean(0)
    demos = gm.pairs_that_fit(task.train, cfg.model.canvas)
    if cfg.eval.fit_steps == 0 or not demos:
        return start
    cells = gm.canvases([p.input for p in demos], cfg.model.canvas, start.device)
    targets = gm.canvases([p.output for p in demos], cfg.model.canvas, start.device)
    features = None if encoder is None else encoder.demos(task, IDENTITY, demos, start.device)
    return gm.fit_vector(model, cells, targets, start, cfg.eval.fit_steps, cfg.eval.fit_lr, amp, features)


def evaluate_unseen(model: gm.GridModel, tasks: list[Task], cfg: GridConfig, amp,
                    encoder: gc.FeatureEncoder | None = None) -> dict:
    """Exact match and per-cell accuracy on the test outputs of tasks never trained on (identity view only)."""
    solved = tried = 0
    cells = 0.0
    for t in tasks:
        feats = encoder and (lambda i, view, t=t: encoder.test(t, view, i, model.head.weight.device))
        got = gm.score(t, gm.predict_task(model, t, [(IDENTITY, unseen_vector(model, t, cfg, amp, encoder))], amp,
                                          feats), cfg.model.canvas)
        solved, tried, cells = solved + got[0], tried + got[1], cells + got[2]
    return {"exact": solved, "of": tried, "cell_accuracy": round(cells / max(tried, 1), 4)}


# ---------------------------------------------------------------------------- the recipe

@dataclass
class GridProgress:
    """Everything a resumed run needs besides the tensors."""

    step: int = 0  # optimizer steps (deep-supervision steps)
    batch: int = 0
    cells: int = 0  # canvas cells supervised (active samples x canvas^2, summed over steps)
    seconds: float = 0.0
    sessions: int = 0
    losses: list[float] = field(default_factory=list)  # per optimizer step
    supervision_steps: list[int] = field(default_factory=list)  # per batch: how many before every sample halted
    nonfinite: int = 0  # steps whose loss was not finite (skipped: no update)
    evals: list[dict] = field(default_factory=list)
    d8_counts: list[int] = field(default_factory=lambda: [0] * 8)


@dataclass
class GridResult:
    out_dir: str
    progress: GridProgress
    finished: bool
    card: dict
    model: gm.GridModel
    pool: Pool


@dataclass
class Session:
    cfg: GridConfig
    ckpt: str
    device: torch.device
    model: gm.GridModel
    pool: Pool
    dev: dict[str, list[Task]]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    prog: GridProgress
    encoder: gc.FeatureEncoder | None = None  # condition llm: the frozen LLM, its codec and its features' cache
    in_batch: bool = False  # a batch's updates are applied but not yet committed to the progress

    def amp(self):
        return autocast_context(self.cfg.train.autocast, self.device)


def train_grid(cfg: GridConfig, *, resume: bool = False, clock: Callable[[], float] = time.monotonic,
               progress_bar: bool = True, on_step: Callable[[int], None] | None = None) -> GridResult:
    """Run (or resume) the training `cfg` describes: setup -> train -> finish. `on_step(step)` after each optimizer
    step (tests kill a run there)."""
    out = cfg.output.dir
    ckpt = os.path.join(out, CHECKPOINT)
    recover_folder(ckpt)
    if resume != os.path.exists(ckpt):
        raise UserError(f"--resume: no checkpoint in {out}" if resume else
                         f"{out} already holds a checkpoint: pass --resume to continue it, or choose another output.dir")
    os.makedirs(out, exist_ok=True)
    handler = attach_log(log, os.path.join(out, "train.log"), append=True)
    try:
        s = setup(cfg, ckpt, resume)
        stop = train(s, clock, progress_bar, on_step)
        return finish(s, stop)
    finally:
        detach_log(log, handler)


def setup(cfg: GridConfig, ckpt: str, resume: bool) -> Session:
    """The corpus, the model seeded by cfg.seed, AdamW under TRM's schedule; from the checkpoint when resuming."""
    corpus = grid_corpus(cfg)
    pool = Pool(corpus, cfg)
    log.info("corpus: %s", json.dumps(corpus.summary()))
    dev = {name: load_dev_tasks(path)[:cfg.eval.dev_tasks] for name, path in
           (("dev", cfg.eval.dev), ("dev_eval", cfg.eval.dev_eval)) if path}
    device = resolve_device(cfg.train.device)
    encoder = gc.load_encoder(cfg.model.llm, device) if cfg.model.condition == "llm" else None
    if encoder is not None:
        log.info("LLM features from %s", describe_llm(encoder.record))
    torch.manual_seed(cfg.seed)
    model = gm.GridModel(cfg.model, pool.rows, encoder and encoder.hidden).to(device)
    tc = cfg.train
    opt = torch.optim.AdamW([p for n, p in model.named_parameters() if n != "task.weight"], lr=tc.lr,
                            betas=tc.betas, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, tc.lr_factor)
    prog = load_checkpoint(ckpt, model, opt, sched, cfg) if resume else GridProgress()
    prog.sessions += 1
    log.info("session %d from step %d of %d: %s parameters, %d tasks x %d views", prog.sessions, prog.step, tc.steps,
             gm.count_parameters(model), len(pool.tasks), tc.views_per_task)
    s = Session(cfg, ckpt, device, model, pool, dev, opt, sched, prog, encoder)
    if not prog.evals and cfg.eval.at_start:
        evaluate_now(s)
    return s


def train(s: Session, clock: Callable[[], float], progress_bar: bool,
          on_step: Callable[[int], None] | None) -> str | None:
    """Batches until the last optimizer step; evaluations and checkpoints between batches. Returns why it stopped
    early (max_minutes, Ctrl-C), or None."""
    cfg, prog = s.cfg, s.prog
    start, before, last_ckpt, stop = clock(), prog.seconds, clock(), None
    bar = tqdm(total=cfg.train.steps, initial=prog.step, desc="train-grid", unit="step", disable=not progress_bar)
    s.model.train()
    try:
        while prog.step < cfg.train.steps:
            if cfg.train.max_minutes is not None and prog.seconds >= cfg.train.max_minutes * 60:
                stop = f"max_minutes={cfg.train.max_minutes:g} reached"
                break
            first = prog.step
            train_batch(s, on_step)
            prog.seconds = before + clock() - start
            bar.update(prog.step - first)
            bar.set_postfix({"loss": f"{np.mean(prog.losses[-20:]):.3f}"}, refresh=False)
            every = cfg.eval.every_steps
            if first // every != prog.step // every or prog.step >= cfg.train.steps:
                evaluate_now(s)
            if clock() - last_ckpt >= cfg.output.checkpoint_minutes * 60 or prog.step >= cfg.train.steps:
                save_checkpoint(s)
                last_ckpt = clock()
    except KeyboardInterrupt:
        stop = "interrupted"  # a batch cut short is redone from its start by --resume
    finally:
        bar.close()
    return stop


def train_batch(s: Session, on_step: Callable[[int], None] | None) -> None:
    """One batch through deep supervision: each supervision step an optimizer step, until every sample has halted,
    n_sup steps, or the run's last step. Progress is only committed whole, so a checkpoint sits between batches."""
    cfg, prog, model = s.cfg, s.prog, s.model
    batch = s.pool.batch(prog.batch, s.device, s.encoder)
    table = model.task.weight
    params = [p for group in s.opt.param_groups for p in group["params"]]
    steps, losses = prog.step, []
    s.in_batch = True

    def update(loss: torch.Tensor) -> bool:
        nonlocal steps
        if torch.isfinite(loss):
            loss.backward()
            if cfg.train.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm)
            s.opt.step()
            rows = batch.rows.unique()
            factor = s.sched.get_last_lr()[0] / cfg.train.lr
            gm.sign_sgd_(table, rows, table.grad[rows], cfg.train.embedding_lr * factor,
                         cfg.train.embedding_weight_decay)
        else:
            prog.nonfinite += 1
        s.opt.zero_grad(set_to_none=True)
        table.grad = None
        s.sched.step()
        steps += 1
        losses.append(round(float(loss.detach()), 5))
        if on_step is not None:
            on_step(steps)
        return steps < cfg.train.steps

    stats = gm.deep_supervision(model, batch.cells, batch.targets, lambda: model.task(batch.rows), update,
                                s.pool.min_halt(prog.batch, s.device), s.amp, batch.features)
    prog.step, prog.batch = steps, prog.batch + 1
    s.in_batch = False
    prog.losses += losses
    prog.cells += sum(st["active"] for st in stats) * cfg.model.canvas ** 2
    prog.supervision_steps.append(len(stats))
    for d in batch.d8:
        prog.d8_counts[d] += 1


def evaluate_now(s: Session) -> None:
    s.model.eval()
    how = f"fitted: {s.cfg.eval.fit_steps} sign-SGD batches on the demos" if s.cfg.eval.fit_steps else "mean row"
    entry = {"step": s.prog.step, "embedding": how,
             "holdout": evaluate_unseen(s.model, s.pool.corpus.holdout, s.cfg, s.amp, s.encoder)}
    for name, tasks in s.dev.items():
        entry[name] = evaluate_unseen(s.model, tasks, s.cfg, s.amp, s.encoder)
    s.prog.evals.append(entry)
    log.info("evaluation at step %d: %s", s.prog.step, entry)
    s.model.train()


def finish(s: Session, stop: str | None) -> GridResult:
    """A checkpoint when stopped early (not of a batch cut short: the last one stands, and --resume redoes the
    batch); the card always; the model folder once every step is done."""
    if stop is not None and not s.in_batch:
        save_checkpoint(s)
    if stop is not None:
        log.info("stopped at step %d of %d: %s; --resume continues", s.prog.step, s.cfg.train.steps, stop)
    finished = s.prog.step >= s.cfg.train.steps
    card = make_card(s, finished)
    if finished:
        gm.save_grid_model(s.model, os.path.join(s.cfg.output.dir, MODEL),
                           {CARD: card, "tasks.json": {"views_per_task": s.cfg.train.views_per_task,
                                                       "tasks": [t.id for t in s.pool.tasks]}},
                           s.encoder and s.encoder.record)
    write_json_atomic(os.path.join(s.cfg.output.dir, CARD), card)
    return GridResult(s.cfg.output.dir, s.prog, finished, card, s.model, s.pool)


def make_card(s: Session, finished: bool) -> dict:
    prog, cfg = s.prog, s.cfg
    return {
        "model": to_dict(cfg.model), "parameters": gm.count_parameters(s.model),
        "data": s.pool.corpus.summary(), "views": {**to_dict(cfg.views), "d8_counts": prog.d8_counts},
        "train": to_dict(cfg.train), "seed": cfg.seed, "finished": finished, "device": str(s.device),
        "steps": prog.step, "batches": prog.batch, "samples": prog.batch * cfg.train.batch_size,
        "cells": prog.cells, "train_seconds": round(prog.seconds, 1), "sessions": prog.sessions,
        "supervision_steps_mean": round(float(np.mean(prog.supervision_steps)), 2) if prog.supervision_steps else None,
        "nonfinite_steps": prog.nonfinite,
        "loss_first_50": round(float(np.mean(prog.losses[:50])), 4) if prog.losses else None,
        "loss_last_50": round(float(np.mean(prog.losses[-50:])), 4) if prog.losses else None,
        "evaluations": {"before": prog.evals[0] if prog.evals and prog.evals[0]["step"] == 0 else None,
                        "after": prog.evals[-1] if prog.evals else None, "history": prog.evals},
        "config_digest": hashlib.sha256(json.dumps(fingerprint(cfg), sort_keys=True).encode()).hexdigest()[:12],
        # condition llm: which LLM, and its features this session: computed, reused from the cache, seconds
        "llm": s.encoder and {**s.encoder.record, "features": s.encoder.stats()},
    }


# ---------------------------------------------------------------------------- checkpoint

def fingerprint(cfg: GridConfig) -> dict:
    d = {k: v for k, v in to_dict(cfg).items() if k not in UNFINGERPRINTED}
    d["train"] = {k: v for k, v in d["train"].items() if k not in ("max_minutes", "device")}
    return json.loads(json.dumps(d))  # tuples as lists: what progress.json reads back


def save_checkpoint(s: Session) -> None:
    """Atomic: a kill during the write leaves the previous checkpoint whole."""
    with atomic_folder(s.ckpt) as tmp:
        torch.save({"model": s.model.state_dict(), "optimizer": s.opt.state_dict(), "scheduler": s.sched.state_dict()},
                   os.path.join(tmp, "state.pt"))
        write_json_atomic(os.path.join(tmp, "progress.json"),
                          {"progress": dataclasses.asdict(s.prog), "config": fingerprint(s.cfg)})
    log.info("checkpoint at step %d (batch %d)", s.prog.step, s.prog.batch)


def load_checkpoint(folder: str, model, opt, sched, cfg: GridConfig) -> GridProgress:
    """The progress, with the tensors loaded into `model`, `opt` and `sched`; refused under a changed config."""
    with open(os.path.join(folder, "progress.json"), encoding="utf-8") as f:
        meta = json.load(f)
    now = fingerprint(cfg)
    if meta["config"] != now:
        diff = sorted(k for k in now if now[k] != meta["config"].get(k))
        raise UserError(f"{folder}: the checkpoint was made with a different config ({', '.join(diff)} differ); "
                         "resume with the same config, or start a new output.dir")
    state = torch.load(os.path.join(folder, "state.pt"), map_location=model_device(model), weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return GridProgress(**meta["progress"])
