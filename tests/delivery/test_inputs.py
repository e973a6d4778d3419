"""delivery.inputs.is_model_dir: what counts as a model folder, and a path that is none (find_* are tested with the
notebook's environment in test_environment.py)."""
from arc_ttt.delivery import inputs


def test_is_model_dir(tmp_path):
    assert not inputs.is_model_dir(str(tmp_path / "missing"))  # no folder: False, not an OSError
    (tmp_path / "a-file").write_text("")
    assert not inputs.is_model_dir(str(tmp_path / "a-file"))
    assert not inputs.is_model_dir(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert not inputs.is_model_dir(str(tmp_path))  # a config without weights
    (tmp_path / "model.safetensors").write_text("")
    assert inputs.is_model_dir(str(tmp_path))
    gguf = tmp_path / "gguf"
    gguf.mkdir()
    (gguf / "model.Q4_1.gguf").write_text("")
    assert inputs.is_model_dir(str(gguf))
    assert inputs.is_model_dir("anything", files=["config.json", "pytorch_model.bin"])  # the listing given: not read
