"""One task, isolated: whatever it raises, the run goes on and the task keeps a valid answer.

An out-of-memory error frees memory and retries once smaller (half the batch, a shorter context), inside the same
time; any other error, or a second OOM, leaves the fallback answer. Torch is never imported here: the simulated
engine runs without it.
"""
from __future__ import annotations

import logging
import resource
import sys
import traceback
from typing import Callable

import numpy as np

from ..core.clock import TrainCap
from ..core.planner import TaskPlan
from ..core.policy import Gate
from ..core.records import Engine, TaskRecord, TrainOutcome
from ..core.submission import fallback_attempts
from ..core.tasks import Task

log = logging.getLogger("arc_ttt")


def is_oom(e: BaseException) -> bool:
    torch = sys.modules.get("torch")  # without torch loaded, no torch error can exist
    if torch is not None and isinstance(e, torch.OutOfMemoryError):
        return True
    return isinstance(e, MemoryError) or "out of memory" in str(e).lower()


def peak_memory_mb(reset: bool = False) -> float:
    """Peak GPU memory since the last reset (per task); on the CPU, the process's peak RSS."""
    torch = sys.modules.get("torch")  # the simulated engine runs without torch
    if torch is not None and torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
        if reset:
            torch.cuda.reset_peak_memory_stats()
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _complete(task: Task, attempts) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fill missing attempts: the second candidate, else the writer's fallback."""
    fallback = fallback_attempts(task)
    out = []
    for i, fb in enumerate(fallback):
        a1, a2 = attempts[i] if i < len(attempts) else (None, None)
        if a1 is None:
            a1, a2 = a2, None
        if a1 is None:
            out.append(fb)
        else:
            out.append((a1, a2 if a2 is not None else (fb[0] if not np.array_equal(fb[0], a1) else fb[1])))
    return out


def solve_task(engine: Engine, task: Task, plan: TaskPlan, clock: Callable[[], float],
               gate: Gate | None = None) -> TaskRecord:
    """One task, isolated: never raises (except KeyboardInterrupt); falls back on any error. `gate`: the learned
    policy's early stop after 2 steps (its decision goes into the record)."""
    rec = TaskRecord(task.id, mode=plan.mode, reason=plan.reason, weight=plan.weight,
                     planned_steps=plan.steps, planned_views=plan.views,
                     policy=dict(plan.policy) if plan.policy is not None else None)
    t0 = clock()
    if plan.mode == "fallback":
        return fallback_record(task, "fallback", reason=plan.reason)
    peak_memory_mb(reset=True)
    task_deadline = t0 + plan.task_cap  # a retry shares the same time, never adds to it
    for shrink in (0, 1):
        try:
            engine.reset()
            # A retry trains in what is left of the training time; inference keeps its planned share, grown by
            # however much slower than planned the steps run.
            train_cap = TrainCap(max(0.0, task_deadline - clock() - plan.infer_reserve), plan.infer_reserve,
                                 plan.step_seconds, gate)
            tr = engine.train(task, plan.steps, train_cap, shrink) if plan.steps > 0 else TrainOutcome()
            rec.steps, rec.tokens, rec.train_seconds = tr.steps, tr.tokens, tr.seconds
            gated = gate is not None and gate.decision is not None and gate.decision["stopped"]
            rec.train_stopped_by = ("gate" if gated else tr.stopped_by) + (f" ({tr.note})" if tr.note else "")
            if gate is not None and gate.decision is not None and rec.policy is not None:
                rec.policy["gate"] = dict(gate.decision)
            if tr.losses:
                rec.loss_first, rec.loss_last = tr.losses[0], tr.losses[-1]
            # Inference gets the rest of the task's time, including what training did not use.
            pred = engine.predict(task, plan.views, max(0.0, task_deadline - clock()), shrink)
            rec.views, rec.infer_seconds = pred.views, pred.seconds
            rec.candidates = [[c.to_dict() for c in per_test] for per_test in pred.candidates]
            rec.prefill_seconds, rec.decode_seconds = pred.prefill_seconds, pred.decode_seconds
            rec.rescore_seconds, rec.source_seconds = pred.rescore_seconds, dict(pred.source_seconds)
            attempts = _complete(task, pred.attempts)
            rec.status = "ok" if any(a[0] is not None for a in pred.attempts) else "fallback"
            if rec.status == "fallback":
                rec.reason = (rec.reason + "; " if rec.reason else "") + "no candidate found"
            rec.attempts = [[np.asarray(a).tolist(), np.asarray(b).tolist()] for a, b in attempts]
            break
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one task must never stop the run
            oom = is_oom(e)
            rec.error = f"{type(e).__name__}: {e}".strip()[:500]
            log.warning("task %s: %s%s", task.id, rec.error, " - retrying smaller" if oom and shrink == 0 else "")
            log.debug("".join(traceback.format_exception(e)))
            engine.free_memory()
            if oom and shrink == 0:
                rec.retried = True
                continue
            rec.status = "error"
            rec.attempts = fallback_record(task, "error").attempts
            break
    rec.seconds = clock() - t0
    rec.peak_memory_mb = peak_memory_mb()
    return rec


def fallback_record(task, status: str, reason: str = "", error: str = "") -> TaskRecord:
    return TaskRecord(task.id, status=status, mode="fallback", reason=reason, error=error,
                      attempts=[[a.tolist(), b.tolist()] for a, b in fallback_attempts(task)])
