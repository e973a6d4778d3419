"""Choosing the two attempts: merge identical candidates, re-score them under augmented views, rank.

Product of experts: each candidate is transformed into K augmented views of the task (drawn fresh,
not the views that generated it) and scored by one forward pass over the view's prompt followed by
the candidate's tokens (no generation). A correct answer tends to be likely under every view, a
lucky one only under the view that made it. Per view the prompt's KV cache is computed once and all
candidates are scored on top of it. The ranking rules themselves live in `core.ranking`.
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch

from ..core.config import InferenceConfig
from ..core.ranking import Candidate, merge, rank
from ..core.tasks import Task
from ..core.textformat import END, GridCodec, grid_symbols
from ..core.views import View, sample_views
from .decoding import Deadline, GridGrammar, build_prompt, grid_ids_tensor, grid_logprobs
from .loading import model_device

LOGIT_BUDGET = 1 << 27  # vocabulary logits materialised per scoring forward (bounds memory for big vocabularies)
SCORING_SEED = 1_000_003  # scoring views come from another stream than the generation views


@torch.inference_mode()
def view_nll(model, codec: GridCodec, prompt: np.ndarray, targets: Sequence[list[int]], batch_size: int) -> np.ndarray:
    """NLL of each target continuing `prompt`: the prompt's cache once, targets batched on copies of it."""
    device = model_device(model)
    grid_ids = grid_ids_tensor(codec, device)
    grammar = GridGrammar()  # the legal moves when decoding: a candidate never gets mass the decoder forbids
    out = model(input_ids=torch.from_numpy(prompt)[None].to(device), use_cache=True, logits_to_keep=1)
    prefix, first = out.past_key_values, out.logits[:, -1:]
    vocab = out.logits.shape[-1]
    nll = np.zeros(len(targets))
    i = 0
    while i < len(targets):
        longest = max(len(t) for t in targets[i:i + batch_size])
        n = max(1, min(batch_size, LOGIT_BUDGET // (longest * vocab)))
        chunk = targets[i:i + n]
        length = max(len(t) for t in chunk)
        toks = torch.full((len(chunk), length), END, dtype=torch.long)  # padding with the end marker keeps the grid-id lookup in range
        allowed = torch.ones((len(chunk), length, 12), dtype=torch.bool)
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


def poe_nll(model, codec: GridCodec, task: Task, test_index: int, grids: Sequence[np.ndarray],
            views: Sequence[View], *, max_len: int = 8192, batch_size: int = 8,
            deadline: Deadline | None = None) -> np.ndarray:
    """NLL of each grid under each view, shape (grids, views scored). Stops between views when the deadline
    passes; every grid is always scored on the same views, so their means stay comparable."""
    columns = []
    for view in views:
        if not grids or (deadline is not None and deadline.passed()):
            break
        targets = [grid_symbols(view.apply_grid(g)) for g in grids]
        prompt = build_prompt(codec, view.apply(task), test_index, max_len - max(len(t) for t in targets))
        columns.append(view_nll(model, codec, prompt, targets, batch_size))
    return np.stack(columns, axis=1) if columns else np.zeros((len(grids), 0))


def select(model, codec: GridCodec, task: Task, test_index: int, raw: Sequence[Candidate], cfg: InferenceConfig,
           deadline: Deadline | None = None, *, seed: int = 0, keep_background: bool = True) -> list[Candidate]:
    """Merged, scored and ranked candidates for one test input (best first)."""
    candidates = merge(raw, cfg.dfs_threshold)
    if cfg.selection != "vote" and candidates and not (deadline is not None and deadline.passed()):
        views = sample_views(task, cfg.n_score_views, seed + SCORING_SEED, keep_background=keep_background)
        nll = poe_nll(model, codec, task, test_index, [c.grid for c in candidates], views,
                      max_len=cfg.max_len, batch_size=cfg.batch_size, deadline=deadline)
        if nll.shape[1]:
            for c, row in zip(candidates, nll):
                c.view_nlls = row.tolist()
    return rank(candidates, cfg.selection)
