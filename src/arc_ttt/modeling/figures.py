"""Teacher-forced figures of a model on encoded sequences, in one forward pass each: the NLL per target token
(over the whole vocabulary, or the answer's tokens as `ttt.answer_head` cuts the head), and whether the argmax at
every target of the last output is the truth, i.e. what one greedy pass would write. Truth NLL is a weak proxy for
exact match; fine-tuning's evaluations, the GPU run and the benchmarks report both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..core.formats.codec import Encoded
from .runtime import autocast_context, model_device
from .ttt import IGNORE, answer_head, batch_loss, collate, pad_id, target_logits


@dataclass
class SequenceScore:
    nll: float  # summed over the sequence's targets
    targets: int
    last_exact: bool  # the teacher-forced argmax reproduces the last output whole: what greedy decoding would write


def _last_run(positions: torch.Tensor) -> int:
    """Where the trailing run of consecutive positions starts (the last output's targets)."""
    gaps = ((positions[1:] - positions[:-1]) > 1).nonzero()
    return int(gaps[-1]) + 1 if len(gaps) else 0


@torch.no_grad()
def sequence_scores(model, sequences: list[Encoded], *, autocast: str = "auto",
                    vocab: Sequence[int] | None = None) -> list[SequenceScore]:
    """Per sequence, one forward each: the summed NLL of its targets (normalised over `vocab`, as `answer_head`) and
    whether the argmax at every target of its last output is the truth. Truth NLL is a weak proxy for exact match;
    the argmax share says what one greedy pass would get right."""
    device = model_device(model)
    pad = pad_id(model)
    out = []
    with answer_head(model, vocab, sequences) as label_map:
        for s in sequences:
            batch = collate([s], pad, device, label_map)
            if batch.n_targets == 0:
                out.append(SequenceScore(0.0, 0, False))
                continue
            with autocast_context(autocast, device):
                logits, labels, positions = target_logits(model, batch)
            targets = labels[0] != IGNORE
            logits, labels, positions = logits[0][targets], labels[0][targets], positions[targets]
            nll = torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            hit = logits.argmax(-1) == labels
            out.append(SequenceScore(nll, len(labels), bool(hit[_last_run(positions):].all())))
    return out


@torch.no_grad()
def mean_output_nll(model, sequences: list[Encoded], batch_size: int = 4, *, autocast: str = "auto",
                    vocab: Sequence[int] | None = None) -> float:
    """Mean NLL per loss-masked token over the sequences, normalised over `vocab` (None: the whole vocabulary,
    else as `answer_head`); the model's mode is left as it was."""
    if not sequences:
        return float("nan")
    device = model_device(model)
    pad = pad_id(model)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    total, count = 0.0, 0
    with answer_head(model, vocab, sequences) as label_map:
        for k in range(0, len(order), batch_size):
            batch = collate([sequences[i] for i in order[k:k + batch_size]], pad, device, label_map)
            with autocast_context(autocast, device):
                total += batch_loss(model, batch).item()
            count += batch.n_targets
    return total / max(1, count)


def sequence_figures(model, seqs: dict[str, Encoded], autocast: str, vocab: tuple[int, ...] | None) -> dict:
    """`dev_figures` of sequences already encoded, by task id (a packed GPU run carries them so)."""
    per_task = dict(zip(seqs, sequence_scores(model, list(seqs.values()), autocast=autocast, vocab=vocab)))
    targets = max(1, sum(x.targets for x in per_task.values()))
    return {"nll": round(sum(x.nll for x in per_task.values()) / targets, 5),
            "exact": round(float(np.mean([x.last_exact for x in per_task.values()])), 4) if per_task else None,
            "per_task": {k: [round(x.nll / max(1, x.targets), 5), int(x.last_exact)] for k, x in per_task.items()}}
