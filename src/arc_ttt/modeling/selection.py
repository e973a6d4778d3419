"""Choosing the two attempts: merge identical candidates, re-score them under augmented views, rank.

Product of experts: each candidate is transformed into K augmented views of the task (drawn fresh,
not the views that generated it) and scored by one forward pass over the view's prompt followed by
the candidate's tokens (no generation). A correct answer tends to be likely under every view, a
lucky one only under the view that made it. The ranking rules themselves live in `core.ranking`.

`poe_nll` scores every (candidate, view) pair of a test input in few forwards: the views' prompts are
prefilled together (left padded, like greedy decoding), then each view's cache row is repeated for its
candidates and all pairs are scored in batches bounded by memory. The former path, one view at a
time, is the reference and the benchmark's baseline: tests/fixtures/poe_reference.py.
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch

from ..core.clock import Deadline
from ..core.config import InferenceConfig
from ..core.ranking import Candidate, merge, rank
from ..core.tasks import Task
from ..core.formats.codec import END, Codec
from ..core.views import View, ViewPlan
from .batching import build_prompt, grid_ids_tensor, grid_logprobs, left_padded
from .runtime import model_device

LOGIT_BUDGET = 1 << 27  # vocabulary logits materialised per scoring forward (bounds memory for big vocabularies)


@torch.inference_mode()
def poe_nll(model, codec: Codec, task: Task, test_index: int, grids: Sequence[np.ndarray],
            views: Sequence[View], *, max_len: int = 8192, batch_size: int = 8,
            deadline: Deadline | None = None) -> np.ndarray:
    """NLL of each grid under each view, shape (grids, views scored): the first views, in their order.

    Up to `batch_size` prompts are prefilled together (left padded; attention mask and position ids keep
    each row as if alone), then all (grid, view) pairs of those views are scored on repeated rows of that
    cache, as many rows per forward as the memory budget allows: `batch_size * max_len` cached tokens
    (what greedy decoding of `batch_size` full prompts may hold) and LOGIT_BUDGET vocabulary logits.
    The deadline is checked between forwards; a view counts only once all grids are scored on it (and the
    views before it too), so every grid is scored on the same views and their means stay comparable.
    Within a group of views the pairs go by length, so a deadline passing mid-group loses that group's work:
    a smaller `batch_size` gives a finer grain.
    """
    if not grids or not views:
        return np.zeros((len(grids), 0))
    device = model_device(model)
    grid_ids = grid_ids_tensor(codec, device)
    grammar = codec.grammar()  # the legal moves when decoding: a candidate never gets mass the decoder forbids
    jobs = []  # per view: (prompt, targets, allowed masks)
    for view in views:
        targets = [codec.answer_symbols(view.apply_grid(g)) for g in grids]
        prompt = build_prompt(codec, view.apply(task), test_index, max_len - max(len(t) for t in targets))
        jobs.append((prompt, targets, [grammar.masks(t) for t in targets]))
    order = list(range(len(views)))  # in the given order, so that the views scored are always the first ones
    nll = np.zeros((len(grids), len(views)))
    done = np.zeros(len(views), dtype=bool)
    for g0 in range(0, len(order), batch_size):
        if deadline is not None and deadline.passed():
            break
        group = order[g0:g0 + batch_size]
        prefix, first, mask, lengths = _prefill(model, codec, [jobs[v][0] for v in group], device)
        vocab = first.shape[-1]
        # pairs by target length, so that a forward's rows need little padding (grids of different shapes
        # differ a lot in length); the cost: a view is complete only once its longest grid is scored
        pairs = sorted(((r, gi) for r in range(len(group)) for gi in range(len(grids))),
                       key=lambda p: len(jobs[group[p[0]]][1][p[1]]))
        left = {r: len(grids) for r in range(len(group))}
        i = 0
        while i < len(pairs):
            if deadline is not None and deadline.passed():
                break
            n = _rows_that_fit(pairs[i:], [[len(t) for t in jobs[v][1]] for v in group], mask.shape[1], vocab,
                               batch_size * max_len)
            chunk = pairs[i:i + n]
            targets = [jobs[group[r]][1][gi] for r, gi in chunk]
            masks = [jobs[group[r]][2][gi] for r, gi in chunk]
            scores = _score_rows(model, grid_ids, prefix, first, mask, lengths, [r for r, _ in chunk], targets, masks,
                                 device)
            for (r, gi), x in zip(chunk, scores):
                nll[gi, group[r]] = x
                left[r] -= 1
            i += n
        done[[group[r] for r in range(len(group)) if left[r] == 0]] = True
        if i < len(pairs):  # stopped by the deadline
            break
    k = int(np.argmin(done)) if not done.all() else len(views)
    return nll[:, :k]


def _prefill(model, codec: Codec, prompts: Sequence[np.ndarray], device):
    """The prompts' KV cache in one left-padded forward; also each prompt's next-token logits, the
    attention mask and the prompt lengths (the position of each row's first continuation token)."""
    ids, mask, pos = left_padded(codec, prompts, device)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long, device=device)
    return out.past_key_values, out.logits[:, -1], mask, lengths


def _rows_that_fit(pairs, target_lengths, prefix_width: int, vocab: int, token_budget: int) -> int:
    """How many of the next pairs one scoring forward takes: at least one, at most what keeps the chunk's
    logits within LOGIT_BUDGET and its cache within `token_budget` tokens (rows are padded to the longest)."""
    longest, n = 0, 0
    for r, gi in pairs:
        longest_n = max(longest, target_lengths[r][gi])
        rows = n + 1
        if n and (rows * longest_n * vocab > LOGIT_BUDGET or rows * (prefix_width + longest_n) > token_budget):
            break
        longest, n = longest_n, rows
    return n


def _score_rows(model, grid_ids, prefix, first, mask, lengths, rows: list[int], targets: list[list[int]],
                masks: list[np.ndarray], device) -> np.ndarray:
    """NLL of each target continuing the prefix cache row `rows[j]`, in one forward."""
    length = max(len(t) for t in targets)
    toks = torch.full((len(targets), length), END, dtype=torch.long)  # padding with the end marker keeps the grid-id lookup in range
    allowed = torch.ones((len(targets), length, len(grid_ids)), dtype=torch.bool)
    for j, (t, m) in enumerate(zip(targets, masks)):
        toks[j, :len(t)] = torch.tensor(t)
        allowed[j, :len(t)] = torch.from_numpy(m)
    toks, allowed = toks.to(device), allowed.to(device)
    index = torch.tensor(rows, dtype=torch.long, device=device)
    logits = first[index][:, None]
    if length > 1:  # feed all but the last token; right padding cannot affect earlier positions
        cache = copy.deepcopy(prefix)
        cache.batch_select_indices(index)  # a row of the prompt cache per pair (repeats allowed)
        att = torch.cat([mask[index], torch.ones((len(rows), length - 1), dtype=mask.dtype, device=device)], dim=1)
        pos = lengths[index][:, None] + torch.arange(length - 1, device=device)[None]
        rest = model(input_ids=grid_ids[toks[:, :-1]], attention_mask=att, position_ids=pos, past_key_values=cache,
                     use_cache=True).logits
        logits = torch.cat([logits, rest], dim=1)
    logp = grid_logprobs(logits, grid_ids, allowed).gather(-1, toks[..., None])[..., 0]
    real = torch.arange(length, device=device)[None] < torch.tensor([len(t) for t in targets], device=device)[:, None]
    return (-(logp.masked_fill(~real, 0.0)).sum(-1)).double().cpu().numpy()


def select(model, codec: Codec, task: Task, test_index: int, raw: Sequence[Candidate], cfg: InferenceConfig,
           deadline: Deadline | None = None, *, plan: ViewPlan = ViewPlan()) -> list[Candidate]:
    """Merged, scored and ranked candidates for one test input (best first)."""
    candidates = merge(raw, cfg.vote_threshold)
    if cfg.selection != "vote" and candidates and not (deadline is not None and deadline.passed()):
        views = plan.scoring(task, cfg.n_score_views)
        nll = poe_nll(model, codec, task, test_index, [c.grid for c in candidates], views,
                      max_len=cfg.max_len, batch_size=cfg.batch_size, deadline=deadline)
        if nll.shape[1]:
            for c, row in zip(candidates, nll):
                c.view_nlls = row.tolist()
    return rank(candidates, cfg.selection)
