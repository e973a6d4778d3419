"""Drawing tasks: deterministic by (family, seed, index), refused with a reason, written where the corpus reads."""
import json

import numpy as np
import pytest

from arc_ttt.core.config import ConfigError
from arc_ttt.core.corpus import load_folder
from arc_ttt.synth.catalog import FAMILIES
from arc_ttt.synth.family import Family, Rule
from arc_ttt.synth.generate import Refusal, generate, make_task, write


def same(a, b):
    return a.id == b.id and all(np.array_equal(x.input, y.input) and np.array_equal(x.output, y.output)
                                for x, y in zip((*a.train, *a.test), (*b.train, *b.test)))


def test_the_same_seed_gives_the_same_tasks_and_another_seed_others():
    a, b, c = generate(6, ["gravity", "d8_whole"], seed=3), generate(6, ["gravity", "d8_whole"], seed=3), \
        generate(6, ["gravity", "d8_whole"], seed=4)
    assert [t.id for t in a.tasks] == ["synth-gravity-3-0", "synth-d8_whole-3-0", "synth-gravity-3-1",
                                       "synth-d8_whole-3-1", "synth-gravity-3-2", "synth-d8_whole-3-2"]
    assert all(same(x, y) for x, y in zip(a.tasks, b.tasks))
    assert not any(np.array_equal(x.test[0].input, y.test[0].input) for x, y in zip(a.tasks, c.tasks))


def test_a_family_that_cannot_make_a_sound_task_is_refused_with_the_reason():
    identity = Rule(draw=lambda r: r.integers(0, 10, size=(3, 3)), apply=lambda g: g.copy())
    got = make_task(Family("noop", "geometry", make=lambda r: identity), seed=0, index=0)
    assert isinstance(got, Refusal) and got.reason.endswith("output equals input")


def test_unknown_families_are_named():
    with pytest.raises(ConfigError, match="nope"):
        generate(2, ["gravity", "nope"])


def test_written_tasks_are_read_back_by_the_corpus_with_their_test_outputs(tmp_path):
    batch = generate(4, ["gravity", "d8_whole"], seed=7)
    write(str(tmp_path), batch, seed=7)
    back = {t.id: t for t in load_folder(str(tmp_path))}
    assert sorted(back) == sorted(t.id for t in batch.tasks)
    assert all(same(t, back[t.id]) and back[t.id].has_solutions for t in batch.tasks)
    manifest = json.loads((tmp_path / "manifest.txt").read_text())
    assert manifest["families"]["gravity"] == {"tasks": 2, "refused": 0}


def test_every_family_registers_a_known_prior_and_a_docstring():
    assert all(f.doc and f.prior for f in FAMILIES.values())
