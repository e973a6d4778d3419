"""Wheelhouse closure check and manifest, on fake wheels built here (no network)."""
import json
import os
import zipfile

import pytest

from arc_ttt.delivery import wheelhouse as W
from conftest import fake_wheel
from conftest import ROOT


@pytest.fixture
def house(tmp_path):
    d = tmp_path / "house"
    d.mkdir()
    fake_wheel(d, "bitsandbytes", "0.50.2", ["torch<3,>=2.4", "numpy>=1.17", 'pandas; extra == "benchmark"'])
    fake_wheel(d, "gguf", "0.19.0", ["numpy>=1.17", "pyyaml>=5.1", "tqdm>=4.27", "requests>=2.25",
                                     'tomli; python_version < "3.11"'])
    (tmp_path / "req.txt").write_text("# pins\nbitsandbytes==0.50.2  # 4-bit\ngguf==0.19.0\n")
    return str(d)


IMAGE = {"torch": None, "numpy": "2.0.2", "pyyaml": None, "tqdm": None, "requests": None}


def test_read_wheel_uses_metadata(house):
    w = W.read_wheel(os.path.join(house, "gguf-0.19.0-py3-none-any.whl"))
    assert (w.name, w.version) == ("gguf", "0.19.0")
    assert "requests>=2.25" in w.requires_dist and len(w.sha256) == 64


def test_read_wheel_rejects_a_misnamed_file(tmp_path):
    path = fake_wheel(tmp_path, "gguf", "0.19.0")
    bad = os.path.join(tmp_path, "gguf-0.20.0-py3-none-any.whl")
    os.rename(path, bad)
    with pytest.raises(W.WheelhouseError, match="METADATA says gguf 0.19.0, file name says gguf 0.20.0"):
        W.read_wheel(bad)


def test_unusable_wheels_and_files_are_wheelhouse_errors(tmp_path):
    """What a user's folder or file gets wrong is a WheelhouseError naming it (the CLI prints it), never a raw
    OSError or ValueError."""
    with pytest.raises(W.WheelhouseError, match="nowhere: no such wheelhouse folder"):
        W.read_wheelhouse(str(tmp_path / "nowhere"))
    (tmp_path / "gguf-0.19.0-py3-none-any.whl").write_text("not a zip")
    with pytest.raises(W.WheelhouseError, match="gguf-0.19.0-py3-none-any.whl: not a readable wheel"):
        W.read_wheelhouse(str(tmp_path))
    (tmp_path / "gguf-0.19.0-py3-none-any.whl").unlink()
    (tmp_path / "no-version.whl").write_text("")
    with pytest.raises(W.WheelhouseError, match="no-version.whl: not a readable wheel"):
        W.read_wheelhouse(str(tmp_path))
    (tmp_path / "no-version.whl").unlink()
    with zipfile.ZipFile(tmp_path / "empty-1.0-py3-none-any.whl", "w") as z:
        z.writestr("empty/__init__.py", "")
    with pytest.raises(W.WheelhouseError, match="expected one .dist-info/METADATA, found 0"):
        W.read_wheelhouse(str(tmp_path))
    with pytest.raises(W.WheelhouseError, match="req.txt: no such requirements file"):
        W.read_requirements(str(tmp_path / "req.txt"))
    (tmp_path / "req.txt").write_text("gguf==0.19.0\nnot a == requirement\n")
    with pytest.raises(W.WheelhouseError, match="req.txt, line 2: not a requirement"):
        W.read_requirements(str(tmp_path / "req.txt"))
    with pytest.raises(W.WheelhouseError, match="no such requirements file"):  # before pip runs
        W.download(str(tmp_path / "missing.txt"), str(tmp_path / "dest"))


def test_closure_ok_with_image_packages_and_markers(house, tmp_path):
    # pandas is only for an extra, tomli only below Python 3.11: neither is needed on Kaggle (3.12)
    report = W.check_closure(W.read_wheelhouse(house), IMAGE, W.read_requirements(str(tmp_path / "req.txt")))
    assert report.ok, report.lines()


def test_closure_reports_missing_and_wrong_versions(house, tmp_path):
    image = dict(IMAGE, numpy="1.16.0")  # too old for both wheels
    del image["requests"]
    report = W.check_closure(W.read_wheelhouse(house), image)
    assert not report.ok
    text = "\n".join(report.lines())
    assert "gguf needs requests>=2.25" in text
    assert "bitsandbytes needs numpy>=1.17, the image has 1.16.0" in text
    # a marker that is true for the target makes its requirement count
    report = W.check_closure(W.read_wheelhouse(house), IMAGE, target=W.Target(python_version="3.10"))
    assert any("tomli" in m for m in report.missing)


def test_closure_refuses_torch_and_unmet_pins(house, tmp_path):
    fake_wheel(house, "torch", "2.13.0", tag="cp312-cp312-manylinux_2_28_x86_64")
    fake_wheel(house, "nvidia-cublas-cu12", "12.8.1", tag="py3-none-manylinux_2_27_x86_64")
    reqs = W.read_requirements(str(tmp_path / "req.txt")) + [W.Requirement("peft==0.21.2")]
    report = W.check_closure(W.read_wheelhouse(house), IMAGE, reqs)
    assert len(report.forbidden) == 2
    assert report.unpinned == ["peft==0.21.2 (wheelhouse has nothing)"]


def test_wheel_within_the_house_satisfies_another(house):
    fake_wheel(house, "arc-helper", "1.0", ["gguf==0.19.0"])
    assert W.check_closure(W.read_wheelhouse(house), IMAGE).ok
    fake_wheel(house, "arc-other", "1.0", ["gguf>=1"])
    assert W.check_closure(W.read_wheelhouse(house), IMAGE).missing == ["arc-other needs gguf>=1, wheelhouse has 0.19.0"]


def test_manifest_roundtrip_and_tamper_detection(house, tmp_path):
    manifest = W.write_manifest(house, str(tmp_path / "req.txt"))
    assert [w["file"] for w in manifest["wheels"]] == sorted(f for f in os.listdir(house) if f.endswith(".whl"))
    assert manifest["target"]["python_version"] == "3.12"
    on_disk = json.load(open(os.path.join(house, W.MANIFEST)))
    assert on_disk == manifest
    assert open(os.path.join(house, W.REQUIREMENTS)).read() == (tmp_path / "req.txt").read_text()
    assert W.verify_manifest(house) == []

    with open(os.path.join(house, "gguf-0.19.0-py3-none-any.whl"), "ab") as f:
        f.write(b"x")
    extra = fake_wheel(house, "extra", "1.0")
    os.remove(os.path.join(house, "bitsandbytes-0.50.2-py3-none-any.whl"))
    problems = W.verify_manifest(house)
    assert problems == ["bitsandbytes-0.50.2-py3-none-any.whl: listed in the manifest but missing",
                        f"{os.path.basename(extra)}: present but not in the manifest",
                        "gguf-0.19.0-py3-none-any.whl: sha256 differs from the manifest"]


def test_kaggle_target_flags():
    flags = W.KAGGLE.pip_flags()
    assert flags[:5] == ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    platforms = [flags[i + 1] for i, f in enumerate(flags) if f == "--platform"]
    # bitsandbytes 0.50 is tagged manylinux_2_24: pip does not widen --platform, so every tag is listed
    assert {"manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_28_x86_64"} <= set(platforms)


def test_image_stand_ins_are_pinned(house, tmp_path):
    (tmp_path / "pins.txt").write_text("torch==2.13.0\nnumpy==2.4.6\n")
    got = W.image_stand_ins(W.read_wheelhouse(house), IMAGE, str(tmp_path / "pins.txt"), W.KAGGLE)
    assert got == ["numpy==2.4.6", "pyyaml", "requests", "torch==2.13.0", "tqdm"]


def test_repo_requirements_never_ship_torch_and_image_list_parses():
    root = ROOT
    reqs = W.read_requirements(os.path.join(root, "wheels", "requirements-kaggle.txt"))
    assert {r.name for r in reqs} >= {"bitsandbytes"}
    assert all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==" for r in reqs)
    assert not any(W.is_forbidden(r.name) for r in reqs)
    image = W.read_image_packages(os.path.join(root, W.IMAGE_PACKAGES))
    assert "torch" in image and "bitsandbytes" not in image


def test_is_current_only_when_built_from_these_requirements(house, tmp_path):
    req = str(tmp_path / "req.txt")
    assert not W.is_current(house, req)  # no manifest yet
    W.write_manifest(house, req)
    assert W.is_current(house, req)
    (tmp_path / "req.txt").write_text("bitsandbytes==0.50.2\ngguf==0.20.0\n")  # a new pin: download again
    assert not W.is_current(house, req)
    W.write_manifest(house, req)
    fake_wheel(house, "intruder", "1.0")  # a wheel the manifest does not list
    assert not W.is_current(house, req)


def test_read_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(W.WheelhouseError, match=f"{tmp_path}.*arc-ttt-wheels-manifest.json missing"):
        W.read_manifest(str(tmp_path))
    (tmp_path / W.MANIFEST).write_text("{not json")
    with pytest.raises(W.WheelhouseError, match="not valid JSON"):
        W.read_manifest(str(tmp_path))
    (tmp_path / W.MANIFEST).write_text("[]")
    with pytest.raises(W.WheelhouseError, match="expected a JSON object"):
        W.read_manifest(str(tmp_path))
    (tmp_path / W.MANIFEST).write_text('{"wheels": [{"file": "a-1.0-py3-none-any.whl"}]}')
    with pytest.raises(W.WheelhouseError, match="no `wheels` list of file and sha256"):
        W.verify_manifest(str(tmp_path))


def test_cli_wheels_check_and_build_skip(house, tmp_path, capsys):
    from arc_ttt.cli import main

    req = str(tmp_path / "req.txt")
    W.write_manifest(house, req)
    assert main(["wheels", "check", house]) == 0
    assert f"{house}: ok" in capsys.readouterr().out
    # up to date: no download (no network needed), says so
    assert main(["wheels", "build", "--requirements", req, "--dest", house]) == 0
    assert "up to date" in capsys.readouterr().out
    fake_wheel(house, "intruder", "1.0")
    assert main(["wheels", "check", house]) == 2
    assert "intruder" in capsys.readouterr().out
    assert main(["wheels", "check", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nowhere'}: no such wheelhouse folder: build it with `make " \
                                      f"wheels` (arc-ttt wheels build) or name the folder that holds the wheels\n"
    (tmp_path / "broken-1.0-py3-none-any.whl").write_text("not a zip")
    assert main(["wheels", "check", str(tmp_path)]) == 2
    assert "broken-1.0-py3-none-any.whl: not a readable wheel" in capsys.readouterr().err
    assert not hasattr(W, "main")  # one CLI: arc-ttt wheels
