"""A TRM-style recursive grid model: the output grid written cell by cell on a canvas, by one small network applied
recursively, conditioned on a learned task embedding.

    tokens: the task embedding + prefix-1 free positions (the row above the canvas), then the canvas's cells
            (class 0 "outside", class c+1 colour c): the grid at the top-left, so the output's size is predicted
    x = embed(input canvas); y, z = fixed initial states
    one supervision step: T cycles of { z <- net(z, x + y) n times; y <- net(y, z) }, all but the last without
            gradient; logits = head(y) on the canvas, halt logit = q(y at the task embedding's position)
    deep supervision: up to n_sup steps, y and z carried over detached, a loss (and, training, an update) after
            each; a sample stops once its halt logit is positive

The facts are TRM's (SamsungSAILMontreal/TinyRecursiveModels, models/recursive_reasoning/trm.py: the recursion,
the q head on the first prefix position initialised to bias -5, zero-initialised task embeddings, inputs scaled
by sqrt(hidden); models/layers.py: post-norm blocks, RMSNorm without weights, SwiGLU width rounded to 256;
models/losses.py: the halt head's BCE on "the whole answer is right", weighted 0.5). Ours: RoPE in 2-D (rows on
half of each head's pairs, columns on the other) and the outside class instead of TRM's PAD/EOS tokens. With
`condition: llm`, a cross-attention sub-layer after each block reads a frozen LLM's features over the task's prompt
(modeling/gridcondition.py); every function that runs the network then takes them as `features`.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import asdict
from typing import Callable, ContextManager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.configfile import build
from ..core.errors import UserError
from ..core.folders import atomic_folder
from ..core.gridconfig import (MODEL_CARD, SAME_FEATURES, GridModelConfig, describe_llm, probe_distance,
                               same_llm)
from ..core.tasks import GRID_DTYPE, Task
from ..core.views import View
from .gridcondition import Conditioning, Features
from .gridlayers import lecun, rms_norm, truncated_

OUTSIDE = 0  # the class of a canvas cell outside the grid; colour c is class c + 1
CLASSES = 11
HALT_LOSS_WEIGHT = 0.5  # TRM's weight of the halting BCE beside the cells' cross-entropy
WEIGHTS = "weights.pt"  # beside MODEL_CARD (grid_model.json: the sizes)


# ---------------------------------------------------------------------------- canvas

def encode_grid(grid: np.ndarray, canvas: int) -> np.ndarray:
    """The grid at the canvas's top-left, as classes, flattened row by row; everything else outside."""
    g = np.asarray(grid)
    if g.shape[0] > canvas or g.shape[1] > canvas:
        raise ValueError(f"grid {g.shape} does not fit a {canvas}x{canvas} canvas")
    out = np.full((canvas, canvas), OUTSIDE, dtype=np.int64)
    out[:g.shape[0], :g.shape[1]] = g.astype(np.int64) + 1
    return out.reshape(-1)


def likeliest_grid(logprobs: np.ndarray, canvas: int) -> tuple[np.ndarray, float]:
    """(the likeliest canvas that is one grid at the top-left, its log-probability), the cells taken apart as the
    network predicts them: over every size h x w, the cells inside at their likeliest colour, the rest outside.
    Where the cells' own argmax is one such rectangle it is that grid (every cell at its maximum); elsewhere (a
    hole, a stray cell, nothing at the corner) the grid nearest to it, so every canvas proposes a grid: read as
    the argmax alone, the committed grid model's canvases gave none. `logprobs`: (canvas^2, CLASSES) log-softmax
    of one canvas."""
    lp = np.asarray(logprobs, dtype=np.float64).reshape(canvas, canvas, CLASSES)
    outside = lp[..., OUTSIDE]
    colour = lp[..., OUTSIDE + 1:].argmax(-1)
    inside = np.take_along_axis(lp[..., OUTSIDE + 1:], colour[..., None], -1)[..., 0]
    gain = (inside - outside).cumsum(0).cumsum(1)  # [h-1, w-1]: what an h x w grid gains over an empty canvas
    h, w = np.unravel_index(int(np.argmax(gain)), gain.shape)
    return colour[:h + 1, :w + 1].astype(GRID_DTYPE), float(outside.sum() + gain[h, w])


def fits(grid: np.ndarray, canvas: int) -> bool:
    return grid.shape[0] <= canvas and grid.shape[1] <= canvas


def pairs_that_fit(pairs, canvas: int) -> tuple:
    """The solved pairs whose grids fit the canvas (under any view too: the canvas is square)."""
    return tuple(p for p in pairs if p.output is not None and fits(p.input, canvas) and fits(p.output, canvas))


def canvases(grids, canvas: int, device) -> torch.Tensor:
    """Grids as a batch of canvases of classes (batch, canvas^2)."""
    return torch.tensor(np.stack([encode_grid(g, canvas) for g in grids]), device=device)


# ---------------------------------------------------------------------------- the network

def swiglu_width(cfg: GridModelConfig) -> int:
    return -(-round(cfg.expansion * cfg.hidden * 2 / 3) // cfg.mlp_multiple) * cfg.mlp_multiple


def rope_2d(cfg: GridModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (sequence, head size): prefix position i sits at (row 0, column i), cell (r, c) at (r + 1, c);
    the first half of a head's size turns with the row, the second with the column."""
    head = cfg.hidden // cfg.heads
    inv = 1.0 / cfg.rope_theta ** (torch.arange(0, head // 2, 2, dtype=torch.float32) / (head // 2))
    r, c = torch.meshgrid(torch.arange(cfg.canvas), torch.arange(cfg.canvas), indexing="ij")
    rows = torch.cat([torch.zeros(cfg.prefix), r.reshape(-1) + 1.0])
    cols = torch.cat([torch.arange(cfg.prefix, dtype=torch.float32), c.reshape(-1).float()])
    fr, fc = torch.outer(rows, inv), torch.outer(cols, inv)
    angles = torch.cat([fr, fr, fc, fc], dim=-1)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on each half of the head size apart: quarters (a, b, c, d) turn as (a, b) and (c, d) pairs."""
    a, b, c, d = x.chunk(4, dim=-1)
    return x * cos + torch.cat([-b, a, -d, c], dim=-1) * sin


class Block(nn.Module):
    """Attention over the whole sequence (no mask), then SwiGLU, each added and RMS-normed after (post-norm)."""

    def __init__(self, cfg: GridModelConfig):
        super().__init__()
        self.cfg, width = cfg, swiglu_width(cfg)
        self.qkv = lecun(nn.Linear(cfg.hidden, 3 * cfg.hidden, bias=False))
        self.out = lecun(nn.Linear(cfg.hidden, cfg.hidden, bias=False))
        self.gate_up = lecun(nn.Linear(cfg.hidden, 2 * width, bias=False))
        self.down = lecun(nn.Linear(width, cfg.hidden, bias=False))

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, length, dim = h.shape
        q, k, v = self.qkv(h).view(b, length, 3, self.cfg.heads, dim // self.cfg.heads).permute(2, 0, 3, 1, 4)
        q, k = rotate(q, cos.to(q.dtype), sin.to(q.dtype)), rotate(k, cos.to(k.dtype), sin.to(k.dtype))
        att = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, length, dim)
        h = rms_norm(h + self.out(att), self.cfg.norm_eps)
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return rms_norm(h + self.down(F.silu(gate) * up), self.cfg.norm_eps)


class GridModel(nn.Module):
    """The network and its task embedding table (`rows`: one per task and view trained on); with `condition: llm`
    the projection and cross-attention of `llm_hidden`-wide LLM features too (`condition`; None without)."""

    def __init__(self, cfg: GridModelConfig, rows: int, llm_hidden: int | None = None):
        super().__init__()
        self.cfg = cfg
        if (cfg.condition == "llm") != (llm_hidden is not None):
            raise ValueError(f"condition {cfg.condition}: llm_hidden {llm_hidden} (the LLM's width with llm alone)")
        self.condition = Conditioning(cfg, llm_hidden) if llm_hidden is not None else None
        self.embed = nn.Embedding(CLASSES, cfg.hidden)
        truncated_(self.embed.weight, 1.0 / math.sqrt(cfg.hidden))
        self.task = nn.Embedding(rows, cfg.hidden)
        nn.init.zeros_(self.task.weight)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.head = lecun(nn.Linear(cfg.hidden, CLASSES, bias=False))
        self.halt = nn.Linear(cfg.hidden, 1)
        nn.init.zeros_(self.halt.weight)
        nn.init.constant_(self.halt.bias, -5.0)  # "halt" almost never at first: every step is supervised
        self.register_buffer("y_init", truncated_(torch.empty(cfg.hidden), 1.0))
        self.register_buffer("z_init", truncated_(torch.empty(cfg.hidden), 1.0))
        cos, sin = rope_2d(cfg)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def embed_input(self, cells: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """x: the task vectors (batch, hidden) on the first position, zeros on the other prefix positions, the
        canvas's cells after; scaled by sqrt(hidden) as TRM does."""
        pad = vectors.new_zeros(len(cells), self.cfg.prefix - 1, self.cfg.hidden)
        x = torch.cat([vectors[:, None].to(self.embed.weight.dtype), pad, self.embed(cells)], dim=1)
        return math.sqrt(self.cfg.hidden) * x

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        length = self.cfg.prefix + self.cfg.canvas ** 2
        return (self.y_init.expand(batch, length, -1).clone(), self.z_init.expand(batch, length, -1).clone())

    def net(self, h: torch.Tensor, injection: torch.Tensor, context=None) -> torch.Tensor:
        h = h + injection
        for i, block in enumerate(self.blocks):
            h = block(h, self.cos, self.sin)
            if context is not None:
                h = self.condition.cross[i](h, context[i])
        return h

    def cycle(self, x, y, z, context=None):
        for _ in range(self.cfg.n):
            z = self.net(z, x + y, context)
        return self.net(y, z, context), z

    def step(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, features: Features | None = None):
        """One supervision step: T cycles, the last with gradient. Returns (y, z) detached for the next step, the
        canvas logits (batch, cells, classes) and the halt logit (batch,), both in fp32. `features`: the LLM's,
        one prompt a sample, with `condition: llm` (and only then)."""
        if (self.condition is None) != (features is None):
            raise ValueError(f"condition {self.cfg.condition}: features {'missing' if features is None else 'given'}")
        context = None if features is None else self.condition.context(features)
        with torch.no_grad():
            for _ in range(self.cfg.T - 1):
                y, z = self.cycle(x, y, z, context)
        y, z = self.cycle(x, y, z, context)
        logits = self.head(y[:, self.cfg.prefix:]).float()
        return y.detach(), z.detach(), logits, self.halt(y[:, 0]).squeeze(-1).float()


def count_parameters(model: GridModel) -> dict[str, int]:
    """The network's parameters and the task embedding table's, apart: the first is what TRM's "7M" counts; with
    `condition: llm`, the projection and cross-attention as a third (the frozen LLM is no part of the model)."""
    table = model.task.weight.numel()
    extra = 0 if model.condition is None else sum(p.numel() for p in model.condition.parameters())
    counts = {"network": sum(p.numel() for p in model.parameters()) - table - extra, "task_embedding": table}
    return counts if model.condition is None else {**counts, "conditioning": extra}


# ---------------------------------------------------------------------------- deep supervision

def supervision_loss(logits, q, targets, active) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss over the active samples, whether each answer is whole and right, right cells per sample): cross-entropy
    averaged over every canvas cell (outside ones too: they carry the size) plus the halting BCE."""
    ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").mean(1)
    right = logits.detach().argmax(-1) == targets
    correct = right.all(1)
    bce = F.binary_cross_entropy_with_logits(q, correct.float(), reduction="none")
    weight = active.float()
    loss = ((ce + HALT_LOSS_WEIGHT * bce) * weight).sum() / weight.sum().clamp_min(1.0)
    return loss, correct, right.sum(1)


def deep_supervision(model: GridModel, cells: torch.Tensor, targets: torch.Tensor,
                     vectors: Callable[[], torch.Tensor], update: Callable[[torch.Tensor], bool],
                     min_halt: torch.Tensor | None = None,
                     amp: Callable[[], ContextManager] = contextlib.nullcontext,
                     features: Features | None = None) -> list[dict]:
    """One batch through up to n_sup supervision steps, `update(loss)` after each (an optimizer step; False stops
    the batch). `vectors()` is asked at every step, since the update may have moved the embedding. A sample halts
    when its halt logit is positive and it has had `min_halt` steps (TRM's exploration); the batch ends when all
    have. Returns, per step, its loss, active samples, whole answers right and cells right among the active."""
    y, z = model.initial_state(len(cells))
    active = torch.ones(len(cells), dtype=torch.bool, device=cells.device)
    stats = []
    for s in range(model.cfg.n_sup):
        with amp():
            y, z, logits, q = model.step(model.embed_input(cells, vectors()), y, z, features)
        loss, correct, cells_right = supervision_loss(logits, q, targets, active)
        stats.append({"loss": float(loss.detach()), "active": int(active.sum()), "correct": int((correct & active).sum()),
                      "cells_right": int(cells_right[active].sum())})
        if not update(loss):
            break
        halted = q.detach() > 0
        if min_halt is not None:
            halted &= s + 1 >= min_halt
        active &= ~halted
        if not active.any():
            break
    return stats


@torch.no_grad()
def final_logits(model: GridModel, cells: torch.Tensor, vectors: torch.Tensor, halt: bool = False,
                 amp: Callable[[], ContextManager] = contextlib.nullcontext,
                 features: Features | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(canvas logits (batch, cells, classes), halt logits (batch,)), fp32, after n_sup steps (TRM evaluates every
    step), or once every halt logit is positive with `halt`."""
    y, z = model.initial_state(len(cells))
    for _ in range(model.cfg.n_sup):
        with amp():
            y, z, logits, q = model.step(model.embed_input(cells, vectors), y, z, features)
        if halt and bool((q > 0).all()):
            break
    return logits, q


def predict_cells(model: GridModel, cells: torch.Tensor, vectors: torch.Tensor, halt: bool = False,
                  amp: Callable[[], ContextManager] = contextlib.nullcontext,
                  features: Features | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(log-probabilities (batch, cells, classes), confidence (batch,): the halt head's probability), as
    `final_logits` runs."""
    logits, q = final_logits(model, cells, vectors, halt, amp, features)
    return torch.log_softmax(logits, -1).cpu().numpy(), torch.sigmoid(q).cpu().numpy()


def sign_sgd_(table: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor, lr: float, weight_decay: float) -> None:
    """TRM's update of the task embedding (models/sparse_embedding.py): only the rows used, by the sign of their
    gradient, with decoupled weight decay."""
    with torch.no_grad():
        table[rows] = table[rows] * (1.0 - lr * weight_decay) - lr * torch.sign(grad)


def fit_vector(model: GridModel, cells: torch.Tensor, targets: torch.Tensor, start: torch.Tensor, steps: int,
               lr: float, amp: Callable[[], ContextManager] = contextlib.nullcontext,
               features: Features | None = None) -> torch.Tensor:
    """A fresh task vector fitted on a task's pairs with the network frozen: `steps` batches of deep supervision,
    sign-SGD on the vector alone (no weight decay: nothing pulls it back to the mean it started from)."""
    vec = start.detach().clone().requires_grad_(True)

    def update(loss: torch.Tensor) -> bool:
        (grad,) = torch.autograd.grad(loss, [vec])
        with torch.no_grad():
            vec.add_(torch.sign(grad), alpha=-lr)
        return True

    for _ in range(steps):
        deep_supervision(model, cells, targets, lambda: vec.expand(len(cells), -1), update, amp=amp,
                         features=features)
    return vec.detach()


# ---------------------------------------------------------------------------- a task's test outputs

def predict_task(model: GridModel, task: Task, vectors: list[tuple[View, torch.Tensor]],
                 amp: Callable[[], ContextManager] = contextlib.nullcontext,
                 features: Callable[[int, View], Features] | None = None
                 ) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """Per test input: (the grid most voted over the (view, task vector) pairs, each view's `likeliest_grid` mapped
    back by its view's exact inverse (ties: the higher summed confidence), or None when the input does not fit; the
    first view's canvas of classes (each cell's argmax), for per-cell accuracy: give the identity first).
    `features(test index, view)`: with condition llm."""
    canvas, device = model.cfg.canvas, model.head.weight.device
    out = []
    for i, pair in enumerate(task.test):
        if not fits(pair.input, canvas):
            out.append((None, None))
            continue
        cells = np.stack([encode_grid(view.apply_grid(pair.input), canvas) for view, _ in vectors])
        feats = None if features is None else Features.cat([features(i, view) for view, _ in vectors])
        logprobs, conf = predict_cells(model, torch.tensor(cells, device=device),
                                       torch.stack([vec.to(device) for _, vec in vectors]), amp=amp, features=feats)
        votes: dict[bytes, list] = {}
        for (view, _), row, c in zip(vectors, logprobs, conf):
            grid = view.invert(likeliest_grid(row, canvas)[0])
            entry = votes.setdefault(bytes(grid.shape) + grid.tobytes(), [0, 0.0, grid])
            entry[0], entry[1] = entry[0] + 1, entry[1] + float(c)
        best = max(votes.values(), key=lambda e: (e[0], e[1]), default=None)
        out.append((None if best is None else best[2], logprobs[0].argmax(-1)))
    return out


def score(task: Task, predicted, canvas: int) -> tuple[int, int, float]:
    """(test outputs solved, test outputs with a solution, summed per-cell accuracy: the share of the true output's
    cells that the identity view's canvas gets right, whatever size it predicted)."""
    solved = tried = 0
    cells = 0.0
    for pair, (grid, classes) in zip(task.test, predicted):
        if pair.output is None:
            continue
        tried += 1
        solved += int(grid is not None and grid.shape == pair.output.shape and bool((grid == pair.output).all()))
        if classes is not None and fits(pair.output, canvas):
            h, w = pair.output.shape
            cells += float((classes.reshape(canvas, canvas)[:h, :w] == pair.output.astype(np.int64) + 1).mean())
    return solved, tried, cells


# ---------------------------------------------------------------------------- saving

def save_grid_model(model: GridModel, folder: str, files: dict[str, dict], llm: dict | None = None) -> None:
    """weights.pt and grid_model.json (the sizes; with condition llm, `llm`: which LLM it was trained on, a
    `gridconfig.llm_record`), with `files`' extras beside them, written as one folder. The LLM is not in the model's
    state: only the grid network, its embedding table and the conditioning are saved."""
    if (model.condition is None) != (llm is None):
        raise ValueError(f"condition {model.cfg.condition}: the LLM's record {'given' if llm else 'missing'}")
    meta = {"model": asdict(model.cfg), "rows": model.task.num_embeddings, **({"llm": llm} if llm else {})}
    with atomic_folder(folder) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, os.path.join(tmp, WEIGHTS))
        for name, obj in {MODEL_CARD: meta, **files}.items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=1)


def _probe_gap(trained: dict, given: dict) -> str:
    if "probe" not in trained or "probe" not in given:
        return ""
    return (f"; their features on the probe prompt differ by {probe_distance(trained, given):.3g} (relative; the "
            f"same LLM differs by at most {SAME_FEATURES}, a dtype's rounding)")


def load_grid_model(folder: str, device: str | torch.device = "cpu", llm: dict | None = None) -> GridModel:
    """The saved model. One trained on an LLM's features needs `llm`, the record of the LLM the caller will encode
    prompts with: a UserError naming both when it is not the one in the card (or when none is given)."""
    with open(os.path.join(folder, MODEL_CARD), encoding="utf-8") as f:
        meta = json.load(f)
    cfg = build(GridModelConfig, meta["model"], os.path.join(folder, MODEL_CARD))
    if cfg.condition == "llm" and (llm is None or not same_llm(meta["llm"], llm)):
        raise UserError(f"grid model {folder} was trained on the features of LLM {describe_llm(meta['llm'])}; "
                        + (f"this config's LLM is {describe_llm(llm)}{_probe_gap(meta['llm'], llm)}" if llm
                           else "no LLM was given to encode with"))
    model = GridModel(cfg, meta["rows"], meta["llm"]["hidden"] if cfg.condition == "llm" else None)
    model.load_state_dict(torch.load(os.path.join(folder, WEIGHTS), map_location="cpu", weights_only=True))
    return model.to(device).eval()
