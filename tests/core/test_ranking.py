"""Candidates name the sources that proposed them: merged copies keep every name once, in the order first seen,
and the log carries them (an older log without them reads back with none)."""
import json

import numpy as np

from arc_ttt.core.ranking import Candidate, merge


def grid(*rows):
    return np.array(rows, dtype=np.uint8)


def test_merge_keeps_each_source_once_in_first_seen_order():
    a, b = grid([1, 2]), grid([3])
    raw = [Candidate(a, ["v1"], [-0.1], sources=["grid"]), Candidate(b, ["v2"], [-0.2], sources=["llm"]),
           Candidate(a.copy(), ["v3"], [-0.3], sources=["llm"]), Candidate(a.copy(), ["v4"], [-0.4], sources=["grid"])]
    merged = merge(raw, None)
    assert [c.sources for c in merged] == [["grid", "llm"], ["llm"]]
    assert merged[0].views == ["v1", "v3", "v4"] and merged[0].votes == 3
    assert [c.sources for c in raw] == [["grid"], ["llm"], ["llm"], ["grid"]]  # the proposals are left as they were


def test_a_logged_candidate_reads_back_with_its_sources():
    c = Candidate(grid([1, 2], [3, 4]), ["v1", "v2"], [-0.5, -1.25], votes=2, view_nlls=[3.5], score=-3.5,
                  sources=["llm", "grid"])
    d = json.loads(json.dumps(c.to_dict()))
    assert d["sources"] == ["llm", "grid"]
    back = Candidate.from_dict(d)
    assert back.sources == ["llm", "grid"] and back.views == c.views and back.votes == 2
    np.testing.assert_array_equal(back.grid, c.grid)
    old = {k: v for k, v in d.items() if k != "sources"}  # a log written before candidates named their sources
    assert Candidate.from_dict(old).sources == []
