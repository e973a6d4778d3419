"""The run started from the notebook on more than one GPU: one torchrun worker per GPU, and the log they leave.

The workers (`arc_ttt.runner.workers`) share a task counter and their journals; worker 0 writes log.json,
which the notebook reads whichever way the run was started.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def worker_command(n_gpus: int, config: str, overrides: Sequence[str], output_dir: str, *,
                   solve_limit: int | None = None, python: str = sys.executable,
                   master_port: int | None = None, resume: bool = False,
                   single_process: bool = False) -> list[str] | None:
    """The torchrun command that runs one worker per GPU (runner/workers.py), or None for one GPU or none (the run
    then stays in the notebook's process), unless `single_process` asks for `python -m arc_ttt run` on its own.
    `resume` skips the tasks the journals already hold."""
    if n_gpus <= 1 and not single_process:
        return None
    if n_gpus <= 1:
        cmd = [python]
    else:
        rendezvous = ["--standalone"] if master_port is None else [f"--master-port={master_port}"]
        cmd = [python, "-m", "torch.distributed.run", *rendezvous, f"--nproc-per-node={n_gpus}"]
    cmd += ["-m", "arc_ttt", "run", "--config", config, "--output", output_dir, "--quiet"]
    for item in overrides:
        cmd += ["--set", item]
    if solve_limit is not None:
        cmd += ["--solve-limit", str(solve_limit)]
    if resume:
        cmd.append("--resume")
    return cmd


def run_workers(command: Sequence[str], check: bool = True) -> int:
    """Run the torchrun command with this arc_ttt importable in every worker (on Kaggle it is on sys.path
    only, from the code dataset, not installed). `check=False` (the scoring rerun) returns a failed exit status
    instead of raising: a worker killed by the host (out of memory) must not fail the submission, whose
    submission.json the other workers and `finalize_submission` keep valid."""
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the folder holding arc_ttt
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(list(command), check=check, env={**os.environ, "PYTHONPATH": path})
    if proc.returncode != 0:
        print(f"WARNING: the workers exited with status {proc.returncode}; finished tasks are in the journals")
    return proc.returncode


@dataclass(frozen=True)
class Launch:
    """One start of the workers on the scoring rerun: how many, with what budget (None: the config's), how it ended."""
    workers: int
    budget_seconds: float | None
    returncode: int


def relaunch_commands(config: str, overrides: Sequence[str], output_dir: str, *, solve_limit: int | None = None,
                      python: str = sys.executable, master_port: int | None = None
                      ) -> Callable[[int, float | None, bool], list[str]]:
    """(workers, budget seconds left or None, resume) -> the command `supervise_workers` starts: torchrun for several
    workers, `python -m arc_ttt run` for one, the budget cut to what is left (the run's clock starts at its start)."""
    def command(workers: int, seconds: float | None, resume: bool) -> list[str]:
        budget = [] if seconds is None else [f"budget.seconds={seconds:.0f}"]
        return worker_command(workers, config, [*overrides, *budget], output_dir, solve_limit=solve_limit,
                              python=python, master_port=master_port, resume=resume, single_process=True)
    return command


def supervise_workers(command: Callable[[int, float | None, bool], list[str]], workers: int, budget_seconds: float, *,
                      min_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic,
                      runner: Callable[..., int] = run_workers) -> list[Launch]:
    """The scoring rerun's workers, relaunched while they fail and budget remains. torchrun stops every worker when
    one dies (killed by the host: out of memory while several load the model), leaving the remaining tasks on their
    fallback answers with most of the budget unused; so they start again with --resume (the journals mark the
    finished tasks) on one GPU fewer each time, down to one process, with the budget left, until a start finishes,
    fewer than `min_seconds` remain, or `workers` + 1 starts have failed."""
    start = clock()
    launches: list[Launch] = []
    n = workers
    while True:
        seconds = None if not launches else budget_seconds - (clock() - start)
        code = runner(command(n, seconds, bool(launches)), check=False)
        launches.append(Launch(n, None if seconds is None else round(seconds, 1), code))
        left = budget_seconds - (clock() - start)
        if code == 0 or left < min_seconds or len(launches) > workers:
            return launches
        n = max(1, n - 1)
        print(f"WARNING: the workers exited with status {code}; relaunching {n} worker(s) with --resume, "
              f"{left:.0f} s of budget left (finished tasks are in the journals)")


def read_log(output_dir: str) -> dict:
    """log.json of a finished run (written by worker 0); a missing or unreadable file is an error naming it."""
    path = os.path.join(output_dir, "log.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"{path}: no readable run log ({e}); did worker 0 finish?") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list) or not isinstance(data.get("summary"), dict):
        raise FileNotFoundError(f"{path}: not a log.json written by arc_ttt.runner.pipeline")
    return data
