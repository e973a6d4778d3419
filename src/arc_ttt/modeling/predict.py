"""One task's prediction: candidates from augmented views (the sources: the LLM's decoding first), pooled and
ranked into two attempts (selection)."""
from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from ..core.clock import Deadline
from ..core.formats.codec import Codec
from ..core.config import InferenceConfig
from ..core.records import PredictOutcome
from ..core.tasks import Task
from ..core.views import ViewPlan
from .decoding import PhaseTimes
from .selection import select
from .sources import CandidateSource, LLMSource, pool


def predict_task(model, codec: Codec, task: Task, cfg: InferenceConfig, *,
                 sources: Sequence[CandidateSource] | None = None, n_views: int | None = None,
                 time_cap: float | None = None, clock: Callable[[], float] = time.monotonic,
                 plan: ViewPlan = ViewPlan()) -> PredictOutcome:
    """Two attempts per test input, plus every candidate ranked best first, within `time_cap` seconds.

    Every source (default: the LLM's decoding) proposes into one pool per test input; `model` re-scores the
    pool. The time left is shared equally among the test inputs still to answer. When it runs out, the
    candidates found so far are ranked (by vote alone if there is no time to re-score them).
    """
    sources = [LLMSource(model, codec)] if sources is None else sources
    start = clock()
    deadline = Deadline(clock, None if time_cap is None else start + time_cap)
    views = plan.generation(task, cfg.n_views if n_views is None else n_views)
    model.eval()
    attempts, ranked_all, times = [], [], PhaseTimes()
    with torch.inference_mode():
        for ti in range(task.n_test):
            share = deadline.share(task.n_test - ti)
            t0, prefill = clock(), times.prefill
            raw = pool(sources, task, ti, views, cfg, share, times, clock)
            t1 = clock()
            ranked = select(model, codec, task, ti, raw, cfg, share, plan=plan)
            now = clock()
            times.decode += t1 - t0 - (times.prefill - prefill)
            times.rescore += now - t1
            deadline.hit |= share.hit
            ranked_all.append(ranked)
            attempts.append(tuple(ranked[i].grid if i < len(ranked) else None for i in range(2)))
    views_done = min(len({k for c in ranked for k in c.views}) for ranked in ranked_all) if ranked_all else 0
    now = now if task.n_test else clock()
    return PredictOutcome(attempts, ranked_all, views_done, now - start, prefill_seconds=times.prefill,
                          decode_seconds=times.decode, rescore_seconds=times.rescore,
                          source_seconds={k: round(v, 3) for k, v in times.sources.items()},
                          stopped_by="time_cap" if deadline.hit else "done")
