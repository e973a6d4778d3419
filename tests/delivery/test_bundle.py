"""The Kaggle bundle: structure and metadata, then the vendored copy run as Kaggle would run it."""
import dataclasses
import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile

import nbformat
import pytest

from arc_ttt.core.errors import MissingInputError, UserError
from arc_ttt.delivery import bundle as K
from arc_ttt.delivery import metadata as M
from arc_ttt.delivery import wheelhouse as W
from arc_ttt.core.submission import validate_submission
from arc_ttt.core.tasks import to_kaggle
from conftest import NOTEBOOK_FAST as FAST
from conftest import execute, fake_wheel, stream_text
from conftest import ROOT

CONFIG = os.path.join(ROOT, "configs", "kaggle.yaml")
# The tests' random model reads known answers at about log(vocabulary) nats per token (the character tokenizer's 20:
# about 3), far above formatcheck.NLL_LIMIT: a run that must get past the commit run's format check raises the limit.
RANDOM_READS = 10.0


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
def bundle(tmp_path_factory, tiny_model_dir, installed_wheelhouse):
    spec = K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path_factory.mktemp("build") / "kaggle"),
                        owner="tester", wheelhouse=installed_wheelhouse, format="kit")
    return K.build_bundle(spec)


def kernel_meta(**changes):
    meta = {"id": "me/arc-ttt-submission", "title": "arc-ttt submission", "code_file": "nb.ipynb",
            "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": True,
            "enable_tpu": False, "enable_internet": False, "dataset_sources": ["me/arc-ttt-code"],
            "competition_sources": ["arc-prize-2025"], "kernel_sources": [], "model_sources": [],
            "machine_shape": "NvidiaL4X1"}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not ...}


# --- metadata validation -----------------------------------------------------------------------

def test_kernel_metadata_validation(tmp_path):
    (tmp_path / "nb.ipynb").write_text("{}")
    folder = str(tmp_path)
    assert M.validate_kernel_metadata(kernel_meta(), folder) == []
    bad = {
        "enable_internet": kernel_meta(enable_internet=...),  # absent: the CLI would turn internet on
        "must be false": kernel_meta(enable_internet=True),
        "not 'owner/slug'": kernel_meta(id="arc-ttt-submission"),
        "would make a new kernel": kernel_meta(title="ARC TTT kernel"),
        "5-50 characters": kernel_meta(title="abc"),
        "is not in": kernel_meta(code_file="missing.ipynb"),
        "no competition": kernel_meta(competition_sources=[]),
        "owner/model/framework": kernel_meta(model_sources=["me/smollm2"]),
        "must be an integer": kernel_meta(model_sources=["me/smollm2/transformers/135m/v1"]),
        "without machine_shape": kernel_meta(machine_shape=...),  # Kaggle's default GPU: a P100
        "'NvidiaP100' is not one of": kernel_meta(machine_shape="NvidiaP100"),
        "5-50 characters of a-z": kernel_meta(id="me/abcd", title="abcd "),  # the CLI wants >= 5
        "placeholder": kernel_meta(id="your-kaggle-username/arc-ttt-submission"),
    }
    for needle, meta in bad.items():
        problems = M.validate_kernel_metadata(meta, folder)
        assert any(needle in p for p in problems), (needle, problems)


def test_dataset_metadata_validation(tmp_path):
    (tmp_path / "w.whl").write_text("")
    good = M.dataset_metadata("me", "arc-ttt-wheels", "ARC TTT kit wheels")
    assert M.validate_dataset_metadata(good, str(tmp_path)) == []
    assert any("6-50" in p for p in M.validate_dataset_metadata(dict(good, title="ARC"), str(tmp_path)))
    assert any("6-50" in p for p in M.validate_dataset_metadata(dict(good, title="x" * 51), str(tmp_path)))
    assert any("slug" in p for p in M.validate_dataset_metadata(dict(good, id="me/Arc_TTT"), str(tmp_path)))
    assert any("licenses" in p for p in M.validate_dataset_metadata(dict(good, licenses=[]), str(tmp_path)))
    two = [{"name": "apache-2.0"}, {"name": "CC0-1.0"}]
    assert any("exactly one" in p for p in M.validate_dataset_metadata(dict(good, licenses=two), str(tmp_path)))
    assert any("6-50 characters of" in p for p in M.validate_dataset_metadata(dict(good, id="me/arc-t"), str(tmp_path)))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert any("no files" in p for p in M.validate_dataset_metadata(good, str(empty)))


def test_slugify_matches_kaggle():
    assert M.slugify("arc-ttt submission") == "arc-ttt-submission"
    assert M.slugify("  ARC: TTT  (v2) ") == "arc-ttt-v2"


# --- the bundle ----------------------------------------------------------------------------------

def test_bundle_structure_and_metadata(bundle, tiny_model_dir, installed_wheelhouse):
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
        build = json.load(f)
    assert build["commit"] == bundle.commit == K.git_commit() != "unknown"
    assert build["format"] == bundle.format == "kit" and build["format_source"] == "--format"
    assert build["model"]["saved_with_transformers"] == importlib.metadata.version("transformers")
    assert build["model"]["kind"] == "base" and build["builder_transformers"] == importlib.metadata.version("transformers")
    # wheels: flat, as built, manifest still matching
    wheels = bundle.folders["wheels"]
    assert all(os.path.isfile(os.path.join(wheels, f)) for f in os.listdir(wheels))
    assert W.verify_manifest(wheels) == []
    assert sorted(f for f in os.listdir(wheels) if f.endswith(".whl")) == sorted(
        f for f in os.listdir(installed_wheelhouse) if f.endswith(".whl"))
    # model: the same files, arc_format.json naming the format, config and tokenizer written portably (the source
    # folder, saved by transformers 5 as it is, keeps its own files: the weights are hard links)
    model = bundle.folders["model"]
    assert sorted(f for f in os.listdir(model) if f != M.DATASET_META) == sorted([*os.listdir(tiny_model_dir), "arc_format.json"])
    with open(os.path.join(model, "arc_format.json")) as f:
        assert json.load(f) == {"format": "kit"}
    with open(os.path.join(model, "config.json")) as f, open(os.path.join(tiny_model_dir, "config.json")) as g:
        shipped, source = json.load(f), json.load(g)
    assert shipped["rope_theta"] == shipped["rope_parameters"]["rope_theta"] and "rope_theta" not in source
    with open(os.path.join(model, "tokenizer_config.json")) as f:
        assert json.load(f)["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert any("prompt format: kit (--format)" in line for line in bundle.model_lines)
    # every metadata file passes the builder's own validation, and the ids line up
    for folder in bundle.folders.values():
        assert M.validate_folder(folder) == []
    with open(os.path.join(bundle.folders["kernel"], M.KERNEL_META)) as f:
        text = f.read()
    meta = json.loads(text)
    assert '"enable_internet": false' in text and meta["enable_gpu"] is True
    assert meta["dataset_sources"] == ["tester/arc-ttt-code", "tester/arc-ttt-wheels", "tester/arc-ttt-model"]
    assert meta["competition_sources"] == ["arc-prize-2025"] and meta["id"] == "tester/arc-ttt-submission"
    assert meta["machine_shape"] == "NvidiaL4X1"  # from configs/kaggle.yaml's kaggle.machine_shape
    # licences per dataset, from kaggle_kernel/templates/
    licences, descriptions = {}, {}
    for key in ("code", "wheels", "model"):
        with open(os.path.join(bundle.folders[key], M.DATASET_META)) as f:
            meta_k = json.load(f)
        licences[key], descriptions[key] = meta_k["licenses"], meta_k.get("description", "")
    assert licences == {"code": [{"name": "apache-2.0"}], "wheels": [{"name": "other"}],
                        "model": [{"name": "apache-2.0"}]}
    wheel_files = sorted(f for f in os.listdir(wheels) if f.endswith(".whl"))
    assert all(f"- {w}: " in descriptions["wheels"] for w in wheel_files)  # "other": the description says which
    # the kernel's notebook: config and competition set through the parameters cell, the commit named
    nb = nbformat.read(os.path.join(bundle.folders["kernel"], meta["code_file"]), as_version=4)
    nbformat.validate(nb)
    namespace: dict = {}
    exec(nb.cells[1].source, namespace)
    assert namespace["CONFIG"] == "kaggle" and namespace["COMPETITION"] == "arc-prize-2025"
    assert namespace["FORMAT"] == "kit" and namespace["BUILD_COMMIT"] == bundle.commit
    assert namespace["ALLOW_DEMO"] is False  # not the demonstration model: the commit run would refuse one
    # each dataset's fingerprint, recomputed from what was written, in BUILD.json and in the kernel's parameters
    from arc_ttt.delivery.fingerprint import code_fingerprint, folder_fingerprint

    assert bundle.fingerprints == {"code": code_fingerprint(os.path.join(code, "src")),
                                   "wheels": folder_fingerprint(wheels), "model": folder_fingerprint(model)}
    assert build["fingerprints"] == namespace["BUILD_FINGERPRINTS"] == bundle.fingerprints
    assert bundle.commit in nb.cells[0].source
    # publish.sh: sub-folders need -r tar; each dataset once; the kernel goes last
    with open(os.path.join(root, "publish.sh")) as f:
        script = f.read()
    assert script.count("kaggle datasets create -p") == 1 and script.count("-r tar") == 2  # inside publish()
    assert [c.split()[0] for c in bundle.commands] == ["publish"] * 3 + ["wait_ready"] * 3 + ["checked"]
    assert bundle.commands[-1] == f"checked kaggle kernels push -p {bundle.folders['kernel']}"
    assert f"-m 'arc-ttt-kit {bundle.commit}'" in script
    # every file readable by others (Kaggle's uploader, other users of a shared machine)
    modes = {os.path.relpath(os.path.join(d, f), root): stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode)
             for d, _, files in os.walk(root) for f in files}
    assert all(m & 0o444 == 0o444 for m in modes.values()), modes


def test_bundle_refuses_a_tampered_wheelhouse(tmp_path, tiny_model_dir, installed_wheelhouse):
    house = tmp_path / "house"
    shutil.copytree(installed_wheelhouse, house)
    fake_wheel(str(house), "intruder", "1.0")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "older.txt").write_text("the bundle built before")
    spec = K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path / "out"), wheelhouse=str(house),
                        owner="tester", format="kit")
    with pytest.raises(M.MetadataError, match="intruder"):
        K.build_bundle(spec)
    assert (tmp_path / "out" / "older.txt").exists()  # refused before the older bundle is removed
    with pytest.raises(MissingInputError, match="make wheels"):
        K.build_bundle(K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path / "out"), owner="tester",
                                    wheelhouse=str(tmp_path / "none"), format="kit"))
    with pytest.raises(UserError, match="exactly one"):
        K.build_bundle(K.BundleSpec(config=CONFIG, model=None, out=str(tmp_path / "out")))
    with pytest.raises(UserError, match="NvidiaP100"):
        K.build_bundle(K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path / "out"), owner="tester",
                                    wheelhouse=installed_wheelhouse, machine_shape="NvidiaP100", format="kit"))


def test_bundle_refuses_what_the_user_named_wrongly(tmp_path, tiny_model_dir, installed_wheelhouse):
    """Each a kit error the CLI prints in one line: a missing config or model folder, a folder without a model, an --out
    that cannot be written."""
    def spec(**kw):
        return K.BundleSpec(**{"config": CONFIG, "model": tiny_model_dir, "out": str(tmp_path / "out"),
                               "owner": "tester", "wheelhouse": installed_wheelhouse, "format": "kit", **kw})

    with pytest.raises(MissingInputError, match="config .*nope.yaml not found"):
        K.build_bundle(spec(config=str(tmp_path / "nope.yaml")))
    with pytest.raises(MissingInputError, match="missing is not a model folder: it does not exist"):
        K.build_bundle(spec(model=str(tmp_path / "missing")))
    with pytest.raises(UserError, match="is not a model folder: it holds neither config.json"):
        K.build_bundle(spec(model=str(tmp_path)))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match="a-file: cannot write the bundle there.*another --out"):
        K.build_bundle(spec(out=str(tmp_path / "a-file")))


def test_a_grid_source_travels_in_the_code_dataset_and_the_notebook_finds_it(tmp_path, tiny_model_dir,
                                                                              installed_wheelhouse, grid_model_dir):
    """A config whose candidate sources name grid: its grid model is checked before anything is written, copied into
    the code dataset as grid_model/, and found there on Kaggle (the run's inference.grid.path override)."""
    import yaml  # only this test writes a config

    from arc_ttt.core.config import ConfigError
    from arc_ttt.delivery import environment as E
    from arc_ttt.delivery.inputs import GRID_CARD, find_grid_model
    from arc_ttt.core.gridconfig import MODEL_CARD

    assert GRID_CARD == MODEL_CARD
    (tmp_path / "configs").mkdir()
    tree = yaml.safe_load(open(CONFIG, encoding="utf-8"))
    tree.setdefault("inference", {}).update({"sources": ["llm", "grid"], "grid": {"path": str(tmp_path / "none")}})
    config = tmp_path / "configs" / "kaggle-grid.yaml"
    config.write_text(yaml.safe_dump(tree))
    spec = K.BundleSpec(config=str(config), model=tiny_model_dir, out=str(tmp_path / "out"), owner="tester",
                        wheelhouse=installed_wheelhouse, format="kit")
    with pytest.raises(ConfigError, match="inference.grid.path: .*none holds no grid model"):
        K.build_bundle(spec)
    assert not (tmp_path / "out").exists()
    tree["inference"]["grid"]["path"] = grid_model_dir
    config.write_text(yaml.safe_dump(tree))
    bundle = K.build_bundle(dataclasses.replace(spec))  # a new spec: a spec reads its config once
    carried = os.path.join(bundle.folders["code"], "grid_model")
    assert sorted(os.listdir(carried)) == sorted(os.listdir(grid_model_dir))
    assert find_grid_model(bundle.folders["code"]) == carried
    shutil.copytree(bundle.folders["code"], tmp_path / "input" / "datasets" / "tester" / "arc-ttt-code")
    shutil.copytree(tiny_model_dir, tmp_path / "input" / "datasets" / "tester" / "arc-ttt-model")
    challenges = tmp_path / "input" / "competitions" / "arc" / "arc-agi_test_challenges.json"
    challenges.parent.mkdir(parents=True)
    challenges.write_text("{}")
    kaggle = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, input_root=str(tmp_path / "input"))
    grid = str(tmp_path / "input" / "datasets" / "tester" / "arc-ttt-code" / "grid_model")
    assert f"inference.grid.path={grid}" in E.run_overrides(kaggle)
    plain = K.build_bundle(dataclasses.replace(spec, config=CONFIG, out=str(tmp_path / "plain")))
    assert find_grid_model(plain.folders["code"]) is None  # a config without grid carries none


def test_bundle_refuses_the_placeholder_owner_and_finds_the_cli_username(tmp_path, monkeypatch, tiny_model_dir,
                                                                         installed_wheelhouse):
    for var in ("KAGGLE_USERNAME", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path / "out"), wheelhouse=installed_wheelhouse,
                        format="kit")
    with pytest.raises(M.MetadataError, match="no Kaggle owner.*kaggle auth login"):
        K.build_bundle(spec)
    with pytest.raises(M.MetadataError, match="no Kaggle owner"):
        K.build_bundle(dataclasses.replace(spec, owner=M.PLACEHOLDER_OWNER))
    os.makedirs(tmp_path / "home" / ".kaggle")
    (tmp_path / "home" / ".kaggle" / "kaggle.json").write_text('{"username": "someone", "key": "x"}')
    assert M.kaggle_owner() == "someone"
    assert M.kaggle_owner({"KAGGLE_USERNAME": "env-user"}) == "env-user"
    assert K.build_bundle(spec).ids["kernel"] == "someone/arc-ttt-submission"


@pytest.mark.e2e
def test_bundle_with_a_kaggle_model_instead_of_a_dataset(tmp_path, installed_wheelhouse):
    source = "tester/smollm2/transformers/135m/1"
    with pytest.raises(M.MetadataError, match=f"Kaggle model {source} and .* model.format: auto.*--format"):
        K.build_bundle(K.BundleSpec(config=CONFIG, model=None, model_source=source, out=str(tmp_path / "k"),
                                    owner="tester", wheelhouse=installed_wheelhouse))
    b = K.build_bundle(K.BundleSpec(config=CONFIG, model=None, model_source=source, out=str(tmp_path / "k"),
                                    owner="tester", wheelhouse=installed_wheelhouse, machine_shape="NvidiaL4",
                                    format="kit"))
    assert "model" not in b.folders
    with open(os.path.join(b.folders["kernel"], M.KERNEL_META)) as f:
        meta = json.load(f)
    assert meta["model_sources"] == [source] and meta["machine_shape"] == "NvidiaL4"
    assert meta["dataset_sources"] == ["tester/arc-ttt-code", "tester/arc-ttt-wheels"]
    with pytest.raises(M.MetadataError, match="must be an integer"):
        K.build_bundle(K.BundleSpec(config=CONFIG, model=None, model_source="tester/smollm2/transformers/135m/latest",
                                    out=str(tmp_path / "k2"), owner="tester", wheelhouse=installed_wheelhouse,
                                    format="kit"))


FAKE_KAGGLE = r"""#!/bin/sh
# A stand-in for the kaggle CLI: logs each call; a dataset "exists" once created (state file = its status).
echo "$*" >> "$FAKE_LOG"
if [ "$1" = "--version" ]; then
  if [ -n "${FAKE_NO_SIX:-}" ]; then echo "ModuleNotFoundError: No module named 'six'" >&2; exit 1; fi
  echo "Kaggle API 2.2.5"; exit 0
fi
state() { echo "$FAKE_STATE/$(echo "$1" | tr / _)"; }
case "$1 $2" in
  "datasets status") if [ -f "$(state "$3")" ]; then cat "$(state "$3")"; else echo "404 - Not Found" >&2; exit 1; fi ;;
  "datasets create"|"datasets version")
    if [ -n "${FAKE_UPLOAD_ERROR:-}" ]; then echo "Dataset version creation error: $FAKE_UPLOAD_ERROR"; exit 0; fi
    id=$(sed -n 's/.*"id": "\(.*\)".*/\1/p' "$4/dataset-metadata.json")
    echo "$FAKE_STATUS" > "$(state "$id")" ;;
  "kernels push") echo "${FAKE_PUSH_OUTPUT:-Kernel version 1 successfully pushed.}" ;;
esac
"""


def _publish(bundle, tmp_path, status="ready", wait=0, upload_error="", push_output="", no_six=False):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "kaggle").write_text(FAKE_KAGGLE)
    (bin_dir / "kaggle").chmod(0o755)
    (tmp_path / "state").mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log),
           "FAKE_STATE": str(tmp_path / "state"), "FAKE_STATUS": status, "WAIT_SECONDS": str(wait),
           "FAKE_UPLOAD_ERROR": upload_error, **({"FAKE_PUSH_OUTPUT": push_output} if push_output else {}),
           **({"FAKE_NO_SIX": "1"} if no_six else {})}
    proc = subprocess.run(["sh", os.path.join(bundle.root, "publish.sh")], env=env, capture_output=True, text=True)
    return proc, [(line.split() + [""])[:2] for line in log.read_text().splitlines()]  # ["--version", ""] too


def test_publish_creates_on_first_publish_versions_after_and_stops_on_failure(bundle, tmp_path):
    proc, calls = _publish(bundle, tmp_path)
    assert proc.returncode == 0, proc.stderr
    uploads = [c for c in calls if c[1] in ("create", "version")]
    assert uploads == [["datasets", "create"]] * 3  # one upload per dataset, not version-then-create
    assert calls[-1] == ["kernels", "push"]
    proc, calls = _publish(bundle, tmp_path)  # published before: a new version of each
    assert proc.returncode == 0 and [c for c in calls if c[1] in ("create", "version")] == [["datasets", "version"]] * 3
    proc, calls = _publish(bundle, tmp_path, status="failed")
    assert proc.returncode != 0 and "processing failed" in proc.stderr and ["kernels", "push"] not in calls
    proc, calls = _publish(bundle, tmp_path, status="running", wait=0)  # bounded: no endless wait
    assert proc.returncode != 0 and "not ready after 0 s" in proc.stderr and ["kernels", "push"] not in calls


def test_publish_stops_on_the_clis_error_text_though_it_exits_0(bundle, tmp_path):
    """kaggle CLI 2.2.5's `datasets create/version` print "... error: ..." and exit 0: a stale dataset would go
    out unnoticed, so publish.sh reads the text."""
    proc, calls = _publish(bundle, tmp_path, upload_error="Invalid license name")
    assert proc.returncode != 0 and "the kaggle CLI reported an error (exit status 0)" in proc.stderr, proc.stderr
    assert "Invalid license name" in proc.stdout + proc.stderr
    assert [c for c in calls if c[1] in ("create", "version")] == [["datasets", "create"]]  # stopped at the first
    assert ["kernels", "push"] not in calls


def test_publish_stops_before_any_upload_when_the_cli_does_not_run(bundle, tmp_path):
    """`pip install kaggle` alone (kaggle 2.2.5) fails on `No module named 'six'`, an undeclared dependency: publish.sh
    runs `kaggle --version` first and says what to install, before it uploads anything."""
    proc, calls = _publish(bundle, tmp_path, no_six=True)
    assert proc.returncode != 0 and calls == [["--version", ""]]
    assert "No module named 'six'" in proc.stderr and "pip install kaggle six" in proc.stderr
    proc, calls = _publish(bundle, tmp_path)
    assert proc.returncode == 0 and calls[0] == ["--version", ""] and "Kaggle API 2.2.5" in proc.stdout


def test_publish_stops_when_the_cli_could_not_attach_the_competition(bundle, tmp_path):
    """kaggle CLI 2.2.5's `kernels push` prints "The following are not valid competition sources ..." (a wrong slug,
    or the rules not accepted) and exits 0: the kernel then runs without the competition's data, so publish.sh stops
    there with what to do instead of saying "pushed"."""
    message = ("The following are not valid competition sources and could not be added to the kernel: "
               "['arc-prize-2099']")
    proc, calls = _publish(bundle, tmp_path, push_output=message)
    assert proc.returncode != 0 and calls[-1] == ["kernels", "push"] and "pushed:" not in proc.stdout
    assert "could not attach a source" in proc.stderr and "arc-prize-2099" in proc.stdout + proc.stderr
    assert "accepted its rules" in proc.stderr and "kaggle.com/competitions/<slug>" in proc.stderr
    proc, _ = _publish(bundle, tmp_path)  # the CLI's usual answer: pushed
    assert proc.returncode == 0 and "pushed: kaggle kernels status tester/arc-ttt-submission" in proc.stdout


def test_the_builder_refuses_to_guess_the_prompt_format_and_says_what_it_ships(tmp_path, tiny_model_dir,
                                                                              installed_wheelhouse, capsys, monkeypatch):
    def spec(model, **kw):
        return K.BundleSpec(**{"config": CONFIG, "model": model, "out": str(tmp_path / "out"), "owner": "tester",
                               "wheelhouse": installed_wheelhouse, **kw})

    with pytest.raises(M.MetadataError, match="has no arc_format.json and .*kaggle.yaml says model.format: auto"):
        K.build_bundle(spec(tiny_model_dir))
    named = tmp_path / "named"  # the tiny model's character tokenizer speaks the kit's format, and only that one
    shutil.copytree(tiny_model_dir, named)
    (named / "arc_format.json").write_text('{"format": "kit"}')
    b = K.build_bundle(spec(str(named)))
    assert (b.format, b.format_source) == ("kit", "the model folder's arc_format.json")  # the folder names it
    nvarc = os.path.join(ROOT, "configs", "kaggle-nvarc.yaml")
    assert K.resolve_format(spec(tiny_model_dir, config=nvarc), K.describe_model(tiny_model_dir)) == (
        "nvarc", "model.format in kaggle-nvarc.yaml")  # the config names it
    # the tokenizer is checked at build time: a format it cannot speak is refused here, not on Kaggle
    with pytest.raises(M.MetadataError, match="does not fit prompt format 'nvarc'.*--format"):
        K.build_bundle(spec(tiny_model_dir, config=nvarc))
    # the config and the folder disagree: an error, unless --format says which wins (the disagreement then said)
    with pytest.raises(M.MetadataError, match="says model.format: nvarc but the model folder's arc_format.json says "
                                              "kit.*KERNEL_FORMAT=kit or KERNEL_FORMAT=nvarc"):
        K.build_bundle(spec(str(named), config=nvarc))
    b = K.build_bundle(spec(str(named), config=nvarc, format="kit"))
    assert (b.format, b.format_source) == ("kit", "--format")
    (named / "arc_format.json").write_text('{"format": "nvarc"}')
    b = K.build_bundle(spec(str(named), format="kit"))  # --format wins over the folder, and the disagreement is said
    assert b.format == "kit" and any("arc_format.json says nvarc" in line for line in b.model_lines)
    (named / "arc_format.json").write_text('{"format": "kit"}')
    # the demonstration model (a merge of the kit's committed adapter) is announced as such, and marked for the notebook
    from arc_ttt.core.modelfolder import DEMO_MARKER, adapter_digest

    demo = tmp_path / "demo"
    shutil.copytree(named, demo)
    (demo / "finetune.json").write_text(json.dumps({"base_model": {"path": "models/smollm2-135m"}, "format": "kit"}))
    (demo / "merged_adapter.sha256").write_text(adapter_digest(os.path.join(ROOT, "configs", "adapters",
                                                                            "smollm2-135m-arc")) + "\n")
    monkeypatch.delenv(K.DEMO_ENV, raising=False)
    with pytest.raises(M.MetadataError, match="demonstration model.*score about 0.*KERNEL_DEMO=1"):
        K.build_bundle(spec(str(demo)))  # not asked for: refused, nothing shipped
    b = K.build_bundle(spec(str(demo), demo=True))
    assert any(line.startswith("WARNING: this is the kit's demonstration model") for line in b.model_lines)
    assert os.path.exists(os.path.join(b.folders["model"], DEMO_MARKER)) and not (demo / DEMO_MARKER).exists()
    namespace: dict = {}
    exec(nbformat.read(os.path.join(b.folders["kernel"], K.CODE_FILE), as_version=4).cells[1].source, namespace)
    assert namespace["ALLOW_DEMO"] is True  # asked for at build time: the commit run accepts it
    (demo / "merged_adapter.sha256").write_text("another adapter\n")  # a user's own fine-tune of the same base
    assert not any("demonstration" in line for line in K.build_bundle(spec(str(demo))).model_lines)
    (demo / "merged_adapter.sha256").write_text(adapter_digest(os.path.join(ROOT, "configs", "adapters",
                                                                            "smollm2-135m-arc")) + "\n")
    # and the CLI prints it all: model, format, transformers (the demo asked for as make kernel KERNEL_DEMO=1 does)
    from arc_ttt.cli import main

    monkeypatch.setenv(K.DEMO_ENV, "1")
    assert main(["kernel", "build", "--config", CONFIG, "--model", str(demo), "--owner", "tester", "--wheelhouse",
                 installed_wheelhouse, "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "DEMONSTRATION" in out and "prompt format: kit (the model folder's arc_format.json)" in out
    assert f"this builder: transformers {importlib.metadata.version('transformers')}" in out
    monkeypatch.delenv(K.DEMO_ENV)  # and as --demo asks for it, without which the CLI refuses
    args = ["kernel", "build", "--config", CONFIG, "--model", str(demo), "--owner", "tester", "--wheelhouse",
            installed_wheelhouse]
    assert main([*args, "--out", str(tmp_path / "cli2")]) == 2
    assert "arc-ttt kernel build --demo" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "cli3"), "--demo"]) == 0


def test_another_competition_is_attached_and_preferred(tmp_path, tiny_model_dir, installed_wheelhouse):
    b = K.build_bundle(K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path / "out"), owner="tester",
                                    wheelhouse=installed_wheelhouse, format="kit", competition="arc-prize-2026"))
    with open(os.path.join(b.folders["kernel"], M.KERNEL_META)) as f:
        assert json.load(f)["competition_sources"] == ["arc-prize-2026"]
    nb = nbformat.read(os.path.join(b.folders["kernel"], K.CODE_FILE), as_version=4)
    namespace: dict = {}
    exec(nb.cells[1].source, namespace)
    assert namespace["COMPETITION"] == "arc-prize-2026"  # find_challenges prefers that folder


def test_licences_are_checked_against_kaggles_list(tmp_path, tiny_model_dir, installed_wheelhouse):
    (tmp_path / "w.whl").write_text("")
    good = M.dataset_metadata("me", "arc-ttt-model", "ARC TTT kit model")
    assert any("not one Kaggle accepts" in p
               for p in M.validate_dataset_metadata(dict(good, licenses=[{"name": "llama3"}]), str(tmp_path)))
    other = dict(good, licenses=[{"name": "other"}])
    assert any("needs a description" in p for p in M.validate_dataset_metadata(other, str(tmp_path)))
    assert M.validate_dataset_metadata(dict(other, description="Llama 3 Community Licence"), str(tmp_path)) == []
    spec = K.BundleSpec(config=CONFIG, model=tiny_model_dir, out=str(tmp_path / "out"), owner="tester",
                        wheelhouse=installed_wheelhouse, format="kit", model_license="other")
    with pytest.raises(M.MetadataError, match="needs a description"):
        K.build_bundle(spec)
    b = K.build_bundle(dataclasses.replace(spec, model_license_note="Llama 3 Community Licence"))
    with open(os.path.join(b.folders["model"], M.DATASET_META)) as f:
        assert "Llama 3 Community Licence" in json.load(f)["description"]


def test_cli_kernel_build_reports_errors(tmp_path, capsys):
    from arc_ttt.cli import main

    assert main(["kernel", "build", "--config", str(tmp_path / "nope.yaml"), "--model", str(tmp_path)]) == 2
    assert "nope.yaml" in capsys.readouterr().err


# --- the vendored copy, run as Kaggle runs it -------------------------------------------------

def pack_like_an_unprocessed_upload(code: str, dst: str) -> None:
    """The code dataset as Kaggle leaves it when it does not unpack `-r tar` uploads: src.tar, configs.tar
    (one with its folder as the top entry, one without: the bootstrap must cope with both) and BUILD.json."""
    os.makedirs(dst)
    with tarfile.open(os.path.join(dst, "src.tar"), "w") as t:
        t.add(os.path.join(code, "src"), arcname="src")
    with tarfile.open(os.path.join(dst, "configs.tar"), "w") as t:
        for name in os.listdir(os.path.join(code, "configs")):
            t.add(os.path.join(code, "configs", name), arcname=name)
    shutil.copy(os.path.join(code, "BUILD.json"), dst)


@pytest.mark.slow
@pytest.mark.parametrize("rerun", [True, False], ids=["scoring-rerun", "commit-run"])
@pytest.mark.e2e
def test_vendored_bundle_runs_two_tasks_on_a_fake_kaggle(tmp_path, monkeypatch, bundle, two_tasks, venv_kernel,
                                                         small_tasks, rerun):
    """The kernel's notebook on a fake /kaggle/input holding the bundle's datasets: the package comes from the
    code dataset (not this repo's src/), the wheels install offline, inputs are found by searching. The commit
    run follows configs/kaggle.yaml's `commit_run: quick` (here 1 task) and prints the projection for the
    scoring rerun; the scoring rerun solves every task.

    The commit run also gets the awkward cases: the code dataset left packed (src.tar, configs.tar), and a
    second arc-agi_test_challenges.json in another attached dataset (the competition's file must win)."""
    challenges_path, solutions_path, challenges = two_tasks
    inputs = tmp_path / "input"
    competition_folder(inputs, challenges_path, solutions_path)
    for key in ("code", "wheels", "model"):
        dst = inputs / "datasets" / "tester" / f"arc-ttt-{key}"
        if key == "code" and not rerun:
            pack_like_an_unprocessed_upload(bundle.folders[key], str(dst))
        else:
            shutil.copytree(bundle.folders[key], dst)
    if not rerun:  # someone's dataset with its own copy of other tasks
        other, _ = to_kaggle(small_tasks[2:3])
        (_mkdir(inputs / "datasets" / "someone" / "arc-copy") / "arc-agi_test_challenges.json").write_text(json.dumps(other))
        (inputs / "datasets" / "someone" / "arc-copy" / "manifest.json").write_text("{}")  # not the wheels' manifest
    working = _mkdir(tmp_path / "working")
    kaggle_batch_env(monkeypatch, rerun)
    notebook = os.path.join(bundle.folders["kernel"], "arc_ttt_submission.ipynb")
    nb = execute(notebook, str(tmp_path / "out.ipynb"), {
        "INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working), "BUDGET_SECONDS": 600, "FORMAT_NLL_LIMIT": RANDOM_READS,
        "OVERRIDES": [*FAST, "budget.decode_seconds_per_token=2e-3", "kaggle.quick_tasks=1"]}, working)
    text = stream_text(nb)
    # the commit run reads known answers first (the random model passes only the limit raised for it); the rerun never
    assert bool(re.search(r"^format check \(kit\): NLL [\d.]+ per answer token over \d+ known answers .*limit 10: passed",
                          text, re.M)) is not rerun, text
    if rerun:
        vendored = os.path.join(inputs, "datasets", "tester", "arc-ttt-code", "src", "arc_ttt")
        assert f"from {vendored}\n" in text, text  # not the repo's src/arc_ttt
        assert os.path.join("arc-ttt-code", "configs", "kaggle.yaml") in text
    else:
        assert "unpacked " + os.path.join(str(inputs), "datasets", "tester", "arc-ttt-code", "src.tar") in text, text
        imported_from = re.search(r"^arc_ttt \S+ from (.*)$", text, re.M).group(1)
        assert imported_from.endswith(os.path.join("code", "src", "arc_ttt")) and str(inputs) not in imported_from
        assert os.path.join("code", "configs", "kaggle.yaml") in text  # the config from the unpacked configs.tar
        assert "WARNING: another challenges file is attached and NOT used (set COMPETITION or CHALLENGES): " + \
            os.path.join(str(inputs), "datasets", "someone", "arc-copy", "arc-agi_test_challenges.json") in text
    assert f"kind='kaggle', competition_rerun={rerun}" in text
    assert "fallback submission.json written: 2 tasks from " + os.path.join(str(inputs), "competitions") in text
    assert "installing offline from " + os.path.join(str(inputs), "datasets", "tester", "arc-ttt-wheels") in text
    assert "GPUs visible: 0" in text and "versions: torch" in text
    assert ("commit_run=quick" in text) is not rerun
    assert ("projection for the scoring rerun" in text) is not rerun
    assert ("Kaggle commit run: KAGGLE_IS_COMPETITION_RERUN not set; every test task id is an evaluation task id"
            in text) is not rerun
    assert ("Kaggle scoring run" in text) is rerun
    assert "prompt format used: kit (model.format); transformers here: " in text  # FORMAT, set by the builder
    assert f"code dataset BUILD.json: " in text and f"kernel built from commit {bundle.commit}" in text
    assert "submission.json valid: " in text and "ERROR in" not in text
    run_log = (working / "run.log").read_text()
    assert "prompt format used: kit (model.format: kit); transformers " in run_log, run_log
    if not rerun:
        assert "projection for the scoring rerun on 1 x CPU, kaggle.yaml" in text, text
        assert " 120 tasks:" in text and " 240 tasks:" in text, text
        # the quick task scored against the evaluation solutions beside the placeholder file
        assert re.search(r"^quick tasks solved [01] of 1 \(test outputs \d of \d; against arc-agi_evaluation_solutions.json\)", text, re.M), text
    with open(working / "submission.json") as f:
        assert validate_submission(challenges, json.load(f)) == []  # complete either way, the competition's tasks
    with open(working / "log.json") as f:
        tasks = json.load(f)["tasks"]
    trained = [t["id"] for t in tasks if t.get("steps", 0) > 0]
    assert len(tasks) == 2 and len(trained) == (2 if rerun else 1), tasks


def kaggle_batch_env(monkeypatch, rerun: bool) -> None:
    """Kaggle's environment for a batch run: the commit run, or the scoring rerun; the kit never on PYTHONPATH."""
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    if rerun:
        monkeypatch.setenv("KAGGLE_IS_COMPETITION_RERUN", "True")
    else:
        monkeypatch.delenv("KAGGLE_IS_COMPETITION_RERUN", raising=False)
    monkeypatch.delenv("PYTHONPATH", raising=False)


def _mkdir(path):
    os.makedirs(path, exist_ok=True)
    return path


def competition_folder(inputs, challenges_path, solutions_path):
    """The competition's folder as the commit run sees it: the placeholder test file (evaluation tasks) and the
    evaluation challenges and solutions beside it."""
    folder = _mkdir(inputs / "competitions" / "arc-prize-2025")
    shutil.copy(challenges_path, folder / "arc-agi_test_challenges.json")
    shutil.copy(challenges_path, folder / "arc-agi_evaluation_challenges.json")
    shutil.copy(solutions_path, folder / "arc-agi_evaluation_solutions.json")
    return folder


def fake_kaggle_inputs(tmp_path, bundle, two_tasks, stale_commit=None):
    """/kaggle/input with the competition and the bundle's three datasets; `stale_commit` writes another commit
    into the code dataset's BUILD.json (a stale dataset version attached)."""
    challenges_path, solutions_path, _ = two_tasks
    inputs = tmp_path / "input"
    competition_folder(inputs, challenges_path, solutions_path)
    for key in ("code", "wheels", "model"):
        shutil.copytree(bundle.folders[key], inputs / "datasets" / "tester" / f"arc-ttt-{key}")
    if stale_commit:
        build = inputs / "datasets" / "tester" / "arc-ttt-code" / "BUILD.json"
        build.write_text(json.dumps({**json.loads(build.read_text()), "commit": stale_commit}))
    return inputs


@pytest.mark.slow
@pytest.mark.parametrize("rerun", [True, False], ids=["scoring-rerun", "commit-run"])
@pytest.mark.e2e
def test_a_stale_dataset_fails_the_commit_run_and_the_scoring_run_never_raises(tmp_path, monkeypatch, bundle,
                                                                               two_tasks, venv_kernel, rerun):
    """A stale code dataset (BUILD.json names another commit): the commit run stops in the environment cell, after
    the fallback file. The scoring run carries on, and even a config that cannot load (a broken override) only
    prints and logs its errors: the notebook finishes, and submission.json is checked valid at the end."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _, _, challenges = two_tasks
    inputs = fake_kaggle_inputs(tmp_path, bundle, two_tasks, stale_commit="0123456789ab")
    working = _mkdir(tmp_path / "working")
    kaggle_batch_env(monkeypatch, rerun)
    notebook = os.path.join(bundle.folders["kernel"], "arc_ttt_submission.ipynb")
    out = str(tmp_path / "out.ipynb")
    params = {"INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working), "OVERRIDES": ["no_such_section.key=1"]}
    if rerun:
        text = stream_text(execute(notebook, out, params, working))
        assert "WARNING: the code dataset is commit '0123456789ab'" in text
        assert "ERROR in configure on the scoring run, carrying on" in text and "no_such_section" in text
        assert "ERROR in the run on the scoring run" in text  # cfg never existed: logged, not raised
        assert "submission.json valid: " in text
        assert "ERROR in configure" in (working / "run.log").read_text()
    else:
        with pytest.raises(PapermillExecutionError) as e:
            papermill.execute_notebook(notebook, out, kernel_name="python3", cwd=str(working), progress_bar=False,
                                       execution_timeout=600, parameters=params)
        assert e.value.ename == "BundleMismatch" and "'0123456789ab' but this kernel was built from" in e.value.evalue
        failed = [c.id for c in nbformat.read(out, as_version=4).cells
                  if any(o.output_type == "error" for o in c.get("outputs", []))]
        assert failed == ["environment"]
    with open(working / "submission.json") as f:
        assert validate_submission(challenges, json.load(f)) == []


SIMULATED_P100 = '''
# A P100 as torch would see it on today's Kaggle image (CUDA 12.8 build, no sm_60 kernels).
import torch

torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 1
torch.cuda.get_device_name = lambda device=None: "Tesla P100-PCIE-16GB"
torch.cuda.get_device_capability = lambda device=None: (6, 0)
torch.cuda.get_arch_list = lambda: ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
'''


@pytest.mark.slow
@pytest.mark.parametrize("placeholder", [True, False], ids=["placeholder", "no-evaluation-files"])
def test_an_unusable_gpu_fails_the_commit_run_after_the_fallback_file(tmp_path, monkeypatch, bundle, two_tasks,
                                                                      venv_kernel, placeholder):
    """The kernel's notebook on a fake /kaggle/input with a simulated P100 (compute capability 6.0, an arch
    list without sm_60): the commit run stops in the accelerator cell, loudly, with a valid fallback file; also
    without evaluation files beside the test file (the rerun variable's absence alone makes it the commit run)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    challenges_path, solutions_path, challenges = two_tasks
    inputs = tmp_path / "input"
    older = _mkdir(inputs / "arc-prize-2025")  # the older layout
    shutil.copy(challenges_path, older / "arc-agi_test_challenges.json")
    if placeholder:
        shutil.copy(challenges_path, older / "arc-agi_evaluation_challenges.json")  # the commit run's placeholder
    for key in ("code", "wheels", "model"):
        shutil.copytree(bundle.folders[key], inputs / "datasets" / "tester" / f"arc-ttt-{key}")
    site = _mkdir(tmp_path / "site")
    (site / "sitecustomize.py").write_text(SIMULATED_P100)
    working = _mkdir(tmp_path / "working")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.delenv("KAGGLE_IS_COMPETITION_RERUN", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(site))  # the simulation only: the package still comes from the dataset
    notebook = os.path.join(bundle.folders["kernel"], "arc_ttt_submission.ipynb")
    with pytest.raises(PapermillExecutionError) as e:
        papermill.execute_notebook(notebook, str(tmp_path / "out.ipynb"), kernel_name="python3", cwd=str(working),
                                   progress_bar=False, execution_timeout=600, parameters={
                                       "INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working)})
    assert e.value.ename == "AcceleratorUnusable" and "sm_60" in e.value.evalue and "machine_shape" in e.value.evalue
    nb = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    failed = [c.id for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))]
    assert failed == ["accelerator"]
    assert "Tesla P100-PCIE-16GB, compute capability 6.0" in stream_text(nb)
    with open(working / "submission.json") as f:
        assert validate_submission(challenges, json.load(f)) == []  # written before the check
    assert not os.path.exists(working / "log.json")  # the run never started


@pytest.mark.slow
@pytest.mark.parametrize("allow", [False, True], ids=["refused", "allowed"])
@pytest.mark.e2e
def test_the_demonstration_model_fails_the_commit_run_unless_allowed(tmp_path, monkeypatch, tiny_model_dir,
                                                                     installed_wheelhouse, two_tasks, venv_kernel, allow):
    """A bundle of the kit's demonstration model (its marker), asked for at build time: its kernel's ALLOW_DEMO lets
    the commit run through with a WARNING; the same kernel with ALLOW_DEMO = False (a demo attached by hand) stops in
    the configure cell, after the fallback file."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from arc_ttt.core.modelfolder import mark_demo

    _, _, challenges = two_tasks
    demo = tmp_path / "demo"
    shutil.copytree(tiny_model_dir, demo)
    mark_demo(str(demo))
    b = K.build_bundle(K.BundleSpec(config=CONFIG, model=str(demo), out=str(tmp_path / "build"), owner="tester",
                                    wheelhouse=installed_wheelhouse, format="kit", demo=True))
    inputs = fake_kaggle_inputs(tmp_path, b, two_tasks)
    working = _mkdir(tmp_path / "working")
    kaggle_batch_env(monkeypatch, rerun=False)
    notebook = os.path.join(b.folders["kernel"], "arc_ttt_submission.ipynb")
    out = str(tmp_path / "out.ipynb")
    params = {"INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working), "OVERRIDES": [*FAST, "kaggle.quick_tasks=1"],
              "FORMAT_NLL_LIMIT": RANDOM_READS, **({} if allow else {"ALLOW_DEMO": False})}
    if allow:
        text = stream_text(execute(notebook, out, params, working))
        assert "WARNING: this is the kit's demonstration model" in text and "submission.json valid: " in text
    else:
        with pytest.raises(PapermillExecutionError) as e:
            papermill.execute_notebook(notebook, out, kernel_name="python3", cwd=str(working), progress_bar=False,
                                       execution_timeout=600, parameters=params)
        assert e.value.ename == "DemoModelRefused" and "ALLOW_DEMO = True" in e.value.evalue
        failed = [c.id for c in nbformat.read(out, as_version=4).cells
                  if any(o.output_type == "error" for o in c.get("outputs", []))]
        assert failed == ["configure"]
    with open(working / "submission.json") as f:
        assert validate_submission(challenges, json.load(f)) == []


@pytest.mark.slow
@pytest.mark.parametrize("rerun", [True, False], ids=["scoring-rerun", "commit-run"])
@pytest.mark.e2e
def test_a_missing_code_dataset_leaves_a_valid_fallback_file(tmp_path, monkeypatch, bundle, two_tasks, venv_kernel,
                                                             rerun):
    """No code dataset attached: the bootstrap cannot import arc_ttt and raises on either run, but the fallback cell
    before it has written submission.json from the challenges file alone, with the same answers as arc_ttt's own
    fallback writer (the competition's file, not another dataset's copy)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from arc_ttt.delivery.scoringrun import write_fallback_submission

    challenges_path, _, challenges = two_tasks
    inputs = fake_kaggle_inputs(tmp_path, bundle, two_tasks)
    shutil.rmtree(inputs / "datasets" / "tester" / "arc-ttt-code")
    other = _mkdir(inputs / "datasets" / "someone" / "arc-copy")
    (other / "arc-agi_test_challenges.json").write_text(json.dumps({"0000aaaa": challenges[next(iter(challenges))]}))
    working = _mkdir(tmp_path / "working")
    kaggle_batch_env(monkeypatch, rerun)
    notebook = os.path.join(bundle.folders["kernel"], "arc_ttt_submission.ipynb")
    out = str(tmp_path / "out.ipynb")
    with pytest.raises(PapermillExecutionError) as e:
        papermill.execute_notebook(notebook, out, kernel_name="python3", cwd=str(working), progress_bar=False,
                                   execution_timeout=600, parameters={"INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working)})
    assert e.value.ename == "FileNotFoundError" and "attach the code dataset" in e.value.evalue
    nb = nbformat.read(out, as_version=4)
    assert [c.id for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))] == ["bootstrap"]
    assert "early fallback submission.json: 2 tasks from " + os.path.join(str(inputs), "competitions") in stream_text(nb)
    with open(working / "submission.json") as f:
        early = json.load(f)
    assert validate_submission(challenges, early) == []
    write_fallback_submission(challenges_path, str(tmp_path / "kit.json"))
    with open(tmp_path / "kit.json") as f:
        assert early == json.load(f)  # what the environment cell would have written


@pytest.mark.slow
@pytest.mark.e2e
def test_every_task_in_error_fails_the_commit_run_without_evaluation_files(tmp_path, monkeypatch, tiny_model_dir,
                                                                           installed_wheelhouse, two_tasks, venv_kernel):
    """Unreadable weights (shipped so: the datasets are the ones built) and no evaluation files beside the test file:
    without the rerun variable this is the commit run all the same, so the run's every task in error stops it in the
    check cell (not taken for the scoring run, which would finish), after a valid file."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _, _, challenges = two_tasks
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    for name in [f for f in os.listdir(broken) if f.endswith(".safetensors")]:
        os.remove(broken / name)
        (broken / name).write_bytes(b"not safetensors")
    bundle = K.build_bundle(K.BundleSpec(config=CONFIG, model=str(broken), out=str(tmp_path / "build"), owner="tester",
                                         wheelhouse=installed_wheelhouse, format="kit"))
    inputs = fake_kaggle_inputs(tmp_path, bundle, two_tasks)
    for name in ("arc-agi_evaluation_challenges.json", "arc-agi_evaluation_solutions.json"):
        os.remove(inputs / "competitions" / "arc-prize-2025" / name)
    working = _mkdir(tmp_path / "working")
    kaggle_batch_env(monkeypatch, rerun=False)
    notebook = os.path.join(bundle.folders["kernel"], "arc_ttt_submission.ipynb")
    out = str(tmp_path / "out.ipynb")
    with pytest.raises(PapermillExecutionError) as e:
        papermill.execute_notebook(notebook, out, kernel_name="python3", cwd=str(working), progress_bar=False,
                                   execution_timeout=600, parameters={
                                       "INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working), "OVERRIDES": FAST})
    assert e.value.ename == "CommitRunFailed" and "all 2 tasks of the commit run failed" in e.value.evalue
    nb = nbformat.read(out, as_version=4)
    assert [c.id for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))] == ["check"]
    assert "Kaggle commit run: KAGGLE_IS_COMPETITION_RERUN not set" in stream_text(nb)
    assert "WARNING: format check skipped, the model did not load" in stream_text(nb)  # left to the run, which says it
    with open(working / "submission.json") as f:
        assert validate_submission(challenges, json.load(f)) == []


@pytest.mark.slow
@pytest.mark.parametrize("case", ["two-competitions", "none"])
@pytest.mark.e2e
def test_the_commit_run_refuses_two_competitions_and_names_the_slug_when_none_is_attached(tmp_path, monkeypatch,
                                                                                          bundle, two_tasks,
                                                                                          venv_kernel, case):
    """Two competitions attached: the rerun would answer one of them, maybe the wrong one's placeholder ids, so the
    commit run stops in the environment cell, after the fallback file. None attached (a wrong slug, the rules not
    accepted): the error names the slug the kernel was built for and the accept-the-rules step."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    challenges_path, _, challenges = two_tasks
    inputs = fake_kaggle_inputs(tmp_path, bundle, two_tasks)
    if case == "none":
        shutil.rmtree(inputs / "competitions")
    else:
        shutil.copytree(inputs / "competitions" / "arc-prize-2025", inputs / "competitions" / "arc-prize-2026")
    working = _mkdir(tmp_path / "working")
    kaggle_batch_env(monkeypatch, rerun=False)
    notebook = os.path.join(bundle.folders["kernel"], "arc_ttt_submission.ipynb")
    out = str(tmp_path / "out.ipynb")
    with pytest.raises(PapermillExecutionError) as e:
        papermill.execute_notebook(notebook, out, kernel_name="python3", cwd=str(working), progress_bar=False,
                                   execution_timeout=600, parameters={"INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working)})
    nb = nbformat.read(out, as_version=4)
    assert [c.id for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))] == ["environment"]
    if case == "none":
        assert e.value.ename == "InputNotFound" and "competition 'arc-prize-2025'" in e.value.evalue
        assert "accept the rules" in e.value.evalue and "--competition <slug>" in e.value.evalue
        assert not os.path.exists(working / "submission.json")  # nothing to answer
    else:
        assert e.value.ename == "CompetitionMismatch" and "arc-prize-2025, arc-prize-2026" in e.value.evalue
        with open(working / "submission.json") as f:
            assert validate_submission(challenges, json.load(f)) == []


@pytest.mark.slow
@pytest.mark.parametrize("stale", ["code", "wheels", "model"])
@pytest.mark.e2e
def test_a_stale_code_wheels_or_model_dataset_fails_the_commit_run(tmp_path, monkeypatch, bundle, two_tasks,
                                                                   venv_kernel, stale):
    """Each attached dataset differs from the build (its BUILD.json's commit unchanged, as with two dirty builds or a
    version still processing): the commit run stops with BundleMismatch, in the cell that finds that dataset, after
    the fallback file."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _, _, challenges = two_tasks
    inputs = fake_kaggle_inputs(tmp_path, bundle, two_tasks)
    dataset = inputs / "datasets" / "tester" / f"arc-ttt-{stale}"
    if stale == "code":
        with open(dataset / "configs" / "kaggle.yaml", "a") as f:
            f.write("# edited after the build\n")
    elif stale == "wheels":
        (dataset / "notes.txt").write_text("a file the built wheelhouse had not\n")
    else:
        with open(dataset / "config.json") as f:
            config = json.load(f)
        (dataset / "config.json").unlink()  # never written through a hard link
        (dataset / "config.json").write_text(json.dumps({**config, "retrained": True}))
    working = _mkdir(tmp_path / "working")
    kaggle_batch_env(monkeypatch, rerun=False)
    notebook = os.path.join(bundle.folders["kernel"], "arc_ttt_submission.ipynb")
    out = str(tmp_path / "out.ipynb")
    with pytest.raises(PapermillExecutionError) as e:
        papermill.execute_notebook(notebook, out, kernel_name="python3", cwd=str(working), progress_bar=False,
                                   execution_timeout=600, parameters={"INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working)})
    assert e.value.ename == "BundleMismatch" and f"attached {stale} dataset" in e.value.evalue
    nb = nbformat.read(out, as_version=4)
    failed = [c.id for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))]
    assert failed == ["configure" if stale == "model" else "environment"]
    with open(working / "submission.json") as f:
        assert validate_submission(challenges, json.load(f)) == []


@pytest.mark.slow
@pytest.mark.parametrize("rerun", [True, False], ids=["scoring-rerun", "commit-run"])
@pytest.mark.e2e
def test_a_model_that_reads_known_answers_badly_fails_the_commit_run_and_never_the_rerun(tmp_path, monkeypatch,
                                                                                         bundle, two_tasks,
                                                                                         venv_kernel, rerun):
    """The random model reads the quick tasks' solutions and the demonstrations as a model in a wrong format does
    (tests/delivery/test_formatcheck.py: a model that learned the kit's layout, read in ARChitects'): the commit run
    stops in the format cell, before the run, after the fallback file, saying what to check; the scoring rerun never
    reads them and answers every task."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _, _, challenges = two_tasks
    inputs = fake_kaggle_inputs(tmp_path, bundle, two_tasks)
    working = _mkdir(tmp_path / "working")
    kaggle_batch_env(monkeypatch, rerun)
    notebook = os.path.join(bundle.folders["kernel"], "arc_ttt_submission.ipynb")
    out = str(tmp_path / "out.ipynb")
    params = {"INPUT_ROOT": str(inputs), "OUTPUT_DIR": str(working), "OVERRIDES": [*FAST, "kaggle.quick_tasks=1"]}
    if rerun:
        text = stream_text(execute(notebook, out, params, working))
        assert "format check" not in text and "submission.json valid: " in text and "ERROR in" not in text
        with open(working / "log.json") as f:
            assert len([t for t in json.load(f)["tasks"] if t.get("steps", 0) > 0]) == 2
    else:
        with pytest.raises(PapermillExecutionError) as e:
            papermill.execute_notebook(notebook, out, kernel_name="python3", cwd=str(working), progress_bar=False,
                                       execution_timeout=600, parameters=params)
        assert e.value.ename == "FormatCheckFailed" and "in prompt format 'kit', above the limit" in e.value.evalue
        assert "FORMAT_NLL_LIMIT" in e.value.evalue and "arc_format.json" in e.value.evalue
        nb = nbformat.read(out, as_version=4)
        assert [c.id for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))] == ["format"]
        assert re.search(r"^format check \(kit\): NLL [\d.]+ .*: FAILED$", stream_text(nb), re.M)
        assert not os.path.exists(working / "log.json")  # the run never started
    with open(working / "submission.json") as f:
        assert validate_submission(challenges, json.load(f)) == []
