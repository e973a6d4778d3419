"""`arc-ttt synth --show`: a page of generated tasks as pictures, a few per family, so a person can see what the
model is taught before it is taught it."""
from __future__ import annotations

import html
import json

from ..core.folders import write_text_atomic
from ..core.pictures import CSS, cell_size, figure
from .catalog import FAMILIES
from .generate import Batch


def write_gallery(path: str, batch: Batch, per_family: int = 2) -> str:
    """One block per task (its family, prior and drawn parameters, then each pair input -> output)."""
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>arc-ttt synth</title><style>{CSS}</style>",
             f"<h1>Generated tasks: {len(batch.tasks)} from {len(batch.per_family())} families</h1>"]
    if batch.refusals:
        parts.append(f"<p class='bad'>{len(batch.refusals)} refused, e.g. {e(batch.refusals[0].family)}: "
                     f"{e(batch.refusals[0].reason)}</p>")
    shown: dict[str, int] = {}
    for t in batch.tasks:
        name = t.id.split("-")[1]
        if shown.get(name, 0) >= per_family:
            continue
        shown[name] = shown.get(name, 0) + 1
        fam = FAMILIES.get(name)
        doc = f"{fam.prior}: {fam.doc}" if fam else ""
        parts.append(f"<div class='task'><b>{e(t.id)}</b> — {e(doc)}<br><small>"
                     f"{e(json.dumps(batch.params.get(t.id, {}), default=str))}</small>")
        pairs = [*t.train, *t.test]
        cell = cell_size([g for p in pairs for g in (p.input, p.output)])
        for i, p in enumerate(pairs):
            label = "test" if i == len(t.train) else f"demo {i}"
            parts.append(f"<div class='row'>{figure(f'{label} input', p.input, cell)}"
                         f"{figure(f'{label} output', p.output, cell)}</div>")
        parts.append("</div>")
    write_text_atomic(path, "\n".join(parts))
    return path
