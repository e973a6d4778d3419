"""Augmented views of a task: D8 symmetry x colour permutation x train-example order.

A `View` is a small frozen value. `apply` maps a whole task into the view, `invert` maps a
grid produced in the view back to the original frame exactly. Its `key` is a short string
for logs and journals (`View.from_key` reads it back).

A `ViewPlan` is the one owner of which views a task is seen through: the augmentation (declared once, as
the ARChitects hand one options object to training, inference and scoring) and one seed stream per use
(generation, scoring, TTT, fine-tuning samples). Everything that draws views asks a plan; to change the
augmentation, change the plan.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .tasks import Pair, Task

IDENTITY_COLORS = tuple(range(10))
D8_NAMES = ("id", "r90", "r180", "r270", "t", "r90t", "r180t", "r270t")


def d8(grid: np.ndarray, k: int) -> np.ndarray:
    """Symmetry k of the dihedral group: k%4 quarter turns, then a transpose when k >= 4."""
    g = np.rot90(grid, k % 4)
    return np.ascontiguousarray(g.T if k >= 4 else g)


def d8_inverse(grid: np.ndarray, k: int) -> np.ndarray:
    g = grid.T if k >= 4 else grid
    return np.ascontiguousarray(np.rot90(g, -(k % 4)))


@dataclass(frozen=True)
class View:
    d8: int = 0
    colors: tuple[int, ...] = IDENTITY_COLORS  # colors[c] is the new colour of colour c
    order: tuple[int, ...] | None = None  # new train order as indices into the original; None = as is

    def __post_init__(self):
        if not 0 <= self.d8 < 8:
            raise ValueError(f"d8 index {self.d8} not in 0..7")
        if sorted(self.colors) != list(range(10)):
            raise ValueError(f"colours {self.colors} are not a permutation of 0..9")
        if self.order is not None and sorted(self.order) != list(range(len(self.order))):
            raise ValueError(f"order {self.order} is not a permutation")

    def apply_grid(self, grid: np.ndarray) -> np.ndarray:
        return d8(np.asarray(self.colors, dtype=grid.dtype)[grid], self.d8)

    def invert(self, grid: np.ndarray) -> np.ndarray:
        inverse = np.argsort(self.colors).astype(grid.dtype)
        return inverse[d8_inverse(grid, self.d8)]

    def apply(self, task: Task) -> Task:
        def pair(p: Pair) -> Pair:
            return Pair(self.apply_grid(p.input), None if p.output is None else self.apply_grid(p.output))

        train = task.train
        if self.order is not None:
            if len(self.order) != len(train):
                raise ValueError(f"view order has {len(self.order)} entries, task {task.id} has {len(train)} train pairs")
            train = tuple(train[i] for i in self.order)
        return replace(task, train=tuple(pair(p) for p in train), test=tuple(pair(p) for p in task.test))

    @property
    def key(self) -> str:
        """e.g. 'd5.c0918273645.o2-0-1' (identity parts omitted; 'id' for the identity view)."""
        parts = []
        if self.d8:
            parts.append(f"d{self.d8}")
        if self.colors != IDENTITY_COLORS:
            parts.append("c" + "".join(map(str, self.colors)))
        if self.order is not None and list(self.order) != sorted(self.order):
            parts.append("o" + "-".join(map(str, self.order)))
        return ".".join(parts) or "id"

    def effect(self, task: Task) -> tuple:
        """What the view shows of this task: its grids as seen, in the order seen. Two views with the same
        effect show the model the same tokens (a symmetric grid, an unused colour, two equal demos)."""
        t = self.apply(task)
        grids = [g for p in (*t.train, *t.test) for g in (p.input, p.output) if g is not None]
        return tuple((g.shape, g.tobytes()) for g in grids)

    @classmethod
    def from_key(cls, key: str) -> "View":
        kw: dict = {}
        for part in key.split("."):
            if part == "id":
                continue
            tag, body = part[0], part[1:]
            if tag == "d":
                kw["d8"] = int(body)
            elif tag == "c":
                kw["colors"] = tuple(int(c) for c in body)
            elif tag == "o":
                kw["order"] = tuple(int(i) for i in body.split("-"))
            else:
                raise ValueError(f"bad view key {key!r}")
        return cls(**kw)


IDENTITY = View()


def sample_views(
    task: Task,
    n: int,
    seed: int = 0,
    *,
    symmetries: bool = True,
    colors: bool = True,
    keep_background: bool = True,
    shuffle_examples: bool = True,
    include_identity: bool = True,
    avoid: Sequence[View] = (),
) -> list[View]:
    """n distinct views of `task`, the same for the same (task id, seed).

    Symmetries are stratified: every D8 element is used once before any repeats, so 8 views
    cover the whole group. Without the identity the walk through D8 starts at a random element, so that
    one view alone (a fine-tuning sample) is any of the eight, not always the first. With
    `keep_background`, colour 0 stays 0 (it is the background in most ARC tasks).
    `avoid`: views never returned, compared by their effect on this task (`View.effect`), e.g. the
    inference views when drawing TTT views.
    """
    rng = np.random.default_rng([seed, *task.id.encode()])
    n_train = len(task.train)
    views: list[View] = [IDENTITY] if include_identity and n > 0 else []
    start = 0 if include_identity or not symmetries else int(rng.integers(8))
    seen = {v.effect(task) for v in (*views, *avoid)}
    ks = list(range(8)) if symmetries else [0]
    attempts = 0
    while len(views) < n and attempts < 100 * n + 100:
        attempts += 1
        k = ks[(start + len(views)) % len(ks)] if symmetries else 0
        cols = IDENTITY_COLORS
        if colors:
            moving = np.arange(1 if keep_background else 0, 10)
            perm = np.arange(10)
            perm[moving] = rng.permutation(moving)
            cols = tuple(int(c) for c in perm)
        order = tuple(int(i) for i in rng.permutation(n_train)) if shuffle_examples and n_train > 1 else None
        v = View(k, cols, order)
        effect = v.effect(task)
        if effect not in seen:
            seen.add(effect)
            views.append(v)
    return views


@dataclass(frozen=True)
class ViewPlan:
    """The views of a task for each use, fixed by (task id, seed, use). Each use draws from its own stream, so
    the scoring views are not the generation views and TTT is never trained verbatim on a view inference asks."""

    seed: int = 0
    keep_background: bool = True  # colour 0 stays 0 under colour permutations (config: views.keep_background)
    shuffle_examples: bool = True  # the demonstrations' order is part of a view

    SCORING = 1_000_003  # stream offsets from `seed`; generation is the seed itself
    TTT = 2_000_003
    SAMPLE_STRIDE = 1_000_003  # fine-tuning sample k: seed * SAMPLE_STRIDE + k, a stream per sample: a stride, not
    # an offset like the two above; equal to SCORING by value, harmless (fine-tuning and inference never share a run)

    @classmethod
    def of(cls, views_config, seed: int) -> ViewPlan:
        """The plan of a run or fine-tuning config: its `views` section and its seed."""
        return cls(seed=seed, keep_background=views_config.keep_background)

    def _draw(self, task: Task, n: int, seed: int, **kw) -> list[View]:
        return sample_views(task, n, seed, keep_background=self.keep_background,
                            shuffle_examples=self.shuffle_examples, **kw)

    def generation(self, task: Task, n: int) -> list[View]:
        """The views candidates are generated under, the identity first."""
        return self._draw(task, n, self.seed)

    def scoring(self, task: Task, n: int) -> list[View]:
        """The views the product of experts re-scores candidates under."""
        return self._draw(task, n, self.seed + self.SCORING)

    def inference(self, task: Task, n_views: int, n_score_views: int) -> list[View]:
        """Every view inference may show the model: the generation views, then the scoring views."""
        return [*self.generation(task, n_views), *self.scoring(task, n_score_views)]

    def ttt(self, task: Task, n: int, avoid: Sequence[View] = ()) -> list[View]:
        """n views to train on at test time, none the identity, none with the effect of a view in `avoid`."""
        return self._draw(task, n, self.seed + self.TTT, include_identity=False, avoid=avoid)

    def sample(self, task: Task, k: int) -> View:
        """Fine-tuning sample k's one view: any D8 element (the walk starts at a random one), colours, order."""
        views = self._draw(task, 1, self.seed * self.SAMPLE_STRIDE + k, include_identity=False)
        return views[0] if views else IDENTITY

    def fixed(self, task: Task, n: int) -> list[View]:
        """A task's n fixed training views, the identity first (the grid model gives each its own embedding row);
        the generation stream's."""
        return self.generation(task, n)
