"""The grid model as a candidate source ("grid"): adapted on a task's demonstrations under each inference view, it
writes the test output on its canvas under that view, mapped back to the original frame by the view's exact inverse.

    per task, once (the task's other test inputs reuse it):
        embedding: per view, a task vector fitted on the demonstrations under the view, from the mean embedding
                   row, the network frozen (gridmodel.fit_vector: TRM's fit for a task it never trained on)
        full:      a copy of the network and one vector per view trained together on the demonstrations under
                   all the views (AdamW on the copy, sign-SGD on the vectors); a view it was not trained under
                   then gets a vector fitted as above, on the copy
    per test input and view: the canvas predicted, read as its likeliest grid (gridmodel.likeliest_grid: a canvas
    whose argmax is not one rectangle still proposes the grid nearest to it) -> one Candidate, in the original frame
        log-probability: the summed log-softmax of every canvas cell's chosen class (the outside cells say the
        size), as an LLM path's is the sum over its tokens; under DFS it votes when it reaches the threshold

With `condition: llm` (modeling/gridcondition.py) every canvas comes with the run's LLM's features over its prompt
under the same view: a test input's, the prompt the LLM source decodes from; a demonstration's, the others and its
input (leave one out). They are computed with the LLM's TTT adapter switched off (the frozen model the grid model
was trained on, which `load` checks): a view's demonstrations once for all its fitting batches, a test input once
a view; the encoder's cache (bounded) serves the same prompts again, e.g. a prediction retried on the same task.

The deadline is checked between views and between fitting steps; what was found by then is returned, and a vector
whose fit the deadline cut short is neither used nor kept. The source reads no prompts: all its seconds count as
decoding (`PhaseTimes`, as `sources.CandidateSource` says), which the run's planner measures.
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..core.clock import Deadline
from ..core.config import GridSourceConfig, InferenceConfig
from ..core.gridconfig import require_grid_model
from ..core.ranking import Candidate
from ..core.tasks import Task
from ..core.views import View
from . import gridcondition as gc
from . import gridmodel as gm
from .decoding import PhaseTimes


def task_key(task: Task) -> tuple[str, str]:
    """What an adaptation depends on: the task's id and a digest of its demonstrations."""
    h = hashlib.sha256()
    for p in task.train:
        for g in (p.input, p.output):
            h.update(repr(g.shape).encode() + np.ascontiguousarray(g).tobytes())
    return task.id, h.hexdigest()


def demo_canvases(task: Task, view: View, canvas: int, device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The demonstrations under `view` that fit the canvas, as (input canvases, output canvases); None if none fit."""
    pairs = gm.pairs_that_fit(task.train, canvas)
    if not pairs:
        return None
    return (gm.canvases([view.apply_grid(p.input) for p in pairs], canvas, device),
            gm.canvases([view.apply_grid(p.output) for p in pairs], canvas, device))


def predict_view(net: gm.GridModel, query: np.ndarray, vector: torch.Tensor,
                 features: gc.Features | None = None) -> tuple[np.ndarray, float]:
    """(the grid `net` writes for `query` (already under the view) with `vector` (and the LLM's `features` of its
    prompt under the view): the likeliest canvas that is one grid (`gridmodel.likeliest_grid`); that canvas's
    log-probability, each cell's class summed)."""
    canvas = net.cfg.canvas
    cells = torch.tensor(gm.encode_grid(query, canvas)[None], device=net.head.weight.device)
    logits, _ = gm.final_logits(net, cells, vector[None].to(net.head.weight.device), features=features)
    return gm.likeliest_grid(torch.log_softmax(logits[0], -1).cpu().numpy(), canvas)


@dataclass
class Adaptation:
    """One task's adaptation: the network its views predict with (the loaded one, or a trained copy) and the task
    vectors fitted so far, by view key."""

    task: tuple[str, str]  # task_key of the task it was made for
    net: gm.GridModel
    vectors: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0  # full: deep-supervision batches the copy was trained (fewer than full_steps: cut by the deadline)


@dataclass
class GridSource:
    """Candidates from the grid model (`inference.sources` naming grid; settings in `inference.grid`)."""

    model: gm.GridModel
    settings: GridSourceConfig = field(default_factory=GridSourceConfig)
    name: str = "grid"
    encoder: gc.FeatureEncoder | None = field(default=None, repr=False)  # condition llm: the LLM's features
    adapted: Adaptation | None = field(default=None, init=False, repr=False)  # the last task's, reused while it lasts

    @classmethod
    def load(cls, settings: GridSourceConfig, device: str | torch.device = "cpu", llm=None,
             codec=None) -> "GridSource":
        """The model saved in `settings.path` on `device` (a ConfigError naming inference.grid.path if none is).
        One trained with `condition: llm` encodes with the run's LLM (`llm`, `codec`), refused (a UserError naming
        both) when it is not the LLM in the grid model's card."""
        require_grid_model(settings.path)
        record = None if llm is None or codec is None else gc.run_record(llm, codec)
        model = gm.load_grid_model(settings.path, device, record)
        if model.condition is None:
            return cls(model, settings)
        llm_cfg = model.cfg.llm
        return cls(model, settings, encoder=gc.FeatureEncoder(llm, codec, record, llm_cfg.max_len, llm_cfg.cache_mb))

    def demo_features(self, task: Task, view: View) -> gc.Features | None:
        """condition llm: the demonstrations that fit the canvas, each under `view` with the others as its prompt."""
        device = self.model.head.weight.device
        return self.encoder and self.encoder.demos(task, view, gm.pairs_that_fit(task.train, self.model.cfg.canvas),
                                                   device)

    def propose(self, task: Task, test_index: int, views: Sequence[View], cfg: InferenceConfig,
                deadline: Deadline, times: PhaseTimes) -> list[Candidate]:
        """One candidate per view (its likeliest grid), in the original frame, in the views' order."""
        query, out = task.test[test_index].input, []
        if not gm.fits(query, self.model.cfg.canvas):  # the canvas is square: no view of the input fits either
            return out
        adapted = self.adaptation(task, views, deadline)
        for view in views:
            if deadline.passed():
                break
            vector = self.vector(adapted, task, view, deadline)
            if vector is None or deadline.passed():  # a fit the deadline cut, or one that ended past it
                break
            feats = self.encoder and self.encoder.test(task, view, test_index, self.model.head.weight.device)
            grid, logprob = predict_view(adapted.net, view.apply_grid(query), vector, feats)
            out.append(Candidate(view.invert(grid), [view.key], [logprob]))
        return out

    def adaptation(self, task: Task, views: Sequence[View], deadline: Deadline) -> Adaptation:
        """The task's adaptation: the cached one when it was made for this task, else a new one (under `full`, the
        copy trained on the demonstrations under `views` first)."""
        key = task_key(task)
        if self.adapted is None or self.adapted.task != key:
            self.adapted = Adaptation(key, self.model)
            if self.settings.adapt == "full":
                self.train_copy(self.adapted, task, views, deadline)
        return self.adapted

    def vector(self, adapted: Adaptation, task: Task, view: View, deadline: Deadline) -> torch.Tensor | None:
        """The view's task vector: cached, or fitted from the mean row by `fit_steps` batches of sign-SGD on the
        demonstrations under the view (the network frozen); None when the deadline passed before the fit ended."""
        if view.key in adapted.vectors:
            return adapted.vectors[view.key]
        # predict_task runs under inference mode; fitting needs gradients and tensors made outside it
        with torch.inference_mode(False), torch.enable_grad():
            vec = self.model.task.weight.detach().mean(0)
            demos = demo_canvases(task, view, self.model.cfg.canvas, vec.device)
            feats = self.demo_features(task, view) if demos is not None and self.settings.fit_steps else None
            for _ in range(self.settings.fit_steps if demos is not None else 0):
                if deadline.passed():
                    return None
                # one batch at a time, so the deadline is checked between them: sign-SGD keeps no state
                vec = gm.fit_vector(adapted.net, *demos, vec, 1, self.settings.fit_lr, features=feats)
        adapted.vectors[view.key] = vec
        return vec

    def train_copy(self, adapted: Adaptation, task: Task, views: Sequence[View], deadline: Deadline) -> None:
        """`full`: a copy of the network and one task vector per view (from the mean row) trained together for
        `full_steps` batches, each every demonstration under every view at once; the loaded model is untouched.
        When the deadline passes the copy stays as it is then."""
        s = self.settings
        with torch.inference_mode(False), torch.enable_grad():
            device = self.model.head.weight.device
            demos = [(v, d) for v in views if (d := demo_canvases(task, v, self.model.cfg.canvas, device)) is not None]
            if not demos or not s.full_steps:
                return
            net = copy.deepcopy(self.model)
            net.task.weight.requires_grad_(False)  # its rows are other tasks'; the views' vectors are `table`
            cells, targets = (torch.cat([d[k] for _, d in demos]) for k in (0, 1))
            feats = self.encoder and gc.Features.cat([self.demo_features(task, v) for v, _ in demos])
            rows = torch.cat([torch.full((len(d[0]),), i, device=device) for i, (_, d) in enumerate(demos)])
            table = net.task.weight.detach().mean(0).repeat(len(demos), 1).requires_grad_(True)
            opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=s.full_lr, weight_decay=0.0)

            def update(loss: torch.Tensor) -> bool:
                opt.zero_grad(set_to_none=True)
                table.grad = None
                loss.backward()
                opt.step()
                with torch.no_grad():
                    table.sub_(s.fit_lr * torch.sign(table.grad))
                return not deadline.passed()

            for _ in range(s.full_steps):
                if deadline.passed():
                    break
                gm.deep_supervision(net, cells, targets, lambda: table[rows], update, features=feats)
                adapted.steps += 1
        adapted.net = net.eval()
        adapted.vectors = {v.key: table[i].detach() for i, (v, _) in enumerate(demos)}
