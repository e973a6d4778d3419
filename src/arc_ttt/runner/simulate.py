"""A simulated engine and clock: the run's real loop without a model.

Used by the tests (deadline, isolation, resume) and by benchmarks/budget.py. Costs follow the
planner's own cost model times a per-task "true" factor the planner does not know, so the
planner has to learn throughput from what it measures, as on real hardware.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.config import BudgetConfig
from ..core.planner import TaskCost, TrainCap
from ..core.records import PredictOutcome, TrainOutcome
from ..core.tasks import Task
from ..core.textformat import answer_tokens


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SimEngine:
    clock: FakeClock
    cfg: BudgetConfig = field(default_factory=BudgetConfig)
    speed: float = 1.0  # true seconds = prior model x speed x per-task noise
    noise: float = 0.0  # sigma of the log-normal per-task factor
    truth: dict = field(default_factory=dict)  # task id -> true test outputs, answered as attempt 1 (the run
    # hands engines blind tasks, so a simulated solver is told the answers here)
    fail: dict = field(default_factory=dict)  # task id -> exception to raise in train (once per entry)
    seed: int = 0
    batch_size: int = 8  # views decoded together, as the planner assumes
    difficulties: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)

    def _factor(self, task_id: str) -> float:
        rng = np.random.default_rng([self.seed, *task_id.encode()])
        return self.speed * float(np.exp(rng.normal(0, self.noise))) if self.noise else self.speed

    def reset(self) -> None:
        self.calls.append(("reset",))

    def cost(self, task: Task) -> TaskCost:
        seq = sum(p.input.size + p.input.shape[0] + p.output.size + p.output.shape[0] + 3 for p in task.train) + 1
        answer = answer_tokens(task.train)
        prompt = seq + task.test[0].input.size + task.test[0].input.shape[0] + 2
        return TaskCost(task.id, seq, prompt, answer, task.n_test)

    def difficulty(self, task: Task) -> float:
        self.clock.advance(self.cost(task).train_tokens_per_step * self.cfg.prefill_seconds_per_token
                           * self._factor(task.id))
        if task.id in self.difficulties:
            return self.difficulties[task.id]
        return float(np.random.default_rng([self.seed, 1, *task.id.encode()]).uniform(0.2, 2.0))

    def train(self, task: Task, steps: int, time_cap: float | TrainCap, shrink: int) -> TrainOutcome:
        self.calls.append(("train", task.id, steps, time_cap, shrink))
        if task.id in self.fail:
            raise self.fail.pop(task.id)
        per_step = self.cost(task).train_tokens_per_step * self.cfg.train_seconds_per_token * self._factor(task.id)
        start, done = self.clock(), 0
        cap = TrainCap.of(time_cap)
        while done < steps and not cap.reached(self.clock() - start, done):  # checked between steps, like ttt.train
            self.clock.advance(per_step)
            done += 1
        return TrainOutcome(done, done * self.cost(task).train_tokens_per_step, self.clock() - start,
                            [1.0] * done, "done" if done == steps else "time_cap")

    def predict(self, task: Task, views: int, time_cap: float, shrink: int) -> PredictOutcome:
        self.calls.append(("predict", task.id, views, time_cap, shrink))
        c = self.cost(task)
        factor = c.n_test * self._factor(task.id)
        start, done, prefill = self.clock(), 0, 0.0
        while done < views and self.clock() - start < time_cap:
            batch = min(self.batch_size, views - done)
            self.clock.advance(batch * c.prompt_tokens * self.cfg.prefill_seconds_per_token * factor)
            prefill += batch * c.prompt_tokens * self.cfg.prefill_seconds_per_token * factor
            for _ in range(c.answer_tokens):  # decoding checks the cap at every token, like inference.py
                if self.clock() - start >= time_cap:
                    break
                self.clock.advance(self.cfg.decode_seconds_per_token * factor)
            else:
                done += batch
                continue
            break
        if not done:
            attempts = [(None, None) for _ in task.test]
        elif task.id in self.truth:
            attempts = [(g, None) for g in self.truth[task.id]]
        else:  # a guess, as a real model always decodes some grid
            attempts = [(p.input, None) for p in task.test]
        seconds = self.clock() - start
        return PredictOutcome(attempts, [[] for _ in task.test], done, seconds, prefill_seconds=prefill,
                              decode_seconds=seconds - prefill)  # no re-scoring simulated

    def free_memory(self) -> None:
        self.calls.append(("free",))
