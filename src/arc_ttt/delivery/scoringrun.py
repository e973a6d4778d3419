"""The scoring rerun never fails the submission: a valid file first, errors printed not raised, the file
checked at the end.

On Kaggle's scoring rerun a notebook that raises fails the submission ("Notebook Threw Exception")
whatever submission.json holds, and an invalid file scores nothing; so a complete fallback file is
written before anything can fail, every later cell runs inside `rerun_guard`, and `finalize_submission`
re-validates the file and rebuilds it from the run's journals when it must.
"""
from __future__ import annotations

import json
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from ..core import journal
from ..core.submission import SubmissionWriter, validate_submission
from ..core.tasks import load_challenges, read_json_object
from .environment import Environment


def write_fallback_submission(challenges: str, path: str) -> int:
    """A complete, valid submission.json (every task, both attempts) before anything that can fail runs.

    The run later overwrites it with real answers; returns the number of tasks written.
    """
    taskset = load_challenges(challenges)
    SubmissionWriter(path, taskset.tasks)
    return len(taskset)


def _log_line(log_dir: str | None, text: str) -> None:
    if not log_dir:
        return
    try:
        os.makedirs(log_dir, exist_ok=True)
        with open(os.path.join(log_dir, "run.log"), "a", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n")
    except OSError:
        pass  # the log is a courtesy; the submission is what counts


@contextmanager
def rerun_guard(environment: Environment, what: str, log_dir: str | None = None) -> Iterator[None]:
    """On the Kaggle scoring run, an exception in `what` is printed and appended to run.log, never raised: a
    notebook that raises there fails the submission ("Notebook Threw Exception") whatever submission.json holds.
    Elsewhere (the commit run, Colab, locally) it is raised as usual, so that problems are seen."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - on the scoring run, nothing may escape
        if not environment.scoring_run:
            raise
        text = (f"ERROR in {what} on the scoring run, carrying on (submission.json is checked at the end): "
                f"{type(e).__name__}: {e}")
        print(text)
        print("".join(traceback.format_exception(e)))
        _log_line(log_dir, text + "\n" + "".join(traceback.format_exception(e)))


def finalize_submission(challenges: str, output_dir: str) -> str:
    """Re-validate submission.json against the challenges; when it is missing or invalid, rewrite it from the
    run's journals over the fallback answers. Returns what it found or did (one line)."""
    path = os.path.join(output_dir, "submission.json")
    raw = read_json_object(challenges, "challenges")
    try:
        with open(path, encoding="utf-8") as f:
            problems = validate_submission(raw, json.load(f))
    except (OSError, ValueError) as e:
        problems = [f"unreadable ({e})"]
    if not problems:
        return f"submission.json valid: {path} ({len(raw)} tasks)"
    taskset = load_challenges(challenges)
    writer = SubmissionWriter(path, taskset.tasks, write=False)
    recovered = 0
    for tid, rec in journal.read_records(output_dir).items():
        if tid in writer.ids and rec.attempts:
            try:
                writer.update(tid, [(a, b) for a, b in rec.attempts], flush=False)
                recovered += 1
            except (ValueError, TypeError):
                continue  # a malformed journal line keeps the fallback
    writer.flush()
    left = validate_submission(raw, writer.as_dict())
    first = problems[0] if len(problems) == 1 else f"{problems[0]} (+{len(problems) - 1} more)"
    return (f"submission.json was invalid ({first}): rewritten from the journals, {recovered} of {len(raw)} tasks "
            f"answered, the rest fallback" + (f"; STILL INVALID: {left[0]}" if left else ""))
