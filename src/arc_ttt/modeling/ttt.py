"""Test-time training on one task's own demonstrations.

`build_sequences` turns a task's train pairs into token sequences over augmented views (whole-task
sequences and, optionally, leave-one-out ones), dropping demos that would exceed the length cap.
`train` runs AdamW with a warmup+cosine schedule over length-grouped batches and computes logits
only where the loss needs them (over the whole vocabulary, or the answer tokens: `answer_head`). It stops at a step
budget or a wall-clock cap (checked between steps with an injectable clock) and always leaves the
model in eval mode. CUDA out-of-memory is never caught here: the caller retries with a smaller batch.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import time
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from ..core.clock import TrainCap
from ..core.config import OptimizerSettings, TTTConfig
from ..core.tasks import Pair, Task
from ..core.formats.codec import Codec, Encoded, pair_tokens
from ..core.views import View, ViewPlan
from .runtime import autocast_context, model_device, needs_loss_scaling, weight_dtype

IGNORE = -100


@dataclass
class TTTData:
    sequences: list[Encoded]
    inference_only: bool
    note: str
    vocab: tuple[int, ...] | None = None  # the tokens the loss normalises over (ttt.loss_vocab); None: all


@dataclass
class TrainResult:
    steps: int
    tokens: int  # non-padding tokens processed
    losses: list[float]  # mean loss per target token, one per optimizer step
    seconds: float
    stopped_by: str  # "done" | "max_steps" | "time_cap"


# ---------------------------------------------------------------------------- data

def fit_demos(demos: tuple[Pair, ...], max_len: int, overhead: int = 1, cost=pair_tokens) -> tuple[Pair, ...]:
    """The demos kept under the cap, in their order: the costliest are dropped first. `cost`: tokens of a
    pair in the prompt format (default the kit's layout, `core.formats.codec.pair_tokens`; a codec's `pair_cost`)."""
    keep = list(range(len(demos)))
    total = overhead + sum(cost(p) for p in demos)
    for i in sorted(keep, key=lambda i: -cost(demos[i])):
        if total <= max_len:
            break
        keep.remove(i)
        total -= cost(demos[i])
    return tuple(demos[i] for i in keep) if total <= max_len else ()


def build_sequences(task: Task, codec: Codec, cfg: TTTConfig = TTTConfig(), *, n: int, plan: ViewPlan = ViewPlan(),
                    avoid: Sequence[View] = ()) -> TTTData:
    """Training sequences from the task's train pairs over augmented views (the same kind of views as
    inference: one `plan` for both). The views come from the plan's TTT stream and never equal, in their effect on the task, a view in `avoid` (the inference views): the
    adapter is then asked at inference through views it has not been trained on verbatim, as the
    ARChitects and NVARC drew them."""
    demos = fit_demos(task.train, cfg.max_len, codec.overhead, codec.pair_cost)
    dropped = len(task.train) - len(demos)
    if not demos:
        return TTTData([], True, f"no train pair fits in {cfg.max_len} tokens: inference only")
    sub = replace(task, train=demos)
    # drawn on the demos alone (what a TTT sequence shows), so a view differing only on the test input is no new view
    views = plan.ttt(replace(sub, test=()), n, avoid) if n > 0 else []
    views = [views[i % len(views)] for i in range(n)] if views else []  # a tiny task has few distinct views
    sequences: list[Encoded] = []
    if cfg.whole_task:
        sequences += [codec.encode_pairs(v.apply(sub).train, cfg.loss_on) for v in views]
    if cfg.leave_one_out and len(demos) > 1:
        for j, v in enumerate(views):
            pairs = v.apply(sub).train
            held = j % len(pairs)  # every original demo takes its turn as the query
            q = v.order.index(held) if v.order is not None else held  # where the view put it
            sequences.append(codec.encode_pairs(pairs[:q] + pairs[q + 1:] + pairs[q:q + 1], cfg.loss_on))
    note = f"{len(sequences)} sequences over {len(views)} views"
    if dropped:
        note += f"; dropped {dropped} demo(s) over the {cfg.max_len}-token cap"
    return TTTData(sequences, False, note, loss_vocab(codec.grid_token_ids, cfg))


def loss_vocab(answer_ids, cfg: OptimizerSettings) -> tuple[int, ...] | None:
    """The tokens a loss normalises over (`loss_vocab`): the answer's ids, or None for the whole vocabulary."""
    return tuple(int(i) for i in answer_ids) if cfg.loss_vocab == "answer" else None


def make_batches(lengths: list[int], batch_size: int, epochs: float = 1.0, seed: int = 0) -> list[list[int]]:
    """Index batches over `epochs` passes: each pass sorted by length and cut into batches (so padding is
    minimal), the batch order then shuffled. A fractional epoch takes a random subset in the last pass."""
    rng = np.random.default_rng(seed)
    n = len(lengths)
    total = round(epochs * n)
    batches: list[list[int]] = []
    while total > 0:
        take = rng.permutation(n)[:min(n, total)]
        total -= len(take)
        take = sorted(take.tolist(), key=lambda i: lengths[i])
        chunk = [take[i:i + batch_size] for i in range(0, len(take), batch_size)]
        batches += [chunk[i] for i in rng.permutation(len(chunk))]
    return batches


def token_batches(lengths: Sequence[int], max_tokens: int, seed: int = 0) -> list[list[int]]:
    """Index batches of at most `max_tokens` padded tokens (batch size x its longest sequence): one pass sorted by
    length and cut greedily, so sequences of like length share a batch (little padding), the batch order then
    shuffled. A sequence longer than `max_tokens` is a batch alone. What a GPU's large batches take."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[i] <= max_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    rng = np.random.default_rng(seed)
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_fraction(lengths: list[int], batches: list[list[int]]) -> float:
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    real = sum(lengths[i] for b in batches for i in b)
    return 1 - real / padded if padded else 0.0


@dataclass
class Batch:
    ids: torch.Tensor  # (B, T) right-padded
    attention: torch.Tensor  # (B, T) 1 on real tokens
    labels: torch.Tensor  # (B, T) the next token where it is a target, else IGNORE
    n_tokens: int
    n_targets: int


def collate(seqs: list[Encoded], pad_id: int, device: torch.device, label_map: np.ndarray | None = None) -> Batch:
    """Right-padded batch; `label_map` (token id -> row of a cut head, see `answer_head`) renames the targets."""
    T = max(len(s) for s in seqs)
    ids = np.full((len(seqs), T), pad_id, dtype=np.int64)
    att = np.zeros((len(seqs), T), dtype=np.int64)
    labels = np.full((len(seqs), T), IGNORE, dtype=np.int64)
    for b, s in enumerate(seqs):
        n = len(s)
        ids[b, :n] = s.ids
        att[b, :n] = 1
        labels[b, :n - 1] = np.where(s.loss_mask[1:], s.ids[1:], IGNORE)  # position t predicts token t+1
    n_targets = int((labels != IGNORE).sum())
    if label_map is not None:
        labels = np.where(labels == IGNORE, IGNORE, label_map[np.maximum(labels, 0)])
    return Batch(torch.from_numpy(ids).to(device), torch.from_numpy(att).to(device),
                 torch.from_numpy(labels).to(device), int(att.sum()), n_targets)


# ---------------------------------------------------------------------------- model plumbing

def pad_id(model) -> int:
    """Padding positions are masked out of attention and loss, so any valid id will do."""
    pad = getattr(model.config, "pad_token_id", None)
    if isinstance(pad, (list, tuple)):
        pad = pad[0] if pad else None
    return 0 if pad is None else int(pad)


def _accepts_logits_to_keep(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def embedding_adapter_parameters(model) -> list[torch.nn.Parameter]:
    """Trainable parameters of the input-embedding and lm_head modules (peft's lora_embedding_A/B and the head's
    lora_A/B), found through the modules themselves so any architecture's naming works. A tied pair is two
    modules sharing one frozen base weight: each has its own adapter, both are returned (each once)."""
    found: dict[int, torch.nn.Parameter] = {}
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, getter, lambda: None)()
        if module is not None:
            found.update({id(p): p for p in module.parameters() if p.requires_grad})
    return list(found.values())


def param_groups(model, cfg: OptimizerSettings) -> list[dict]:
    """AdamW groups: the adapters at `lr`, the embedding/lm_head adapters at `embedding_lr` when it is set."""
    params = [p for p in model.parameters() if p.requires_grad]
    special = {id(p) for p in embedding_adapter_parameters(model)} if cfg.embedding_lr is not None else set()
    groups = [{"params": [p for p in params if id(p) not in special], "lr": cfg.lr},
              {"params": [p for p in params if id(p) in special], "lr": cfg.embedding_lr}]
    return [g for g in groups if g["params"]]


def target_logits(model, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(fp32 logits, labels, their positions in the sequence): lm_head runs only at positions that predict a target
    somewhere in the batch, when the model can be told so; labels are IGNORE where a row has no target."""
    keep = (batch.labels != IGNORE).any(dim=0).nonzero().squeeze(1)
    kwargs = {"logits_to_keep": keep} if _accepts_logits_to_keep(model) else {}
    out = model(input_ids=batch.ids, attention_mask=batch.attention, use_cache=False, **kwargs)
    if kwargs:
        return out.logits.float(), batch.labels[:, keep], keep
    return out.logits.float(), batch.labels, torch.arange(batch.labels.shape[1], device=batch.labels.device)


def batch_loss(model, batch: Batch) -> torch.Tensor:
    """Summed next-token NLL over the target tokens."""
    logits, labels, _ = target_logits(model, batch)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")


def target_ids(seqs: Sequence[Encoded]) -> set[int]:
    """Every token id that is a target (loss-masked) somewhere in the sequences."""
    return {int(t) for s in seqs for t in s.ids[s.loss_mask]}


class CutHead(torch.nn.Module):
    """An output head's rows for `rows`: the frozen base rows copied, and a peft LoRA adapter on the head (if any)
    applied through the rows of its B, so that A and B still train. A head whose own weight trains (full
    fine-tuning) is read through its rows at every forward, so those rows train too. Holds no parameters of its own."""

    def __init__(self, head: torch.nn.Module, rows: torch.Tensor):
        super().__init__()
        base = getattr(head, "base_layer", head)
        self.register_buffer("rows", rows)
        self.live = [base] if base.weight.requires_grad else []  # a plain list: not a submodule, no parameter twice
        self.register_buffer("weight", None if self.live else base.weight.detach()[rows].clone())
        self.register_buffer("bias", None if base.bias is None else base.bias.detach()[rows].clone())
        adapters = [a for a in getattr(head, "active_adapters", []) if a in getattr(head, "lora_A", {})]
        # (A, B, dropout, scaling) in a plain list: not submodules, so the model's parameters are not listed twice
        self.lora = [(head.lora_A[a], head.lora_B[a], head.lora_dropout[a], head.scaling[a]) for a in adapters]
        self.in_features, self.out_features = base.in_features, len(rows)

    @staticmethod
    def fits(head) -> bool:
        """A plain Linear, or peft's LoRA Linear over one, unmerged, with plain adapters (no DoRA, no bias in B)."""
        if type(head) is torch.nn.Linear:
            return True
        base = getattr(head, "base_layer", None)
        return (type(base) is torch.nn.Linear and hasattr(head, "lora_A") and not head.merged
                and not head.disable_adapters and not getattr(head, "lora_variant", {})
                and all(head.lora_B[a].bias is None for a in head.active_adapters if a in head.lora_A))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.live:
            base = self.live[0]
            out = torch.nn.functional.linear(x, base.weight[self.rows], None if base.bias is None else base.bias[self.rows])
        else:
            out = torch.nn.functional.linear(x, self.weight, self.bias)
        for A, B, dropout, scaling in self.lora:
            h = A(dropout(x.to(A.weight.dtype)))
            out = out + torch.nn.functional.linear(h, B.weight[self.rows]).to(out.dtype) * scaling
        return out


@contextlib.contextmanager
def answer_head(model, vocab: Sequence[int] | None, seqs: Sequence[Encoded] = ()):
    """For the duration, the output head cut to the rows of `vocab`: the loss then normalises over the tokens an
    answer can hold, as a model shrunk to them would (ARChitects shrink theirs), and the head's forward and
    backward shrink from the whole vocabulary (49k rows for SmolLM2, 128k for Llama 3) to about a dozen; a LoRA
    adapter on the head still trains (`CutHead`). Every target token of `seqs` joins `vocab`, so no target
    falls outside the cut head. Yields the label map (token id -> row, IGNORE elsewhere) for
    `collate`, or None when the head stays whole: no vocab, or a head `CutHead` cannot cut (a quantised one)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if vocab is None or head is None or not CutHead.fits(head):
        yield None
        return
    weight = getattr(head, "base_layer", head).weight
    rows = torch.tensor(sorted(set(vocab) | target_ids(seqs)), dtype=torch.long, device=weight.device)
    label_map = np.full(weight.shape[0], IGNORE, dtype=np.int64)
    label_map[rows.cpu().numpy()] = np.arange(len(rows))
    model.set_output_embeddings(CutHead(head, rows))
    try:
        yield label_map
    finally:
        model.set_output_embeddings(head)


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warmup (the first step already moves) then cosine decay towards zero."""
    w = math.ceil(warmup * total)
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, total - w)))


# ---------------------------------------------------------------------------- training

def optimizer_step(model, micro: list[Batch], opt, sched, scaler, params, autocast: str,
                   max_grad_norm: float | None) -> tuple[float, int]:
    """One optimizer step over gradient-accumulated micro-batches, the loss normalised by the step's target
    tokens (so each token weighs the same whatever batch it sits in). Returns (mean loss per target, tokens)."""
    device = model_device(model)
    n_targets = max(1, sum(m.n_targets for m in micro))
    step_loss, tokens = 0.0, 0
    for m in micro:
        with autocast_context(autocast, device):
            loss = batch_loss(model, m)
        scaler.scale(loss / n_targets).backward()
        step_loss += loss.item()
        tokens += m.n_tokens
    if max_grad_norm is not None:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    scaler.step(opt)
    scaler.update()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return step_loss / n_targets, tokens


def build_optimizer(model, cfg: OptimizerSettings, total_steps: int):
    """(AdamW, warmup + cosine schedule over `total_steps`, loss scaler): how TTT and fine-tuning both step. The
    scaler is on only where fp16 compute needs it (`runtime.needs_loss_scaling`)."""
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total_steps, cfg.warmup))
    device = model_device(model)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_loss_scaling(cfg.autocast, weight_dtype(model), device))
    return opt, sched, scaler


def train(model, data: TTTData | list[Encoded], cfg: TTTConfig = TTTConfig(), *, epochs: float = 1.0,
          max_steps: int | None = None, time_cap: float | TrainCap | None = None, clock=time.monotonic) -> TrainResult:
    """Train the model's trainable parameters (the LoRA adapters) on `epochs` passes over the sequences, at most
    `max_steps` steps. `time_cap` is checked between steps (a step cannot be cut short): seconds, or a TrainCap that comes sooner when the steps run slow."""
    seqs = data.sequences if isinstance(data, TTTData) else list(data)
    start = clock()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: attach LoRA adapters first (arc_ttt.modeling.lora.attach)")
    if not seqs:
        return TrainResult(0, 0, [], 0.0, "done")
    pad = pad_id(model)
    cap = TrainCap.of(time_cap)
    batches = make_batches([len(s) for s in seqs], cfg.batch_size, epochs, cfg.seed)
    total = math.ceil(len(batches) / cfg.grad_accum)
    if max_steps is not None and max_steps < total:
        total, finished = max_steps, "max_steps"
    else:
        finished = "done"
    device = model_device(model)
    opt, sched, scaler = build_optimizer(model, cfg, total)
    checkpointing = cfg.grad_checkpointing and hasattr(model, "gradient_checkpointing_enable")
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    steps, tokens, losses, stopped_by = 0, 0, [], finished
    model.train()
    try:  # the head is whole again, and the model in eval mode, whatever happens (CUDA OOM propagates)
        with answer_head(model, data.vocab if isinstance(data, TTTData) else None, seqs) as label_map:
            for step in range(total):
                if cap is not None and cap.reached(clock() - start, steps, losses):
                    stopped_by = "time_cap"
                    break
                micro = [collate([seqs[i] for i in b], pad, device, label_map)
                         for b in batches[step * cfg.grad_accum:(step + 1) * cfg.grad_accum]]
                loss, n = optimizer_step(model, micro, opt, sched, scaler, params, cfg.autocast, cfg.max_grad_norm)
                tokens += n
                steps += 1
                losses.append(loss)
    finally:
        for p in params:
            p.grad = None
        if checkpointing:
            model.gradient_checkpointing_disable()
        model.eval()
    return TrainResult(steps, tokens, losses, clock() - start, stopped_by)
