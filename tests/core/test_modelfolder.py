"""Model folders readable by transformers 4.x and 5.x, and what a folder says about itself."""
import json
import os

import pytest
from conftest import tiny_llama

from arc_ttt.core import modelfolder as M


def test_portable_config_adds_what_4x_reads():
    v5 = {"model_type": "llama", "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}}
    out = M.portable_config(v5)
    assert out["rope_theta"] == 100000.0 and "rope_scaling" not in out and out["rope_parameters"] == v5["rope_parameters"]
    llama3 = {"rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 32.0,
                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 8192}}
    out = M.portable_config(llama3)
    assert out["rope_theta"] == 500000.0
    assert out["rope_scaling"] == {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    nested = M.portable_config({"text_config": {"rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}}})
    assert nested["text_config"]["rope_theta"] == 1e6
    v4 = {"rope_theta": 10000.0, "rope_scaling": None}
    assert M.portable_config(v4) == v4  # a 4.x config comes back unchanged
    mixed = {"rope_theta": 5.0, "rope_parameters": {"rope_theta": 7.0}}
    assert M.portable_config(mixed)["rope_theta"] == 5.0  # an existing field is never overwritten


def test_portable_tokenizer_config():
    v5 = {"tokenizer_class": "TokenizersBackend", "backend": "tokenizers", "is_local": True, "local_files_only": True,
          "extra_special_tokens": ["<a>", "<b>"], "bos_token": "<s>"}
    out = M.portable_tokenizer_config(v5)
    assert out == {"tokenizer_class": "PreTrainedTokenizerFast", "additional_special_tokens": ["<a>", "<b>"],
                   "bos_token": "<s>"}
    kept = {"tokenizer_class": "Qwen2TokenizerFast", "extra_special_tokens": {"x": "<x>"}}
    assert M.portable_tokenizer_config(kept) == kept


def test_make_portable_never_writes_through_a_hard_link(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir(), dst.mkdir()
    (src / "config.json").write_text(json.dumps({"rope_parameters": {"rope_theta": 1e5, "rope_type": "default"}}))
    (src / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "TokenizersBackend"}))
    for name in ("config.json", "tokenizer_config.json"):
        os.link(src / name, dst / name)
    assert M.make_portable(str(dst)) == ["config.json", "tokenizer_config.json"]
    assert json.loads((dst / "config.json").read_text())["rope_theta"] == 1e5
    assert "rope_theta" not in json.loads((src / "config.json").read_text())  # the source folder is untouched
    assert M.make_portable(str(dst)) == []  # idempotent
    (dst / "config.json").write_text("{not json")
    with pytest.raises(M.ModelFolderError, match="config.json"):
        M.make_portable(str(dst))


def test_save_model_writes_a_portable_folder(tmp_path, tokenizer):
    """The kit's own save path (make model, prepare-model, the bundle's --prepare, finetune's merge)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from arc_ttt.modeling.export import save_model

    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, rope_theta=100000.0)
    save_model(LlamaForCausalLM(cfg), tokenizer, str(tmp_path / "m"), format_name="kit")
    info = M.describe_model(str(tmp_path / "m"))
    assert info.rope_theta == 100000.0 and info.tokenizer_class == "PreTrainedTokenizerFast" and info.format == "kit"
    assert M.compatibility_problem(info, "4.57.1", lambda name: name != "TokenizersBackend") is None
    reloaded = LlamaConfig.from_pretrained(str(tmp_path / "m"))  # and this transformers still reads the same base
    assert reloaded.rope_parameters["rope_theta"] == 100000.0


def test_the_merged_demonstration_model_is_saved_in_bf16(tmp_path, tokenizer, tiny_model_dir):
    """make model merges in fp32 (every small delta kept) and saves in bf16: half the upload of fp32."""
    from safetensors import safe_open

    from arc_ttt.core.config import LoraSettings
    from arc_ttt.modeling import lora
    from arc_ttt.modeling.embedded import ensure_arc_model

    adapter = str(tmp_path / "adapter")
    lora.save_adapter(lora.attach(tiny_llama(tokenizer), LoraSettings(r=4)), adapter)
    dst = ensure_arc_model(str(tmp_path / "arc"), adapter, base=tiny_model_dir)
    with safe_open(os.path.join(dst, "model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
    info = M.describe_model(dst)
    assert info.rope_theta is not None and info.tokenizer_class == "PreTrainedTokenizerFast"
    assert os.path.exists(os.path.join(dst, M.DEMO_MARKER)) and info.kind == "demo"  # make model marks it
