"""The submission notebook: committed file == generator output, and a real papermill execution."""
import importlib.util
import json
import os
import re
import sys

import nbformat
import pytest

from arc_ttt.core.submission import validate_submission
from arc_ttt.core.tasks import to_kaggle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "arc_ttt_submission.ipynb")
HAVE_PIPELINE = importlib.util.find_spec("arc_ttt.runner.pipeline") is not None and \
    importlib.util.find_spec("arc_ttt.core.config") is not None and os.path.exists(os.path.join(ROOT, "configs", "local.yaml"))
needs_pipeline = pytest.mark.skipif(not HAVE_PIPELINE, reason="arc_ttt.runner.pipeline / arc_ttt.core.config / configs/ "
                                    "(the orchestrator's run) not there yet")

# Fast settings for the tiny random model: the point is that every cell runs, not the score.
FAST = ["model.device=cpu", "model.dtype=float32", "model.load_in_4bit=false", "ttt.n_sequences=4",
        "budget.max_steps=4", "budget.min_steps=1", "inference.n_views=2", "inference.n_score_views=2",
        "inference.decoding=greedy", "output.pictures=false"]


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def load_generator():
    spec = importlib.util.spec_from_file_location("build_notebook", os.path.join(ROOT, "notebooks", "build_notebook.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- shared with test_kernel.py ---------------------------------------------------------------

@pytest.fixture(scope="session")
def venv_kernel(tmp_path_factory):
    """A `python3` kernelspec whose argv is this interpreter (the venv's), found first through JUPYTER_PATH."""
    share = tmp_path_factory.mktemp("jupyter")
    spec_dir = share / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "arc-ttt venv", "language": "python"}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(share))
        mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        yield sys.executable


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """The random 2-layer Llama on the character tokenizer, saved as a Hugging Face folder."""
    from arc_ttt.modeling.loading import tiny_llama

    d = tmp_path_factory.mktemp("tiny-model")
    tiny_llama(tokenizer).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="session")
def two_tasks(tmp_path_factory, small_tasks):
    """Two real ARC-AGI-1 evaluation tasks as Kaggle challenges + solutions files."""
    challenges, solutions = to_kaggle(small_tasks[:2])
    d = tmp_path_factory.mktemp("tasks")
    (d / "challenges.json").write_text(json.dumps(challenges))
    (d / "solutions.json").write_text(json.dumps(solutions))
    return str(d / "challenges.json"), str(d / "solutions.json"), challenges


def execute(notebook, out, parameters, cwd):
    """papermill with the venv kernel; a failing cell becomes a test failure that shows the cell and its error."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(notebook, out, parameters=parameters, kernel_name="python3", cwd=str(cwd),
                                   progress_bar=False, execution_timeout=600)
    except PapermillExecutionError as e:
        source = nbformat.read(out, as_version=4).cells[e.cell_index].source
        traceback = ANSI.sub("", "\n".join(e.traceback))
        pytest.fail(f"notebook cell {e.exec_count} failed: {e.ename}: {e.evalue}\n--- cell source ---\n{source}\n"
                    f"--- traceback ---\n{traceback}", pytrace=False)
    return nbformat.read(out, as_version=4)


def stream_text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


# --- the committed notebook -----------------------------------------------------------------

def test_committed_notebook_is_the_generators_output():
    with open(NOTEBOOK, encoding="utf-8") as f:
        committed = f.read()
    assert committed == load_generator().render(), "notebooks/arc_ttt_submission.ipynb is stale: run `make notebook`"
    nb = nbformat.reads(committed, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata.tags == ["parameters"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert [c.id for c in nb.cells] == ["title", "parameters", "bootstrap", "environment", "configure", "accelerator",
                                        "run", "report", "check"]
    assert nb.metadata.kernelspec.name == "python3" and nb.metadata.language_info.name == "python"


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
    Kaggle branch of the bootstrap needs nothing but the code dataset."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env_cell = nb.cells[3].source
    assert env_cell.index("write_fallback_submission") < env_cell.index("install_wheelhouse")
    assert "find_challenges(INPUT_ROOT, competition=COMPETITION)" in env_cell


@needs_pipeline
def test_a_failing_cell_fails_the_test_with_the_cells_error(tmp_path, venv_kernel):
    with pytest.raises(pytest.fail.Exception) as e:
        execute(NOTEBOOK, str(tmp_path / "out.ipynb"), {"CONFIG": "no-such-config"}, tmp_path)
    msg = str(e.value)
    assert "FileNotFoundError" in msg and "no-such-config" in msg and "resolve_config" in msg


# --- papermill execution ------------------------------------------------------------------------

@pytest.mark.slow
@needs_pipeline
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
