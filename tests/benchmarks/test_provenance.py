"""benchmarks/provenance.py: a result file says what it ran (commit, model identity, resolved config sections)."""
import json
import os

from conftest import ROOT, load_benchmark

from arc_ttt.core.config import load_config


def test_a_result_names_the_commit_the_model_and_the_resolved_sections(tmp_path):
    provenance = load_benchmark("provenance")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "finetune.json").write_text(json.dumps({"config_digest": "abc", "steps": 5, "tokens": 10}))
    cfg = load_config(os.path.join(ROOT, "configs", "local.yaml"), ["ttt.lr=3e-4", f"model.path={folder}"])
    got = provenance.provenance(cfg, config_file=os.path.join(ROOT, "configs", "local.yaml"),
                                overrides=["ttt.lr=3e-4"])
    assert len(got["git"]["commit"]) == 40 and isinstance(got["git"]["dirty"], bool)
    assert got["config_file"] == os.path.join("configs", "local.yaml") and got["overrides"] == ["ttt.lr=3e-4"]
    assert {"model", "ttt", "inference", "budget"} <= set(got["resolved"])
    assert got["resolved"]["ttt"]["lr"] == 3e-4  # as resolved, not as the file says today
    model = got["model"]
    assert model["card"]["config_digest"] == "abc" and model["card"]["steps"] == 5
    assert list(model["weights_sha256"]) == ["model.safetensors"] and len(model["weights_sha256"]["model.safetensors"]) == 16
    json.dumps(got)  # a result file can hold it as it is


def test_a_merged_model_is_named_by_its_stamp_not_rehashed(tmp_path):
    provenance = load_benchmark("provenance")
    (tmp_path / "merged_adapter.sha256").write_text("0123abcd shrink-vocab\n")
    (tmp_path / "model.safetensors").write_bytes(b"x")
    got = provenance.model_identity(str(tmp_path))
    assert got["merge_stamp"] == "0123abcd shrink-vocab" and "weights_sha256" not in got
