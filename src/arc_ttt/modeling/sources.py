"""Where candidates come from: each source proposes answers to one test input, all of them go into one pool,
and one selection (merge, product-of-experts re-scoring, ranking) turns the pool into two attempts.

A source sees the task through the inference views and returns its candidates in the original frame, one per
(view, answer), unmerged: the views and log-probabilities are the evidence the selection counts votes from.
The pool writes the source's name into each candidate, so after merging a candidate says which sources found
it, and the log does too. The LLM's greedy or DFS decoding (`decoding.generate_candidates`) is the first
source; the grid model (`gridsource.GridSource`, issue 37) is another, with no change to the selection.
`build_sources` makes the ones `inference.sources` names.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from ..core.clock import Deadline
from ..core.formats.codec import Codec
from ..core.config import InferenceConfig
from ..core.ranking import Candidate
from ..core.tasks import Task
from ..core.views import View
from .decoding import PhaseTimes, generate_candidates
from .gridsource import GridSource
from .runtime import model_device


class CandidateSource(Protocol):
    """Proposes candidates for one test input within a deadline."""

    name: str  # what the log calls it (a candidate's `sources`)

    def propose(self, task: Task, test_index: int, views: Sequence[View], cfg: InferenceConfig,
                deadline: Deadline, times: PhaseTimes) -> list[Candidate]:
        """Candidates in the original frame, unmerged, each with the views that produced it and their
        log-probabilities; what was found by the deadline when it passes. `cfg` is the prediction's (smaller on
        an out-of-memory retry); `times.prefill` takes the seconds spent on prompts, if any (the rest of the
        source's time counts as decoding)."""
        ...


@dataclass
class LLMSource:
    """The causal LM's candidates: greedy or DFS decoding under each view, as `cfg.decoding` says."""

    model: Any
    codec: Codec
    name: str = "llm"

    def propose(self, task: Task, test_index: int, views: Sequence[View], cfg: InferenceConfig,
                deadline: Deadline, times: PhaseTimes) -> list[Candidate]:
        return generate_candidates(self.model, self.codec, task, test_index, views, cfg, deadline, times)


def pool(sources: Sequence[CandidateSource], task: Task, test_index: int, views: Sequence[View],
         cfg: InferenceConfig, deadline: Deadline, times: PhaseTimes,
         clock: Callable[[], float] = time.monotonic) -> list[Candidate]:
    """Every source's candidates for one test input, in the sources' order, each naming its source (and each of
    its views' too: `ranking.restrict`); `times.sources` adds up each source's seconds. The sources share the
    deadline in turn (each checks it): one that uses it all leaves the next nothing."""
    out: list[Candidate] = []
    for source in sources:
        t0 = clock()
        for c in source.propose(task, test_index, views, cfg, deadline, times):
            c.sources, c.origins = [source.name], [source.name] * len(c.views)
            out.append(c)
        times.sources[source.name] = times.sources.get(source.name, 0.0) + clock() - t0
    return out


def build_sources(cfg: InferenceConfig, model: Any, codec: Codec) -> list[CandidateSource]:
    """The sources `cfg.sources` names, in its order: llm, the LLM's decoding; grid, the grid model loaded from
    `cfg.grid.path` onto the LLM's device (one trained on an LLM's features encodes with this LLM and `codec`, and is
    refused when they are not the ones it was trained on). Without llm the LLM proposes nothing (it still re-scores)."""
    made = {"llm": lambda: LLMSource(model, codec),
            "grid": lambda: GridSource.load(cfg.grid, model_device(model), model, codec)}
    return [made[name]() for name in cfg.sources]
