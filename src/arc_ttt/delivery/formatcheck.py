"""The commit run's format sanity check: a model shown a prompt layout it was not trained on, or broken weights,
can pass every other check (a full-vocabulary tokenizer speaks several formats) and still score about 0. So before
the run the model reads known answers in the run's format, teacher-forced, one forward pass per sequence: the quick
tasks' test inputs with their evaluation solutions, and a few tasks' last demonstration with the others before it.
The NLL per answer token (normalised over the model's whole vocabulary) above NLL_LIMIT stops the commit run; the
scoring rerun never runs it (no time spent, nothing raised). NLL_LIMIT is calibrated by benchmarks/formats/format_check.py
on the kit's own models in their format and in a wrong one (benchmarks/formats/results/format_check_nll_limit.json).
"""
from __future__ import annotations

import gc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.formats.codec import Encoded, LossOn
from ..core.formats import codec_for
from ..core.tasks import Pair, Task
from .environment import Environment

# Nats per answer token, pooled over the probes, the tokens counted as the symbol formats write an answer (one per
# cell, one newline per row, the end marker) whatever the format's own tokens: marc's BPE text writes about twice as
# many, mostly easy spaces and brackets, which would halve its figure. benchmarks/formats/results/format_check_nll_limit.json (8
# ARC-AGI-1 evaluation tasks, over all 16 probes / the check's own 12): the demonstration model (SmolLM2-135M + the
# kit's adapter) reads them at 0.45 / 0.42 in its format (kit); the same weights in a wrong format (marc, the whole
# vocabulary) at 1.02 / 0.98; SmolLM2-135M, which never saw ARC, at 0.82 / 0.79 (kit) and 0.92 / 0.88 (marc). The
# limit sits near the geometric middle of the weakest right reading and the best other one (sqrt(0.45 x 0.79)): a
# setup that reads known answers no better than an LM that never saw ARC stops. Task sets move these figures (an
# earlier run on slightly larger tasks: demo 0.34, SmolLM2-135M 0.64), the order stays.
NLL_LIMIT = 0.6
SOLUTION_PROBES = 4  # at most: the quick tasks' test inputs with their known answers
DEMO_PROBES = 8  # tasks whose last demonstration is the query, the others before it: needs no solutions file
MAX_PROBE_TOKENS = 4096  # leading demonstrations are dropped until a probe fits (memory and time stay small)


class FormatCheckFailed(RuntimeError):
    """The model reads known ARC answers no better than a model that never saw ARC: wrong format or broken."""


@dataclass(frozen=True)
class Probe:
    """One teacher-forced sequence: `pairs`, the last one the query with its known answer (the only loss)."""
    task_id: str
    kind: str  # "solution" (a test input and its evaluation solution) or "demo" (the last demonstration)
    pairs: tuple[Pair, ...]

    @property
    def answer_tokens(self) -> int:
        """The answer's length as the symbol formats write it: a token per cell, a newline per row, the end."""
        h, w = self.pairs[-1].output.shape
        return h * (w + 1) + 1


@dataclass(frozen=True)
class ProbeScore:
    task_id: str
    kind: str
    nll: float  # summed over the answer, in nats
    tokens: int  # answer tokens as the symbol formats count them (Probe.answer_tokens)


@dataclass(frozen=True)
class FormatVerdict:
    """What the check found: the pooled NLL per answer token against the limit, and each probe's figure."""
    format: str
    scores: tuple[ProbeScore, ...]
    limit: float

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.scores)

    @property
    def nll_per_token(self) -> float:
        return sum(s.nll for s in self.scores) / self.tokens if self.tokens else math.nan

    @property
    def passed(self) -> bool:
        """True unless the answers were read and read badly (none read: nothing to judge, the run says more)."""
        return not self.tokens or self.nll_per_token <= self.limit

    def lines(self) -> list[str]:
        if not self.tokens:
            return [f"format check ({self.format}): no probe fitted in {MAX_PROBE_TOKENS} tokens; nothing checked"]
        per = ", ".join(f"{s.task_id}/{s.kind} {s.nll / s.tokens:.2f}" for s in self.scores)
        return [f"format check ({self.format}): NLL {self.nll_per_token:.3f} per answer token over {len(self.scores)} "
                f"known answers ({self.tokens} tokens), limit {self.limit:g}: {'passed' if self.passed else 'FAILED'}",
                f"  per probe: {per}"]

    def problem(self) -> str | None:
        """Why the commit run stops, naming what to check, or None when it passed."""
        if self.passed:
            return None
        return (f"the model reads known ARC answers at {self.nll_per_token:.3f} nats per token in prompt format "
                f"{self.format!r}, above the limit {self.limit:g} (SmolLM2-135M, which never saw ARC, reads such "
                f"answers at about 0.8): the model was trained in another format (set model.format, FORMAT or the "
                f"folder's arc_format.json to the one it was trained in) or its weights do not load right. If a "
                f"model this weak is meant, set FORMAT_NLL_LIMIT in the parameters cell above {self.nll_per_token:.2f}")


# --- the probes: pure ----------------------------------------------------------------------------

def solution_probes(tasks: Sequence[Task], n: int = SOLUTION_PROBES) -> list[Probe]:
    """Of the first `n` tasks, those with a known answer: their demonstrations, then the first test input and
    its solution."""
    return [Probe(t.id, "solution", (*t.train, t.test[0])) for t in tasks[:n]
            if t.test and t.test[0].output is not None]


def demo_probes(tasks: Sequence[Task], n: int = DEMO_PROBES) -> list[Probe]:
    """The first `n` tasks with two demonstrations or more: the last is the query, the others come before it."""
    return [Probe(t.id, "demo", tuple(t.train)) for t in tasks if len(t.train) >= 2][:n]


def choose_probes(tasks: Sequence[Task], quick: int | None) -> list[Probe]:
    """The run's tasks in its order: the quick tasks' solutions (the first `quick`, at most SOLUTION_PROBES), and
    the demonstrations of the first DEMO_PROBES tasks."""
    return [*solution_probes(tasks, min(SOLUTION_PROBES, quick or SOLUTION_PROBES)), *demo_probes(tasks)]


def encode_probe(codec, probe: Probe, max_tokens: int = MAX_PROBE_TOKENS) -> Encoded | None:
    """The probe in the run's format, the loss on the query's answer only; leading demonstrations dropped until it
    fits in `max_tokens` (None when even one demonstration and the query do not)."""
    pairs = probe.pairs
    while True:
        encoded = codec.encode_pairs(pairs, LossOn.LAST)
        if len(encoded) <= max_tokens:
            return encoded
        if len(pairs) <= 2:
            return None
        pairs = pairs[1:]


def verdict(format_name: str, probes: Sequence[Probe], nlls: Sequence[float], limit: float = NLL_LIMIT
            ) -> FormatVerdict:
    """The verdict from each probe's summed answer NLL (nats)."""
    return FormatVerdict(format_name, tuple(ProbeScore(p.task_id, p.kind, nll, p.answer_tokens)
                                            for p, nll in zip(probes, nlls)), limit)


# --- with the model ------------------------------------------------------------------------------

def measure(model, codec, probes: Sequence[Probe], format_name: str, limit: float = NLL_LIMIT,
            autocast: str = "auto", max_tokens: int = MAX_PROBE_TOKENS) -> FormatVerdict:
    """Each probe read teacher-forced by `model` (one forward pass each, logits only at the answer)."""
    from ..modeling.figures import sequence_scores  # reason: torch only once a model is loaded

    kept = [(p, e) for p in probes if (e := encode_probe(codec, p, max_tokens)) is not None]
    scores = sequence_scores(model, [e for _, e in kept], autocast=autocast)
    return verdict(format_name, [p for p, _ in kept], [s.nll for s in scores], limit)


def _release_memory() -> None:
    """Give the model's memory back once it is deleted: the run loads its own, maybe in other processes."""
    import torch  # reason: loaded already with the model; only to empty its GPU cache

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def check_format(environment: Environment, cfg, format_name: str, tasks: Sequence[Task], quick: int | None = None,
                 limit: float | None = None, loader: Callable | None = None) -> FormatVerdict | None:
    """The notebook's check: on the Kaggle commit run, the run's model (`loader(cfg.model)`, by default
    modeling.loading.load_model) reads the probes of `tasks` (the first `quick` of them with their solutions) in
    `format_name`; the lines are printed and FormatCheckFailed raised above the limit. None elsewhere: the scoring
    rerun never spends time on it nor raises. A model that does not load is left to the run, whose every task then
    fails with that error (CommitRunFailed)."""
    if not environment.commit_run:
        return None
    from ..modeling.loading import load_model  # reason: torch only on the commit run

    try:
        model, tokenizer = (loader or load_model)(cfg.model)
    except Exception as e:  # noqa: BLE001 - any load failure: the run reports it on every task
        print(f"WARNING: format check skipped, the model did not load ({type(e).__name__}: {e}); the run will say it")
        return None
    try:
        probes = choose_probes(tasks, quick)
        found = measure(model, codec_for(format_name, tokenizer), probes, format_name,
                        NLL_LIMIT if limit is None else limit, cfg.ttt.autocast,
                        min(MAX_PROBE_TOKENS, cfg.inference.max_len))
    finally:
        del model
        _release_memory()
    for line in found.lines():
        print(line)
    if not found.passed:
        raise FormatCheckFailed(found.problem())
    return found
