"""Candidates for each test input: augmented views, grid-restricted decoding, greedy or DFS.

For every test input the task is seen through N augmented views (core.views.ViewPlan). Each view
is encoded as a prompt (its demonstrations, then its test input), the model continues with an
output grid, and the grid is mapped back by the view's exact inverse. Decoding only ever picks
grid tokens that keep the text a legal grid (the codec's grammar, `core.formats.grammar`), so every finished
candidate parses.

- greedy: views decoded together in batches, left padded, with the KV cache.
- dfs: a search that keeps every continuation whose cumulative probability stays >= threshold (the
  greedy path is always kept, so greedy is the one-path special case). `dfs_batched` (the default)
  advances the live paths of several views together, one row of a stacked KV cache each; `dfs` (one
  path of one view at a time, cropping the cache back on each backtrack) is its reference.

This is the first candidate source (`sources.LLMSource`); `predict_task` pools every source's candidates,
merges identical grids and ranks them (selection module) into two attempts.
Everything runs under inference mode; CUDA out-of-memory errors propagate unchanged so the caller
can retry with a smaller batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..core.clock import Deadline
from ..core.config import InferenceConfig
from ..core.ranking import Candidate
from ..core.tasks import Task
from ..core.formats.codec import END, Codec, Grammar
from ..core.formats.grammar import State, grammar_for, output_side_limit
from ..core.views import View
from .batching import (UnsupportedCache, build_prompt, grid_ids_tensor, grid_logprobs, left_padded, merge_rows,
                       select_rows)
from .runtime import model_device


@dataclass
class PhaseTimes:
    """Seconds on the injected clock per phase of a prediction (summed over test inputs). On a GPU the
    prefill's kernels may still run when its clock stops, so a part of it can show up as decoding."""

    prefill: float = 0.0  # the views' prompts (greedy: each batch's left-padded prompts; DFS: each view's)
    decode: float = 0.0  # candidate generation, prefill excluded
    rescore: float = 0.0  # select(): merge, product-of-experts re-scoring, ranking
    sources: dict[str, float] = field(default_factory=dict)  # per candidate source: its proposing (prefill included)


# --- greedy and the reference DFS -------------------------------------------------------------

@dataclass
class Path:
    tokens: list[int]  # grid-token indices, end marker excluded
    logprob: float


@torch.inference_mode()
def greedy_batch(model, codec: Codec, prompts: Sequence[np.ndarray], grammar: Grammar,
                 deadline: Deadline, times: PhaseTimes | None = None) -> list[Path | None]:
    """Greedy decoding of several prompts together: left padding, attention mask and position ids keep
    each row identical to decoding it alone. None for a row still unfinished when time ran out."""
    device = model_device(model)
    grid_ids = grid_ids_tensor(codec, device)
    n = len(prompts)
    ids, mask, pos = left_padded(codec, prompts, device)
    t = deadline.clock()
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    if times is not None:
        times.prefill += deadline.clock() - t
    cache, logits = out.past_key_values, out.logits[:, -1]
    next_pos = pos[:, -1:] + 1

    states = [grammar.start] * n
    paths = [Path([], 0.0) for _ in range(n)]
    done = [False] * n
    active = list(range(n))  # rows still decoding, in cache order; finished rows leave the batch
    for _ in range(grammar.max_tokens):
        if deadline.passed():
            break
        allowed = torch.from_numpy(np.stack([grammar.allowed(states[i]) for i in active])).to(device)
        logp = grid_logprobs(logits, grid_ids, allowed)
        best = logp.argmax(-1)
        best_lp = logp.gather(-1, best[:, None])[:, 0].tolist()
        for row, (i, k) in enumerate(zip(active, best.tolist())):
            paths[i].logprob += best_lp[row]
            if k == END:
                done[i] = True
            else:
                paths[i].tokens.append(k)
                states[i] = grammar.advance(states[i], k)
        keep = [row for row, i in enumerate(active) if not done[i]]
        if not keep:
            break
        if len(keep) < len(active):
            rows = torch.tensor(keep, device=device)
            cache.batch_select_indices(rows)
            best, mask, next_pos = best[rows], mask[rows], next_pos[rows]
            active = [active[row] for row in keep]
        mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=device)], dim=1)
        out = model(input_ids=grid_ids[best][:, None], attention_mask=mask, position_ids=next_pos,
                    past_key_values=cache, use_cache=True)
        cache, logits = out.past_key_values, out.logits[:, -1]
        next_pos = next_pos + 1
    return [p if d else None for p, d in zip(paths, done)]


@torch.inference_mode()
def dfs(model, codec: Codec, prompt: np.ndarray, grammar: Grammar, threshold: float,
        max_candidates: int, deadline: Deadline, reuse_prefix: bool = True,
        times: PhaseTimes | None = None) -> list[Path]:
    """Every finished text whose cumulative probability is >= threshold, plus the greedy path (found first;
    children are visited likeliest first).

    The prompt's KV cache is computed once; going down a branch appends one token, backtracking crops
    the cache to the branch point. `reuse_prefix=False` recomputes prompt+path on every backtrack
    instead (the benchmark's baseline; same search, same results).
    """
    device = model_device(model)
    grid_ids = grid_ids_tensor(codec, device)
    prompt_t = torch.from_numpy(prompt)[None].to(device)
    t = deadline.clock()
    out = model(input_ids=prompt_t, use_cache=True, logits_to_keep=1)
    if times is not None:
        times.prefill += deadline.clock() - t
    cache = out.past_key_values
    log_thr = math.log(threshold)
    # stack entries: (path so far, its state, next token, cumulative logprob with it, on the greedy path)
    stack: list[tuple[tuple[int, ...], State, int, float, bool]] = []

    def push_children(path: tuple[int, ...], state: State, lp: float, greedy: bool, logits: torch.Tensor):
        allowed = grammar.allowed(state)
        logp = grid_logprobs(logits, grid_ids, torch.from_numpy(allowed).to(device)).cpu().double().numpy()
        order = [k for k in np.argsort(-logp, kind="stable") if allowed[k]]
        kids = [(path, state, int(k), lp + float(logp[k]), greedy and rank == 0) for rank, k in enumerate(order)]
        stack.extend(reversed([c for c in kids if c[3] >= log_thr or c[4]]))

    push_children((), grammar.start, 0.0, True, out.logits[0, -1])
    found: list[Path] = []
    in_cache = 0  # path tokens after the prompt currently held in the cache
    while stack and len(found) < max_candidates and not deadline.passed():
        path, state, k, lp, greedy = stack.pop()
        if k == END:
            found.append(Path(list(path), lp))
            continue
        token = grid_ids[k].view(1, 1)
        if in_cache == len(path):  # going straight down: one more token on the cache
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
        elif reuse_prefix:
            cache.crop(len(path) - in_cache)
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
        else:
            tail = grid_ids[torch.tensor(path, dtype=torch.long, device=device)].view(1, -1)
            out = model(input_ids=torch.cat([prompt_t, tail, token], dim=1), use_cache=True, logits_to_keep=1)
        cache, in_cache = out.past_key_values, len(path) + 1
        push_children(path + (k,), grammar.advance(state, k), lp, greedy, out.logits[0, -1])
    return found


# --- batched DFS ------------------------------------------------------------------------------

@dataclass
class _Node:
    view: int  # index of its prompt
    tokens: tuple[int, ...]  # grid-token indices so far
    state: State
    logprob: float
    greedy: bool  # on the view's greedy path


@dataclass
class _Kept:
    """Per prompt, the greedy path and the other paths kept so far, and the bar a new path must reach."""

    max_candidates: int
    log_thr: float
    greedy: list  # per prompt, Path | None
    others: list  # per prompt, list[Path]

    def bar(self, v: int) -> float:
        """The log-probability a new non-greedy path of prompt v must reach to be kept."""
        if self.max_candidates <= 1:
            return math.inf
        kept = self.others[v]
        if len(kept) < self.max_candidates - 1:
            return self.log_thr
        return max(self.log_thr, sorted((p.logprob for p in kept), reverse=True)[self.max_candidates - 2])

    def result(self) -> list[list[Path]]:
        """Per prompt: the greedy path first, then the likeliest others."""
        return [([g] if g is not None else []) + sorted(o, key=lambda p: -p.logprob)[:max(0, self.max_candidates - 1)]
                for g, o in zip(self.greedy, self.others)]


def _admit(model, codec: Codec, prompts: Sequence[np.ndarray], take: list[_Node], device, deadline: Deadline,
           times: PhaseTimes | None):
    """Prefill prompts (each with its path so far) together: ((cache, attention mask, next position), logits)."""
    seqs = [np.concatenate([prompts[n.view], np.asarray(codec.grid_token_ids, dtype=prompts[n.view].dtype)
                            [list(n.tokens)]]) for n in take]
    t = deadline.clock()
    ids, mask, pos = left_padded(codec, seqs, device)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    if times is not None:
        times.prefill += deadline.clock() - t
    return (out.past_key_values, mask, pos[:, -1:] + 1), out.logits[:, -1]


def _children(rows: list[_Node], logp: np.ndarray, allowed: np.ndarray, grammar: Grammar,
              kept: _Kept) -> list[tuple[int, _Node, int]]:
    """(parent row, child, next token) for every continuation still above its prompt's bar; finished texts go
    to `kept` (raising its bars as they come, likeliest first per row)."""
    children: list[tuple[int, _Node, int]] = []
    for r, node in enumerate(rows):
        order = [int(k) for k in np.argsort(-logp[r], kind="stable") if allowed[r, k]]
        for rank, k in enumerate(order):
            lp, on_greedy = node.logprob + float(logp[r, k]), node.greedy and rank == 0
            if not on_greedy and lp < kept.bar(node.view):
                continue
            if k == END:
                path = Path(list(node.tokens), lp)
                if on_greedy:
                    kept.greedy[node.view] = path
                else:
                    kept.others[node.view].append(path)
            else:
                children.append((r, _Node(node.view, node.tokens + (k,), grammar.advance(node.state, k), lp,
                                          on_greedy), k))
    return [c for c in children if c[1].greedy or c[1].logprob >= kept.bar(c[1].view)]  # bars rose this step


def _descend(model, batch, rows: list[_Node], children: list[tuple[int, _Node, int]], grid_ids: torch.Tensor,
             device):
    """One forward: each child's cache row (its parent's, repeated where a row branches) plus its token."""
    parents = torch.tensor([c[0] for c in children], device=device)
    cache, mask, pos = batch if len(children) == len(rows) and bool((parents == torch.arange(
        len(rows), device=device)).all()) else select_rows(*batch, parents)
    mask = torch.cat([mask, torch.ones((len(children), 1), dtype=mask.dtype, device=device)], dim=1)
    tokens = grid_ids[torch.tensor([c[2] for c in children], device=device)][:, None]
    out = model(input_ids=tokens, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True)
    return [c[1] for c in children], (out.past_key_values, mask, pos + 1), out.logits[:, -1]


@torch.inference_mode()
def dfs_batched(model, codec: Codec, prompts: Sequence[np.ndarray], grammar: Grammar, threshold: float,
                max_candidates: int, deadline: Deadline, max_rows: int = 8, max_len: int = 8192,
                times: PhaseTimes | None = None) -> list[list[Path]]:
    """Per prompt, the same search as `dfs`, with the live paths of several prompts advancing together.

    Every live path is one row of a stacked KV cache (left padded, with its own attention mask and
    position ids, so each row computes as if alone); one forward per step gives every row its next
    token's distribution. A row branches into one row per child kept (its cache rows repeated) and
    leaves the batch when its text ends or every child falls under the threshold. Since the
    probabilities of disjoint prefixes sum to at most 1, a prompt never has more than 1/threshold + 1
    live paths. New prompts join (prefilled together) while fewer than `max_rows` rows are live;
    branching may hold up to `max_rows * max_len` cached tokens (what greedy decoding of `max_rows`
    full prompts may hold); children past that wait in the queue and are recomputed from their
    prompt later (a bound on memory: recomputing costs a prefill each).

    The paths found are those of `dfs`: the greedy path plus every text of probability >= threshold,
    probabilities over the whole vocabulary. Order differs, so when `max_candidates` binds this keeps
    the greedy path and the likeliest others (`dfs` keeps the first in depth-first order); a live path
    that can no longer beat the kept ones is pruned. Per prompt: the greedy path first, then by
    probability. When the deadline passes, what was found so far.
    """
    device = model_device(model)
    grid_ids = grid_ids_tensor(codec, device)
    kept = _Kept(max_candidates, math.log(threshold), [None] * len(prompts), [[] for _ in prompts])
    queue = [_Node(v, (), grammar.start, 0.0, True) for v in range(len(prompts))]  # waiting for a prefill
    rows: list[_Node] = []
    batch = None  # (cache, attention mask, next position ids) of `rows`
    logits = None  # next-token logits of `rows`
    while not deadline.passed():
        queue = [n for n in queue if n.greedy or n.logprob >= kept.bar(n.view)]
        if queue and len(rows) < max_rows:  # admit: prefill prompts (or prompt + path) together
            take, queue = queue[:max_rows - len(rows)], queue[max_rows - len(rows):]
            new, new_logits = _admit(model, codec, prompts, take, device, deadline, times)
            batch = new if batch is None else merge_rows(batch, new)
            logits = new_logits if logits is None else torch.cat([logits, new_logits])
            rows = rows + take
        if not rows:
            break
        allowed = np.stack([grammar.allowed(n.state) for n in rows])
        logp = grid_logprobs(logits, grid_ids, torch.from_numpy(allowed).to(device)).cpu().double().numpy()
        children = _children(rows, logp, allowed, grammar, kept)
        hard = max(max_rows, max_rows * max_len // (batch[1].shape[1] + 1))
        if len(children) > hard:  # the likeliest stay (greedy paths first); the rest wait, recomputed later
            children.sort(key=lambda c: (not c[1].greedy, -c[1].logprob))
            queue = [c[1] for c in children[hard:]] + queue
            children = children[:hard]
        if not children:
            rows, batch, logits = [], None, None
            continue
        rows, batch, logits = _descend(model, batch, rows, children, grid_ids, device)
    return kept.result()


# --- candidates and the task-level entry point ----------------------------------------------

def path_to_grid(codec: Codec, path: Path, view: View) -> np.ndarray | None:
    grid = codec.decode([codec.grid_token_ids[k] for k in path.tokens])
    return None if grid is None else view.invert(grid)


def generate_candidates(model, codec: Codec, task: Task, test_index: int, views: Sequence[View],
                        cfg: InferenceConfig, deadline: Deadline, times: PhaseTimes | None = None) -> list[Candidate]:
    """One Candidate per (view, decoded path), in the original frame; duplicates are not merged here.
    `times` (if given) gets the prefill seconds, measured on the deadline's clock."""
    grammar = grammar_for(task, test_index, codec)
    expected = codec.grammar(output_side_limit(task, task.test[test_index].input)).max_tokens
    budget = cfg.max_len - expected
    jobs = [(v, build_prompt(codec, v.apply(task), test_index, budget)) for v in views]
    out: list[Candidate] = []

    def add(view: View, path: Path | None):
        grid = None if path is None else path_to_grid(codec, path, view)
        if grid is not None:  # the grammar makes this always true for a finished path
            out.append(Candidate(grid, [view.key], [path.logprob]))

    if cfg.decoding == "greedy":
        jobs.sort(key=lambda j: len(j[1]))  # similar lengths together: less padding
        for i in range(0, len(jobs), cfg.batch_size):
            if deadline.passed():
                break
            chunk = jobs[i:i + cfg.batch_size]
            for (view, _), path in zip(chunk, greedy_batch(model, codec, [p for _, p in chunk], grammar, deadline,
                                                           times)):
                add(view, path)
    else:
        try:
            found = dfs_batched(model, codec, [p for _, p in jobs], grammar, cfg.dfs_threshold, cfg.max_candidates,
                                deadline, max_rows=cfg.batch_size, max_len=cfg.max_len, times=times)
        except UnsupportedCache:  # a cache that cannot be left padded (sliding windows): one path at a time
            found = []
            for _, prompt in jobs:
                if deadline.passed():
                    break
                found.append(dfs(model, codec, prompt, grammar, cfg.dfs_threshold, cfg.max_candidates, deadline,
                                 times=times))
        for (view, _), paths in zip(jobs, found):
            for path in paths:
                add(view, path)
    return out
