"""The deadline planner: how much TTT and inference each task gets, from measured throughput.

Before each task the planner solves one small problem: given the time left and the tasks left,
pick a common step scale `base` so that   sum_j cost_j(base * w_j steps, V views) = time left,
where w_j is task j's difficulty weight (1 everywhere when effort is uniform) and cost_j comes
from a prior cost model multiplied by calibration factors measured on the tasks done so far.
When even the minimum does not fit, it degrades in order: fewer views, inference without TTT,
fallback. All times come from an injected clock, so the whole planner runs in tests without sleeping.

`budget.policy` says how the steps are shared out: uniform (w = 1), heuristic (w = the difficulty weight), or
learned (core.policy: per task the action of largest predicted gain minus lambda x cost, lambda fitted so the
remaining plan fits the time left, the budget it is fitted to corrected by a PID controller on spent against
planned time, and a gate that stops training after 2 steps when no further gain is predicted).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .clock import Clock
from .config import BudgetConfig
from .policy import GATE_STEPS, PID, Gate, LearnedPolicy, choose, derived_features, solve_lambda, total_cost


@dataclass(frozen=True)
class TaskCost:
    """What the planner needs to know about one task (all measured on the task's text, no model)."""

    id: str
    train_tokens_per_step: int  # tokens in one TTT step (batch x sequence length)
    prompt_tokens: int  # prompt of one view of one test input
    answer_tokens: int  # expected answer length (largest demo output)
    n_test: int = 1
    difficulty: float | None = None  # base model's NLL per output token on its own demos
    demos: int = 0  # demonstration pairs (a learned policy's feature; 0 = unknown)
    output_area: int = 0  # cells of the largest demo output (the same)


@dataclass(frozen=True)
class TaskPlan:
    mode: str  # full | fewer_views | no_ttt | probe | fallback
    steps: int
    views: int
    task_cap: float  # seconds for the whole task: its planned cost plus the run's unreserved time
    infer_reserve: float  # seconds of task_cap that training must leave to inference
    weight: float
    seconds_left: float
    reason: str = ""
    step_seconds: float = 0.0  # the estimate of one TTT step behind `steps`
    policy: dict | None = None  # learned: why these steps (actions, predicted gains, costs, lambda), for the log

    @property
    def train_cap(self) -> float:
        return max(0.0, self.task_cap - self.infer_reserve)


@dataclass
class Calibration:
    """actual / predicted seconds, as running ratios of sums (stable, and exact after one task)."""

    actual: float = 0.0
    predicted: float = 0.0
    samples: int = 0  # tasks really measured (a seed from the difficulty pass does not count)

    @property
    def factor(self) -> float:
        return self.actual / self.predicted if self.predicted > 0 else 1.0

    def add(self, actual: float, predicted: float, sample: bool = True) -> None:
        if predicted > 0 and actual >= 0:
            self.actual += actual
            self.predicted += predicted
            self.samples += sample


def difficulty_weights(difficulties: dict[str, float | None], lo: float, hi: float) -> dict[str, float]:
    """Weights proportional to NLL relative to the median task, clipped to [lo, hi], then mean 1.

    The median keeps one very confusing task from making every other task look easy.
    """
    known = {k: v for k, v in difficulties.items() if v is not None and math.isfinite(v)}
    if not known:
        return {k: 1.0 for k in difficulties}
    values = sorted(known.values())
    mid = len(values) // 2
    median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    weights = {k: (min(hi, max(lo, v / median)) if median > 0 else 1.0) for k, v in known.items()}
    norm = sum(weights.values()) / len(weights)
    return {k: (weights[k] / norm if k in weights else 1.0) for k in difficulties}


@dataclass
class Planner:
    cfg: BudgetConfig
    tasks: list[TaskCost]  # the tasks still to run, in order
    start: float  # clock value when the run started
    clock: Clock | None = None  # injected; None: time.monotonic
    default_views: int = 8
    infer_batch: int = 8  # views decoded together
    workers: int = 1  # processes sharing the remaining tasks (one per GPU)
    score_views: int = 8  # views each candidate is re-scored under (inference.n_score_views)
    train: Calibration = field(default_factory=Calibration)
    # Inference as the log splits it: each phase has its own measured factor, so a change of views (or a
    # decoder far slower than its prior, like DFS on a CPU) is extrapolated phase by phase.
    prefill: Calibration = field(default_factory=Calibration)
    decode: Calibration = field(default_factory=Calibration)
    rescore: Calibration = field(default_factory=Calibration)
    weights: dict[str, float] = field(default_factory=dict)
    policy: LearnedPolicy | None = None  # required by budget.policy=learned (or the lab's CrossFitted, in a replay)
    difficulties: dict[str, float | None] = field(default_factory=dict)
    pid: PID | None = None
    # learned: {"start", "planned": {task: seconds}, "total"}, fixed at the first plan: the time left then (the
    # headroom is held back from each plan, not from the run) shared out in proportion to that plan's costs. Shares,
    # not the costs themselves: the priors may be off by any factor before a task is measured, their ratios far less.
    pace: dict | None = None
    pace_log: list = field(default_factory=list)  # (spent, planned) seconds since the first plan, per recorded task
    _done: set = field(default_factory=set)
    _gains: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.clock is None:
            self.clock = time.monotonic
        if self.cfg.policy == "learned":
            if self.policy is None:
                raise ValueError("budget.policy=learned: the planner needs the policy (core.policy.load_policy)")
            if self.pid is None:
                self.pid = PID(*self.cfg.pid, low=0.0)  # only u > 0 acts (the budget only shrinks)
        self.set_difficulties({t.id: t.difficulty for t in self.tasks})

    @property
    def deadline(self) -> float:
        return self.start + max(0.0, self.cfg.seconds - self.cfg.margin)

    def time_left(self) -> float:
        return self.deadline - self.clock()

    def set_difficulties(self, difficulties: dict[str, float | None]) -> None:
        lo, hi = self.cfg.weight_range
        self.difficulties = {**self.difficulties, **{k: v for k, v in difficulties.items() if v is not None}}
        self._gains = {}
        if self.cfg.policy == "heuristic" and self.cfg.adaptive:
            self.weights = difficulty_weights({t.id: difficulties.get(t.id) for t in self.tasks}, lo, hi)
        else:
            self.weights = {t.id: 1.0 for t in self.tasks}

    def step_cap(self, t: TaskCost) -> int:
        """budget.max_steps, or max_steps_long for a long task: long prompts still gain from more steps where
        short ones have stopped (docs/decisions.md, the TTT steps rows)."""
        long = self.cfg.max_steps_long is not None and t.prompt_tokens + t.answer_tokens >= self.cfg.long_tokens
        return self.cfg.max_steps_long if long else self.cfg.max_steps

    # ---- the cost model -------------------------------------------------------------------
    def train_seconds(self, t: TaskCost, steps: float) -> float:
        return self.train.factor * steps * t.train_tokens_per_step * self.cfg.train_seconds_per_token

    def infer_priors(self, t: TaskCost, views: int) -> tuple[float, float, float]:
        """Prior seconds of (prefill, decode, rescore) for the task: prefill grows with the views; decoding is
        batched, so it grows with the number of batches; re-scoring reads prompt and answer under each scoring
        view (the number of candidates is unknown beforehand: its measured factor absorbs it)."""
        batches = math.ceil(views / max(1, self.infer_batch))
        prefill = views * t.prompt_tokens * self.cfg.prefill_seconds_per_token
        decode = batches * t.answer_tokens * self.cfg.decode_seconds_per_token
        rescore = self.score_views * (t.prompt_tokens + t.answer_tokens) * self.cfg.prefill_seconds_per_token
        return t.n_test * prefill, t.n_test * decode, t.n_test * rescore

    def infer_seconds(self, t: TaskCost, views: int) -> float:
        """Each phase's prior times its measured factor. Re-scoring counts once it has been measured: the
        priors predate it, and a first plan should not reserve time for a phase no task has shown yet."""
        prefill, decode, rescore = self.infer_priors(t, views)
        rescoring = self.rescore.factor * rescore if self.rescore.samples else 0.0
        return self.prefill.factor * prefill + self.decode.factor * decode + rescoring

    def _totals(self, remaining: list[TaskCost], views: int):
        """(total, hi): total(base), the seconds all remaining tasks need at step scale `base` (vectorised over
        tasks); hi, the scale at which every task reaches its step cap."""
        per_step = np.array([self.train_seconds(t, 1) for t in remaining])
        fixed = sum(self.cfg.task_overhead_seconds + self.infer_seconds(t, views) for t in remaining)
        w = np.array([self.weights.get(t.id, 1.0) for t in remaining])
        caps = np.array([self.step_cap(t) for t in remaining], dtype=float)
        return lambda base: fixed + float(per_step @ np.minimum(caps, base * w)), float((caps / w).max())

    def _solve_base(self, remaining: list[TaskCost], views: int, budget: float) -> float:
        """Largest step scale whose total cost fits `budget` (bisection; cost is monotone in base)."""
        total, hi = self._totals(remaining, views)  # at step scale hi every task reaches its cap
        if total(hi) <= budget:
            return hi
        if total(0.0) > budget:
            return 0.0
        lo = 0.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if total(mid) <= budget else (lo, mid)
        return lo

    def _within_task_cap(self, t: TaskCost, steps: int, views: int) -> int:
        if self.cfg.max_task_seconds is None:
            return steps
        spare = self.cfg.max_task_seconds - self.cfg.task_overhead_seconds - self.infer_seconds(t, views)
        per_step = self.train_seconds(t, 1)
        return max(0, min(steps, int(spare / per_step))) if per_step > 0 else steps

    # ---- the decisions ----------------------------------------------------------------------
    def headroom(self, n_remaining: int) -> float:
        """Share of the time left that steps are not planned into: `budget.headroom` / sqrt(tasks left per worker).

        The remaining tasks' estimated total is off by about sigma / sqrt(n) when each task is off by sigma
        independently, so that is the slack the plan needs; what a task leaves unused goes to the steps of the
        tasks after it anyway. A fixed share of all the time left held back a fifth of the budget at every task
        and handed it out only near the end: in benchmarks/planner/budget.py's budget-bound runs the last tenth of the
        tasks got 2 to 10 times the steps of the first (`mean_steps_by_run_tenth`)."""
        return self.cfg.headroom / math.sqrt(max(1.0, n_remaining / max(1, self.workers)))

    def _share(self, capacity: float, n_remaining: int) -> float:
        """One task's fair part of the worker-seconds left."""
        share = capacity / max(1, n_remaining)
        return share if self.cfg.max_task_seconds is None else min(share, self.cfg.max_task_seconds)

    def plan(self, task_id: str, remaining: list[str] | None = None) -> TaskPlan:
        """Plan `task_id`; `remaining`: ids nobody has taken yet (this one included), when workers share them."""
        by_id = {t.id: t for t in self.tasks}
        ids = remaining if remaining is not None else [t.id for t in self.tasks if t.id not in self._done]
        costs = [by_id[i] for i in dict.fromkeys([*ids, task_id])]
        t = by_id[task_id]
        plan = self._plan(t, costs)
        if plan.mode not in ("no_ttt", "fallback") or plan.seconds_left <= 0 or plan.policy is not None:
            return plan  # (a learned policy's "no TTT" is its choice, not the ladder's last resort)
        # Until a task has really trained and predicted, costs are priors and one noisy forward pass:
        # rather than give up a task on their word alone, spend at most its fair share measuring,
        # as long as a single step (which cannot be cut short) fits in that share.
        share = self._share(plan.seconds_left * self.workers, len(costs))
        steps = self.cfg.min_steps if not self.train.samples and self.train_seconds(t, 1) <= share / 2 else 0
        prefill = self.prefill.factor * t.prompt_tokens * self.cfg.prefill_seconds_per_token
        views = min(self.cfg.min_views, self.default_views) if prefill <= share / 2 else 0
        if steps or (views and plan.mode == "fallback" and not self.prefill.samples):
            return TaskPlan("probe", steps, max(views, plan.views), share, share / 2 if steps else share, plan.weight,
                            plan.seconds_left, f"measuring: the estimates said {plan.mode} ({plan.reason})",
                            self.train_seconds(t, 1))
        return plan

    def _plan(self, t: TaskCost, remaining: list[TaskCost]) -> TaskPlan:
        """The degradation ladder on the current estimates."""
        left = self.time_left()
        capacity = left * self.workers  # worker-seconds left for the remaining tasks
        w = self.weights.get(t.id, 1.0)
        share = self._share(capacity, len(remaining))

        others = [r for r in remaining if r.id != t.id]

        def make(mode, steps, views, reason, base=None):
            """Caps protect the deadline, not the estimate: the task may run into whatever the others'
            planned work (at step scale `base`) leaves unreserved; without a `base`, its fair share."""
            cap = share if base is None else capacity - (self._totals(others, views)[0](base) if others else 0.0)
            cap = max(0.0, min(cap, left, self.cfg.max_task_seconds or math.inf))
            reserve = min(cap, self.infer_seconds(t, views) + self.cfg.task_overhead_seconds) if views else 0.0
            return TaskPlan(mode, steps, views, cap, reserve, w, left, reason, self.train_seconds(t, 1))

        if left <= 0:
            return make("fallback", 0, 0, "deadline reached", base=math.inf)
        if self.cfg.policy == "learned":
            plan = self._plan_learned(t, remaining, left, capacity)
            if plan is not None:
                return plan
        # 1. full effort, then 2. fewer views: the largest step scale at which every remaining task fits.
        for views in range(self.default_views, min(self.cfg.min_views, self.default_views) - 1, -1):
            base = self._solve_base(remaining, views, capacity * (1 - self.headroom(len(remaining))))
            steps = self._within_task_cap(t, int(min(self.step_cap(t), base * w)), views)
            if steps >= self.cfg.min_steps:
                mode = "full" if views == self.default_views else "fewer_views"
                return make(mode, steps, views, f"step scale {base:.1f} x weight {w:.2f}", base)
        # 3. inference without TTT, with as many views as the remaining tasks can all afford ...
        for views in range(self.default_views, 0, -1):
            if self._totals(remaining, views)[0](0.0) <= capacity:
                return make("no_ttt", 0, views, "no time for the minimum TTT steps", 0.0)
        # ... or one view if this task's fair share pays for it; 4. else the fallback answer.
        if self.cfg.task_overhead_seconds + self.infer_seconds(t, 1) <= share:
            return make("no_ttt", 0, 1, "one view within this task's share")
        return make("fallback", 0, 0, "not even one view fits the time left", base=math.inf)

    # ---- the learned policy ---------------------------------------------------------------------------------
    def features(self, t: TaskCost) -> dict:
        """What the learned policy sees of a task before training it."""
        return {"id": t.id, **derived_features({"difficulty": self.difficulties.get(t.id, t.difficulty),
                                                "prompt_tokens": t.prompt_tokens, "demos": t.demos or None,
                                                "output_area": t.output_area or None})}

    def predicted_gains(self, tasks: list[TaskCost]) -> np.ndarray:
        """(tasks, actions) predicted gain over no TTT, cached per task until the difficulties change."""
        new = [t for t in tasks if t.id not in self._gains]
        if new:
            self._gains.update(zip([t.id for t in new], self.policy.gains([self.features(t) for t in new])))
        return np.stack([self._gains[t.id] for t in tasks])

    def action_costs(self, tasks: list[TaskCost], views: int) -> np.ndarray:
        """(tasks, actions) seconds of each action on the current cost model; inf where the action is not allowed
        (fewer than min_steps or more than max_steps, or over the per-task cap)."""
        acts = np.array(self.policy.actions, dtype=float)
        per_step = np.array([self.train_seconds(t, 1) for t in tasks])
        fixed = np.array([self.cfg.task_overhead_seconds + self.infer_seconds(t, views) for t in tasks])
        C = fixed[:, None] + per_step[:, None] * acts[None]
        caps = np.array([self.step_cap(t) for t in tasks])
        allowed = (acts[None] == 0) | ((acts[None] >= self.cfg.min_steps) & (acts[None] <= caps[:, None]))
        C[~allowed] = math.inf
        if self.cfg.max_task_seconds is not None:
            C[:, 1:] = np.where(C[:, 1:] > self.cfg.max_task_seconds, math.inf, C[:, 1:])
        return C

    def pace_error(self) -> float:
        """(spent - planned) / the planned total, over the tasks recorded since the first plan: the PID's input."""
        if not self.pace_log:
            return 0.0
        spent, planned = self.pace_log[-1]
        return (spent - planned) / max(1e-9, self.pace["total"])

    def _plan_learned(self, t: TaskCost, remaining: list[TaskCost], left: float, capacity: float) -> TaskPlan | None:
        """The action of largest gain - lambda x cost, lambda the smallest that fits the remaining plan into the
        budget: the time left less the headroom, shrunk by exp(-u) when the PID's output u > 0 (spent is ahead of
        planned). Only shrunk: the re-fit to the time left already hands unspent time to the tasks left, and a
        budget grown into the headroom left the last tasks no slack (runs ended past the deadline in simulation).
        With several workers the PID is off (the pace is one worker's). None: not even the cheapest action of every
        task fits at any view count (the ladder's no-TTT and fallback steps follow)."""
        G = self.predicted_gains(remaining)
        i = [r.id for r in remaining].index(t.id)
        u = self.pid.u if self.pid is not None and self.workers == 1 else 0.0
        usable = capacity * (1 - self.headroom(len(remaining)))
        budget = usable * min(1.0, math.exp(-u))  # behind plan: the time left is spent anyway, at the re-fit
        for views in range(self.default_views, min(self.cfg.min_views, self.default_views) - 1, -1):
            C = self.action_costs(remaining, views)
            lam = solve_lambda(G, C, budget)
            if not math.isfinite(lam):
                continue
            idx = choose(G, C, lam)
            steps = self.policy.actions[idx[i]]
            if self.pace is None:  # the planned time: the first plan's shares of the time left
                share = C[np.arange(len(idx)), idx] / max(1e-12, total_cost(C, idx))
                self.pace = {"start": self.clock(), "total": capacity,
                             "planned": {r.id: float(capacity * share[j]) for j, r in enumerate(remaining)}}
            others = total_cost(np.delete(C, i, axis=0), np.delete(idx, i)) if len(remaining) > 1 else 0.0
            cap = max(0.0, min(capacity - others, left, self.cfg.max_task_seconds or math.inf))
            reserve = min(cap, self.infer_seconds(t, views) + self.cfg.task_overhead_seconds)
            why = {"actions": list(self.policy.actions), "gains": [round(float(g), 5) for g in G[i]],
                   "costs": [round(float(c), 3) if math.isfinite(c) else None for c in C[i]],
                   "chosen": steps, "lambda": lam, "lambda_fit": solve_lambda(G, C, usable), "pid_u": round(u, 5),
                   "target": self.policy.target}
            if steps:
                mode = "full" if views == self.default_views else "fewer_views"
                reason = f"learned: {steps} steps, predicted gain {G[i, idx[i]]:.3f}, lambda {lam:.3g}"
            else:
                mode, reason = "no_ttt", f"learned: no action's predicted gain pays its cost (lambda {lam:.3g})"
            return TaskPlan(mode, steps, views, cap, reserve, 1.0, left, reason, self.train_seconds(t, 1), why)
        return None

    def gate_for(self, task_id: str, plan: TaskPlan) -> Gate | None:
        """The early-stop gate for a planned task: learned policy, gate on, a gate model, more than 2 steps."""
        if self.cfg.policy != "learned" or not self.cfg.gate or self.policy is None or self.policy.gate is None:
            return None
        if plan.steps <= GATE_STEPS:
            return None
        t = next(x for x in self.tasks if x.id == task_id)
        return Gate(self.policy, self.features(t), plan.steps, self.cfg.gate_min_gain)

    def calibrate_forward(self, seconds: float, tokens: int) -> None:
        """Seed both calibrations from a measured forward pass (the difficulty pass), before any task runs.

        Without it the first task is planned on the prior alone, which can be off by orders of
        magnitude on unknown hardware; one step that is too long cannot be interrupted.
        """
        predicted = tokens * self.cfg.prefill_seconds_per_token
        if seconds > 0 and predicted > 0:
            for cal in (self.train, self.prefill, self.decode):
                if cal.predicted == 0:
                    cal.add(seconds, predicted, sample=False)

    def record(self, task_id: str, plan: TaskPlan, *, train_seconds: float, steps_done: int,
               infer_seconds: float, views_done: int, prefill_seconds: float = 0.0, decode_seconds: float = 0.0,
               rescore_seconds: float = 0.0) -> None:
        """Feed back what the task really cost, so later plans use measured throughput. Inference time outside
        the three measured phases (or all of it, from an engine that does not split it) is shared between
        prefill and decoding in proportion to their priors."""
        t = next(x for x in self.tasks if x.id == task_id)
        self._done.add(task_id)
        if self.pace is not None and task_id in self.pace["planned"]:
            planned = sum(self.pace["planned"].get(i, 0.0) for i in self._done)
            self.pace_log.append((self.clock() - self.pace["start"], planned))
            if self.pid is not None:
                self.pid.update(self.pace_error())
        if steps_done > 0:
            self.train.add(train_seconds, steps_done * t.train_tokens_per_step * self.cfg.train_seconds_per_token)
        if views_done > 0:
            p, d, r = self.infer_priors(t, views_done)
            rest = max(0.0, infer_seconds - prefill_seconds - decode_seconds - rescore_seconds)
            share = p / (p + d) if p + d > 0 else 0.5
            self.prefill.add(prefill_seconds + rest * share, p)
            self.decode.add(decode_seconds + rest * (1 - share), d)
            if rescore_seconds > 0:
                self.rescore.add(rescore_seconds, r)
