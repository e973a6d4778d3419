"""The run: challenge file + model + config -> submission.json, always valid, before the deadline.

    setup:  tasks -> writer (fallback for all) -> journals, policy -> engine (model, LoRA snapshot)
    solve:  difficulty -> planner -> for each task: plan, reset adapter, TTT, augmented inference, select
            -> writer + journal
    finish: the workers' journals merged -> score -> log.json + report.html

Each task is isolated (runner/isolation.py): an exception is logged and answered by fallback; an
out-of-memory error frees memory and retries once with half the batch and a shorter context.
The engine is an interface, so the same loop runs on a fake engine with a fake clock in tests
and in the budget benchmark.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from ..core import journal
from ..core.config import ConfigError, RunConfig, to_dict
from ..core.formats import get_format
from ..core.gridconfig import require_grid_model
from ..core.modelfolder import describe_model
from ..core.planner import Planner, TaskCost
from ..core.policy import LearnedPolicy, load_policy
from ..core.records import Engine, TaskRecord
from ..core.folders import write_json_atomic
from ..core.submission import SubmissionWriter, score_submission
from ..core.tasks import Task, TaskSet, select_tasks
from . import workers
from .isolation import fallback_record, solve_task
from .logfile import attach_log, detach_log
from .report import summarize, write_report
from .workers import Worker

log = logging.getLogger("arc_ttt")


@dataclass
class RunResult:
    submission_path: str
    log_path: str
    report_path: str | None
    records: list[TaskRecord]
    seconds: float
    score: float | None = None  # mean over test outputs, when solutions are known
    task_score: float | None = None


def run(cfg: RunConfig, *, engine: Engine | None = None, clock: Callable[[], float] = time.monotonic,
        solve_limit: int | None = None, progress: bool = True, worker: Worker | None = None) -> RunResult:
    """The whole job, a recipe: setup (tasks, a valid file, the model) -> solve (each task) -> finish (score, log,
    report). `engine`, `clock` and `worker` are injectable for tests; by default the model in cfg is loaded and,
    under torchrun, this process is one of several workers."""
    start = clock()
    check_config(cfg)
    worker = worker or workers.from_env()
    os.makedirs(cfg.output.dir, exist_ok=True)
    name = "run.log" if worker.rank == 0 else f"run.rank{worker.rank}.log"
    handler = attach_log(log, os.path.join(cfg.output.dir, name), append=cfg.output.resume)
    try:
        s = setup(cfg, engine, clock, start, solve_limit, worker)
        if s.todo:
            solve_all(s, progress)
        return finish(s)
    finally:
        detach_log(log, handler)


def check_config(cfg: RunConfig) -> None:
    """What a config names that the loader cannot check, refused before anything is written."""
    if cfg.model.format != "auto":  # a misspelt format is a config error here, not every task's fallback later
        try:
            get_format(cfg.model.format)
        except ValueError as e:
            raise ConfigError(f"model.format: {e}") from None
    if "grid" in cfg.inference.sources:  # and a grid source whose folder holds no grid model
        require_grid_model(cfg.inference.grid.path)


@dataclass(frozen=True)
class Outputs:
    """The files of one run, all in `cfg.output.dir`."""

    dir: str
    journal: str  # this worker's
    submission: str
    log: str
    report: str
    lock: str  # serialises the workers' merges into submission.json

    @classmethod
    def of(cls, out: str, worker: Worker) -> "Outputs":
        def at(name: str) -> str:
            return os.path.join(out, name)

        return cls(out, at(journal.journal_name(worker.rank)), at("submission.json"), at("log.json"),
                   at("report.html"), at(".submission.lock"))


@dataclass
class RunSession:
    """What the run holds from setup to finish."""

    cfg: RunConfig
    files: Outputs
    worker: Worker
    clock: Callable[[], float]
    start: float
    taskset: TaskSet
    writer: SubmissionWriter
    merge: Callable[..., None]  # finished tasks into submission.json (`_merger`)
    done: dict[str, TaskRecord]  # finished by an earlier run (output.resume)
    fixed: dict[str, TaskRecord]  # answered without the model: invalid, skipped by solve_limit, no model
    todo: list[Task]
    policy: LearnedPolicy | None
    engine: Engine | None


def setup(cfg: RunConfig, engine: Engine | None, clock, start: float, solve_limit: int | None,
          worker: Worker) -> RunSession:
    """The tasks, a valid file answering every one of them by fallback, the journals, the policy and the model."""
    files = Outputs.of(cfg.output.dir, worker)
    taskset = select_tasks(cfg.data)  # file-level problems stop here, with the file named
    log.info("run: %d tasks (%d invalid), budget %.0f s, output %s, worker %d of %d", len(taskset),
             len(taskset.invalid), cfg.budget.seconds, files.dir, worker.rank, worker.world_size)
    done = open_journals(cfg, files, worker)
    fixed: dict[str, TaskRecord] = {t.id: fallback_record(t, "invalid", reason=t.reason) for t in taskset.invalid}
    for t in taskset.invalid:
        log.warning("task %s is invalid: %s (answered by fallback)", t.id, t.reason)

    writer = SubmissionWriter(files.submission, taskset.tasks, write=False)
    merge = _merger(writer, files, worker)
    merge()  # fallback for everything: the file is valid before any model is touched
    # A learned policy that cannot be read stops the run here, its file named (the fallback file stays valid).
    policy = load_policy(cfg.budget.policy_file) if cfg.budget.policy == "learned" else None

    todo = [t for t in taskset.valid if t.id not in done]
    if solve_limit is not None:
        todo, skipped = todo[:solve_limit], todo[solve_limit:]
        fixed.update({t.id: fallback_record(t, "fallback", reason="quick commit run") for t in skipped})
    if done:
        log.info("resume: %d tasks already done, %d to go", len(done), len(todo))
    if todo and engine is None:
        engine, error = load_engine(cfg, worker)
        if engine is None:
            fixed.update({t.id: fallback_record(t, "error", error=f"model load: {error}") for t in todo})
            todo = []
    return RunSession(cfg, files, worker, clock, start, taskset, writer, merge, done, fixed, todo, policy, engine)


def open_journals(cfg: RunConfig, files: Outputs, worker: Worker) -> dict[str, TaskRecord]:
    """A fresh run starts with no journal; a resumed one returns what earlier runs finished."""
    if worker.rank == 0 and not cfg.output.resume:
        for path in journal.journals(files.dir):
            os.unlink(path)
    worker.barrier("journals-ready")
    return journal.read_records(files.dir) if cfg.output.resume else {}


def _attempts(rec: TaskRecord):
    return [(np.asarray(a, np.uint8), np.asarray(b, np.uint8)) for a, b in rec.attempts]


def _merger(writer: SubmissionWriter, files: Outputs, worker: Worker):
    def merge(rec: TaskRecord | None = None, journaled: dict[str, TaskRecord] | None = None) -> None:
        """Finished tasks into submission.json (atomically). Alone, this worker's new record is enough;
        with several workers, every journal is merged (or `journaled`, already read), one writer at a time."""
        if rec is not None and worker.world_size == 1:
            writer.update(rec.id, _attempts(rec))
            return
        with journal.file_lock(files.lock):
            for tid, r in (journaled if journaled is not None else journal.read_records(files.dir)).items():
                if tid in writer.ids:
                    writer.update(tid, _attempts(r), flush=False)
            writer.flush()

    return merge


def load_engine(cfg: RunConfig, worker: Worker) -> tuple[Engine | None, str]:
    """The model on this worker's device, or None and why (logged): every task then keeps its fallback."""
    try:
        from ..modeling.engine import ModelEngine  # torch is loaded only when there are tasks to solve

        device = worker.device(cfg.model.device)
        engine = ModelEngine.load(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, device=device)))
        log_model(cfg, engine.codec.name)
        return engine, ""
    except Exception as e:  # noqa: BLE001 - no model: every task keeps its fallback
        log.error("model could not be loaded (%s: %s); every task keeps its fallback answer", type(e).__name__, e)
        return None, f"{type(e).__name__}: {e}"


def log_model(cfg: RunConfig, format_used: str) -> None:
    """run.log says what ran: the model (demo, fine-tune or base), its prompt format, the transformers version."""
    import transformers  # loaded already by the engine

    info = describe_model(cfg.model.path)
    log.info("model %s: %s; prompt format used: %s (model.format: %s); transformers %s", cfg.model.path,
             info.summary(), format_used, cfg.model.format, transformers.__version__)
    grid = cfg.inference.grid
    log.info("candidate sources: %s%s", ", ".join(cfg.inference.sources),
             f" (grid model {grid.path}, {grid.adapt} adaptation)" if "grid" in cfg.inference.sources else "")
    if info.kind == "demo":
        log.warning("this is the kit's demonstration model: it checks the pipeline and solves only a few small tasks")


def finish(s: RunSession) -> RunResult:
    """Once every worker is done, worker 0 merges the journals and writes, scored when solutions are known, log.json
    and the report."""
    cfg, files = s.cfg, s.files
    s.worker.barrier("finished", timeout=max(60.0, cfg.budget.seconds - (s.clock() - s.start)))
    if s.worker.rank != 0:  # worker 0 writes the log and the report for everyone
        return RunResult(files.submission, files.log, None, [], s.clock() - s.start)
    journaled = journal.read_records(files.dir)  # every worker has finished: read the journals once
    s.merge(journaled=journaled)
    by_id = {**s.fixed, **journaled}
    for tid in s.done:
        if by_id[tid].status == "ok":
            by_id[tid].status = "resumed"
    records = [by_id[t.id] for t in s.taskset.tasks if t.id in by_id]
    seconds = s.clock() - s.start
    result = RunResult(files.submission, files.log, None, records, seconds)
    known = {t.id: [p.output for p in t.test] for t in s.taskset.valid if t.has_solutions}
    if known:
        score = score_submission(known, s.writer.as_dict())
        for r in records:
            r.correct = score.per_task.get(r.id)
        result.score, result.task_score = score.output_mean, score.task_mean
    summary = summarize(records, cfg, seconds, result.score, result.task_score)
    write_json_atomic(files.log, {"summary": summary, "config": to_dict(cfg),
                                  "tasks": [dataclasses.asdict(r) for r in records]})
    try:
        result.report_path = write_report(files.report, s.taskset, records, summary, pictures=cfg.output.pictures)
    except Exception as e:  # noqa: BLE001 - the report must never cost the submission
        log.error("report failed: %s", e)
    log.info("done: %s", json.dumps(summary))
    return result


def task_cost(engine: Engine, task: Task) -> TaskCost:
    """The engine's cost of the task, with the shape features a learned policy reads."""
    c = engine.cost(task)
    return dataclasses.replace(c, demos=c.demos or len(task.train),
                               output_area=c.output_area or max(p.output.size for p in task.train))


def solve_all(s: RunSession, progress: bool) -> None:
    """This worker's share of the tasks: take the next one from the shared counter until none is left."""
    cfg, engine, worker, clock, merge = s.cfg, s.engine, s.worker, s.clock, s.merge
    todo = [t.blind() for t in s.todo]  # the engine never sees test solutions, even when they were loaded
    costs, todo = task_costs(engine, todo, s.files.journal, merge)
    planner = Planner(cfg.budget, costs, start=s.start, clock=clock,
                      default_views=cfg.inference.n_views, infer_batch=cfg.inference.batch_size,
                      workers=worker.world_size, score_views=cfg.inference.n_score_views, policy=s.policy)
    difficulty_seconds: dict[str, float] = {}
    difficulties = (measure_difficulty(engine, todo, planner, cfg, difficulty_seconds)
                    if cfg.budget.measures_difficulty else {})
    if difficulties:
        planner.set_difficulties(difficulties)
    bar = _progress(len(todo), progress and worker.rank == 0)
    while (i := worker.next_index()) < len(todo):
        t = todo[i]
        plan = planner.plan(t.id, remaining=[x.id for x in todo[i:]])
        rec = solve_task(engine, t, plan, clock, planner.gate_for(t.id, plan))
        rec.difficulty, rec.worker = difficulties.get(t.id), worker.rank
        rec.difficulty_seconds = difficulty_seconds.get(t.id, 0.0)
        journal.append_journal(s.files.journal, rec)
        merge(rec)
        planner.record(t.id, plan, train_seconds=rec.train_seconds, steps_done=rec.steps,
                       infer_seconds=rec.infer_seconds, views_done=rec.views, prefill_seconds=rec.prefill_seconds,
                       decode_seconds=rec.decode_seconds, rescore_seconds=rec.rescore_seconds)
        found = rec.sources_found()  # candidates by source, e.g. "llm 5, grid 3"
        line = (f"{t.id} {rec.status:<8} {rec.mode:<11} steps {rec.steps:>3}/{plan.steps:<3} views "
                f"{rec.views}/{plan.views} {rec.seconds:6.1f}s left {planner.time_left():7.0f}s | {rec.time_split()}"
                + (f" | candidates {found}" if found else ""))
        log.info(line)
        bar.n = worker.add("tasks-done", 1)
        bar.set_postfix_str(f"budget left {max(0, planner.time_left()):.0f}s")
        if progress and worker.rank == 0:
            bar.write(line)
        bar.refresh()
    bar.close()


def task_costs(engine: Engine, todo: list[Task], journal_path: str,
               merge: Callable[[TaskRecord], None]) -> tuple[list, list[Task]]:
    """The planner's cost estimate of each task; a task whose estimate raises keeps its fallback answer (journaled
    as an error) instead of stopping the run before any task is solved."""
    costs, kept = [], []
    for t in todo:
        try:
            costs.append(task_cost(engine, t))
            kept.append(t)
        except Exception as e:  # noqa: BLE001 - one task's estimate must never stop the run
            error = f"cost estimate: {type(e).__name__}: {e}"[:500]
            log.warning("task %s: %s (answered by fallback)", t.id, error)
            rec = fallback_record(t, "error", error=error)
            journal.append_journal(journal_path, rec)
            merge(rec)
    return costs, kept


def measure_difficulty(engine: Engine, tasks: list[Task], planner: Planner, cfg: RunConfig,
                       seconds: dict[str, float] | None = None) -> dict[str, float]:
    """Base-model NLL on each task's own demos, within a small share of the budget; `seconds` (if given)
    gets each task's measuring time."""
    limit = cfg.budget.difficulty_share * cfg.budget.seconds
    t0 = planner.clock()
    out: dict[str, float] = {}
    timed_from, timed_tokens = None, 0  # the first pass pays one-time warm-up costs: time the others
    for t, cost in zip(tasks, planner.tasks):
        if planner.clock() - t0 > limit:
            log.info("difficulty: stopped after %d tasks (share of budget used)", len(out))
            break
        started = planner.clock()
        try:
            out[t.id] = float(engine.difficulty(t))
            if seconds is not None:
                seconds[t.id] = planner.clock() - started
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


def _progress(total: int, enabled: bool):
    return tqdm(total=total, desc="tasks", unit="task", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
