"""The commit run's checks: Kaggle's free rehearsal stops loudly on what would make the scoring rerun score
fallback answers, and projects what the rerun would do.

Before the run: the attached code, wheels and model datasets must be the ones the kernel was built with (BUILD.json's
commit, and each dataset's fingerprint), and the image's transformers must load the model folder right. After it: the quick tasks are scored against the
evaluation solutions, every task failing is an error, and the rerun's effort and finish are projected from
the speed measured here. Elsewhere (the scoring rerun, Colab, locally) the checks before the run only warn.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence

from ..core.config import RunConfig
from ..core.modelfolder import ModelInfo, compatibility_problem, describe_model
from ..core.planner import Planner, TaskCost
from ..core.formats import read_format_file
from .environment import EVALUATION_SOLUTIONS, Environment, evaluation_file, transformers_version
from .fingerprint import code_fingerprint, folder_fingerprint
from .inputs import competition_mounts

BUILD_FILE = "BUILD.json"  # in the code dataset: the commit, config, format and model the bundle was built with


class BundleMismatch(RuntimeError):
    """The attached datasets are not the ones the kernel was built with (a stale version, an unreadable model)."""


class CompetitionMismatch(RuntimeError):
    """More than one competition is attached: the scoring rerun could answer the wrong one's test file."""


class DemoModelRefused(RuntimeError):
    """The commit run found the kit's demonstration model, not asked for: a submission of it scores about 0."""


class CommitRunFailed(RuntimeError):
    """Every task the commit run tried failed with an error: the scoring rerun would score the fallback."""


# --- before the run: the bundle's own record, and the model it ships ----------------------------

def read_build(code_src: str) -> dict | None:
    """BUILD.json of the code dataset (beside its src/), or None when absent or unreadable."""
    path = os.path.join(os.path.dirname(os.path.abspath(code_src)), BUILD_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def build_problem(build: dict | None, expected_commit: str | None) -> str | None:
    """Why the attached code dataset is not the one the kernel was built with, or None (also when the kernel
    names no commit: a notebook run by hand)."""
    if not expected_commit:
        return None
    if build is None:
        return f"the code dataset has no readable {BUILD_FILE}; the kernel was built from commit {expected_commit}"
    if build.get("commit") != expected_commit:
        return (f"the code dataset is commit {build.get('commit')!r} but this kernel was built from {expected_commit!r}: "
                f"a stale dataset version is attached (did publish.sh finish? attach the latest version)")
    return None


def check_build(environment: Environment, build: dict | None, expected_commit: str | None) -> str | None:
    """Raise BundleMismatch on the commit run when the code dataset differs from the kernel's build; elsewhere
    return the problem for a warning."""
    problem = build_problem(build, expected_commit)
    if problem and environment.commit_run:
        raise BundleMismatch(problem)
    return problem


FINGERPRINTERS = {"code": code_fingerprint, "wheels": folder_fingerprint, "model": folder_fingerprint}


def expected_fingerprints(kernel: Mapping | None, build: dict | None) -> dict:
    """What the attached datasets must be: the kernel's BUILD_FINGERPRINTS (set by make kernel), else the code
    dataset's BUILD.json (a notebook run by hand), else nothing to check (a bundle older than fingerprints)."""
    if kernel:
        return dict(kernel)
    found = (build or {}).get("fingerprints")
    return dict(found) if isinstance(found, Mapping) else {}


def check_fingerprint(environment: Environment, what: str, path: str | None, expected: Mapping) -> str | None:
    """Recompute the attached `what` dataset's fingerprint (code: the src/ folder; wheels, model: the folder) and
    compare it with the build's; a difference (a stale version, one still processing, another dataset) raises
    BundleMismatch on the commit run, and is returned for a warning elsewhere. Nothing expected: nothing checked."""
    want = expected.get(what)
    if not want or not path:
        return None
    try:
        got = FINGERPRINTERS[what](path)
    except OSError as e:
        got = f"unreadable ({e})"
    if got == want:
        return None
    problem = (f"the attached {what} dataset ({path}) is not the one this kernel was built with (fingerprint "
               f"{got[:12]}, built {want[:12]}): a stale version (still processing when the kernel was pushed?) or "
               f"another dataset. Attach the latest version (or run publish.sh again, which waits until each is ready)")
    if environment.commit_run:
        raise BundleMismatch(problem)
    return problem


def check_competitions(environment: Environment, root: str, competition: str | None) -> str | None:
    """Raise CompetitionMismatch on the commit run when several competitions are mounted (the rerun would answer one
    of them, maybe not the one submitted to: a valid file of the wrong ids, scoring 0); elsewhere return it for a
    warning, as when the one attached is not the competition the kernel was built for."""
    mounts = competition_mounts(root)
    if len(mounts) > 1:
        built = f"; the kernel was built for {competition!r}" if competition else ""
        problem = (f"{len(mounts)} competitions are attached ({', '.join(sorted(mounts))}){built}: the scoring rerun "
                   f"would answer one test file, maybe not the competition's you submit to. Keep only that one "
                   f"(the notebook's Input panel, or competition_sources in kernel-metadata.json)")
        if environment.commit_run:
            raise CompetitionMismatch(problem)
        return problem
    if competition and mounts and competition not in mounts:
        return (f"the kernel was built for competition {competition!r} but {next(iter(mounts))!r} is attached; its "
                f"test file is used. If that is the one you submit to, rebuild with --competition {next(iter(mounts))}")
    return None


def resolve_format(setting: str, model_dir: str | None) -> tuple[str, str]:
    """(the prompt format a run uses, where that came from): the config's model.format, else the folder's
    arc_format.json, else the kit's own layout, said to be a guess."""
    if setting != "auto":
        return setting, "model.format"
    named = read_format_file(model_dir) if model_dir and os.path.isdir(model_dir) else None
    if named:
        return named, f"the model folder's {os.path.basename(model_dir.rstrip(os.sep))}/arc_format.json"
    return "kit", "GUESSED: no arc_format.json and model.format auto; a model trained in another layout scores ~0"


def _has_tokenizer_class(name: str) -> bool:
    import transformers  # reason: only here, after the offline install, to ask what the image's version has

    return hasattr(transformers, name)


def demo_problem(environment: Environment, info: ModelInfo, allow_demo: bool) -> None:
    """Raise DemoModelRefused on the commit run when the model is the kit's demonstration model and the notebook's
    ALLOW_DEMO does not say it was meant (make kernel KERNEL_DEMO=1 sets it); elsewhere the warning line says it."""
    if info.kind == "demo" and environment.commit_run and not allow_demo:
        raise DemoModelRefused(f"{info.path} is the kit's demonstration model: it checks the pipeline end to end and "
                               f"would score about 0. Attach your ARC model (make kernel KERNEL_MODEL=path/to/model), "
                               f"or set ALLOW_DEMO = True in the parameters cell to rehearse with the demo")


def model_report(environment: Environment, model_dir: str, format_name: str, format_source: str,
                 version: str | None = None, has_class: Callable[[str], bool] | None = None,
                 allow_demo: bool = False) -> tuple[list[str], str | None]:
    """The lines the notebook prints about the model it runs (what it is, its prompt format, the transformers
    versions), and the problem when the installed transformers would load the folder wrongly; that problem
    raises BundleMismatch on the commit run, as the demonstration model not allowed raises DemoModelRefused."""
    version = transformers_version() if version is None else version
    info: ModelInfo = describe_model(model_dir)
    lines = [f"model: {model_dir}", f"  {info.summary()}",
             f"  prompt format used: {format_name} ({format_source}); transformers here: {version}"]
    lines += info.warnings(format_name)
    demo_problem(environment, info, allow_demo)
    problem = compatibility_problem(info, version, has_class or _has_tokenizer_class)
    if problem and environment.commit_run:
        raise BundleMismatch(problem)
    return lines, problem


# --- after the run -----------------------------------------------------------------------------

def _get(record, key, default=None):
    return record.get(key, default) if isinstance(record, Mapping) else getattr(record, key, default)


def quick_solutions(environment: Environment, challenges: str) -> str | None:
    """On the commit run, the competition's evaluation solutions: the placeholder's tasks are evaluation tasks,
    so the quick tasks can be scored and a model that scores zero is seen before a submission is spent."""
    return evaluation_file(challenges, EVALUATION_SOLUTIONS) if environment.on_placeholder else None


def quick_score_line(records: Sequence) -> str | None:
    """"quick tasks solved k of n" over the tasks the commit run tried (None when none was scored)."""
    tried = [r for r in records if _get(r, "reason") != "quick commit run" and _get(r, "status") != "invalid"]
    scored = [r for r in tried if _get(r, "correct") is not None]
    if not scored:
        return None
    hits = [list(_get(r, "correct")) for r in scored]  # per test output, as the metric counts them
    solved = sum(1 for h in hits if h and all(h))
    outputs = sum(len(h) for h in hits)
    line = (f"quick tasks solved {solved} of {len(scored)} (test outputs {sum(map(sum, hits))} of {outputs}; "
            f"against {EVALUATION_SOLUTIONS})")
    if solved == 0:
        line += ": WARNING, this model solved none: check the model, its prompt format and the transformers version"
    return line


def check_commit_run(environment: Environment, records: Sequence, solve_limit: int | None) -> None:
    """Raise on the Kaggle commit run when every task it tried (not the quick run's skipped ones) errored."""
    if not environment.commit_run:
        return
    tried = [r for r in records if _get(r, "status") not in ("invalid",)
             and _get(r, "reason") != "quick commit run"]
    if tried and all(_get(r, "status") == "error" for r in tried):
        errors = sorted({_get(r, "error") or "?" for r in tried})
        raise CommitRunFailed(f"all {len(tried)} tasks of the commit run failed with an error; the scoring rerun "
                              f"would score only fallback answers. Errors: {'; '.join(errors)}")


def project_rerun(records: Sequence, cfg: RunConfig, task_counts: Sequence[int] = (120, 240),
                  workers: int = 1) -> list[dict]:
    """What the scoring rerun would do with `task_counts` tasks, from the quick tasks' measured speed.

    The planner is run on synthetic tasks shaped like the measured ones (tokens per step), with its
    calibration set from the measured seconds per step and per view; the expected finish is the
    planned work spread over the workers. Empty when nothing was measured (every task fell back).
    """
    trained = [r for r in records if (_get(r, "steps") or 0) > 0]
    viewed = [r for r in records if (_get(r, "views") or 0) > 0]
    if not trained and not viewed:
        return []
    b = cfg.budget
    steps = sum(_get(r, "steps") for r in trained)
    tokens_per_step = max(1, round(sum(_get(r, "tokens") or 0 for r in trained) / steps)) if steps else 1
    sec_per_step = sum(_get(r, "train_seconds") or 0.0 for r in trained) / steps if steps else None
    views = sum(_get(r, "views") for r in viewed)
    sec_per_view = sum(_get(r, "infer_seconds") or 0.0 for r in viewed) / views if views else None
    rows = []
    for n in task_counts:
        # prompt_tokens=1, answer_tokens=0: one view costs prefill_seconds_per_token x the inference factor
        tasks = [TaskCost(f"t{i}", tokens_per_step, 1, 0) for i in range(n)]
        planner = Planner(dataclasses.replace(b, adaptive=False, policy="uniform"), tasks, start=0.0, clock=lambda: 0.0,
                          default_views=cfg.inference.n_views, infer_batch=cfg.inference.batch_size, workers=workers)
        if sec_per_step is not None:
            planner.train.add(sec_per_step, tokens_per_step * b.train_seconds_per_token)
        if sec_per_view is not None:
            planner.prefill.add(sec_per_view, b.prefill_seconds_per_token)  # answer_tokens=0: no decode term
        plan = planner.plan(tasks[0].id)
        per_task = (b.task_overhead_seconds + planner.train_seconds(tasks[0], plan.steps)
                    + planner.infer_seconds(tasks[0], plan.views))
        finish = n * per_task / max(1, workers)
        rows.append({"tasks": n, "mode": plan.mode, "steps": plan.steps, "views": plan.views,
                     "seconds_per_task": round(per_task, 1), "expected_seconds": round(finish),
                     "budget_seconds": b.seconds, "fits": finish <= b.seconds - b.margin + 1e-6,
                     "seconds_per_step": None if sec_per_step is None else round(sec_per_step, 3),
                     "seconds_per_view": None if sec_per_view is None else round(sec_per_view, 3)})
    return rows


def projection_lines(rows: Sequence[dict], where: str = "") -> list[str]:
    """The projection as printed by the commit run; `where` names the GPU and config it was measured with."""
    if not rows:
        return ["projection: nothing was measured (no task trained or predicted): the rerun would answer by fallback"]
    r0 = rows[0]
    out = [f"projection for the scoring rerun{' on ' + where if where else ''} (measured {r0['seconds_per_step']} s/step, "
           f"{r0['seconds_per_view']} s/view; budget {r0['budget_seconds']:.0f} s):"]
    for r in rows:
        out.append(f"  {r['tasks']:>4} tasks: {r['mode']:<11} {r['steps']:>3} steps x {r['views']:>2} views per task, "
                   f"~{r['seconds_per_task']:.0f} s each -> done after ~{r['expected_seconds'] / 60:.0f} min "
                   f"{'(fits)' if r['fits'] else '(DOES NOT FIT: the planner will cut effort further)'}")
    weak = [r["tasks"] for r in rows if r["mode"] in ("no_ttt", "fallback")]
    if weak:
        out.append(f"WARNING: with {' and '.join(map(str, weak))} tasks the planner cannot afford test-time training "
                   f"(mode no_ttt/fallback): a faster accelerator, a smaller model or a lighter config is needed")
    return out
