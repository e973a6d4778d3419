"""modeling.loading: a model from local files, 4-bit through bitsandbytes included."""
import numpy as np
import torch

from arc_ttt.core.config import ModelConfig
from arc_ttt.modeling import lora, ttt
from arc_ttt.modeling.loading import load_model
from arc_ttt.core.formats.symbols import GridCodec


def test_4bit_nf4_loading_and_lora_step_on_cpu(tiny_src, small_tasks):
    """QLoRA on CPU: bitsandbytes nf4 weights, bf16/fp32 compute, LoRA adapters that train."""
    model, tok = load_model(ModelConfig(path=tiny_src, dtype="float32", device="cpu", load_in_4bit=True))
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Linear4bit" in kinds
    model = lora.attach(model, lora.LoraSettings(r=4))
    codec = GridCodec.from_tokenizer(tok)
    data = ttt.build_sequences(small_tasks[0], codec, ttt.TTTConfig(), n=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    result = ttt.train(model, data, ttt.TTTConfig(lr=1e-2, autocast="off"))
    assert result.steps == 2 and all(np.isfinite(result.losses))
    moved = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert moved and all("lora_" in n for n in moved)


def test_loading_the_model_side_prints_no_warning_a_newcomer_would_read_as_an_error():
    """bitsandbytes' optional hub-kernel message (AVX512-BF16 CPUs) and peft's deprecated-attribute FutureWarning."""
    import subprocess
    import sys

    code = ("import arc_ttt.modeling.lora, bitsandbytes, torch\n"  # FutureWarning shows by default
            "from transformers import LlamaConfig, LlamaForCausalLM\n"
            "m = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,"
            " num_attention_heads=2, num_key_value_heads=2))\n"
            "from peft import LoraConfig, get_peft_model\n"
            "get_peft_model(m, LoraConfig(r=2, target_modules=['q_proj']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "gemm_4bit_forward" not in out.stderr and "is_gradient_checkpointing" not in out.stderr, out.stderr
