"""Choosing the two attempts: merge identical candidates, re-score them under augmented views, rank.

Product of experts: a candidate's score is its summed negative log-likelihood under K augmented
views of the task. Each view is one expert; the candidate is transformed into the view and scored
by a forward pass over the view's prompt followed by the candidate's tokens (no generation). A
correct answer tends to be likely under every view, a lucky one only under the view that made it.
Per view the prompt's KV cache is computed once and all candidates are scored on top of it.

Scores (higher is better):
    vote:  number of views that produced the candidate
    poe:   -(summed NLL over the K views)
    both:  votes - mean NLL over the K views   (a vote is worth one nat per view)
Ties break on votes, then the best generation log-prob, then the grid itself, so the order is
deterministic.
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch

from ..core.config import InferenceConfig
from ..core.tasks import Task
from ..core.textformat import END, GridCodec, grid_symbols
from ..core.views import View, sample_views
from .decoding import Candidate, Deadline, GridGrammar, build_prompt, grid_ids_tensor, restricted_logprobs
from .loading import model_device

LOGIT_BUDGET = 1 << 27  # vocabulary logits materialised per scoring forward (bounds memory for big vocabularies)


def grid_key(grid: np.ndarray) -> tuple:
    return grid.shape, np.ascontiguousarray(grid, dtype=np.uint8).tobytes()


def merge_candidates(raw: Sequence[Candidate]) -> list[Candidate]:
    """One Candidate per distinct grid, collecting the views and log-probs of every copy (first-seen order)."""
    merged: dict[tuple, Candidate] = {}
    for c in raw:
        m = merged.setdefault(grid_key(c.grid), Candidate(c.grid, [], []))
        m.views += c.views
        m.logprobs += c.logprobs
    return list(merged.values())


@torch.inference_mode()
def view_nll(model, codec: GridCodec, prompt: np.ndarray, targets: Sequence[list[int]], batch_size: int) -> np.ndarray:
    """NLL of each target continuing `prompt`: the prompt's cache once, targets batched on copies of it."""
    device = model_device(model)
    grid_ids = grid_ids_tensor(codec, device)
    grammar = GridGrammar()  # the legal-grid renormalisation used when decoding, at the widest bound
    out = model(input_ids=torch.from_numpy(prompt)[None].to(device), use_cache=True, logits_to_keep=1)
    prefix, first = out.past_key_values, out.logits[:, -1:, grid_ids]
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
            rest = model(input_ids=fed, past_key_values=cache, use_cache=True).logits[..., grid_ids]
            logits = torch.cat([logits, rest], dim=1)
        logp = restricted_logprobs(logits, allowed).gather(-1, toks[..., None])[..., 0]
        real = torch.arange(length, device=device)[None] < torch.tensor([len(t) for t in chunk], device=device)[:, None]
        nll[i:i + len(chunk)] = (-(logp.masked_fill(~real, 0.0)).sum(-1)).double().cpu().numpy()
        i += len(chunk)
    return nll


def poe_nll(model, codec: GridCodec, task: Task, test_index: int, grids: Sequence[np.ndarray],
            views: Sequence[View], *, max_len: int = 8192, batch_size: int = 8,
            deadline: Deadline | None = None) -> tuple[np.ndarray, int]:
    """(summed NLL of each grid over the views, number of views scored). Stops between views when the
    deadline passes; every grid is always scored on the same views, so partial sums stay comparable."""
    total, scored = np.zeros(len(grids)), 0
    if not grids:
        return total, 0
    for view in views:
        if deadline is not None and deadline.passed():
            break
        targets = [grid_symbols(view.apply_grid(g)) for g in grids]
        prompt = build_prompt(codec, view.apply(task), test_index, max_len - max(len(t) for t in targets))
        total += view_nll(model, codec, prompt, targets, batch_size)
        scored += 1
    return total, scored


def rank(candidates: Sequence[Candidate], mode: str, n_score_views: int = 1) -> list[Candidate]:
    """Fill `score` from votes and `poe_nll` (summed over `n_score_views` views), best first, deterministically.
    Without a PoE score (no time to compute it) the vote decides."""
    for c in candidates:
        votes = float(len(c.views))
        if mode == "vote" or c.poe_nll is None:
            c.score = votes
        elif mode == "poe":
            c.score = -c.poe_nll
        else:
            c.score = votes - c.poe_nll / n_score_views
    return sorted(candidates, key=lambda c: (-c.score, -len(c.views), -max(c.logprobs, default=-np.inf),
                                            grid_key(c.grid)))


def select(model, codec: GridCodec, task: Task, test_index: int, raw: Sequence[Candidate], cfg: InferenceConfig,
           deadline: Deadline | None = None, *, seed: int = 0) -> list[Candidate]:
    """Merged, scored and ranked candidates for one test input (best first)."""
    candidates = merge_candidates(raw)
    if cfg.selection != "vote" and candidates and not (deadline is not None and deadline.passed()):
        # same seed as generation: the experts include the views that proposed the candidates
        views = sample_views(task, cfg.n_score_views, seed, keep_background=cfg.keep_background)
        total, scored = poe_nll(model, codec, task, test_index, [c.grid for c in candidates], views,
                                max_len=cfg.max_len, batch_size=cfg.batch_size, deadline=deadline)
        if scored:
            for c, nll in zip(candidates, total / scored):  # extrapolated to K views if time cut it short
                c.poe_nll = float(nll * len(views))
    return rank(candidates, cfg.selection, cfg.n_score_views)
