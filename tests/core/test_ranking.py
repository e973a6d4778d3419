"""Candidates name the sources that proposed them: merged copies keep every name once, in the order first seen,
and the log carries them (an older log without them reads back with none)."""
import json

import numpy as np
import pytest

from arc_ttt.core.ranking import Candidate, merge, restrict


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


def test_restricting_to_a_source_keeps_its_copies_votes_and_the_scoring_nlls():
    """What a run with fewer sources would have had: each merged candidate keeps the copies its kept sources
    proposed, votes counted again under the threshold, its NLLs as scored; a log without per-view sources is
    refused rather than guessed."""
    a, b = grid([1, 2]), grid([3])
    raw = [Candidate(a, ["v1"], [np.log(0.5)], sources=["llm"], origins=["llm"]),
           Candidate(a.copy(), ["v2"], [np.log(0.05)], sources=["grid"], origins=["grid"]),
           Candidate(b, ["v3"], [np.log(0.5)], sources=["grid"], origins=["grid"])]
    merged = merge(raw, 0.1)
    merged[0].view_nlls, merged[1].view_nlls = [1.0, 2.0], [4.0, 4.0]
    assert merged[0].origins == ["llm", "grid"] and merged[0].votes == 1
    llm = restrict(merged, ["llm"], 0.1)
    assert len(llm) == 1 and llm[0].views == ["v1"] and llm[0].votes == 1 and llm[0].view_nlls == [1.0, 2.0]
    only_grid = restrict(merged, ["grid"], 0.1)
    assert [(c.views, c.votes, c.view_nlls) for c in only_grid] == [(["v2"], 0, [1.0, 2.0]), (["v3"], 1, [4.0, 4.0])]
    assert [c.votes for c in restrict(merged, ["grid"], None)] == [1, 1]  # greedy: every view's answer votes
    assert restrict(merged, ["llm", "grid"], 0.1)[0].votes == merged[0].votes
    back = [Candidate.from_dict(json.loads(json.dumps(c.to_dict()))) for c in merged]
    assert [c.origins for c in back] == [["llm", "grid"], ["grid"]]
    old = Candidate.from_dict({k: v for k, v in merged[0].to_dict().items() if k != "origins"})
    with pytest.raises(ValueError, match="views' sources"):
        restrict([old], ["llm"], 0.1)
