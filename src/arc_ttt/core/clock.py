"""Time as the run reads it: an injected clock, a deadline on it, a training cap, and the fake clock.

Every time-bound part of the kit (planner, training, decoding, the run's loop) reads time through a `Clock`, a
callable that returns seconds, and never calls `time.monotonic` itself. So the same code runs on a `FakeClock` in
tests and simulations, where time passes only when simulated work advances it, never because code read the clock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .policy import GATE_STEPS

Clock = Callable[[], float]  # seconds; only differences between readings mean anything


@dataclass
class FakeClock:
    """Simulated seconds: reading it costs nothing, only `advance` moves it. A test then states the work it
    simulates (a model call, a training step) in seconds, and a cap is measured in that work."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Deadline:
    """A point in time on a clock (None: never); remembers whether anyone found it passed, so a caller learns
    after the fact that its result was cut short."""

    clock: Clock = time.monotonic
    at: float | None = None
    hit: bool = field(default=False, init=False)

    def passed(self) -> bool:
        if self.at is not None and self.clock() >= self.at:
            self.hit = True
        return self.hit

    def share(self, parts: int) -> Deadline:
        """A deadline for the next of `parts` equal shares of the time left (same clock, shared `hit` is not)."""
        if self.at is None:
            return Deadline(self.clock, None)
        now = self.clock()
        return Deadline(self.clock, now + max(0.0, self.at - now) / max(1, parts))


@dataclass(frozen=True)
class TrainCap:
    """When a task's training must stop (checked between steps). With the plan's estimate of a step: when the next
    step, at the pace of those done, would end past `seconds` brought forward by `infer_reserve` times how much
    slower than planned the steps run. A task slow to train is slow to predict as well, and a task stopped with
    no prediction scores nothing, while one with a few steps fewer still scores. Without it: at `seconds`."""

    seconds: float
    infer_reserve: float = 0.0  # the inference time the plan reserved after training
    step_seconds: float = 0.0  # the plan's estimate of one step (0: unknown)
    gate: Callable[[Sequence[float]], bool] | None = None  # after GATE_STEPS steps, given their losses: stop?

    @classmethod
    def of(cls, cap: float | TrainCap | None) -> TrainCap | None:
        """The cap itself, or one of plain seconds."""
        return cls(float(cap)) if isinstance(cap, (int, float)) else cap

    def reached(self, elapsed: float, steps_done: int, losses: Sequence[float] = ()) -> bool:
        if self.gate is not None and steps_done == GATE_STEPS and len(losses) >= GATE_STEPS and self.gate(losses):
            return True
        if not steps_done or self.step_seconds <= 0:
            return elapsed >= self.seconds
        pace = elapsed / steps_done
        return elapsed + pace > self.seconds - self.infer_reserve * max(0.0, pace / self.step_seconds - 1.0)
