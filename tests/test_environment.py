"""Environment detection and input finding, on fake environments and fake /kaggle/input trees."""
import os
import subprocess

import pytest

from arc_ttt.delivery import environment as E


def touch(path, text="{}"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def make_model(folder):
    touch(os.path.join(folder, "config.json"))
    touch(os.path.join(folder, "model.safetensors"), "")
    return str(folder)


# --- detection ---------------------------------------------------------------------------------

def test_kaggle_wins_over_colab_because_the_image_sets_colab_vars(tmp_path):
    env = {"KAGGLE_KERNEL_RUN_TYPE": "Batch", "COLAB_RELEASE_TAG": "release-colab_2026"}
    got = E.detect(env, input_root=str(tmp_path / "absent"), modules={"google.colab": object()})
    assert got.kind == "kaggle" and got.on_kaggle and got.working_dir == "/kaggle/working"


def test_kaggle_detected_by_input_folder_alone(tmp_path):
    assert E.detect({}, input_root=str(tmp_path), modules={}).kind == "kaggle"


def test_colab_by_module_then_local(tmp_path):
    absent = str(tmp_path / "absent")
    assert E.detect({"COLAB_RELEASE_TAG": "x"}, input_root=absent, modules={"google.colab": object()}).kind == "colab"
    local = E.detect({"COLAB_RELEASE_TAG": "x"}, input_root=absent, modules={})
    assert local.kind == "local" and not local.competition_rerun


@pytest.mark.parametrize("value,rerun", [("True", True), ("1", True), ("", False), ("false", False), (None, False)])
def test_competition_rerun(tmp_path, value, rerun):
    env = {"KAGGLE_KERNEL_RUN_TYPE": "Batch"}
    if value is not None:
        env["KAGGLE_IS_COMPETITION_RERUN"] = value
    assert E.detect(env, input_root=str(tmp_path)).competition_rerun is rerun


def test_solve_limit_quick_only_on_the_kaggle_commit_run(tmp_path):
    commit = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, input_root=str(tmp_path))
    rerun = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_IS_COMPETITION_RERUN": "True"}, input_root=str(tmp_path))
    local = E.detect({}, input_root=str(tmp_path / "absent"), modules={})
    assert E.solve_limit(commit, "quick", 3) == 3
    assert E.solve_limit(commit, "full", 3) is None
    assert E.solve_limit(rerun, "quick", 3) is None  # the scored run always does the whole job
    assert E.solve_limit(local, "quick", 3) is None
    with pytest.raises(ValueError, match="commit_run"):
        E.solve_limit(commit, "fast", 3)


# --- finding inputs ------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", [
    "arc-prize-2025",  # the older /kaggle/input/<slug>/
    "competitions/arc-prize-2025",
])
def test_find_challenges_in_both_layouts(tmp_path, layout):
    path = touch(tmp_path / layout / E.CHALLENGES_FILE)
    touch(tmp_path / layout / "arc-agi_evaluation_challenges.json")
    assert E.find_challenges(str(tmp_path)) == path


def test_find_challenges_prefers_the_named_competition_and_refuses_to_guess(tmp_path):
    a = touch(tmp_path / "competitions" / "arc-prize-2024" / E.CHALLENGES_FILE)
    b = touch(tmp_path / "competitions" / "arc-prize-2025" / E.CHALLENGES_FILE)
    assert E.find_challenges(str(tmp_path), competition="arc-prize-2025") == b
    with pytest.raises(E.InputNotFound) as e:
        E.find_challenges(str(tmp_path))
    assert a in str(e.value) and b in str(e.value)


def test_missing_challenges_error_lists_what_was_searched(tmp_path):
    touch(tmp_path / "datasets" / "me" / "arc-ttt-code" / "README.md")
    with pytest.raises(E.InputNotFound) as e:
        E.find_challenges(str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path) in msg and "datasets" in msg and E.CHALLENGES_FILE in msg
    with pytest.raises(E.InputNotFound, match="does not exist"):
        E.find_challenges(str(tmp_path / "nothing"))


def test_find_model_in_the_kaggle_models_layout(tmp_path):
    deep = tmp_path / "models" / "me" / "smollm2" / "transformers" / "135m" / "1"
    make_model(deep)
    touch(tmp_path / "datasets" / "me" / "arc-ttt-code" / "configs" / "config.json")  # config.json, no weights
    assert E.find_model_dir(str(tmp_path)) == str(deep)


def test_find_model_gguf_and_dataset_layout(tmp_path):
    folder = tmp_path / "datasets" / "me" / "arc-ttt-model"
    touch(folder / "model.Q4_1.gguf", "")
    assert E.find_model_dir(str(tmp_path)) == str(folder)


def test_find_model_errors(tmp_path):
    with pytest.raises(E.InputNotFound, match="no model folder found"):
        E.find_model_dir(str(tmp_path))
    make_model(tmp_path / "a")
    make_model(tmp_path / "b")
    with pytest.raises(E.InputNotFound, match="several model folder"):
        E.find_model_dir(str(tmp_path))
    assert E.find_model_dir(str(tmp_path), prefer="b") == str(tmp_path / "b")


def test_find_wheelhouse(tmp_path):
    touch(tmp_path / "datasets" / "me" / "arc-ttt-code" / "configs" / "x.json")
    touch(tmp_path / "arc-ttt-wheels" / "manifest.json")
    assert E.find_wheelhouse(str(tmp_path)) == str(tmp_path / "arc-ttt-wheels")


def test_run_overrides_search_on_kaggle_only(tmp_path):
    challenges = touch(tmp_path / "competitions" / "arc-prize-2025" / E.CHALLENGES_FILE)
    model = make_model(tmp_path / "datasets" / "me" / "arc-ttt-model")
    kaggle = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, input_root=str(tmp_path))
    assert E.run_overrides(kaggle, budget_seconds=600) == [
        "data.task_ids=[]", f"data.challenges={challenges}", f"model.path={model}", "output.dir=/kaggle/working", "budget.seconds=600"]
    # an explicit parameter is used as given, without searching
    assert E.run_overrides(kaggle, model="/m", challenges="/c.json", output_dir="/o")[:4] == [
        "data.task_ids=[]", "data.challenges=/c.json", "model.path=/m", "output.dir=/o"]
    local = E.detect({}, input_root=str(tmp_path / "absent"), modules={})
    assert E.run_overrides(local) == []
    assert E.run_overrides(local, max_tasks=2, model="/m") == ["model.path=/m", "data.max_tasks=2"]


def test_resolve_config(tmp_path, monkeypatch):
    path = touch(tmp_path / "mine.yaml", "seed: 1\n")
    assert E.resolve_config(path) == path
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "configs" / "special.yaml", "seed: 2\n")
    assert os.path.samefile(E.resolve_config("special"), tmp_path / "configs" / "special.yaml")
    with pytest.raises(FileNotFoundError, match="nope"):
        E.resolve_config("nope")
    assert E.default_config_name(E.Environment("kaggle", False, "/kaggle/input", "/kaggle/working")) == "kaggle"
    assert E.default_config_name(E.Environment("local", False, None, None)) == "local"


def test_install_wheelhouse_runs_pip_offline(tmp_path):
    """Against an already-satisfied requirement: pip must not need the (empty) wheelhouse nor the network."""
    import importlib.metadata

    version = importlib.metadata.version("pyyaml")
    touch(tmp_path / "requirements.txt", f"pyyaml=={version}\n")
    cmd = E.install_wheelhouse(str(tmp_path))
    assert "--no-index" in cmd and cmd[cmd.index("--find-links") + 1] == str(tmp_path)
    touch(tmp_path / "requirements.txt", "arc-ttt-no-such-package==1.0\n")
    with pytest.raises(subprocess.CalledProcessError):
        E.install_wheelhouse(str(tmp_path))
