"""Several workers pulling tasks from one counter: a store-level test and a real torchrun run on the CPU."""
import json
import os
import subprocess
import sys
import threading

import pytest
from torch.distributed import HashStore

from arc_ttt.core.submission import validate_submission
from arc_ttt.core.journal import journal_name
from arc_ttt.runner.workers import Worker, from_env
from conftest import E2E_FAST as FAST
from conftest import ROOT, free_port


def test_single_process_is_worker_zero_of_one():
    w = from_env({})
    assert (w.rank, w.world_size, w.store) == (0, 1, None)
    assert [w.next_index() for _ in range(3)] == [0, 1, 2]
    assert journal_name(w.rank) == "journal.jsonl" and w.device("auto") == "auto"
    w.barrier("x")  # no-op, returns at once


def test_workers_never_take_the_same_task():
    store = HashStore()
    taken = [[], [], []]

    def pull(rank):
        w = Worker(rank, 3, rank, store)
        while (i := w.next_index()) < 300:
            taken[rank].append(i)

    threads = [threading.Thread(target=pull, args=(r,)) for r in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = sorted(i for part in taken for i in part)
    assert flat == list(range(300))
    assert journal_name(Worker(1, 3, 1, store).rank) == "journal.rank1.jsonl"


def test_barrier_waits_for_everyone():
    store = HashStore()
    order = []

    def arrive(rank):
        Worker(rank, 2, rank, store).barrier("b", timeout=30)
        order.append(rank)

    t = threading.Thread(target=arrive, args=(0,))
    t.start()
    t.join(0.5)
    assert t.is_alive() and order == []  # worker 0 waits for worker 1
    arrive(1)
    t.join(5)
    assert sorted(order) == [0, 1]


@pytest.mark.e2e
def test_torchrun_two_workers_share_the_tasks_and_merge_one_submission(tiny_model_dir, challenges, tmp_path):
    c, s, raw = challenges
    out = tmp_path / "out"
    sets = [f"model.path={tiny_model_dir}", f"data.challenges={c}", f"data.solutions={s}", *FAST,
            "budget.adaptive=false"]
    cmd = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc-per-node=2", f"--master-port={free_port()}",
           "-m", "arc_ttt", "run", "--config", "configs/local.yaml", "--output", str(out), "--quiet",
           *[x for kv in sets for x in ("--set", kv)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in out.glob("journal*.jsonl")) == ["journal.jsonl", "journal.rank1.jsonl"]
    log = json.loads((out / "log.json").read_text())
    assert len(log["tasks"]) == 4
    assert {t["worker"] for t in log["tasks"]} == {0, 1}  # both workers solved tasks
    assert validate_submission(raw, json.loads((out / "submission.json").read_text())) == []
    assert (out / "report.html").exists() and (out / "run.rank1.log").exists()
