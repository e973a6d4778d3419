"""Loading a causal LM from local files only: its device and dtype resolved (modeling.runtime), a saved or asked-for
4-bit quantisation honoured. Nothing here ever reaches a model hub: `local_files_only=True`, and the package
sets HF_HUB_OFFLINE (modeling/__init__.py).
"""
from __future__ import annotations

import json
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from ..core.config import ModelConfig
from ..core.errors import MissingInputError
from .runtime import configure_threads, resolve_device, resolve_dtype


def load_tokenizer(cfg: ModelConfig):
    kw = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
    return AutoTokenizer.from_pretrained(cfg.path, local_files_only=True, **kw)
def saved_quantization(path: str) -> dict | None:
    """The quantization_config a model folder was saved with (e.g. ARChitects' bnb-4bit uploads), or None."""
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            return json.load(f).get("quantization_config")
    except (OSError, ValueError):
        return None


def load_kwargs(cfg: ModelConfig, device: torch.device, dtype: torch.dtype) -> dict:
    """from_pretrained arguments. A pre-quantised folder loads with its own quantization_config (never a second
    one on top) and is placed by device_map, since a bitsandbytes model cannot be moved with `.to`."""
    kw: dict = {"local_files_only": True, "dtype": dtype}
    if cfg.gguf_file:
        kw["gguf_file"] = cfg.gguf_file
    if not cfg.gguf_file and saved_quantization(cfg.path) is not None:
        kw["device_map"] = {"": device}
    elif cfg.load_in_4bit:
        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True)
        kw["device_map"] = {"": device}
    return kw


def load_model(cfg: ModelConfig):
    """(model, tokenizer) from local files, on the resolved device and dtype."""
    if not os.path.isdir(cfg.path):
        raise MissingInputError(f"model folder {cfg.path} does not exist")
    configure_threads()
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    kw = load_kwargs(cfg, device, dtype)
    model = AutoModelForCausalLM.from_pretrained(cfg.path, **kw)
    if "device_map" not in kw:
        model.to(device)
    model.eval()
    return model, load_tokenizer(cfg)
