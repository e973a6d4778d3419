"""LoRA adapters for test-time training, with an in-memory per-task reset.

`attach` wraps any Hugging Face causal LM in a peft LoRA model. With `target_modules="auto"` it
adapts what peft's "all-linear" does (every Linear or Conv1D layer but the output head: the
attention and MLP projections), and it refuses to train zero parameters. `snapshot`/`restore` keep the
freshly initialised adapter in memory so every task starts from the same weights without
reloading the model.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from transformers.pytorch_utils import Conv1D

from ..core.config import LoraSettings
from ..core.errors import UserError
from ..core.folders import FileContents, atomic_folder, write_files
from ..core.modelfolder import CARD_FILE

def _is_projection(module: nn.Module) -> bool:
    if isinstance(module, (nn.Linear, Conv1D)):
        return True
    # bitsandbytes 4-bit/8-bit layers subclass nn.Linear, but check by name in case they do not.
    return type(module).__name__ in {"Linear4bit", "Linear8bitLt"}


def _module_name(model: nn.Module, target: nn.Module | None) -> str | None:
    if target is None:
        return None
    for name, module in model.named_modules():
        if module is target:
            return name
    return None


def find_targets(model: nn.Module, targets: str | list[str] = "auto") -> list[str]:
    """Leaf names of the layers to adapt; ValueError listing what exists when nothing matches. The names are
    spelled out (rather than passing "all-linear" to peft) so that embeddings and lm_head can join them."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    leaves = {name.rsplit(".", 1)[-1]: module for name, module in model.named_modules()
              if _is_projection(module) and module is not head}
    if targets == "auto":  # peft's "all-linear": every Linear/Conv1D layer but the output head
        found = sorted(leaves)
    else:
        wanted = [targets] if isinstance(targets, str) else list(targets)
        found = sorted(n for n in wanted if n in leaves)
    if not found:
        layers = sorted(leaves) or "none"
        raise UserError(
            f"no LoRA target module matched {targets!r} in {type(model).__name__}; its Linear/Conv1D layers are "
            f"named: {layers}. Pass LoraSettings(target_modules=[...]) with some of these names.")
    return found


def attach(model: nn.Module, settings: LoraSettings = LoraSettings()):
    """`model` wrapped as a peft.PeftModel with fresh LoRA adapters; only the adapters train."""
    targets = find_targets(model, settings.target_modules)
    extra = []
    if settings.train_embeddings:
        extra.append(_module_name(model, model.get_input_embeddings()))
    if settings.train_lm_head:
        extra.append(_module_name(model, model.get_output_embeddings()))
    if None in extra:
        raise ValueError("could not locate the embedding or lm_head module to adapt")
    conv1d = any(isinstance(m, Conv1D) and n.rsplit(".", 1)[-1] in targets for n, m in model.named_modules())
    config = LoraConfig(
        fan_in_fan_out=conv1d,  # GPT-2's Conv1D stores its weight transposed
        r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, use_rslora=settings.use_rslora,
        target_modules=targets + [e.rsplit(".", 1)[-1] for e in extra], bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():
        # A tied embedding/lm_head gets two independent adapters over the shared, frozen base weight. peft warns
        # that merging such adapters is awkward; we never merge or save them (they live for one task in memory).
        warnings.filterwarnings("ignore", message="Model has `tie_word_embeddings=True`")
        peft_model = get_peft_model(model, config)
    n = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    if n == 0:  # cannot happen after find_targets, but never train nothing silently
        raise ValueError(f"LoRA on {targets} left no trainable parameters")
    if settings.dtype != "float32":
        cast_adapters(peft_model, getattr(torch, settings.dtype))
    return peft_model


@torch.no_grad()
def cast_adapters(model: nn.Module, dtype: torch.dtype) -> None:
    """The trainable (adapter) parameters in `dtype`; AdamW then keeps its states in it too. Refused over fp16
    weights: fp16 training needs fp32 master weights for its loss scaling."""
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad and p.is_floating_point()}
    if dtype == torch.bfloat16 and torch.float16 in frozen:
        raise UserError("lora.dtype bfloat16 with float16 weights (a pre-Ampere GPU such as the T4): keep "
                         "lora.dtype float32 there, or load the model in bfloat16 on compute capability >= 8.0")
    for p in trainable_parameters(model).values():
        p.data = p.data.to(dtype)


@dataclass
class AdapterSnapshot:
    """Copies of every trainable tensor, by parameter name."""

    tensors: dict[str, torch.Tensor]

    @property
    def numel(self) -> int:
        return sum(t.numel() for t in self.tensors.values())


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def snapshot(model: nn.Module) -> AdapterSnapshot:
    """The current adapter state (take it right after `attach`: the initial one)."""
    params = trainable_parameters(model)
    if not params:
        raise ValueError("the model has no trainable parameters to snapshot; call lora.attach first")
    return AdapterSnapshot({name: p.detach().clone() for name, p in params.items()})


@torch.no_grad()
def restore(model: nn.Module, snap: AdapterSnapshot) -> None:
    """Copy the snapshot back into the live parameters in place (no reload, no new tensors)."""
    params = trainable_parameters(model)
    if params.keys() != snap.tensors.keys():
        missing = sorted(set(snap.tensors) ^ set(params))[:5]
        raise ValueError(f"snapshot does not match the model's trainable parameters (e.g. {missing})")
    for name, p in params.items():
        p.copy_(snap.tensors[name])
        p.grad = None


ADAPTER_WEIGHTS = "adapter_model.safetensors"


def adapter_bytes(folder: str) -> int:
    """The size of a saved adapter's weights (what its card reports)."""
    return os.path.getsize(os.path.join(folder, ADAPTER_WEIGHTS))


def save_adapter(model, folder: str, dtype: torch.dtype = torch.float16, card: dict | None = None,
                 files: Mapping[str, FileContents] | None = None) -> str:
    """The trained adapter as a peft folder (adapter_config.json + adapter_model.safetensors), its tensors cast
    to `dtype` (half the size of fp32: the committed default adapter must stay small). Written atomically, with
    `card` (as finetune.json, its `adapter_bytes` filled in) and `files` inside the same step: a kill never
    leaves an adapter without its card."""
    params = trainable_parameters(model)
    saved = {name: p.detach().clone() for name, p in params.items()}
    with atomic_folder(folder) as tmp:
        try:
            with torch.no_grad():
                for p in params.values():
                    p.data = p.data.to(dtype)
            model.save_pretrained(tmp)
            extra = {} if card is None else {CARD_FILE: {**card, "adapter_bytes": adapter_bytes(tmp)}}
            write_files(tmp, {**extra, **(files or {})})
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.data = saved[name]
    return folder


def load_adapter_weights(model, folder: str) -> None:
    """A saved adapter's tensors copied into `model`'s freshly attached adapters (of the same rank and targets): a
    fine-tuning run that continues an earlier one's adapter under a new schedule. Names the folder and what differs."""
    with open(os.path.join(folder, "adapter_config.json"), encoding="utf-8") as f:
        saved_r = json.load(f).get("r")
    r = model.peft_config["default"].r
    if saved_r != r:
        raise UserError(f"adapter {folder} has rank {saved_r}; this run attaches rank {r} (lora.r)")
    weights = load_file(os.path.join(folder, "adapter_model.safetensors"))
    own = trainable_parameters(model)
    with torch.no_grad():
        result = set_peft_model_state_dict(model, {k: v.to(next(iter(own.values())).dtype) for k, v in weights.items()})
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise UserError(f"adapter {folder} does not fit this model's adapters: {len(missing)} missing "
                         f"(e.g. {missing[:1]}), {len(result.unexpected_keys)} unexpected "
                         f"(e.g. {result.unexpected_keys[:1]})")


def merge_adapter(model, adapter_folder: str):
    """The base model with a saved adapter folded into its weights (a plain transformers model again)."""
    return PeftModel.from_pretrained(model, adapter_folder, is_trainable=False).merge_and_unload()
