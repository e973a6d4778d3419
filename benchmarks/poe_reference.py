"""The former product-of-experts re-scoring, one view at a time: the reference that `selection.poe_nll` (all views
batched) is checked against (tests/modeling/test_selection.py) and the baseline it is timed against
(benchmarks/inference.py). The product never runs it; both give the same numbers up to floating-point rounding."""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch

from arc_ttt.core.clock import Deadline
from arc_ttt.core.codec import END
from arc_ttt.core.tasks import Task
from arc_ttt.core.codec import Codec
from arc_ttt.core.views import View
from arc_ttt.modeling.batching import build_prompt, grid_ids_tensor, grid_logprobs
from arc_ttt.modeling.runtime import model_device
from arc_ttt.modeling import selection


@torch.inference_mode()
def view_nll(model, codec: Codec, prompt: np.ndarray, targets: Sequence[list[int]], batch_size: int) -> np.ndarray:
    """NLL of each target continuing `prompt`: the prompt's cache once, targets batched on copies of it."""
    device = model_device(model)
    grid_ids = grid_ids_tensor(codec, device)
    grammar = codec.grammar()  # the legal moves when decoding: a candidate never gets mass the decoder forbids
    out = model(input_ids=torch.from_numpy(prompt)[None].to(device), use_cache=True, logits_to_keep=1)
    prefix, first = out.past_key_values, out.logits[:, -1:]
    vocab = out.logits.shape[-1]
    nll = np.zeros(len(targets))
    i = 0
    while i < len(targets):
        longest = max(len(t) for t in targets[i:i + batch_size])
        n = max(1, min(batch_size, selection.LOGIT_BUDGET // (longest * vocab)))
        chunk = targets[i:i + n]
        length = max(len(t) for t in chunk)
        toks = torch.full((len(chunk), length), END, dtype=torch.long)  # padding with the end marker keeps the grid-id lookup in range
        allowed = torch.ones((len(chunk), length, len(codec.grid_token_ids)), dtype=torch.bool)
        for j, t in enumerate(chunk):
            toks[j, :len(t)] = torch.tensor(t)
            allowed[j, :len(t)] = torch.from_numpy(grammar.masks(t))
        toks, allowed = toks.to(device), allowed.to(device)
        logits = first.expand(len(chunk), 1, -1)
        if length > 1:  # feed all but the last token; right padding cannot affect earlier positions
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(len(chunk))
            fed = grid_ids[toks[:, :-1]]
            rest = model(input_ids=fed, past_key_values=cache, use_cache=True).logits
            logits = torch.cat([logits, rest], dim=1)
        logp = grid_logprobs(logits, grid_ids, allowed).gather(-1, toks[..., None])[..., 0]
        real = torch.arange(length, device=device)[None] < torch.tensor([len(t) for t in chunk], device=device)[:, None]
        nll[i:i + len(chunk)] = (-(logp.masked_fill(~real, 0.0)).sum(-1)).double().cpu().numpy()
        i += len(chunk)
    return nll


def poe_nll_per_view(model, codec: Codec, task: Task, test_index: int, grids: Sequence[np.ndarray],
            views: Sequence[View], *, max_len: int = 8192, batch_size: int = 8,
            deadline: Deadline | None = None) -> np.ndarray:
    """`selection.poe_nll` one view at a time: a prompt cache per view, its candidates batched on copies of it."""
    columns = []
    for view in views:
        if not grids or (deadline is not None and deadline.passed()):
            break
        targets = [codec.answer_symbols(view.apply_grid(g)) for g in grids]
        prompt = build_prompt(codec, view.apply(task), test_index, max_len - max(len(t) for t in targets))
        columns.append(view_nll(model, codec, prompt, targets, batch_size))
    return np.stack(columns, axis=1) if columns else np.zeros((len(grids), 0))
