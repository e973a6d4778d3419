"""The grid model's config (`arc-ttt train-grid`): sizes, training, evaluation and output, as typed dataclasses.

Its own module beside `config.py` (which holds the run and the LLM's fine-tuning) and read by the same loader:
`load_config(path, overrides, cls=GridConfig)`. The defaults are TRM's where TRM fixes a value
(SamsungSAILMontreal/TinyRecursiveModels, config/arch/trm.yaml, config/cfg_pretrain.yaml); the sizes default small
enough for this CPU. The data section is the LLM fine-tuning's (`CorpusConfig`): the same sources, the same guard.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .config import ConfigError, CorpusConfig, ViewsConfig, load_config

MAX_SIDE = 30  # ARC's largest grid
MODEL_CARD = "grid_model.json"  # a saved grid model's sizes, beside its weights (modeling/gridmodel.py)


@dataclass(frozen=True)
class GridLLMConfig:
    """`condition: llm`: the causal LM whose last hidden states the grid network attends to, frozen (never trained
    here). Its path, adapter and format are the grid model's record of which LLM it was trained on (its card); a run
    whose LLM is another is refused when it loads the grid model."""

    path: str | None = None  # a model folder, e.g. models/smollm2-135m (the same kind `model.path` names in a run)
    adapter: str | None = None  # a LoRA adapter folder merged into it first, e.g. configs/adapters/smollm2-135m-arc
    format: str = "auto"  # the prompt format, resolved as the LLM path resolves `model.format` (core.formats)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # its weights (modeling.runtime.resolve_dtype)
    max_len: int = 2048  # prompt tokens at most: demonstrations dropped from the end until it fits, as decoding does
    cache_mb: float = 512.0  # features kept in memory, least recently used dropped past this (0: none kept)

    def __post_init__(self):
        if self.max_len < 1 or self.cache_mb < 0:
            raise ValueError("llm.max_len: at least 1; llm.cache_mb: at least 0")


@dataclass(frozen=True)
class GridModelConfig:
    """The recursive network. TRM on ARC: hidden 512, 8 heads, expansion 4, 2 layers, n 4 (L_cycles, README's ARC
    runs; 6 in trm.yaml), T 3 (H_cycles), 16 supervision steps, 16 prefix positions (puzzle_emb_len)."""

    canvas: int = MAX_SIDE  # side of the square canvas; grids are written at its top-left, the rest is "outside"
    hidden: int = 128
    heads: int = 4  # head size hidden/heads must be a multiple of 4 (2-D RoPE: half the pairs rows, half columns)
    expansion: float = 4.0  # SwiGLU width: expansion * hidden * 2/3, rounded up to a multiple of mlp_multiple
    mlp_multiple: int = 256  # TRM's rounding (models/layers.py SwiGLU)
    layers: int = 2
    n: int = 4  # latent updates per cycle: z <- net(z, x + y), n times; then y <- net(y, z)
    T: int = 3  # cycles per supervision step; all but the last without gradient
    n_sup: int = 16  # deep-supervision steps (an optimizer step each while training), fewer once the head halts
    prefix: int = 16  # positions before the canvas: the task embedding on the first, the others free registers
    # none: TRM alone (the task embedding is all it knows of the task). llm: besides, the grid network attends to a
    # frozen LLM's last hidden states over the task's prompt (`llm` names it; modeling/gridcondition.py)
    condition: Literal["none", "llm"] = "none"
    llm: GridLLMConfig = field(default_factory=GridLLMConfig)
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    def __post_init__(self):
        if not 1 <= self.canvas <= MAX_SIDE:
            raise ValueError(f"canvas {self.canvas}: between 1 and {MAX_SIDE}")
        if self.hidden % self.heads or (self.hidden // self.heads) % 4:
            raise ValueError(f"hidden {self.hidden} / heads {self.heads}: the head size must be a multiple of 4")
        if not 1 <= self.prefix <= self.canvas + 1:
            raise ValueError(f"prefix {self.prefix}: between 1 and canvas + 1 (it is the row above the canvas)")
        if min(self.layers, self.n, self.T, self.n_sup) < 1:
            raise ValueError("layers, n, T and n_sup are at least 1")


@dataclass(frozen=True)
class GridTrainConfig:
    """AdamW on the network (TRM: AdamATan2, betas 0.9/0.95, weight decay 0.1, lr 1e-4 after a linear warmup of
    2000 steps, constant after); sign-SGD on the sampled rows of the task embedding (TRM: lr 1e-2, weight decay 0.1)."""

    steps: int = 2000  # optimizer steps: each deep-supervision step of a batch is one
    batch_size: int = 16  # samples (task, pair, view) a batch
    lr: float = 1e-4
    warmup_steps: int = 200
    lr_min_ratio: float = 1.0  # TRM's: constant after the warmup; below 1, a cosine down to lr * this at the end
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    embedding_lr: float = 1e-2
    embedding_weight_decay: float = 0.1
    max_grad_norm: float | None = 1.0
    halt_exploration: float = 0.1  # share of samples that may not halt before a random step (TRM's exploration)
    # Fixed views per task, the first the identity, each with its own embedding row (TRM names a task under one
    # augmentation as its own puzzle: dataset/build_arc_dataset.py makes 1000). A row sees its view's pairs only.
    views_per_task: int = 8
    autocast: Literal["off", "bf16"] = "off"  # bf16 on a GPU (TRM's forward_dtype); off on this CPU
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    max_minutes: float | None = None  # stop (with a checkpoint) after this much training time; --resume continues

    def lr_factor(self, k: int) -> float:
        """The lr of step k over `lr`, TRM's schedule (pretrain.py, cosine_schedule_with_warmup_lr_lambda): a linear
        warmup, then a cosine from 1 to lr_min_ratio over the remaining steps (constant at TRM's ratio 1)."""
        if k < self.warmup_steps:
            return (k + 1) / self.warmup_steps
        progress = min(1.0, (k - self.warmup_steps) / max(1, self.steps - self.warmup_steps))
        return self.lr_min_ratio + (1 - self.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class GridEvalConfig:
    every_steps: int = 500
    # Tasks never trained on (held-out, dev) have no embedding row: fit_steps of sign-SGD on a fresh one from the
    # mean row, on the task's demonstrations with the network frozen; 0 = the mean row as it is.
    fit_steps: int = 0
    fit_lr: float = 1e-2
    dev: str | None = None  # benchmarks/dev_tasks.json
    dev_eval: str | None = None  # benchmarks/dev_eval_tasks.json
    dev_tasks: int | None = None  # the first N of each dev set (each costs a fit and a prediction); None = all
    at_start: bool = False


@dataclass(frozen=True)
class GridOutputConfig:
    dir: str = "runs/grid"  # checkpoint/, model/ (weights + card), grid.json (the card), train.log
    checkpoint_minutes: float = 5.0


@dataclass(frozen=True)
class GridConfig:
    model: GridModelConfig = field(default_factory=GridModelConfig)
    data: CorpusConfig = field(default_factory=CorpusConfig)
    views: ViewsConfig = field(default_factory=ViewsConfig)
    train: GridTrainConfig = field(default_factory=GridTrainConfig)
    eval: GridEvalConfig = field(default_factory=GridEvalConfig)
    output: GridOutputConfig = field(default_factory=GridOutputConfig)
    seed: int = 0


def load_grid_config(path: str | os.PathLike | None = None, overrides=()) -> GridConfig:
    """A GridConfig from YAML and `section.key=value` overrides, checked like every config of the kit."""
    cfg = load_config(path, overrides, cls=GridConfig)
    if cfg.train.views_per_task < 1:
        raise ConfigError("train.views_per_task: at least 1 (the identity)")
    if cfg.model.condition == "llm" and not cfg.model.llm.path:
        raise ConfigError("model.condition: llm needs model.llm.path (the causal LM's folder, e.g. "
                          "models/smollm2-135m)")
    return cfg


def llm_record(path: str, adapter: str | None, fmt: str, hidden: int, probe: list[float] | None = None) -> dict:
    """Which LLM a grid model's features came from, as its card keeps it: the folder, the adapter merged into it,
    the prompt format (the codec's name), the width of its hidden states, and `probe`: what it computes on a fixed
    prompt (`gridcondition.probe`), which names it by content wherever its folder lies."""
    return {"path": os.path.normpath(path), "adapter": adapter and os.path.normpath(adapter), "format": fmt,
            "hidden": hidden, **({"probe": probe} if probe is not None else {})}


# Probes of one LLM further apart than this (relative L2) are another LLM's. On SmolLM2-135M
# (benchmarks/training/llm_probe.py): one LLM in float32 against bfloat16 0.011-0.048; base + adapter against its
# merged, vocabulary-shrunk folder 0.003; the long run's last two adapters 0.086; the base against the ARC model 0.39.
SAME_FEATURES = 0.07


def probe_distance(a: dict, b: dict) -> float:
    """Relative L2 distance between two records' probes; infinite when their lengths differ (another prompt)."""
    x, y = np.asarray(a["probe"], dtype=np.float64), np.asarray(b["probe"], dtype=np.float64)
    if x.shape != y.shape:
        return math.inf
    return float(np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-12))


def _same_folder(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return os.path.normpath(a) == os.path.normpath(b) or os.path.realpath(a) == os.path.realpath(b)


def same_llm(a: dict, b: dict) -> bool:
    """Two `llm_record`s name the same LLM: the same format and width, and the same features on the probe prompt
    (up to a dtype's rounding: a moved folder, a merged one, a GPU's bf16 are the same LLM; a folder rebuilt with
    another adapter is not). A record without a probe (written before probes) is matched by folder and adapter."""
    if a["format"] != b["format"] or a["hidden"] != b["hidden"]:
        return False
    if "probe" in a and "probe" in b:
        return probe_distance(a, b) <= SAME_FEATURES
    return _same_folder(a["path"], b["path"]) and _same_folder(a.get("adapter"), b.get("adapter"))


def describe_llm(record: dict) -> str:
    adapter = f" + adapter {record['adapter']}" if record.get("adapter") else ""
    return f"{record['path']}{adapter} (format {record['format']}, hidden {record['hidden']})"


def require_grid_model(folder: str | None, key: str = "inference.grid.path") -> None:
    """A ConfigError naming `key` unless `folder` holds a saved grid model: checked before a run touches any file."""
    if not folder:
        raise ConfigError(f"{key}: not set; give a grid model folder (`arc-ttt train-grid` writes <output.dir>/model)")
    if not os.path.isfile(os.path.join(folder, MODEL_CARD)):
        raise ConfigError(f"{key}: {folder} holds no grid model (no {MODEL_CARD}); `arc-ttt train-grid` writes one "
                          "to <output.dir>/model")
