"""The grid model conditioned on a frozen causal LM (`model.condition: llm`, issue 37's hybrid).

    prompt    the task in the LLM's own format under the sample's view, the text the LLM source decodes from:
              a test input: `batching.build_prompt(codec, view.apply(task), test_index, max_len)`, as decoding;
              a demonstration (training, per-task adaptation): the other demonstrations under the view, then its
              input (leave one out), so that the output the grid model is asked for is never in its prompt
    features  the LLM's last hidden states over the prompt, frozen (no gradient, its own weights never trained;
              in a run the LLM's TTT adapter is switched off for them, so they are the base model's), one prompt
              a forward: a prompt's features are the same whatever it is batched with, so a resumed run recomputes
              bit for bit what the unbroken one had cached; cached by the prompt's ids, least recently used out
              past `model.llm.cache_mb`
    network   a trainable projection (LLM width -> grid width, then RMS-normed) and, after each block of the
              recursive network, a cross-attention sub-layer: queries from every grid position, keys and values
              from the projected features, no RoPE (the features carry the LLM's positions), post-norm as the block

Why cross-attention and not the features prepended as memory tokens: TRM's recursion carries its states y and z
over every position, so memory tokens would be states the network rewrites each cycle (with initial values, 2-D
positions and halting to define for them), and self-attention over 904 + L positions costs (904 + L)^2 scores
where cross-attention costs 904 x L: with a prompt of L = 2000 tokens, 8.4M against 1.8M a head and layer. As
read-only keys and values, the features leave the TRM part exactly as it is (`condition: none` is unchanged).

The LLM is never a submodule of the grid model: its weights are not in the grid model's state (not saved, not
copied by `full` adaptation); the grid model's card keeps which LLM it was trained on (`core.gridconfig.llm_record`)
and `gridmodel.load_grid_model` refuses another.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM

from ..core import formats
from ..core.config import ModelConfig
from ..core.errors import MissingInputError
from ..core.gridconfig import GridLLMConfig, GridModelConfig, llm_record
from ..core.tasks import Pair, Task, to_grid
from ..core.views import View
from .batching import build_prompt
from .gridlayers import lecun, rms_norm
from .loading import load_kwargs, load_tokenizer
from .lora import merge_adapter
from .runtime import model_device, resolve_dtype


# ---------------------------------------------------------------------------- features in a batch

@dataclass
class Features:
    """Prompts' features padded into a batch: states (batch, length, LLM width), zeros past a prompt's end; mask
    (batch, length), True on a prompt's tokens (the keys cross-attention may read)."""

    states: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.states)

    @classmethod
    def pad(cls, rows: Sequence[torch.Tensor]) -> "Features":
        """One prompt's (length, width) features a row, padded to the longest."""
        length = max(r.shape[0] for r in rows)
        states = rows[0].new_zeros(len(rows), length, rows[0].shape[-1])
        mask = torch.zeros(len(rows), length, dtype=torch.bool, device=rows[0].device)
        for i, r in enumerate(rows):
            states[i, :len(r)], mask[i, :len(r)] = r, True
        return cls(states, mask)

    @classmethod
    def cat(cls, parts: Sequence["Features"]) -> "Features":
        """Batches one after the other, padded to the longest prompt."""
        return cls.pad([p.states[i, :int(p.mask[i].sum())] for p in parts for i in range(len(p))])


# ---------------------------------------------------------------------------- the trainable part

class CrossAttention(nn.Module):
    """Grid positions reading the projected LLM features: attention, added and RMS-normed after (post-norm)."""

    def __init__(self, cfg: GridModelConfig):
        super().__init__()
        self.heads, self.eps = cfg.heads, cfg.norm_eps
        self.q = lecun(nn.Linear(cfg.hidden, cfg.hidden, bias=False))
        self.kv = lecun(nn.Linear(cfg.hidden, 2 * cfg.hidden, bias=False))
        self.out = lecun(nn.Linear(cfg.hidden, cfg.hidden, bias=False))

    def keys(self, memory: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, length, dim = memory.shape
        k, v = self.kv(memory).view(b, length, 2, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        return k, v, mask[:, None, None, :]

    def forward(self, h: torch.Tensor, keys: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        k, v, mask = keys
        b, length, dim = h.shape
        q = self.q(h).view(b, length, self.heads, dim // self.heads).transpose(1, 2)
        att = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask)
        return rms_norm(h + self.out(att.transpose(1, 2).reshape(b, length, dim)), self.eps)


class Conditioning(nn.Module):
    """What `condition: llm` adds to the grid model and trains: the projection and one cross-attention per block."""

    def __init__(self, cfg: GridModelConfig, llm_hidden: int):
        super().__init__()
        self.eps = cfg.norm_eps
        self.project = lecun(nn.Linear(llm_hidden, cfg.hidden, bias=False))
        self.cross = nn.ModuleList(CrossAttention(cfg) for _ in range(cfg.layers))

    def context(self, features: Features) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each block's keys and values, made once per supervision step (with gradient) and read by every cycle."""
        memory = rms_norm(self.project(features.states.to(self.project.weight.dtype)), self.eps)
        return [cross.keys(memory, features.mask) for cross in self.cross]


# ---------------------------------------------------------------------------- the frozen LLM

def freeze(model) -> Any:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def index_of(task: Task, pair: Pair) -> int:
    """A demonstration's index in task.train, by identity (the pairs `gridmodel.pairs_that_fit` returns)."""
    for i, p in enumerate(task.train):
        if p is pair:
            return i
    raise ValueError(f"task {task.id}: the pair is none of its demonstrations")


def base(model):
    """The LLM without its LoRA adapter (a run's TTT adapter, a peft model's); nothing for a plain model."""
    off = getattr(model, "disable_adapter", None)
    return off() if off is not None else contextlib.nullcontext()


def last_states(model, ids: np.ndarray) -> torch.Tensor:
    """(length, width): the LLM's last hidden states over `ids`, one prompt a forward, its adapter off."""
    # a run predicts under inference mode; these features are read by steps that need gradients elsewhere
    with torch.inference_mode(False), torch.no_grad(), base(model):
        tokens = torch.tensor(np.asarray(ids, dtype=np.int64)[None], device=model_device(model))
        out = model(input_ids=tokens, output_hidden_states=True, logits_to_keep=1)
        return out.hidden_states[-1][0].detach()


# A fixed small task whose prompt every LLM record is probed on: what the LLM computes names it by content
# (core.gridconfig.same_llm), so a moved or merged folder is the same LLM and a rebuilt one is not.
PROBE_TASK = Task("probe", (Pair(to_grid([[0, 1], [2, 3]]), to_grid([[3, 2], [1, 0]])),
                            Pair(to_grid([[4, 5, 6]]), to_grid([[6, 5, 4]]))), (Pair(to_grid([[7, 8], [9, 0]]), None),))
PROBE_DIMS = 8  # fixed random directions each token's state is projected on: a card holds tokens x 8 numbers


def probe(model, codec) -> list[float]:
    """The LLM's last hidden states over PROBE_TASK's prompt in `codec`'s format, projected on PROBE_DIMS fixed
    random directions (seed 0), in float32, six significant digits: what `same_llm` compares."""
    states = last_states(model, build_prompt(codec, PROBE_TASK, 0, 2048)).float().cpu()
    directions = np.random.default_rng(0).standard_normal((states.shape[-1], PROBE_DIMS)) / states.shape[-1] ** 0.5
    projected = states.numpy() @ directions.astype(np.float32)
    return [float(f"{x:.6g}") for x in projected.ravel()]


class FeatureEncoder:
    """A frozen causal LM and its codec: a prompt's last hidden states, cached by the prompt's ids."""

    def __init__(self, model, codec, record: dict, max_len: int = 2048, cache_mb: float = 512.0):
        self.model, self.codec, self.record = model, codec, record
        self.max_len, self.limit = max_len, int(cache_mb * 2 ** 20)
        self.cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.held = 0  # bytes in the cache
        self.hits = self.misses = 0
        self.seconds = 0.0  # spent in the LLM

    @property
    def hidden(self) -> int:
        return self.record["hidden"]

    def stats(self) -> dict:
        return {"computed": self.misses, "reused": self.hits, "seconds": round(self.seconds, 2),
                "cached_mb": round(self.held / 2 ** 20, 1)}

    def features(self, ids: np.ndarray) -> torch.Tensor:
        """(length, width): the LLM's last hidden states over `ids`, from the cache when it holds them."""
        key = hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).digest()
        if key in self.cache:
            self.hits += 1
            self.cache.move_to_end(key)
            return self.cache[key]
        self.misses += 1
        start = time.perf_counter()
        states = last_states(self.model, ids)
        self.seconds += time.perf_counter() - start
        size = states.numel() * states.element_size()
        if size <= self.limit:
            self.cache[key], self.held = states, self.held + size
            while self.held > self.limit:
                _, old = self.cache.popitem(last=False)
                self.held -= old.numel() * old.element_size()
        return states

    def test_prompt(self, task: Task, view: View, test_index: int) -> np.ndarray:
        """The prompt the LLM source decodes test input `test_index` from under `view`."""
        return build_prompt(self.codec, view.apply(task), test_index, self.max_len)

    def demo_prompt(self, task: Task, view: View, index: int) -> np.ndarray:
        """Demonstration `index` as the query: the others under `view`, in its order, then its input under it."""
        order = view.order if view.order is not None else range(len(task.train))
        others = tuple(p for i, p in zip(order, view.apply(task).train) if i != index)
        query = Pair(view.apply_grid(task.train[index].input), None)
        return build_prompt(self.codec, Task(task.id, others, (query,)), 0, self.max_len)

    def batch(self, prompts: Sequence[np.ndarray], device) -> Features:
        return Features.pad([self.features(p).to(device) for p in prompts])

    def pairs(self, samples: Sequence[tuple[Task, View, Pair]], device) -> Features:
        """The features of demonstrations (task, view, pair: an object of task.train), each left out of its own
        prompt: a training batch's, or a task's demonstrations under a view for its adaptation."""
        return self.batch([self.demo_prompt(task, view, index_of(task, p)) for task, view, p in samples], device)

    def demos(self, task: Task, view: View, pairs: Sequence[Pair], device) -> Features:
        return self.pairs([(task, view, p) for p in pairs], device)

    def test(self, task: Task, view: View, test_index: int, device) -> Features:
        return self.batch([self.test_prompt(task, view, test_index)], device)


def load_encoder(cfg: GridLLMConfig, device: torch.device) -> FeatureEncoder:
    """The LLM `model.llm` names, loaded once on `device`, its adapter merged, frozen; its codec by the LLM path's
    own format resolution (`formats.resolve`, `formats.codec_for`)."""
    if not cfg.path or not os.path.isdir(cfg.path):
        raise MissingInputError(f"model.llm.path: model folder {cfg.path} does not exist")
    mcfg = ModelConfig(path=cfg.path, dtype=cfg.dtype, device=str(device), format=cfg.format)
    kw = load_kwargs(mcfg, device, resolve_dtype(cfg.dtype, device))
    # transformers itself rather than loading.load_model, which also sets torch's threads for a run: the grid
    # trainer keeps the threads it was started with
    model = AutoModelForCausalLM.from_pretrained(cfg.path, **kw)
    if cfg.adapter:
        if not os.path.isdir(cfg.adapter):
            raise MissingInputError(f"model.llm.adapter: adapter folder {cfg.adapter} does not exist")
        model = merge_adapter(model, cfg.adapter)
    if "device_map" not in kw:
        model.to(device)
    codec = formats.codec_for(formats.resolve(cfg.format, cfg.path), load_tokenizer(mcfg))
    model = freeze(model)
    record = llm_record(cfg.path, cfg.adapter, codec.name, model.get_input_embeddings().embedding_dim,
                        probe(model, codec))
    return FeatureEncoder(model, codec, record, cfg.max_len, cfg.cache_mb)


def run_record(model, codec) -> dict:
    """A run's LLM as `llm_record` writes it: the folder it was loaded from (`model.path`, kept by transformers as
    the config's name_or_path), no adapter of its own (its TTT adapter is switched off for features), its codec,
    its probe."""
    return llm_record(model.config.name_or_path, None, codec.name, model.get_input_embeddings().embedding_dim,
                      probe(model, codec))
