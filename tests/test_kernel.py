"""The Kaggle bundle: structure and metadata, then the vendored copy run as Kaggle would run it."""
import importlib.metadata
import json
import os
import shutil

import nbformat
import pytest

from arc_ttt.delivery import bundle as K
from arc_ttt.delivery import wheelhouse as W
from arc_ttt.core.submission import validate_submission
from test_notebook import FAST, execute, needs_pipeline, stream_text, tiny_model_dir, two_tasks, venv_kernel  # noqa: F401
from test_wheels import fake_wheel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "kaggle.yaml")
needs_config = pytest.mark.skipif(not os.path.exists(CONFIG), reason="configs/kaggle.yaml not written yet")


@pytest.fixture(scope="module")
def installed_wheelhouse(tmp_path_factory):
    """A wheelhouse pinned at the versions this venv already has: the notebook's offline pip install is then a
    real run of the same command that changes nothing here (the wheels are minimal fakes with real METADATA)."""
    d = tmp_path_factory.mktemp("wheelhouse")
    lines = []
    for req in W.read_requirements(os.path.join(ROOT, "wheels", "requirements-kaggle.txt")):
        version = importlib.metadata.version(req.name)
        fake_wheel(str(d), req.name, version)
        lines.append(f"{req.name}=={version}")
    (d / "reqs.txt").write_text("\n".join(lines) + "\n")
    W.write_manifest(str(d), str(d / "reqs.txt"))
    os.remove(d / "reqs.txt")
    return str(d)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, tiny_model_dir, installed_wheelhouse):  # noqa: F811
    spec = K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path_factory.mktemp("build") / "kaggle"),
                        owner="tester", wheelhouse=installed_wheelhouse)
    return K.build_bundle(spec)


def kernel_meta(**changes):
    meta = {"id": "me/arc-ttt-submission", "title": "arc-ttt submission", "code_file": "nb.ipynb",
            "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": True,
            "enable_tpu": False, "enable_internet": False, "dataset_sources": ["me/arc-ttt-code"],
            "competition_sources": ["arc-prize-2025"], "kernel_sources": [], "model_sources": []}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not ...}


# --- metadata validation -----------------------------------------------------------------------

def test_kernel_metadata_validation(tmp_path):
    (tmp_path / "nb.ipynb").write_text("{}")
    folder = str(tmp_path)
    assert K.validate_kernel_metadata(kernel_meta(), folder) == []
    bad = {
        "enable_internet": kernel_meta(enable_internet=...),  # absent: the CLI would turn internet on
        "must be false": kernel_meta(enable_internet=True),
        "not 'owner/slug'": kernel_meta(id="arc-ttt-submission"),
        "would make a new kernel": kernel_meta(title="ARC TTT kernel"),
        "5-50 characters": kernel_meta(title="abc"),
        "is not in": kernel_meta(code_file="missing.ipynb"),
        "no competition": kernel_meta(competition_sources=[]),
        "owner/model/framework": kernel_meta(model_sources=["me/smollm2"]),
    }
    for needle, meta in bad.items():
        problems = K.validate_kernel_metadata(meta, folder)
        assert any(needle in p for p in problems), (needle, problems)


def test_dataset_metadata_validation(tmp_path):
    (tmp_path / "w.whl").write_text("")
    good = K.dataset_metadata("me", "arc-ttt-wheels", "ARC TTT kit wheels")
    assert K.validate_dataset_metadata(good, str(tmp_path)) == []
    assert any("6-50" in p for p in K.validate_dataset_metadata(dict(good, title="ARC"), str(tmp_path)))
    assert any("6-50" in p for p in K.validate_dataset_metadata(dict(good, title="x" * 51), str(tmp_path)))
    assert any("slug" in p for p in K.validate_dataset_metadata(dict(good, id="me/Arc_TTT"), str(tmp_path)))
    assert any("licenses" in p for p in K.validate_dataset_metadata(dict(good, licenses=[]), str(tmp_path)))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert any("no files" in p for p in K.validate_dataset_metadata(good, str(empty)))


def test_slugify_matches_kaggle():
    assert K.slugify("arc-ttt submission") == "arc-ttt-submission"
    assert K.slugify("  ARC: TTT  (v2) ") == "arc-ttt-v2"


# --- the bundle ----------------------------------------------------------------------------------

@needs_config
def test_bundle_structure_and_metadata(bundle, tiny_model_dir, installed_wheelhouse):  # noqa: F811
    root = bundle.root
    assert sorted(bundle.folders) == ["code", "kernel", "model", "wheels"]
    # code: the package vendored, every config, the commit
    code = bundle.folders["code"]
    assert os.path.exists(os.path.join(code, "src", "arc_ttt", "__init__.py"))
    assert os.path.exists(os.path.join(code, "src", "arc_ttt", "delivery", "environment.py"))
    assert not [d for d, _, _ in os.walk(code) if d.endswith("__pycache__")]
    assert sorted(os.listdir(os.path.join(code, "configs"))) == sorted(
        f for f in os.listdir(os.path.join(ROOT, "configs")) if f.endswith(".yaml"))
    with open(os.path.join(code, "BUILD.json")) as f:
        assert json.load(f)["commit"] == bundle.commit == K.git_commit() != "unknown"
    # wheels: flat, as built, manifest still matching
    wheels = bundle.folders["wheels"]
    assert all(os.path.isfile(os.path.join(wheels, f)) for f in os.listdir(wheels))
    assert W.verify_manifest(wheels) == []
    assert sorted(f for f in os.listdir(wheels) if f.endswith(".whl")) == sorted(
        f for f in os.listdir(installed_wheelhouse) if f.endswith(".whl"))
    # model: the same files
    assert sorted(f for f in os.listdir(bundle.folders["model"]) if f != K.DATASET_META) == sorted(os.listdir(tiny_model_dir))
    # every metadata file passes the builder's own validation, and the ids line up
    for folder in bundle.folders.values():
        assert K.validate_folder(folder) == []
    with open(os.path.join(bundle.folders["kernel"], K.KERNEL_META)) as f:
        text = f.read()
    meta = json.loads(text)
    assert '"enable_internet": false' in text and meta["enable_gpu"] is True
    assert meta["dataset_sources"] == ["tester/arc-ttt-code", "tester/arc-ttt-wheels", "tester/arc-ttt-model"]
    assert meta["competition_sources"] == ["arc-prize-2025"] and meta["id"] == "tester/arc-ttt-submission"
    # the kernel's notebook defaults to the bundle's config and names the commit
    nb = nbformat.read(os.path.join(bundle.folders["kernel"], meta["code_file"]), as_version=4)
    nbformat.validate(nb)
    assert "CONFIG = 'kaggle'" in nb.cells[1].source
    assert bundle.commit in nb.cells[0].source
    # publish commands: sub-folders need -r tar; the kernel goes last
    with open(os.path.join(root, "publish.sh")) as f:
        script = f.read()
    assert script.count("kaggle datasets create -p") == 3 and script.count("-r tar") == 6
    assert bundle.commands[-1] == f"kaggle kernels push -p {bundle.folders['kernel']}"
    assert f"-m 'arc-ttt-kit {bundle.commit}'" in script


@needs_config
def test_bundle_refuses_a_tampered_wheelhouse(tmp_path, tiny_model_dir, installed_wheelhouse):  # noqa: F811
    house = tmp_path / "house"
    shutil.copytree(installed_wheelhouse, house)
    fake_wheel(str(house), "intruder", "1.0")
    spec = K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path / "out"), wheelhouse=str(house))
    with pytest.raises(K.MetadataError, match="intruder"):
        K.build_bundle(spec)
    with pytest.raises(FileNotFoundError, match="make wheels"):
        K.build_bundle(K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path / "out"),
                                    wheelhouse=str(tmp_path / "none")))
    with pytest.raises(ValueError, match="exactly one"):
        K.build_bundle(K.BundleSpec(config=CONFIG, model=None, out=str(tmp_path / "out")))


@needs_config
def test_bundle_with_a_kaggle_model_instead_of_a_dataset(tmp_path, installed_wheelhouse):
    source = "tester/smollm2/transformers/135m/1"
    b = K.build_bundle(K.BundleSpec(config=CONFIG, model=None, model_source=source, out=str(tmp_path / "k"),
                                    owner="tester", wheelhouse=installed_wheelhouse, machine_shape="NvidiaL4"))
    assert "model" not in b.folders
    with open(os.path.join(b.folders["kernel"], K.KERNEL_META)) as f:
        meta = json.load(f)
    assert meta["model_sources"] == [source] and meta["machine_shape"] == "NvidiaL4"
    assert meta["dataset_sources"] == ["tester/arc-ttt-code", "tester/arc-ttt-wheels"]


def test_cli_kernel_build_reports_errors(tmp_path, capsys):
    from arc_ttt.cli import main

    assert main(["kernel", "build", "--config", str(tmp_path / "nope.yaml"), "--model", str(tmp_path)]) == 2
    assert "nope.yaml" in capsys.readouterr().err


# --- the vendored copy, run as Kaggle runs it -------------------------------------------------

@pytest.mark.slow
@needs_config
@needs_pipeline
@pytest.mark.parametrize("rerun", [True, False], ids=["scoring-rerun", "commit-run"])
def test_vendored_bundle_runs_two_tasks_on_a_fake_kaggle(tmp_path, monkeypatch, bundle, two_tasks, venv_kernel,  # noqa: F811
                                                         rerun):
    """The kernel's notebook on a fake /kaggle/input holding the bundle's datasets: the package comes from the
    code dataset (not this repo's src/), the wheels install offline, inputs are found by searching. The commit
    run follows configs/kaggle.yaml's `commit_run: quick` (here 1 task); the scoring rerun solves every task."""
    challenges_path, _, challenges = two_tasks
    inputs = tmp_path / "input"
    shutil.copy(challenges_path, _mkdir(inputs / "competitions" / "arc-prize-2025") / "arc-agi_test_challenges.json")
    for key in ("code", "wheels", "model"):
        shutil.copytree(bundle.folders[key], inputs / "datasets" / "tester" / f"arc-ttt-{key}")
    working = _mkdir(tmp_path / "working")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    if rerun:
        monkeypatch.setenv("KAGGLE_IS_COMPETITION_RERUN", "True")
    else:
        monkeypatch.delenv("KAGGLE_IS_COMPETITION_RERUN", raising=False)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    notebook = os.path.join(bundle.folders["kernel"], "arc_ttt_submission.ipynb")
    nb = execute(notebook, str(tmp_path / "out.ipynb"), {
        "INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working), "BUDGET_SECONDS": 600,
        "OVERRIDES": [*FAST, "budget.decode_seconds_per_token=2e-3", "kaggle.quick_tasks=1"]}, working)
    text = stream_text(nb)
    vendored = os.path.join(inputs, "datasets", "tester", "arc-ttt-code", "src", "arc_ttt")
    assert f"from {vendored}\n" in text, text  # not the repo's src/arc_ttt
    assert f"kind='kaggle', competition_rerun={rerun}" in text
    assert "installing offline from" in text
    assert os.path.join("arc-ttt-code", "configs", "kaggle.yaml") in text
    assert ("commit_run=quick" in text) is not rerun
    with open(working / "submission.json") as f:
        assert validate_submission(challenges, json.load(f)) == []  # complete either way
    with open(working / "log.json") as f:
        tasks = json.load(f)["tasks"]
    trained = [t["id"] for t in tasks if t.get("steps", 0) > 0]
    assert len(tasks) == 2 and len(trained) == (2 if rerun else 1), tasks


def _mkdir(path):
    os.makedirs(path, exist_ok=True)
    return path
