"""What the notebook runs from arc_ttt.delivery (environment, inputs, accelerator, launch, the commit run's checks and
the scoring rerun's guard), on fake environments and fake /kaggle/input trees."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from arc_ttt.core.config import load_config

from arc_ttt.delivery import accelerator, commitrun, inputs, launch, scoringrun
from arc_ttt.delivery import environment as E
from conftest import ROOT, free_port


def touch(path, text="{}"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def commit_env(tmp_path):
    """The Kaggle commit run: no rerun variable, and (as with_test_file found) the placeholder test file."""
    return dataclasses.replace(E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, input_root=str(tmp_path)),
                               placeholder_test=True)


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
    commit = commit_env(tmp_path)
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
    path = touch(tmp_path / layout / inputs.CHALLENGES_FILE)
    touch(tmp_path / layout / "arc-agi_evaluation_challenges.json")
    assert inputs.find_challenges(str(tmp_path)) == path


def test_find_challenges_prefers_the_named_competition_and_refuses_to_guess(tmp_path):
    a = touch(tmp_path / "competitions" / "arc-prize-2024" / inputs.CHALLENGES_FILE)
    b = touch(tmp_path / "competitions" / "arc-prize-2025" / inputs.CHALLENGES_FILE)
    assert inputs.find_challenges(str(tmp_path), competition="arc-prize-2025") == b
    with pytest.raises(inputs.InputNotFound) as e:
        inputs.find_challenges(str(tmp_path))
    assert a in str(e.value) and b in str(e.value)


def test_a_second_challenges_file_in_another_dataset_does_not_stop_the_run(tmp_path):
    ours = touch(tmp_path / "competitions" / "arc-prize-2025" / inputs.CHALLENGES_FILE)
    touch(tmp_path / "datasets" / "someone" / "arc-copy" / inputs.CHALLENGES_FILE)
    assert inputs.find_challenges(str(tmp_path), competition="arc-prize-2025") == ours
    assert inputs.find_challenges(str(tmp_path)) == ours  # without the slug, the competition mount still wins
    old = touch(tmp_path / "old" / "arc-prize-2025" / inputs.CHALLENGES_FILE)  # the older /kaggle/input/<slug>/ layout
    os.remove(ours)
    assert inputs.find_challenges(str(tmp_path / "old"), competition="arc-prize-2025") == old


def test_fallback_submission_is_complete_before_anything_runs(tmp_path, challenges):
    from arc_ttt.core.submission import validate_submission

    path, _, raw = challenges
    out = tmp_path / "working" / "submission.json"
    assert scoringrun.write_fallback_submission(str(path), str(out)) == len(raw)
    with open(out) as f:
        assert validate_submission(raw, json.load(f)) == []
    assert os.stat(out).st_mode & 0o444 == 0o444  # readable, not mkstemp's 0600


def test_missing_challenges_error_lists_what_was_searched(tmp_path):
    touch(tmp_path / "datasets" / "me" / "arc-ttt-code" / "README.md")
    with pytest.raises(inputs.InputNotFound) as e:
        inputs.find_challenges(str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path) in msg and "datasets" in msg and inputs.CHALLENGES_FILE in msg
    with pytest.raises(inputs.InputNotFound, match="does not exist"):
        inputs.find_challenges(str(tmp_path / "nothing"))


def test_find_model_in_the_kaggle_models_layout(tmp_path):
    deep = tmp_path / "models" / "me" / "smollm2" / "transformers" / "135m" / "1"
    make_model(deep)
    touch(tmp_path / "datasets" / "me" / "arc-ttt-code" / "configs" / "config.json")  # config.json, no weights
    assert inputs.find_model_dir(str(tmp_path)) == str(deep)


def test_find_model_gguf_and_dataset_layout(tmp_path):
    folder = tmp_path / "datasets" / "me" / "arc-ttt-model"
    touch(folder / "model.Q4_1.gguf", "")
    assert inputs.find_model_dir(str(tmp_path)) == str(folder)


def test_find_model_errors(tmp_path):
    with pytest.raises(inputs.InputNotFound, match="no model folder found"):
        inputs.find_model_dir(str(tmp_path))
    make_model(tmp_path / "a")
    make_model(tmp_path / "b")
    with pytest.raises(inputs.InputNotFound, match="several model folder"):
        inputs.find_model_dir(str(tmp_path))
    assert inputs.find_model_dir(str(tmp_path), prefer="b") == str(tmp_path / "b")


def test_find_wheelhouse_by_its_own_manifest_name(tmp_path):
    touch(tmp_path / "datasets" / "me" / "arc-ttt-code" / "configs" / "x.json")
    touch(tmp_path / "datasets" / "someone" / "other" / "manifest.json")  # an unrelated dataset's manifest
    touch(tmp_path / "arc-ttt-wheels" / inputs.WHEEL_MANIFEST)
    assert inputs.WHEEL_MANIFEST == "arc-ttt-wheels-manifest.json"
    assert inputs.find_wheelhouse(str(tmp_path)) == str(tmp_path / "arc-ttt-wheels")


def test_run_overrides_search_on_kaggle_only(tmp_path):
    challenges = touch(tmp_path / "competitions" / "arc-prize-2025" / inputs.CHALLENGES_FILE)
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
    cmd = inputs.install_wheelhouse(str(tmp_path))
    assert "--no-index" in cmd and cmd[cmd.index("--find-links") + 1] == str(tmp_path)
    touch(tmp_path / "requirements.txt", "arc-ttt-no-such-package==1.0\n")
    with pytest.raises(subprocess.CalledProcessError):
        inputs.install_wheelhouse(str(tmp_path))


# --- the accelerator ---------------------------------------------------------------------------

CUDA_128_ARCHS = ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]  # no sm_60


@pytest.mark.parametrize("capability,arch_list,usable", [
    ((6, 0), CUDA_128_ARCHS, False),  # a P100 on today's Kaggle image
    ((6, 0), ["sm_60", "sm_70"], True),
    ((7, 5), CUDA_128_ARCHS, True),  # T4
    ((8, 9), ["sm_80", "sm_90"], True),  # L4: sm_80 code runs on sm_89
    ((8, 9), ["sm_90", "compute_90"], False),
    ((8, 9), ["sm_70", "compute_80"], True),  # PTX at or below the capability is compiled by the driver
    ((9, 0), [], False),  # a CPU build of torch
    (None, CUDA_128_ARCHS, False),  # no GPU at all
])
def test_gpu_problem(capability, arch_list, usable):
    problem = accelerator.gpu_problem(capability, arch_list)
    assert (problem is None) is usable, problem


def gpu(capability, arch_list=CUDA_128_ARCHS, count=1):
    return accelerator.GpuInfo(count if capability else 0, "Tesla P100-PCIE-16GB" if capability == (6, 0) else "GPU",
                     capability, tuple(arch_list), {"torch": "2.8.0+cu128"})


def test_an_unusable_gpu_fails_the_commit_run_only(tmp_path):
    commit = commit_env(tmp_path)
    rerun = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_IS_COMPETITION_RERUN": "1"}, input_root=str(tmp_path))
    p100 = gpu((6, 0))
    with pytest.raises(accelerator.AcceleratorUnusable, match="sm_60.*machine_shape"):
        accelerator.require_usable_gpu(commit, "auto", p100)
    with pytest.raises(accelerator.AcceleratorUnusable, match="no CUDA GPU visible"):
        accelerator.require_usable_gpu(commit, "auto", gpu(None))
    assert "sm_60" in accelerator.require_usable_gpu(rerun, "auto", p100)  # warned: the fallback file still scores
    assert accelerator.require_usable_gpu(commit, "cpu", p100) is None  # the config asks for the CPU
    assert accelerator.require_usable_gpu(commit, "auto", gpu((8, 9))) is None
    assert "compute capability 6.0" in "\n".join(p100.lines())


def test_gpu_info_reports_this_machine():
    info = accelerator.gpu_info()
    assert info.versions["torch"] and "transformers" in info.versions
    assert info.count == 0 or info.capability is not None  # CPU here; on a GPU machine the first device's


def test_machine_shapes():
    assert [accelerator.check_machine_shape(n) for n in accelerator.MACHINE_SHAPES] == list(accelerator.MACHINE_SHAPES)
    assert accelerator.check_machine_shape(None) is None
    with pytest.raises(ValueError, match="NvidiaTeslaP100.*retired.*NvidiaTeslaT4"):
        accelerator.check_machine_shape("NvidiaTeslaP100")
    root = ROOT
    assert load_config(os.path.join(root, "configs", "kaggle.yaml")).kaggle.machine_shape in ("NvidiaTeslaT4", "NvidiaL4X1")
    assert load_config(os.path.join(root, "configs", "kaggle-4xL4-12h.yaml")).kaggle.machine_shape == "NvidiaL4"


# --- after the commit run ---------------------------------------------------------------------

def test_commit_run_fails_when_every_task_it_tried_errored(tmp_path):
    commit = commit_env(tmp_path)
    rerun = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_IS_COMPETITION_RERUN": "1"}, input_root=str(tmp_path))
    skipped = {"id": "c", "status": "fallback", "reason": "quick commit run"}
    errored = [{"id": "a", "status": "error", "error": "model load: OSError: no weights"},
               {"id": "b", "status": "error", "error": "model load: OSError: no weights"}, skipped]
    with pytest.raises(commitrun.CommitRunFailed, match="all 2 tasks.*no weights"):
        commitrun.check_commit_run(commit, errored, 2)
    commitrun.check_commit_run(rerun, errored, None)  # the rerun keeps its fallback file
    commitrun.check_commit_run(commit, [errored[0], {"id": "b", "status": "ok"}, skipped], 2)  # one worked: fine


def record(tid, steps, train_seconds, views, infer_seconds, tokens_per_step=2000):
    return {"id": tid, "status": "ok", "steps": steps, "tokens": steps * tokens_per_step,
            "train_seconds": train_seconds, "views": views, "infer_seconds": infer_seconds}


def test_projection_for_the_scoring_rerun_from_measured_speed():
    root = ROOT
    cfg = load_config(os.path.join(root, "configs", "kaggle.yaml"))  # 7200 s, up to 64 steps, 8 views
    records = [record("a", 10, 20.0, 8, 16.0), record("b", 10, 20.0, 8, 16.0)]  # 2 s per step, 2 s per view
    rows = commitrun.project_rerun(records, cfg)
    assert [r["tasks"] for r in rows] == [120, 240]
    assert rows[0]["seconds_per_step"] == 2.0 and rows[0]["seconds_per_view"] == 2.0
    for r in rows:
        assert cfg.budget.min_steps <= r["steps"] <= cfg.budget.max_steps
        assert r["expected_seconds"] == pytest.approx(r["tasks"] * r["seconds_per_task"], rel=0.01)
        assert r["fits"]  # the planner sized the effort to the budget
    assert rows[1]["steps"] < rows[0]["steps"]  # twice the tasks, less effort each
    # 2 s/step, 2 s/view at 240 tasks, steps planned into all but budget.headroom / sqrt(240) = 1.3% of the time:
    # 6840 s x 0.987 / 240 = 28.1 s each: 8 views and 5 steps (26.5 s with the overhead) fit, 6 steps do not
    assert (rows[1]["steps"], rows[1]["views"]) == (5, 8)
    # a four times faster GPU (or four workers) affords more steps
    assert commitrun.project_rerun(records, cfg, workers=4)[1]["steps"] > rows[1]["steps"]
    text = "\n".join(commitrun.projection_lines(rows, "1 x NVIDIA L4, kaggle.yaml"))
    assert text.startswith("projection for the scoring rerun on 1 x NVIDIA L4, kaggle.yaml (measured 2.0 s/step")
    assert " 120 tasks:" in text and " 240 tasks:" in text and "fits" in text
    assert commitrun.project_rerun([{"id": "a", "status": "error", "steps": 0, "views": 0}], cfg) == []
    assert "nothing was measured" in commitrun.projection_lines([])[0]


def test_projection_says_when_even_the_minimum_does_not_fit():
    root = ROOT
    cfg = load_config(os.path.join(root, "configs", "kaggle.yaml"))
    slow = [record("a", 4, 400.0, 2, 200.0)]  # 100 s per step and per view
    rows = commitrun.project_rerun(slow, cfg)
    assert [(r["mode"], r["steps"], r["views"]) for r in rows] == [("fallback", 0, 0)] * 2  # not one view fits
    assert "WARNING: with 120 and 240 tasks the planner cannot afford test-time training" in "\n".join(
        commitrun.projection_lines(rows))


# --- more than one GPU -------------------------------------------------------------------------

def test_worker_command_one_process_per_gpu():
    assert launch.worker_command(0, "c.yaml", [], "/out") is None
    assert launch.worker_command(1, "c.yaml", [], "/out") is None
    cmd = launch.worker_command(4, "/k/c.yaml", ["model.path=/m", "data.task_ids=[]"], "/out", solve_limit=2)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"] and "--nproc-per-node=4" in cmd
    i = cmd.index("arc_ttt")
    assert cmd[i:i + 6] == ["arc_ttt", "run", "--config", "/k/c.yaml", "--output", "/out"]
    assert cmd[-2:] == ["--solve-limit", "2"] and ["--set", "model.path=/m"] == cmd[cmd.index("--set"):][:2]


@pytest.mark.slow
@pytest.mark.e2e
def test_four_visible_gpus_launch_four_workers(tmp_path, tiny_model_dir, challenges, monkeypatch):
    """4 "GPUs" -> 4 torchrun workers, here CPU processes on the tiny model and 2 tasks: every worker starts
    (its own log), the tasks are shared out, one valid submission comes out."""
    from arc_ttt.core.submission import validate_submission

    c, _, raw = challenges
    two = dict(list(raw.items())[:2])
    (tmp_path / "two.json").write_text(json.dumps(two))
    root = ROOT
    out = tmp_path / "out"
    sets = [f"model.path={tiny_model_dir}", f"data.challenges={tmp_path / 'two.json'}", "data.task_ids=[]",
            "model.device=cpu", "model.dtype=float32", "budget.max_steps=2", "budget.min_steps=1",
            "inference.n_views=1", "inference.n_score_views=1", "inference.decoding=greedy",
            "output.pictures=false", "budget.adaptive=false", "budget.seconds=600"]
    cmd = launch.worker_command(4, os.path.join(root, "configs", "local.yaml"), sets, str(out), master_port=free_port())
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(root)
    launch.run_workers(cmd)
    assert sorted(p.name for p in out.glob("run*.log")) == ["run.log", "run.rank1.log", "run.rank2.log", "run.rank3.log"]
    log = launch.read_log(str(out))
    assert sorted(t["id"] for t in log["tasks"]) == sorted(two)
    with open(out / "submission.json") as f:
        assert validate_submission(two, json.load(f)) == []


KILL_RANK_1_ONCE = """
# The host kills torchrun's worker 1 as it starts (out of memory while several load the model), the first time only.
import os

if os.environ.get("RANK") == "1" and not os.path.exists(os.environ["KILL_MARKER"]):
    open(os.environ["KILL_MARKER"], "w").close()
    os._exit(137)
"""


@pytest.mark.slow
@pytest.mark.e2e
def test_a_killed_worker_is_relaunched_and_every_task_gets_its_answer(tmp_path, tiny_model_dir, challenges,
                                                                       monkeypatch):
    """Two "GPUs" as CPU torchrun workers on the tiny model; worker 1 is killed as it starts, so torchrun stops both.
    The scoring rerun's supervisor starts one process with --resume and the budget left: both tasks are solved and
    log.json names them, instead of fallback answers."""
    from arc_ttt.core.submission import validate_submission

    c, _, raw = challenges
    two = dict(list(raw.items())[:2])
    (tmp_path / "two.json").write_text(json.dumps(two))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(KILL_RANK_1_ONCE)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("KILL_MARKER", str(tmp_path / "killed"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    sets = [f"model.path={tiny_model_dir}", f"data.challenges={tmp_path / 'two.json'}", "data.task_ids=[]",
            "model.device=cpu", "model.dtype=float32", "budget.max_steps=2", "budget.min_steps=1",
            "inference.n_views=1", "inference.n_score_views=1", "inference.decoding=greedy",
            "output.pictures=false", "budget.adaptive=false"]
    command = launch.relaunch_commands(os.path.join(ROOT, "configs", "local.yaml"), sets, str(out),
                                       master_port=free_port())
    runs = launch.supervise_workers(command, 2, 600.0, min_seconds=60.0)
    assert (tmp_path / "killed").exists() and runs[0].workers == 2 and runs[0].returncode != 0
    assert [(r.workers, r.returncode) for r in runs[1:]] == [(1, 0)] and runs[1].budget_seconds < 600.0
    log = launch.read_log(str(out))
    assert sorted(t["id"] for t in log["tasks"]) == sorted(two)
    assert all(t["status"] in ("ok", "resumed") for t in log["tasks"]), log["tasks"]
    with open(out / "submission.json") as f:
        assert validate_submission(two, json.load(f)) == []


# --- which run this is: the commit run needs both signs ------------------------------------------

def competition_folder(root, test_ids, eval_ids, solutions=True):
    """A fake competition folder: the test file and the evaluation files beside it (each task one 1x1 pair)."""
    task = {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[1]]}]}
    folder = os.path.join(root, "competitions", "arc-prize-2025")
    touch(os.path.join(folder, inputs.CHALLENGES_FILE), json.dumps({t: task for t in test_ids}))
    if eval_ids is not None:
        touch(os.path.join(folder, E.EVALUATION_CHALLENGES), json.dumps({t: task for t in eval_ids}))
        if solutions:
            touch(os.path.join(folder, E.EVALUATION_SOLUTIONS), json.dumps({t: [[[2]]] for t in eval_ids}))
    return os.path.join(folder, inputs.CHALLENGES_FILE)


@pytest.mark.parametrize("rerun_var,test_ids,eval_ids,quick", [
    (None, ["a", "b"], ["a", "b", "c"], True),  # the public placeholder: the commit run, quick mode allowed
    ("True", ["a", "b"], ["a", "b", "c"], False),  # the rerun variable alone makes it the scoring run
    (None, ["x", "y"], ["a", "b", "c"], False),  # not the placeholder: a commit run that solves every task
    (None, ["a", "x"], ["a", "b", "c"], False),  # one unknown id is enough
    (None, ["a", "b"], None, False),  # no evaluation file to tell: never cut short
])
def test_quick_mode_only_when_every_test_id_is_an_evaluation_id(tmp_path, rerun_var, test_ids, eval_ids, quick):
    challenges = competition_folder(str(tmp_path), test_ids, eval_ids)
    env_vars = {"KAGGLE_KERNEL_RUN_TYPE": "Batch", **({"KAGGLE_IS_COMPETITION_RERUN": rerun_var} if rerun_var else {})}
    env = E.with_test_file(E.detect(env_vars, input_root=str(tmp_path)), challenges)
    assert env.on_placeholder is quick
    assert env.commit_run is (rerun_var is None) and env.scoring_run is (rerun_var is not None)  # the variable alone
    assert E.solve_limit(env, "quick", 2) == (2 if quick else None)
    assert ("Kaggle commit run" in E.run_kind_line(env, challenges)) is (rerun_var is None)
    assert ("every task is solved" in E.run_kind_line(env, challenges)) is (rerun_var is None and not quick)
    assert (commitrun.quick_solutions(env, challenges) is not None) is quick  # scored against the evaluation solutions


def test_without_the_placeholder_the_commit_run_still_checks_the_gpu_and_every_task_failing(tmp_path, capsys):
    """No evaluation files beside the test file (the commit run cannot tell the placeholder): without the rerun
    variable it is still the commit run, so an unusable GPU and a run with every task in error stop it, and the
    guard lets them through."""
    challenges = competition_folder(str(tmp_path), ["a", "b"], None)
    env = E.with_test_file(E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, input_root=str(tmp_path)), challenges)
    assert env.commit_run and not env.on_placeholder and not env.scoring_run
    errored = [{"id": "a", "status": "error", "error": "model load: OSError"},
               {"id": "b", "status": "error", "error": "model load: OSError"}]
    with pytest.raises(accelerator.AcceleratorUnusable, match="no CUDA GPU visible"):
        with scoringrun.rerun_guard(env, "the accelerator check", str(tmp_path / "out")):
            accelerator.require_usable_gpu(env, "auto", gpu(None))
    with pytest.raises(commitrun.CommitRunFailed, match="all 2 tasks"):
        with scoringrun.rerun_guard(env, "the commit-run checks", str(tmp_path / "out")):
            commitrun.check_commit_run(env, errored, None)
    assert "ERROR in" not in capsys.readouterr().out


def test_quick_score_line_counts_only_the_tasks_tried():
    records = [{"id": "a", "status": "ok", "correct": [True]}, {"id": "b", "status": "ok", "correct": [True, False]},
               {"id": "c", "status": "fallback", "reason": "quick commit run", "correct": [False]}]
    assert commitrun.quick_score_line(records).startswith("quick tasks solved 1 of 2 (test outputs 2 of 3;")
    assert "WARNING" in commitrun.quick_score_line([dict(records[1])])
    assert commitrun.quick_score_line([{"id": "a", "status": "ok", "correct": None}]) is None  # no solutions: no line


def test_two_competitions_fail_the_commit_run_and_a_missing_one_names_its_slug(tmp_path):
    scoring = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_IS_COMPETITION_RERUN": "1"}, input_root=str(tmp_path))
    with pytest.raises(inputs.InputNotFound, match="competition 'arc-prize-2026'.*accept the rules.*--competition <slug>"):
        inputs.find_challenges(str(tmp_path), competition="arc-prize-2026")
    ours = touch(os.path.join(tmp_path, "competitions", "arc-prize-2026", inputs.CHALLENGES_FILE))
    touch(os.path.join(tmp_path, "datasets", "someone", "arc-copy", inputs.CHALLENGES_FILE))  # a copy: no competition
    assert inputs.competition_mounts(str(tmp_path)) == {"arc-prize-2026": ours}
    assert commitrun.check_competitions(commit_env(tmp_path), str(tmp_path), "arc-prize-2026") is None
    assert "built for competition 'arc-prize-2025' but 'arc-prize-2026' is attached" in commitrun.check_competitions(
        commit_env(tmp_path), str(tmp_path), "arc-prize-2025")  # said, not raised: its test file is the one there
    touch(os.path.join(tmp_path, "competitions", "arc-prize-2025", inputs.CHALLENGES_FILE))
    with pytest.raises(commitrun.CompetitionMismatch, match="2 competitions are attached .arc-prize-2025, arc-prize-2026."):
        commitrun.check_competitions(commit_env(tmp_path), str(tmp_path), "arc-prize-2026")
    assert "2 competitions" in commitrun.check_competitions(scoring, str(tmp_path), "arc-prize-2026")  # warned


def test_other_challenges_files_are_named(tmp_path):
    ours = touch(os.path.join(tmp_path, "competitions", "arc-prize-2026", inputs.CHALLENGES_FILE))
    theirs = touch(os.path.join(tmp_path, "competitions", "arc-prize-2025", inputs.CHALLENGES_FILE))
    assert inputs.find_challenges(str(tmp_path), competition="arc-prize-2026") == ours
    assert inputs.other_challenges(str(tmp_path), ours) == [theirs]


# --- the scoring rerun never raises -----------------------------------------------------------------

def test_rerun_guard_logs_on_the_scoring_run_and_raises_elsewhere(tmp_path, capsys):
    scoring = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_IS_COMPETITION_RERUN": "1"}, input_root=str(tmp_path))
    with scoringrun.rerun_guard(scoring, "the run", str(tmp_path / "out")):
        raise RuntimeError("worker 0 died")
    assert "ERROR in the run on the scoring run" in capsys.readouterr().out
    assert "RuntimeError: worker 0 died" in (tmp_path / "out" / "run.log").read_text()
    for env in (commit_env(tmp_path), E.detect({}, input_root=str(tmp_path / "absent"), modules={})):
        with pytest.raises(RuntimeError, match="worker 0 died"):
            with scoringrun.rerun_guard(env, "the run", str(tmp_path / "out")):
                raise RuntimeError("worker 0 died")


def test_dead_workers_are_relaunched_with_resume_on_one_gpu_fewer_while_budget_remains(capsys):
    """torchrun stops every worker when one dies: the scoring rerun starts them again with --resume and the budget
    left, one GPU fewer each time, down to one process, until a start finishes or the budget is spent."""
    now = [0.0]
    started = []

    def runner(cmd, check=True):
        assert check is False  # the scoring rerun never raises on a worker's status
        started.append(cmd)
        now[0] += 1000.0  # each start runs 1000 s of the budget
        return codes.pop(0)

    command = launch.relaunch_commands("/k/c.yaml", ["model.path=/m"], "/out", solve_limit=None)
    codes = [137, 1, 0]
    runs = launch.supervise_workers(command, 4, 7200.0, min_seconds=300.0, clock=lambda: now[0], runner=runner)
    assert [(r.workers, r.budget_seconds, r.returncode) for r in runs] == [(4, None, 137), (3, 6200.0, 1), (2, 5200.0, 0)]
    assert "--nproc-per-node=4" in started[0] and "--resume" not in started[0] and "budget.seconds=6200" not in started[0]
    assert "--nproc-per-node=3" in started[1] and started[1][-1] == "--resume" and "budget.seconds=6200" in started[1]
    assert "relaunching 3 worker(s) with --resume, 6200 s of budget left" in capsys.readouterr().out
    # down to one process (no torchrun), and no start once less than min_seconds is left
    now[0], started[:], codes = 0.0, [], [137, 137, 137, 137]
    runs = launch.supervise_workers(command, 2, 2200.0, min_seconds=300.0, clock=lambda: now[0], runner=runner)
    assert [r.workers for r in runs] == [2, 1] and len(started) == 2  # 200 s left after the second: no third start
    assert started[1][:4] == [sys.executable, "-m", "arc_ttt", "run"] and started[1][-1] == "--resume"
    now[0], started[:], codes = 0.0, [], [137] * 5
    runs = launch.supervise_workers(command, 2, 1e6, min_seconds=300.0, clock=lambda: now[0], runner=runner)
    assert [r.workers for r in runs] == [2, 1, 1]  # workers + 1 starts at most: a run that always fails ends


def test_a_killed_worker_fails_only_when_asked_and_read_log_names_the_file(tmp_path):
    killed = [sys.executable, "-c", "raise SystemExit(137)"]  # what torchrun returns when the host kills a worker
    assert launch.run_workers(killed, check=False) == 137
    with pytest.raises(subprocess.CalledProcessError):
        launch.run_workers(killed)
    with pytest.raises(FileNotFoundError, match="log.json"):
        launch.read_log(str(tmp_path))
    touch(str(tmp_path / "log.json"), "{\"summary\": ")  # cut by a kill
    with pytest.raises(FileNotFoundError, match="log.json"):
        launch.read_log(str(tmp_path))


def test_finalize_submission_rewrites_an_invalid_file_from_the_journals(tmp_path, challenges):
    from arc_ttt.core import journal
    from arc_ttt.core.records import TaskRecord
    from arc_ttt.core.submission import validate_submission

    c, _, raw = challenges
    out = tmp_path / "out"
    scoringrun.write_fallback_submission(str(c), str(out / "submission.json"))
    assert scoringrun.finalize_submission(str(c), str(out)).startswith("submission.json valid")
    first = next(iter(raw))
    answer = [[[7]], [[8]]]
    journal.append_journal(str(out / "journal.rank1.jsonl"),
                           TaskRecord(first, status="ok", attempts=[answer] * len(raw[first]["test"])))
    for broken in ("{\"cut", None):  # cut by a kill, then deleted
        if broken is None:
            os.unlink(out / "submission.json")
        else:
            (out / "submission.json").write_text(broken)
        line = scoringrun.finalize_submission(str(c), str(out))
        assert "rewritten from the journals, 1 of 4 tasks answered" in line and "STILL" not in line, line
        sub = json.loads((out / "submission.json").read_text())
        assert validate_submission(raw, sub) == [] and sub[first][0] == {"attempt_1": [[7]], "attempt_2": [[8]]}


# --- the bundle's record and the model it ships ------------------------------------------------------

def test_a_stale_code_dataset_fails_the_commit_run(tmp_path):
    touch(str(tmp_path / "code" / "BUILD.json"), json.dumps({"commit": "old123"}))
    src = str(tmp_path / "code" / "src")
    build = commitrun.read_build(src)
    assert build == {"commit": "old123"} and commitrun.read_build(str(tmp_path / "none" / "src")) is None
    with pytest.raises(commitrun.BundleMismatch, match="'old123' but this kernel was built from 'new456'"):
        commitrun.check_build(commit_env(tmp_path), build, "new456")
    scoring = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_IS_COMPETITION_RERUN": "1"}, input_root=str(tmp_path))
    assert "stale" in commitrun.check_build(scoring, build, "new456")  # warned, never raised
    assert commitrun.check_build(commit_env(tmp_path), build, "old123") is None
    assert commitrun.check_build(commit_env(tmp_path), build, None) is None  # a notebook run by hand names no commit
    assert "no readable BUILD.json" in commitrun.build_problem(None, "new456")


def v5_folder(folder, *, portable=False, card=None, demo=False):
    """A model folder's JSON files as transformers 5 writes them (or after make_portable)."""
    config = {"architectures": ["LlamaForCausalLM"], "transformers_version": "5.23.0",
              "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}}
    tok = {"tokenizer_class": "TokenizersBackend", "backend": "tokenizers"}
    if portable:
        config["rope_theta"], tok = 100000.0, {"tokenizer_class": "PreTrainedTokenizerFast"}
    touch(os.path.join(folder, "config.json"), json.dumps(config))
    touch(os.path.join(folder, "tokenizer_config.json"), json.dumps(tok))
    touch(os.path.join(folder, "model.safetensors"), "")
    if card is not None:
        touch(os.path.join(folder, "finetune.json"), json.dumps(card))
    touch(os.path.join(folder, "merged_adapter.sha256"), "abc\n")  # a merge of some adapter
    if demo:
        touch(os.path.join(folder, "ARC_TTT_DEMO_MODEL.txt"), "demo\n")
    return str(folder)


def test_model_report_names_the_model_and_fails_the_commit_run_on_an_unreadable_folder(tmp_path):
    raw = v5_folder(tmp_path / "raw")
    old = {"version": "4.57.1", "has_class": lambda name: name != "TokenizersBackend"}
    with pytest.raises(commitrun.BundleMismatch, match="no top-level rope_theta.*TokenizersBackend"):
        commitrun.model_report(commit_env(tmp_path), raw, "kit", "model.format", **old)
    scoring = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_IS_COMPETITION_RERUN": "1"}, input_root=str(tmp_path))
    lines, problem = commitrun.model_report(scoring, raw, "kit", "model.format", **old)
    assert "default RoPE base" in problem and "prompt format used: kit (model.format); transformers here: 4.57.1" in "\n".join(lines)
    assert commitrun.model_report(commit_env(tmp_path), raw, "kit", "x", version="5.23.0")[1] is None  # 5.x reads its own
    portable = v5_folder(tmp_path / "portable", portable=True)
    assert commitrun.model_report(commit_env(tmp_path), portable, "kit", "x", **old)[1] is None
    demo = v5_folder(tmp_path / "demo", portable=True, card={"base_model": {"path": "models/smollm2-135m"}}, demo=True)
    with pytest.raises(commitrun.DemoModelRefused, match="demonstration model.*ALLOW_DEMO = True"):
        commitrun.model_report(commit_env(tmp_path), demo, "kit", "x", **old)  # not asked for: the commit run stops
    assert commitrun.model_report(scoring, demo, "kit", "x", **old)[0]  # the scoring run only says it
    lines, _ = commitrun.model_report(commit_env(tmp_path), demo, "kit", "x", allow_demo=True, **old)
    assert "DEMONSTRATION" in lines[1] and any(line.startswith("WARNING: this is the kit's demonstration") for line in lines)
    tuned = v5_folder(tmp_path / "tuned", portable=True, card={"base_model": {"path": "/m/Qwen3-4B"}, "format": "nvarc"})
    assert "fine-tuned from /m/Qwen3-4B" in commitrun.model_report(commit_env(tmp_path), tuned, "nvarc", "x", **old)[0][1]
    # a user's own fine-tune of the demo's base is not the demo: its merge stamp is of another adapter
    own = v5_folder(tmp_path / "own", portable=True, card={"base_model": {"path": "models/smollm2-135m"}})
    assert "fine-tuned from models/smollm2-135m" in commitrun.model_report(commit_env(tmp_path), own, "kit", "x", **old)[0][1]


def test_the_prompt_format_and_where_it_came_from(tmp_path):
    folder = v5_folder(tmp_path / "m")
    assert commitrun.resolve_format("nvarc", folder) == ("nvarc", "model.format")
    assert commitrun.resolve_format("auto", folder)[1].startswith("GUESSED")
    touch(os.path.join(folder, "arc_format.json"), json.dumps({"format": "architects"}))
    assert commitrun.resolve_format("auto", folder) == ("architects", "the model folder's m/arc_format.json")
    assert "model.format=marc" in E.run_overrides(E.detect({}, input_root=str(tmp_path / "x"), modules={}),
                                                 format_name="marc")


def test_no_gpu_names_the_reasons_outside_the_notebook(tmp_path):
    with pytest.raises(accelerator.AcceleratorUnusable, match="phone number.*weekly GPU quota"):
        accelerator.require_usable_gpu(commit_env(tmp_path), "auto", gpu(None))
    with pytest.raises(ValueError, match="retired"):
        accelerator.check_machine_shape("NvidiaTeslaP100")
    # kaggle_kernel/README.md's list
    assert {"NvidiaTeslaA100", "NvidiaTeslaT4Highmem", "NvidiaRtxPro6000"} <= set(accelerator.MACHINE_SHAPES)
