"""The run started from the notebook on more than one GPU: one torchrun worker per GPU, and the log they leave.

The workers (`arc_ttt.runner.workers`) share a task counter and their journals; worker 0 writes log.json,
which the notebook reads whichever way the run was started.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence


def worker_command(n_gpus: int, config: str, overrides: Sequence[str], output_dir: str, *,
                   solve_limit: int | None = None, python: str = sys.executable,
                   master_port: int | None = None) -> list[str] | None:
    """The torchrun command that runs one worker per GPU (runner/workers.py), or None for one GPU or none."""
    if n_gpus <= 1:
        return None
    rendezvous = ["--standalone"] if master_port is None else [f"--master-port={master_port}"]
    cmd = [python, "-m", "torch.distributed.run", *rendezvous, f"--nproc-per-node={n_gpus}"]
    cmd += ["-m", "arc_ttt", "run", "--config", config, "--output", output_dir, "--quiet"]
    for item in overrides:
        cmd += ["--set", item]
    if solve_limit is not None:
        cmd += ["--solve-limit", str(solve_limit)]
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
