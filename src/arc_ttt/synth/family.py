"""A rule family: a concept (gravity, fill the enclosed areas, ...) with its parameters drawn per task.

A family is a function of a random generator that draws the task's parameters and returns a `Rule`: how to draw
one input (or an input with an output built by construction) and the transformation itself, as a function of
the input grid alone. The verifier recomputes the transformation on every pair, so a rule must read everything
it needs from the grid (objects are found again by connectivity, never passed along from the drawing).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Grid = np.ndarray
Rng = np.random.Generator

# ARC's core priors (Chollet 2019, and the list); every family names one.
PRIORS = ("objects", "geometry", "movement", "lines", "topology", "patterns", "logic", "colour", "cropping",
          "counting", "composition")


class Redraw(Exception):
    """This input does not fit the rule (a tie for the largest object, nothing to move): draw another."""


@dataclass(frozen=True)
class Rule:
    """One task's rule. `draw(rng)` returns an input grid, or (input, output) when the output is built along with
    it; `apply(grid)` is the transformation, recomputed on every pair by the verifier; it raises `Redraw` when the
    input leaves the rule undefined."""

    draw: Callable[[Rng], Grid | tuple[Grid, Grid]]
    apply: Callable[[Grid], Grid]
    params: dict = field(default_factory=dict)  # what was drawn for this task, for the gallery and the tests


@dataclass(frozen=True)
class Family:
    name: str
    prior: str
    make: Callable[[Rng], Rule]
    identity_ok: bool = False  # whether a pair may leave its input unchanged (e.g. "repair" with nothing broken)
    doc: str = ""


FAMILIES: dict[str, Family] = {}


def family(name: str, prior: str, *, identity_ok: bool = False):
    """Register `make(rng) -> Rule` as a family: one decorator line per concept."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"family {name!r}: names are lower_snake_case (they sit inside ids split on '-')")
    if prior not in PRIORS:
        raise ValueError(f"family {name!r}: unknown prior {prior!r}; choose from {PRIORS}")

    def register(make: Callable[[Rng], Rule]) -> Callable[[Rng], Rule]:
        if name in FAMILIES:
            raise ValueError(f"family {name!r} registered twice")
        FAMILIES[name] = Family(name, prior, make, identity_ok, (make.__doc__ or "").strip())
        return make

    return register
