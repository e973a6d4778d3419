"""The verifier: a generated task is written only if every pair obeys its rule, recomputed from the input.

What is refused, and why: a grid outside ARC's rules (1-30 a side, colours 0-9); a pair the rule, recomputed,
does not reproduce; an output equal to its input (unless the family says a pair may be left unchanged); two
pairs with the same input; demo outputs all alike (a constant rule); and a test output that a trivial rule
would guess (the test input itself, the most frequent demo output, or the test input's shape filled with its
most frequent colour): a task a model can pass without the rule teaches nothing.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .family import Family, Grid, Redraw, Rule

MAX_SIDE = 30


def grid_problem(g: Grid) -> str | None:
    if not isinstance(g, np.ndarray) or g.ndim != 2:
        return "not a 2-D array"
    if not (1 <= g.shape[0] <= MAX_SIDE and 1 <= g.shape[1] <= MAX_SIDE):
        return f"shape {g.shape} outside 1-{MAX_SIDE}"
    if not np.issubdtype(g.dtype, np.integer) or g.min() < 0 or g.max() > 9:
        return "colours outside 0-9"
    return None


def _key(g: Grid) -> bytes:
    return bytes(g.shape) + np.asarray(g, np.uint8).tobytes()


def trivial_guesses(test_input: Grid, demo_outputs: list[Grid]) -> list[tuple[str, Grid]]:
    """What a solver that ignores the rule would answer: identity, the most frequent demo output, a flat fill."""
    most = Counter(_key(o) for o in demo_outputs).most_common(1)[0][0]
    frequent = next(o for o in demo_outputs if _key(o) == most)
    vals, counts = np.unique(test_input, return_counts=True)
    flat = np.full(test_input.shape, vals[np.argmax(counts)], dtype=test_input.dtype)
    return [("identity", test_input), ("the most frequent demo output", frequent), ("a flat fill", flat)]


def problems(pairs: list[tuple[Grid, Grid]], fam: Family, rule: Rule) -> list[str]:
    """Every reason to refuse these pairs (the last is the test pair); empty when the task is sound."""
    out = []
    for i, (x, y) in enumerate(pairs):
        for what, g in (("input", x), ("output", y)):
            if (p := grid_problem(g)) is not None:
                out.append(f"pair {i} {what}: {p}")
        if out:
            continue
        try:
            again = rule.apply(x.copy())
        except Redraw as e:
            out.append(f"pair {i}: the rule is undefined on its own input ({e})")
            continue
        if grid_problem(again) is not None or not np.array_equal(again, y):
            out.append(f"pair {i}: the rule recomputed on the input gives another output")
        if not fam.identity_ok and np.array_equal(x, y):
            out.append(f"pair {i}: output equals input")
    if out:
        return out
    if len({_key(x) for x, _ in pairs}) < len(pairs):
        out.append("two pairs share an input")
    demos, (tx, ty) = [y for _, y in pairs[:-1]], pairs[-1]
    if len({_key(y) for y in demos}) == 1:
        out.append("every demo output is the same grid")
    for name, guess in trivial_guesses(tx, demos):
        if np.array_equal(guess, ty):
            out.append(f"the test output is {name}")
    return out
