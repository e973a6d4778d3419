"""Every family, registered by importing the module of its prior: `FAMILIES` after this import is the catalogue."""
from __future__ import annotations

# each module registers its families on import
from . import colour, composition, counting, cropping, geometry, lines, logic  # noqa: F401
from . import movement, objects, patterns, topology  # noqa: F401
from .family import FAMILIES, PRIORS, Family

__all__ = ["FAMILIES", "PRIORS", "Family", "by_prior"]


def by_prior() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in FAMILIES.values():
        out.setdefault(f.prior, []).append(f.name)
    return {p: sorted(out[p]) for p in PRIORS if p in out}
