"""The real engine behind a run: one model with a LoRA adapter, reset in memory before each task."""
from __future__ import annotations

import dataclasses
import gc
import time
from dataclasses import dataclass
from typing import Sequence

import torch

from ..core.config import RunConfig
from ..core.clock import Clock, TrainCap
from ..core.planner import TaskCost
from ..core.records import PredictOutcome, TrainOutcome
from ..core.tasks import Task
from ..core.formats.codec import Codec, LossOn
from ..core.views import ViewPlan
from ..core import formats
from . import figures, lora, ttt
from .loading import load_model
from .predict import predict_task
from .sources import CandidateSource, build_sources


@dataclass
class ModelEngine:
    model: torch.nn.Module
    codec: Codec
    cfg: RunConfig
    initial: lora.AdapterSnapshot
    clock: Clock = time.monotonic
    sources: Sequence[CandidateSource] | None = None  # who proposes candidates (None: the LLM's decoding alone)

    @classmethod
    def load(cls, cfg: RunConfig) -> "ModelEngine":
        model, tokenizer = load_model(cfg.model)
        # the prompt format the model was trained on; a tokenizer that cannot speak it is refused here
        codec = formats.codec_for(formats.resolve(cfg.model.format, cfg.model.path), tokenizer)
        model = lora.attach(model, cfg.lora)
        # who proposes candidates (inference.sources): the LLM's decoding, the grid model loaded here, or both
        return cls(model, codec, cfg, lora.snapshot(model), sources=build_sources(cfg.inference, model, codec))

    def reset(self) -> None:
        lora.restore(self.model, self.initial)

    @property
    def plan(self) -> ViewPlan:
        """The run's views (its `views` section and seed): TTT, generation and scoring all draw from it."""
        return ViewPlan.of(self.cfg.views, self.cfg.seed)

    def cost(self, task: Task) -> TaskCost:
        demos = ttt.fit_demos(task.train, self.cfg.ttt.max_len, self.codec.overhead, self.codec.pair_cost)
        seq = min(self.cfg.ttt.max_len, sum(self.codec.pair_cost(p) for p in demos) + self.codec.overhead)
        prompt = min(self.cfg.inference.max_len, len(self.codec.encode_prompt(task.train, task.test[0].input)))
        answer = self.codec.answer_cost(task.train)
        return TaskCost(task.id, train_tokens_per_step=seq * self.cfg.ttt.batch_size * self.cfg.ttt.grad_accum,
                        prompt_tokens=prompt, answer_tokens=answer, n_test=task.n_test)

    def difficulty(self, task: Task) -> float:
        """Base model NLL per output token on the task's own demos (the first output is not predictable)."""
        self.reset()
        demos = ttt.fit_demos(task.train, self.cfg.ttt.max_len, self.codec.overhead, self.codec.pair_cost)
        loss_on = LossOn.ALL_BUT_FIRST if len(demos) > 1 else LossOn.ALL_OUTPUTS
        return figures.mean_output_nll(self.model, [self.codec.encode_pairs(demos, loss_on)], autocast=self.cfg.ttt.autocast)

    def train(self, task: Task, steps: int, time_cap: float | TrainCap, shrink: int) -> TrainOutcome:
        self.reset()
        c = self.cfg.ttt
        if shrink:  # the retry after an out-of-memory error
            c = dataclasses.replace(c, batch_size=max(1, c.batch_size // 2), max_len=int(c.max_len * 0.75),
                                    grad_checkpointing=True)
        # The planner decides the steps; as many fresh views as those steps consume, one pass over them.
        asked = self.plan.inference(task, self.cfg.inference.n_views, self.cfg.inference.n_score_views)
        data = ttt.build_sequences(task, self.codec, c, n=max(1, steps * c.batch_size * c.grad_accum),
                                   plan=self.plan, avoid=asked)
        if data.inference_only:
            return TrainOutcome(stopped_by="inference_only", note=data.note)
        r = ttt.train(self.model, data, c, max_steps=steps, time_cap=time_cap, clock=self.clock)
        return TrainOutcome(r.steps, r.tokens, r.seconds, r.losses, r.stopped_by, data.note)

    def predict(self, task: Task, views: int, time_cap: float, shrink: int) -> PredictOutcome:
        c = self.cfg.inference
        if shrink:
            c = dataclasses.replace(c, batch_size=max(1, c.batch_size // 2), max_len=int(c.max_len * 0.75))
        return predict_task(self.model, self.codec, task, c, sources=self.sources, n_views=views, time_cap=time_cap,
                            clock=self.clock, plan=self.plan)

    def free_memory(self) -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
