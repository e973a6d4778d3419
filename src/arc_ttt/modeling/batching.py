"""Batched model calls that decoding and re-scoring share, so neither imports the other.

A view's prompt cut to a token budget; prompts of different lengths left padded into one batch (each
row computes as if alone); the answer tokens' log-probabilities under the whole vocabulary with the
grammar's mask; and the rows of a stacked KV cache merged, repeated and dropped (the batched DFS).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..core.formats.codec import Codec
from ..core.tasks import Task


def build_prompt(codec: Codec, view_task: Task, test_index: int, budget: int) -> np.ndarray:
    """The view's prompt, dropping demonstrations from the end until it fits in `budget` tokens."""
    demos = list(view_task.train)
    query = view_task.test[test_index].input
    ids = codec.encode_prompt(demos, query)
    while len(ids) > budget and demos:
        demos.pop()
        ids = codec.encode_prompt(demos, query)
    return ids


# --- model calls ------------------------------------------------------------------------------

def grid_ids_tensor(codec: Codec, device) -> torch.Tensor:
    return torch.tensor(codec.grid_token_ids, dtype=torch.long, device=device)


def grid_logprobs(logits: torch.Tensor, grid_ids: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the grid tokens under the model's whole vocabulary; what the grammar forbids
    gets -inf. Nothing is renormalised: mass the model puts elsewhere (an illegal token, a row of the
    wrong width) counts against the path, so a forced newline still carries the row-width evidence."""
    return torch.log_softmax(logits.float(), dim=-1)[..., grid_ids].masked_fill(~allowed, float("-inf"))


def left_padded(codec: Codec, prompts: Sequence[np.ndarray], device):
    """Prompts of different lengths as one batch: (ids, attention mask, position ids), padded on the left
    so that every row's next token comes at the same index and each row computes as if alone."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), codec.pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.from_numpy(p)
        mask[i, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


# --- rows of a stacked KV cache ---------------------------------------------------------------

class UnsupportedCache(RuntimeError):
    """The model's KV cache has layers the batched search cannot left-pad and merge (e.g. sliding windows)."""


def _layers(cache):
    """The cache's layers, when every one is a plain growing layer (else UnsupportedCache)."""
    from transformers.cache_utils import DynamicLayer  # only the plain growing layer can be left padded and merged

    layers = getattr(cache, "layers", None)
    if layers is None or any(type(layer) is not DynamicLayer for layer in layers):
        raise UnsupportedCache(f"{type(cache).__name__} with layers {sorted({type(l).__name__ for l in layers or []})}")
    return layers


def merge_rows(a, b):
    """Rows (cache, attention mask, next position) of `b` appended below those of `a`, the shorter left padded."""
    (ca, ma, pa), (cb, mb, pb) = a, b
    ta, tb = ma.shape[1], mb.shape[1]
    width = max(ta, tb)
    pad = lambda t, n: torch.nn.functional.pad(t, (0, 0, n, 0)) if n else t  # noqa: E731 (keys: B,H,T,D)
    for la, lb in zip(_layers(ca), _layers(cb)):
        la.keys = torch.cat([pad(la.keys, width - ta), pad(lb.keys, width - tb)])
        la.values = torch.cat([pad(la.values, width - ta), pad(lb.values, width - tb)])
    mask = torch.cat([torch.nn.functional.pad(ma, (width - ta, 0)), torch.nn.functional.pad(mb, (width - tb, 0))])
    return ca, mask, torch.cat([pa, pb])


def select_rows(cache, mask, pos, rows: torch.Tensor):
    """Keep (or repeat) the given rows, then drop the left columns that are padding in every row."""
    layers = _layers(cache)
    mask, pos = mask[rows], pos[rows]
    first = int(mask.any(0).long().argmax())
    for layer in layers:
        layer.keys, layer.values = layer.keys[rows, :, first:], layer.values[rows, :, first:]
    return cache, mask[:, first:], pos
