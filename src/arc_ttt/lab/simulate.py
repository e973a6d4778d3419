"""Simulated engines on a fake clock (core.clock.FakeClock): the run's real loop without a model.

Used by the tests (deadline, isolation, resume) and by benchmarks/planner/budget.py. Costs follow the
planner's own cost model times a per-task "true" factor the planner does not know, so the
planner has to learn throughput from what it measures, as on real hardware.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.config import BudgetConfig
from ..core.clock import FakeClock, TrainCap
from ..core.planner import Planner, TaskCost
from ..core.records import PredictOutcome, TrainOutcome
from ..core.tasks import Task
from ..core.formats.codec import answer_tokens, pair_tokens


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
    losses: dict = field(default_factory=dict)  # task id -> the loss of each TTT step (default 1.0 each)
    calls: list = field(default_factory=list)

    def _factor(self, task_id: str) -> float:
        rng = np.random.default_rng([self.seed, *task_id.encode()])
        return self.speed * float(np.exp(rng.normal(0, self.noise))) if self.noise else self.speed

    def reset(self) -> None:
        self.calls.append(("reset",))

    def cost(self, task: Task) -> TaskCost:
        seq = sum(pair_tokens(p, any_orientation=False) for p in task.train) + 1  # the kit's layout, as it stands
        answer = answer_tokens(task.train)
        prompt = seq + task.test[0].input.size + task.test[0].input.shape[0] + 2
        return TaskCost(task.id, seq, prompt, answer, task.n_test, demos=len(task.train),
                        output_area=max(p.output.size for p in task.train))

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
        curve = list(self.losses.get(task.id, ()))
        losses: list[float] = []
        while done < steps and not cap.reached(self.clock() - start, done, losses):  # between steps, like ttt.train
            self.clock.advance(per_step)
            losses.append(curve[done] if done < len(curve) else 1.0)
            done += 1
        return TrainOutcome(done, done * self.cost(task).train_tokens_per_step, self.clock() - start,
                            losses, "done" if done == steps else "time_cap")

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
                              decode_seconds=seconds - prefill,  # no re-scoring simulated
                              stopped_by="done" if done == views else "time_cap")

    def free_memory(self) -> None:
        self.calls.append(("free",))


# ---- replaying an effort table (benchmarks/planner/effort.py's JSON) through the planner ------------------------------
@dataclass
class TableEngine:
    """A task's training and inference as an effort table measured them: each step takes the table's seconds
    (interpolated between its levels) on the fake clock, and the outcome is the one at the largest measured level
    not above the steps trained. Every policy acts on the table's levels: a plan of steps between two levels trains
    to the lower one (the table knows nothing of the steps between), and the time left over goes to later tasks."""

    clock: FakeClock
    table: dict

    def __post_init__(self):
        self.rows = {t["id"]: t for t in self.table["tasks"]}
        self.levels = tuple(int(x) for x in self.table["levels"])

    def level(self, task_id: str, steps: int) -> dict:
        row = self.rows[task_id]
        return next(lv for lv in row["levels"] if lv["steps"] == max(s for s in self.levels if s <= steps))

    def cost(self, task_id: str) -> TaskCost:
        f = self.rows[task_id]["features"]
        return TaskCost(task_id, int(f["train_tokens_per_step"]), int(f["prompt_tokens"]), int(f["answer_tokens"]),
                        int(self.rows[task_id].get("n_test", 1)), demos=int(f["demos"]),
                        output_area=int(f["output_area"]))

    def difficulty(self, task_id: str) -> float | None:
        self.clock.advance(self.rows[task_id].get("difficulty_seconds", 0.0))
        return self.rows[task_id]["features"].get("difficulty")

    def step_seconds(self, task_id: str, step: int) -> float:
        """Seconds of step `step` (0-based): the table's training time between the levels around it, per step."""
        lv = {x["steps"]: x["train_seconds"] for x in self.rows[task_id]["levels"]}
        hi = min((s for s in self.levels if s > step), default=max(self.levels))
        lo = max((s for s in self.levels if s < hi), default=0)
        return (lv[hi] - lv.get(lo, 0.0)) / max(1, hi - lo)

    def train(self, task_id: str, steps: int, cap: TrainCap) -> tuple[int, float, list[float]]:
        steps = max(s for s in self.levels if s <= steps)
        curve = self.rows[task_id].get("losses", [])
        start, done, losses = self.clock(), 0, []
        while done < steps and not cap.reached(self.clock() - start, done, losses):
            self.clock.advance(self.step_seconds(task_id, done))
            losses.append(curve[done] if done < len(curve) else 1.0)
            done += 1
        return done, self.clock() - start, losses

    def predict(self, task_id: str, steps: int, time_cap: float) -> tuple[dict | None, dict]:
        """(the level's outcome, or None when inference does not finish within time_cap; its phase seconds)."""
        lv = self.level(task_id, steps)
        phases = {k: lv[f"{k}_seconds"] for k in ("prefill", "decode", "rescore")}
        total = sum(phases.values())
        if total > time_cap:
            self.clock.advance(max(0.0, time_cap))
            return None, {k: v * max(0.0, time_cap) / total for k, v in phases.items()}
        self.clock.advance(total)
        return lv, phases


def table_priors(table: dict) -> dict:
    """The planner's cost priors, as the table's medians (per token), so that the first plan is not far off."""
    tr, pre, dec = [], [], []
    top = max(int(x) for x in table["levels"])
    for t in table["tasks"]:
        f = t["features"]
        last = next(lv for lv in t["levels"] if lv["steps"] == top)
        if top:
            tr.append(last["train_seconds"] / top / max(1, f["train_tokens_per_step"]))
        zero = t["levels"][0]
        views = table.get("views", 1)
        pre.append(zero["prefill_seconds"] / max(1, views * f["prompt_tokens"] * t.get("n_test", 1)))
        dec.append(zero["decode_seconds"] / max(1, f["answer_tokens"] * t.get("n_test", 1)))
    med = lambda xs, d: float(np.median(xs)) if xs and np.median(xs) > 0 else d  # noqa: E731
    return {"train_seconds_per_token": med(tr, 2e-4), "prefill_seconds_per_token": med(pre, 2e-5),
            "decode_seconds_per_token": med(dec, 2e-3)}


def full_effort_seconds(table: dict) -> float:
    """Every task trained to the table's last level and predicted there, plus the difficulty pass."""
    top = max(int(x) for x in table["levels"])
    total = 0.0
    for t in table["tasks"]:
        lv = next(x for x in t["levels"] if x["steps"] == top)
        total += lv["train_seconds"] + lv["prefill_seconds"] + lv["decode_seconds"] + lv["rescore_seconds"]
        total += t.get("difficulty_seconds", 0.0)
    return total


def replay_table(table: dict, cfg: BudgetConfig, policy=None) -> tuple[list[dict], float]:
    """The run loop of runner.pipeline.solve_all on the table's tasks, in the table's order: the planner plans each
    task, the table's seconds pass on a fake clock, the planner records them. Returns per task (steps trained,
    mode, score, truth NLL, seconds, the learned policy's explanation) and the finish time."""
    clock = FakeClock()
    engine = TableEngine(clock, table)
    ids = [t["id"] for t in table["tasks"]]
    views = int(table.get("views", 1))
    planner = Planner(cfg, [engine.cost(i) for i in ids], start=0.0, clock=clock, default_views=views,
                      infer_batch=views, score_views=int(table.get("score_views", views)), policy=policy)
    if cfg.measures_difficulty:
        planner.set_difficulties({i: engine.difficulty(i) for i in ids})
    out = []
    for k, tid in enumerate(ids):
        plan = planner.plan(tid, remaining=ids[k:])
        t0 = clock()
        done, train_s, outcome, phases = 0, 0.0, None, {"prefill": 0.0, "decode": 0.0, "rescore": 0.0}
        gate = planner.gate_for(tid, plan)
        if plan.mode != "fallback":
            deadline = t0 + plan.task_cap
            if plan.steps:
                cap = TrainCap(max(0.0, deadline - clock() - plan.infer_reserve), plan.infer_reserve,
                               plan.step_seconds, gate)
                done, train_s, _ = engine.train(tid, plan.steps, cap)
            outcome, phases = engine.predict(tid, done, max(0.0, deadline - clock()))
        planner.record(tid, plan, train_seconds=train_s, steps_done=done, infer_seconds=sum(phases.values()),
                       views_done=views if outcome is not None else 0, prefill_seconds=phases["prefill"],
                       decode_seconds=phases["decode"], rescore_seconds=phases["rescore"])
        zero = engine.level(tid, 0)
        out.append({"id": tid, "mode": plan.mode, "planned_steps": plan.steps, "steps": done,
                    "level": engine.level(tid, done)["steps"], "predicted": outcome is not None,
                    "score": outcome["score"] if outcome is not None else 0.0,
                    # no prediction: the truth is as likely as without TTT (the NLL has no "no answer" value)
                    "truth_nll": outcome["truth_nll"] if outcome is not None else zero["truth_nll"],
                    "seconds": clock() - t0, "gated": bool(gate and gate.decision and gate.decision["stopped"]),
                    "policy": plan.policy})
    return out, clock()
