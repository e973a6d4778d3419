"""A fine-tuning checkpoint: the trainable tensors, the optimizer, the schedule and the progress, written atomically
and read back only under the config that made it."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

import torch

from ..core.config import FinetuneConfig, to_dict
from ..core.errors import UserError
from ..core.folders import atomic_folder, write_json_atomic
from ..modeling import lora
from ..modeling.runtime import model_device

CHECKPOINT = "checkpoint"  # the folder in output.dir
# Sections whose change makes a checkpoint meaningless; eval and output settings (and max_minutes) may change.
RESUME_KEYS = ("model", "data", "lora", "views", "seed")
RESUME_TRAIN_KEYS = ("mode", "steps", "batch_size", "grad_accum", "max_len", "lr", "embedding_lr", "warmup",
                     "weight_decay", "loss_on", "loss_vocab", "init_adapter")


@dataclass
class Progress:
    """Everything a resumed run needs besides the tensors."""

    step: int = 0
    tokens: int = 0
    seconds: float = 0.0  # training time, summed over sessions
    sessions: int = 0
    losses: list[float] = field(default_factory=list)  # per optimizer step
    evals: list[dict] = field(default_factory=list)
    d8_counts: list[int] = field(default_factory=lambda: [0] * 8)  # samples drawn under each D8 element


def fingerprint(cfg: FinetuneConfig) -> dict:
    d = to_dict(cfg)
    out = {k: d[k] for k in RESUME_KEYS}
    out["train"] = {k: d["train"][k] for k in RESUME_TRAIN_KEYS}
    return out


def save_checkpoint(folder: str, model, opt, sched, scaler, progress: Progress, cfg: FinetuneConfig) -> None:
    """Atomic: a kill during the write leaves the previous checkpoint whole."""
    with atomic_folder(folder) as tmp:
        torch.save({"trainable": {n: p.detach().cpu() for n, p in lora.trainable_parameters(model).items()},
                    "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict()},
                   os.path.join(tmp, "state.pt"))
        write_json_atomic(os.path.join(tmp, "progress.json"),
                          {"progress": dataclasses.asdict(progress), "config": fingerprint(cfg)})


def load_checkpoint(folder: str, model, opt, sched, scaler, cfg: FinetuneConfig) -> Progress:
    with open(os.path.join(folder, "progress.json"), encoding="utf-8") as f:
        meta = json.load(f)
    # a key added after the checkpoint was written reads as its default (what that run trained with)
    defaults = fingerprint(FinetuneConfig())
    meta["config"] = {k: {**d, **meta["config"].get(k, {})} if isinstance(d, dict) else meta["config"].get(k)
                      for k, d in defaults.items()}
    if meta["config"] != fingerprint(cfg):
        diff = sorted(k for k in fingerprint(cfg) if fingerprint(cfg)[k] != meta["config"].get(k))
        raise UserError(f"{folder}: the checkpoint was made with a different config ({', '.join(diff)} differ); "
                         "resume with the same config, or start a new output.dir")
    state = torch.load(os.path.join(folder, "state.pt"), map_location=model_device(model), weights_only=True)
    with torch.no_grad():
        for name, p in lora.trainable_parameters(model).items():
            p.copy_(state["trainable"][name])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    return Progress(**meta["progress"])
