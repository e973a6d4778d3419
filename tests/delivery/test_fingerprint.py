"""Fingerprints of the bundle's datasets (delivery.fingerprint) and the commit run's check of them (commitrun)."""
import dataclasses
import os
import shutil

import pytest

from arc_ttt.delivery import commitrun
from arc_ttt.delivery import environment as E
from arc_ttt.delivery import fingerprint as F


def write(path, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def model_folder(folder, weights: bytes) -> str:
    write(os.path.join(folder, "config.json"), b'{"architectures": ["LlamaForCausalLM"]}')
    write(os.path.join(folder, "model.safetensors"), weights)
    return str(folder)


def test_a_folder_fingerprint_follows_names_and_content_not_the_uploads_metadata(tmp_path):
    big = bytes(range(256)) * ((F.WHOLE + 3 * F.SAMPLE) // 256)  # sampled, not read whole
    a = model_folder(tmp_path / "a", big)
    b = model_folder(tmp_path / "b", big)
    assert F.folder_fingerprint(a) == F.folder_fingerprint(b)
    write(os.path.join(b, "dataset-metadata.json"), b'{"id": "me/arc-ttt-model"}')  # the CLI's, not the dataset's
    os.makedirs(os.path.join(b, "sub"))  # sub-folders are no part of a model or wheels dataset
    assert F.folder_fingerprint(a) == F.folder_fingerprint(b)
    for offset in (0, len(big) // 2, len(big) - 1):  # a retrained model differs at each sampled place
        changed = bytearray(big)
        changed[offset] ^= 1
        write(os.path.join(b, "model.safetensors"), bytes(changed))
        assert F.folder_fingerprint(a) != F.folder_fingerprint(b), offset
    write(os.path.join(b, "model.safetensors"), big)
    os.rename(os.path.join(b, "config.json"), os.path.join(b, "config2.json"))
    assert F.folder_fingerprint(a) != F.folder_fingerprint(b)
    small = model_folder(tmp_path / "c", b"x" * 100)
    before = F.folder_fingerprint(small)
    write(os.path.join(small, "model.safetensors"), b"x" * 99 + b"y")  # small files are read whole
    assert F.folder_fingerprint(small) != before


def code_dataset(root) -> str:
    write(os.path.join(root, "src", "arc_ttt", "__init__.py"), b"__version__ = '1'\n")
    write(os.path.join(root, "src", "arc_ttt", "delivery", "cells", "run.py"), b"run()\n")
    write(os.path.join(root, "configs", "kaggle.yaml"), b"seed: 1\n")
    return os.path.join(str(root), "src")


def test_the_code_fingerprint_covers_src_and_configs_but_not_bytecode(tmp_path):
    a, b = code_dataset(tmp_path / "a"), code_dataset(tmp_path / "b")
    assert F.code_fingerprint(a) == F.code_fingerprint(b)
    write(os.path.join(b, "arc_ttt", "__pycache__", "__init__.cpython-312.pyc"), b"\0")  # importing writes it
    write(os.path.join(b, "..", "BUILD.json"), b"{}")  # the record, not the code
    assert F.code_fingerprint(a) == F.code_fingerprint(b)
    write(os.path.join(b, "..", "configs", "kaggle.yaml"), b"seed: 2\n")  # a dirty build's config: same commit stamp
    assert F.code_fingerprint(a) != F.code_fingerprint(b)
    write(os.path.join(b, "..", "configs", "kaggle.yaml"), b"seed: 1\n")
    shutil.rmtree(os.path.join(b, "arc_ttt", "delivery"))
    assert F.code_fingerprint(a) != F.code_fingerprint(b)


def commit_env(tmp_path):
    return dataclasses.replace(E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, input_root=str(tmp_path)),
                               placeholder_test=True)


def test_a_stale_dataset_fails_the_commit_run_and_warns_the_scoring_run(tmp_path):
    built = model_folder(tmp_path / "built", b"weights v2")
    attached = model_folder(tmp_path / "attached", b"weights v1")  # the version still processing
    expected = {"model": F.folder_fingerprint(built)}
    scoring = E.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_IS_COMPETITION_RERUN": "1"}, input_root=str(tmp_path))
    with pytest.raises(commitrun.BundleMismatch, match="attached model dataset .* not the one this kernel was built"):
        commitrun.check_fingerprint(commit_env(tmp_path), "model", attached, expected)
    assert "stale version" in commitrun.check_fingerprint(scoring, "model", attached, expected)
    assert commitrun.check_fingerprint(commit_env(tmp_path), "model", built, expected) is None
    assert commitrun.check_fingerprint(commit_env(tmp_path), "wheels", attached, expected) is None  # nothing expected
    assert commitrun.check_fingerprint(commit_env(tmp_path), "code", None, {"code": "abc"}) is None  # not on Kaggle
    with pytest.raises(commitrun.BundleMismatch, match="unreadable"):
        commitrun.check_fingerprint(commit_env(tmp_path), "model", str(tmp_path / "gone"), expected)


def test_the_kernels_fingerprints_win_over_build_json():
    kernel, build = {"code": "k"}, {"commit": "abc", "fingerprints": {"code": "b", "model": "m"}}
    assert commitrun.expected_fingerprints(kernel, build) == {"code": "k"}
    assert commitrun.expected_fingerprints(None, build) == {"code": "b", "model": "m"}  # a notebook run by hand
    assert commitrun.expected_fingerprints(None, {"commit": "abc"}) == {}  # a bundle older than fingerprints
    assert commitrun.expected_fingerprints(None, None) == {}
