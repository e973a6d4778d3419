"""What a task produced, and what the run needs from a model: the types shared by the engine below
the run and the run itself (so neither imports the other)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .clock import TrainCap
from .planner import TaskCost
from .ranking import Candidate
from .tasks import Task


@dataclass
class TrainOutcome:
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    stopped_by: str = "skipped"
    note: str = ""


@dataclass
class PredictOutcome:
    """One task's prediction, from the decoder to the record: the candidates stay objects until the record
    writes them (`TaskRecord.candidates` holds their dicts)."""

    attempts: list[tuple[np.ndarray | None, np.ndarray | None]]  # per test input; None where nothing was found
    candidates: list[list[Candidate]]  # per test input, ranked best first, each naming the sources that proposed it
    views: int = 0  # fewest views, over the test inputs, that produced a candidate (throughput for planning)
    seconds: float = 0.0
    prefill_seconds: float = 0.0  # the views' prompts through the model (decoding only)
    decode_seconds: float = 0.0  # generating candidates, prefill excluded
    rescore_seconds: float = 0.0  # merging, re-scoring under the scoring views, ranking
    source_seconds: dict[str, float] = field(default_factory=dict)  # per candidate source, its proposing
    stopped_by: str = "done"  # "done" | "time_cap"


@dataclass
class TaskRecord:
    """One line of the journal and one row of log.json."""

    id: str
    status: str = "pending"  # ok | fallback | invalid | error | resumed
    mode: str = ""  # the planner's mode
    reason: str = ""
    weight: float = 1.0
    difficulty: float | None = None
    steps: int = 0
    planned_steps: int = 0
    tokens: int = 0
    loss_first: float | None = None
    loss_last: float | None = None
    train_seconds: float = 0.0
    train_stopped_by: str = ""
    views: int = 0
    planned_views: int = 0
    infer_seconds: float = 0.0
    seconds: float = 0.0
    # where the task's time went (training is train_seconds; infer_seconds ~ prefill + decode + rescore)
    difficulty_seconds: float = 0.0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    rescore_seconds: float = 0.0
    source_seconds: dict[str, float] = field(default_factory=dict)  # prefill + decode, split by candidate source
    retried: bool = False
    peak_memory_mb: float = 0.0
    worker: int = 0
    candidates: list[list[dict]] = field(default_factory=list)  # per test input: Candidate.to_dict, best first
    attempts: list[list[Any]] = field(default_factory=list)  # per test input: [attempt_1, attempt_2]
    correct: list[bool] | None = None
    error: str = ""
    # budget.policy=learned: the actions, their predicted gains and costs, lambda, the PID's output, the chosen
    # steps and the gate's decision (None under the other policies)
    policy: dict | None = None

    @classmethod
    def from_dict(cls, item: dict) -> "TaskRecord":
        """From a journal line, ignoring keys an older or newer version wrote."""
        return cls(**{k: v for k, v in item.items() if k in cls.__dataclass_fields__})

    def time_split(self) -> str:
        """Where the task's seconds went, for the log line and the report."""
        return (f"difficulty {self.difficulty_seconds:.1f} train {self.train_seconds:.1f} "
                f"prefill {self.prefill_seconds:.1f} decode {self.decode_seconds:.1f} rescore {self.rescore_seconds:.1f}")

    def sources_found(self) -> str:
        """How many candidates each source proposed, over the test inputs (one that several sources found counts for
        each), e.g. "llm 5, grid 3": the run's log line and the report."""
        counts: dict[str, int] = {}
        for per_test in self.candidates:
            for c in per_test:
                for name in c.get("sources", []):
                    counts[name] = counts.get(name, 0) + 1
        return ", ".join(f"{name} {n}" for name, n in counts.items())

    def proposed_by(self, test_index: int, grid: Any) -> str:
        """The sources of the candidate that is `grid` for test input `test_index` ("+" between them), or
        "fallback" when no candidate is (the writer's answer filled the attempt)."""
        want = np.asarray(grid).tolist()
        per_test = self.candidates[test_index] if test_index < len(self.candidates) else []
        return next(("+".join(c.get("sources", [])) or "?" for c in per_test if c["grid"] == want), "fallback")


class Engine(Protocol):
    """What the run needs from a model; `modeling.engine.ModelEngine` is the real one,
    `lab.simulate.SimEngine` a simulated one."""

    def reset(self) -> None: ...  # back to the initial adapter
    def cost(self, task: Task) -> TaskCost: ...
    def difficulty(self, task: Task) -> float: ...
    def train(self, task: Task, steps: int, time_cap: float | TrainCap, shrink: int) -> TrainOutcome: ...
    def predict(self, task: Task, views: int, time_cap: float, shrink: int) -> PredictOutcome: ...
    def free_memory(self) -> None: ...
