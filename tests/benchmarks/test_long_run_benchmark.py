"""benchmarks/training/long_run.py: each kept adapter against the leg's start, paired by task on both dev sets, and the
verdict that ships one only when it is better on both."""
import json

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def long_run():
    return load_benchmark("long_run")


def evaluation(step, dev, dev_eval):
    """An evaluation as finetune keeps it: per set, the mean NLL, the exact share and per task [nll, exact]."""
    out = {"step": step}
    for which, tasks in (("dev", dev), ("dev_eval", dev_eval)):
        out[f"{which}_per_task"] = {k: list(v) for k, v in tasks.items()}
        out[f"{which}_nll"] = sum(v[0] for v in tasks.values()) / len(tasks)
        out[f"{which}_exact"] = sum(v[1] for v in tasks.values()) / len(tasks)
    return out


def card(folder, *evals):
    (folder / "finetune.json").write_text(json.dumps({"holdout": {"history": list(evals)}}))


def test_a_step_ships_only_when_better_on_both_sets(long_run, tmp_path):
    start = {f"t{i}": (0.5, 0) for i in range(8)}
    better = {k: (v[0] - 0.05 - 0.01 * i, v[1]) for i, (k, v) in enumerate(start.items())}
    worse = {k: (v[0] + 0.02, v[1]) for k, v in start.items()}
    card(tmp_path, evaluation(0, start, start), evaluation(200, better, worse), evaluation(400, better, better))
    rows = long_run.judge(long_run.evaluations(str(tmp_path)))
    assert list(rows) == [0, 200, 400]
    assert [rows[s]["ships"] for s in rows] == [False, False, True]
    d = rows[400]["dev"]["minus_start"]["nll"]
    assert d["mean"] == pytest.approx(-0.085) and d["hi"] < 0 and d["n"] == 8
    assert rows[200]["dev_eval"]["minus_start"]["nll"]["lo"] == pytest.approx(0.02)
    lost = {k: (v[0], 0) for k, v in better.items()}  # better NLL, but every task's exact answer lost
    card(tmp_path, evaluation(0, {k: (v[0], 1) for k, v in start.items()}, start), evaluation(400, lost, better))
    assert not long_run.judge(long_run.evaluations(str(tmp_path)))[400]["ships"]


def test_a_running_leg_is_read_from_its_checkpoint_and_one_without_its_start_refused(long_run, tmp_path):
    with pytest.raises(SystemExit, match="no leg there"):
        long_run.evaluations(str(tmp_path))
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "progress.json").write_text(json.dumps(
        {"progress": {"evals": [evaluation(200, {"t": (0.4, 0)}, {"t": (0.4, 0)})]}}))
    assert list(long_run.evaluations(str(tmp_path))) == [200]
    with pytest.raises(SystemExit, match="no step-0"):
        long_run.judge(long_run.evaluations(str(tmp_path)))
