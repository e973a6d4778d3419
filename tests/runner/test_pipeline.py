"""The run's loop on a simulated engine and clock: deadline, isolation, OOM retry, resume, report; what the records
keep of a real engine's candidates."""
import itertools
import json
import re

import numpy as np
import pytest
from conftest import write_kaggle_files
import torch

from arc_ttt.cli import main
from arc_ttt.core.config import load_config
from arc_ttt.core.journal import read_journal
from arc_ttt.core.clock import FakeClock
from arc_ttt.core.ranking import Candidate
from arc_ttt.runner.isolation import _complete
from arc_ttt.runner.pipeline import run
from arc_ttt.lab.simulate import SimEngine
from arc_ttt.core.submission import score_submission, validate_submission


@pytest.fixture
def challenge_files(tmp_path, small_tasks):
    return write_kaggle_files(tmp_path, small_tasks[:6])


def config(tmp_path, c, s, *extra):
    return load_config(None, [f"data.challenges={c}", f"data.solutions={s}", f"output.dir={tmp_path / 'out'}",
                              "budget.seconds=1000", "budget.min_margin_seconds=0", "budget.safety_margin=0.05",
                              "inference.n_views=4", *extra])


def sim(cfg, solve=True, **kw):
    """A simulated engine on a fake clock; with `solve`, it is told the true answers of the config's tasks."""
    clock = FakeClock()
    truth = {}
    if solve and cfg.data.solutions:
        truth = {tid: [np.array(g, dtype=np.uint8) for g in grids]
                 for tid, grids in json.loads(open(cfg.data.solutions).read()).items()}
    return clock, SimEngine(clock, cfg.budget, truth=truth, **kw)


def test_a_full_run_writes_a_valid_scored_submission_log_and_report(tmp_path, challenge_files):
    c, s, challenges, solutions = challenge_files
    cfg = config(tmp_path, c, s)
    clock, engine = sim(cfg)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    sub = json.loads(open(result.submission_path).read())
    assert validate_submission(challenges, sub) == []
    assert result.score == 1.0  # the simulated engine answers with the truth
    assert score_submission(solutions, sub).output_mean == 1.0
    assert [r.status for r in result.records] == ["ok"] * 6
    logged = json.loads(open(result.log_path).read())
    assert logged["summary"]["score"] == 1.0 and len(logged["tasks"]) == 6
    assert {"status", "steps", "tokens", "seconds", "peak_memory_mb", "candidates", "attempts"} <= set(logged["tasks"][0])
    html = open(result.report_path).read()
    assert html.count("data:image/png;base64,") >= 6 * 3  # input, two attempts, truth per test input
    assert all(tid in html for tid in challenges)
    assert (tmp_path / "out" / "run.log").read_text().count(" ok ") == 6
    assert result.seconds <= cfg.budget.seconds


def test_each_task_records_where_its_time_went(tmp_path, challenge_files):
    c, s, _, _ = challenge_files
    cfg = config(tmp_path, c, s, "budget.adaptive=true")
    clock, engine = sim(cfg)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    for r in result.records:
        assert r.difficulty_seconds > 0 and r.train_seconds > 0 and r.prefill_seconds > 0 and r.decode_seconds > 0
        assert r.prefill_seconds + r.decode_seconds + r.rescore_seconds == pytest.approx(r.infer_seconds)
    logged = json.loads(open(result.log_path).read())
    split = ("difficulty_seconds", "train_seconds", "prefill_seconds", "decode_seconds", "rescore_seconds")
    assert set(split) <= set(logged["tasks"][0]) and set(split) <= set(logged["summary"])
    lines = [line for line in (tmp_path / "out" / "run.log").read_text().splitlines() if " ok " in line]
    assert len(lines) == 6 and all("difficulty" in x and "prefill" in x and "rescore" in x for x in lines)
    assert "prefill s" in open(result.report_path).read()


@pytest.mark.parametrize("speed", [0.01, 1.0, 30.0, 1000.0])
def test_never_over_the_deadline_whatever_the_speed(tmp_path, challenge_files, speed):
    """Holds while one forward pass or step fits in the safety margin: a single step cannot be cut short."""
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s, "budget.seconds=60", "budget.train_seconds_per_token=1e-3")
    clock, engine = sim(cfg, speed=speed, noise=0.5)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    assert clock() <= 60
    assert validate_submission(challenges, json.loads(open(result.submission_path).read())) == []
    modes = [r.mode for r in result.records]
    if speed >= 1000:
        assert set(modes) & {"no_ttt", "fallback", "fewer_views"}


def test_an_exception_in_one_task_falls_back_for_that_task_only(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s)
    bad = list(challenges)[2]
    clock, engine = sim(cfg, fail={bad: RuntimeError("boom")})
    result = run(cfg, engine=engine, clock=clock, progress=False)
    by_id = {r.id: r for r in result.records}
    assert by_id[bad].status == "error" and "boom" in by_id[bad].error and not by_id[bad].retried
    assert all(r.status == "ok" for r in result.records if r.id != bad)
    assert validate_submission(challenges, json.loads(open(result.submission_path).read())) == []
    assert ("free",) in engine.calls


def test_out_of_memory_frees_memory_and_retries_smaller(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s)
    tid = list(challenges)[0]
    clock, engine = sim(cfg, fail={tid: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")})
    result = run(cfg, engine=engine, clock=clock, progress=False)
    rec = {r.id: r for r in result.records}[tid]
    assert rec.status == "ok" and rec.retried
    train_calls = [call for call in engine.calls if call[0] == "train" and call[1] == tid]
    assert [call[4] for call in train_calls] == [0, 1]  # second try with shrink=1
    assert engine.calls.index(("free",)) < engine.calls.index(train_calls[1])


def test_out_of_memory_twice_falls_back(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s)
    tid = list(challenges)[0]

    class TwiceOOM(SimEngine):
        def train(self, task, steps, time_cap, shrink):
            if task.id == tid:
                raise torch.OutOfMemoryError("CUDA out of memory")
            return super().train(task, steps, time_cap, shrink)

    clock = FakeClock()
    result = run(cfg, engine=TwiceOOM(clock, cfg.budget), clock=clock, progress=False)
    rec = {r.id: r for r in result.records}[tid]
    assert rec.status == "error" and rec.retried and "out of memory" in rec.error
    assert validate_submission(challenges, json.loads(open(result.submission_path).read())) == []


def test_invalid_tasks_are_answered_by_fallback_and_reported(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    challenges = dict(challenges)
    challenges["broken"] = {"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[0]]}] * 2}
    c.write_text(json.dumps(challenges))
    cfg = config(tmp_path, c, s)
    clock, engine = sim(cfg)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    rec = {r.id: r for r in result.records}["broken"]
    assert rec.status == "invalid" and "ragged" in rec.reason
    sub = json.loads(open(result.submission_path).read())
    assert validate_submission(challenges, sub) == [] and len(sub["broken"]) == 2
    assert "ragged" in open(result.report_path).read()


def test_model_load_failure_still_leaves_a_valid_submission(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s, f"model.path={tmp_path / 'no-model'}")
    result = run(cfg, progress=False)
    assert all(r.status == "error" and "model load" in r.error for r in result.records)
    assert validate_submission(challenges, json.loads(open(result.submission_path).read())) == []


def test_resume_skips_finished_tasks(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s)
    clock, engine = sim(cfg)
    run(cfg, engine=engine, clock=clock, progress=False)
    journal = tmp_path / "out" / "journal.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])  # as if killed while writing task 4
    assert len(read_journal(str(journal))) == 3
    cfg = config(tmp_path, c, s, "output.resume=true")
    clock, engine = sim(cfg)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    trained = [call[1] for call in engine.calls if call[0] == "train"]
    assert trained == list(challenges)[3:]
    assert [r.status for r in result.records] == ["resumed"] * 3 + ["ok"] * 3
    assert result.score == 1.0


def test_quick_commit_run_solves_a_few_and_answers_all(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s)
    clock, engine = sim(cfg)
    result = run(cfg, engine=engine, clock=clock, progress=False, solve_limit=2)
    assert [r.status for r in result.records] == ["ok"] * 2 + ["fallback"] * 4
    assert validate_submission(challenges, json.loads(open(result.submission_path).read())) == []


def test_adaptive_effort_is_recorded_per_task(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s, "budget.adaptive=true", "budget.seconds=200", "budget.train_seconds_per_token=2e-2")
    ids = list(challenges)
    clock, engine = sim(cfg, difficulties={i: (0.2 if k % 2 else 1.8) for k, i in enumerate(ids)})
    result = run(cfg, engine=engine, clock=clock, progress=False)
    hard = [r for r in result.records if r.difficulty == 1.8]
    easy = [r for r in result.records if r.difficulty == 0.2]
    assert min(r.weight for r in hard) > max(r.weight for r in easy)
    assert sum(r.planned_steps for r in hard) > sum(r.planned_steps for r in easy)


def test_complete_fills_missing_attempts(small_tasks):
    t = small_tasks[0]
    g = np.full((2, 2), 3, np.uint8)
    out = _complete(t, [(g, None)])
    np.testing.assert_array_equal(out[0][0], g)
    np.testing.assert_array_equal(out[0][1], t.test[0].input)  # the fallback fills attempt 2
    out = _complete(t, [(None, None)])
    np.testing.assert_array_equal(out[0][0], t.test[0].input)
    out = _complete(t, [(None, g)])
    np.testing.assert_array_equal(out[0][0], g)


def test_warm_up_of_the_first_forward_pass_does_not_skew_the_plan(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s, "budget.adaptive=true", "budget.difficulty_share=0.5")

    class SlowFirst(SimEngine):
        def difficulty(self, task):
            if not any(call[0] == "warm" for call in self.calls):
                self.calls.append(("warm",))
                self.clock.advance(30.0)  # one-time start-up cost (kernels, allocator, caches)
            return super().difficulty(task)

    clock = FakeClock()
    engine = SlowFirst(clock, cfg.budget)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    assert all(r.mode == "full" for r in result.records)


def test_an_out_of_memory_retry_shares_the_task_time_instead_of_adding_to_it(tmp_path, challenge_files):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s, "budget.adaptive=false")
    tid = list(challenges)[0]

    class SlowOOM(SimEngine):
        def train(self, task, steps, time_cap, shrink):
            if task.id == tid and shrink == 0:
                self.calls.append(("train", task.id, steps, time_cap, shrink))
                self.clock.advance(time_cap.seconds * 0.8)  # most of the training time is gone when it fails
                raise torch.OutOfMemoryError("CUDA out of memory")
            return super().train(task, steps, time_cap, shrink)

    clock = FakeClock()
    engine = SlowOOM(clock, cfg.budget)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    first, second = [call for call in engine.calls if call[0] == "train" and call[1] == tid]
    predict = next(call for call in engine.calls if call[0] == "predict" and call[1] == tid)
    rec = {r.id: r for r in result.records}[tid]
    assert rec.retried and rec.status == "ok"
    assert second[3].seconds <= first[3].seconds * 0.2 + 1e-9  # the retry trains within what is left of the first cap
    assert predict[3] > 0  # inference still gets its time
    assert rec.views == cfg.inference.n_views


def test_a_task_slower_than_its_estimate_completes_its_plan_when_the_run_has_room(tmp_path, challenge_files):
    """Hardware 3x slower than the prior and nothing measured yet: caps come from the run's unreserved
    time, not from the estimate, so no task is cut short while the budget has room."""
    c, s, _, _ = challenge_files
    cfg = config(tmp_path, c, s, "budget.seconds=100000", "budget.adaptive=false", "budget.max_steps=16")
    clock, engine = sim(cfg, speed=3.0)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    first = result.records[0]
    assert first.planned_steps == 16 and first.planned_views == 4
    assert (first.steps, first.views) == (16, 4)
    assert all((r.status, r.steps, r.views) == ("ok", r.planned_steps, r.planned_views) for r in result.records)


def test_a_task_that_trains_slower_than_planned_stops_training_in_time_to_predict(tmp_path, challenge_files):
    """The budget binds, no headroom, and the fourth task runs 3x slower than every estimate (which the first three
    made exact): its steps show it, so training stops early enough for its 3x slower inference to finish all its
    views (a cap of plain seconds leaves inference its estimate, and the task ends with no prediction)."""
    c, s, _, _ = challenge_files
    cfg = config(tmp_path, c, s, "budget.seconds=60", "budget.adaptive=false", "budget.min_steps=1",
                 "budget.max_steps=1000", "budget.headroom=0", "budget.task_overhead_seconds=0")
    slow = list(json.loads(open(c).read()))[3]

    class OneSlowTask(SimEngine):
        def _factor(self, task_id):
            return 3.0 if task_id == slow else 1.0

    clock, solver = sim(cfg)
    engine = OneSlowTask(clock, cfg.budget, truth=solver.truth)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    rec = {r.id: r for r in result.records}[slow]
    assert rec.planned_steps < 1000  # the budget, not the step cap, set the plan
    assert rec.train_stopped_by == "time_cap" and 0 < rec.steps < rec.planned_steps
    assert rec.views == rec.planned_views and rec.status == "ok"
    assert clock() <= 60


@pytest.mark.parametrize("speed", [3.0, 10.0])
def test_a_tight_budget_on_slow_hardware_is_still_never_late(tmp_path, challenge_files, speed):
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s, "budget.seconds=40", "budget.adaptive=false", "budget.min_steps=1")
    clock, engine = sim(cfg, speed=speed)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    assert clock() <= 40
    assert validate_submission(challenges, json.loads(open(result.submission_path).read())) == []


def test_a_good_task_after_a_damaged_one_is_not_starved(tmp_path, tiny_model_dir):
    """The regression: one damaged task and one good 2x2 task, 120 s, no TTT, greedy, one view. The good
    task used to end in fallback ("0 of 1 views") with 100 s left, its cap taken from a prior."""
    good = {"train": [{"input": [[1, 0], [0, 1]], "output": [[0, 1], [1, 0]]}], "test": [{"input": [[1, 1], [0, 0]]}]}
    damaged = {"train": [{"input": [[1, 0], [0]], "output": [[0]]}], "test": [{"input": [[1]]}]}
    c = tmp_path / "challenges.json"
    c.write_text(json.dumps({"00000bad": damaged, "0000good": good}))
    cfg = load_config(None, [f"data.challenges={c}", f"output.dir={tmp_path / 'out'}", f"model.path={tiny_model_dir}",
                             "budget.seconds=120", "budget.min_margin_seconds=10", "budget.max_steps=0",
                             "budget.min_steps=0", "inference.decoding=greedy", "inference.n_views=1",
                             "inference.n_score_views=1", "ttt.autocast=\"off\""])
    result = run(cfg, progress=False)
    status = {r.id: r for r in result.records}
    assert status["00000bad"].status == "invalid"
    assert (status["0000good"].status, status["0000good"].views) == ("ok", 1), status["0000good"]


def test_the_engine_never_sees_test_solutions(tmp_path, challenge_files):
    c, s, _, _ = challenge_files
    cfg = config(tmp_path, c, s)
    clock, engine = sim(cfg)
    seen = []
    for name in ("cost", "difficulty", "train", "predict"):
        def spy(task, *args, _real=getattr(engine, name)):
            seen.append(task)
            return _real(task, *args)
        setattr(engine, name, spy)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    assert seen and all(p.output is None for task in seen for p in task.test)
    assert result.score == 1.0  # scored against the solutions all the same


@pytest.mark.parametrize("headroom, completes", [(0.2, True), (0.0, False)])
def test_with_a_binding_budget_the_headroom_lets_a_slower_task_finish_its_plan(tmp_path, challenge_files, headroom,
                                                                              completes):
    """The budget binds (steps limited by time, not by max_steps) and the hardware is 20% slower than the prior:
    with headroom every task still does what it was planned; without, the first is cut short."""
    c, s, _, _ = challenge_files
    cfg = config(tmp_path, c, s, "budget.seconds=120", "budget.adaptive=false", "budget.min_steps=1",
                 "budget.max_steps=1000", f"budget.headroom={headroom}")
    clock, engine = sim(cfg, speed=1.2)
    result = run(cfg, engine=engine, clock=clock, progress=False)
    assert result.records[0].planned_steps < 1000  # the budget, not the step cap, set the plan
    done_as_planned = [(r.steps, r.views) == (r.planned_steps, r.planned_views) for r in result.records]
    assert all(done_as_planned) is completes, done_as_planned
    assert clock() <= 120


def test_a_task_whose_cost_estimate_raises_keeps_its_fallback_and_the_run_goes_on(tmp_path, challenge_files):
    """The estimates are made before the per-task guard: one failing must not stop the run before any task."""
    c, s, challenges, _ = challenge_files
    cfg = config(tmp_path, c, s)
    clock, engine = sim(cfg)
    bad = sorted(challenges)[0]
    estimate = engine.cost

    def cost(task):
        if task.id == bad:
            raise ValueError("grid too large to estimate")
        return estimate(task)

    engine.cost = cost
    result = run(cfg, engine=engine, clock=clock, progress=False)
    by_id = {r.id: r for r in result.records}
    assert by_id[bad].status == "error" and "cost estimate: ValueError" in by_id[bad].error
    assert [r.status for r in result.records if r.id != bad] == ["ok"] * 5
    sub = json.loads(open(result.submission_path).read())
    assert validate_submission(challenges, sub) == []


def test_an_unknown_model_format_is_a_config_error_before_any_file(tmp_path, challenge_files):
    from arc_ttt.core.config import ConfigError

    c, s, _, _ = challenge_files
    cfg = config(tmp_path, c, s, "model.format=nvrac")
    with pytest.raises(ConfigError, match="model.format: unknown prompt format 'nvrac': choose one of .*nvarc"):
        run(cfg, engine=object(), progress=False)
    assert not (tmp_path / "out").exists()


class EchoSource:
    """A second candidate source that answers each test input with the input itself (as decoded in the first view)."""

    name = "echo"

    def propose(self, task, test_index, views, cfg, deadline, times):
        return [Candidate(task.test[test_index].input, [views[0].key], [-1.0])]


def test_the_log_and_the_journal_name_the_source_of_each_candidate(tmp_path, tiny_model_dir):
    """The model-backed engine with a second source beside the LLM: the records' candidates (log.json, journal)
    say which source proposed each, the echoed input among them, ranked with the LLM's."""
    from arc_ttt.modeling.engine import ModelEngine  # torch: this test runs the real model
    from arc_ttt.modeling.sources import LLMSource

    task = {"train": [{"input": [[1, 0], [0, 1]], "output": [[0, 1], [1, 0]]}], "test": [{"input": [[1, 1], [0, 0]]}]}
    c = tmp_path / "challenges.json"
    c.write_text(json.dumps({"0000echo": task}))
    cfg = load_config(None, [f"data.challenges={c}", f"output.dir={tmp_path / 'out'}", f"model.path={tiny_model_dir}",
                             "budget.seconds=3600", "budget.min_margin_seconds=10", "budget.max_steps=0",
                             "budget.min_steps=0", "inference.decoding=greedy", "inference.n_views=1",
                             "inference.n_score_views=1", "ttt.autocast=\"off\""])
    engine = ModelEngine.load(cfg)
    engine.sources = [LLMSource(engine.model, engine.codec), EchoSource()]
    result = run(cfg, engine=engine, progress=False)
    assert result.records[0].status == "ok"
    logged = json.loads(open(result.log_path).read())["tasks"][0]["candidates"][0]
    journaled = read_journal(str(tmp_path / "out" / "journal.jsonl"))["0000echo"]["candidates"][0]
    for cands in (logged, journaled):
        assert {s for d in cands for s in d["sources"]} == {"llm", "echo"}
        echoed = next(d for d in cands if d["grid"] == [[1, 1], [0, 0]])
        assert "echo" in echoed["sources"] and len(echoed["view_nlls"]) == 1  # re-scored like the LLM's


@pytest.mark.parametrize("sources", [["llm", "grid"], ["grid"]])
def test_the_grid_model_proposes_beside_the_llm_or_alone(tmp_path, tiny_model_dir, grid_model_dir, sources, capsys):
    """`inference.sources` with grid: the engine loads the grid model from inference.grid.path beside the tiny LLM,
    which still re-scores every candidate (alone, grid's are all there is); the submission is valid, and log.json,
    the journal, run.log and the report say which source proposed each candidate."""
    task = {"train": [{"input": [[1, 0], [0, 1]], "output": [[0, 1], [1, 0]]},
                      {"input": [[2, 2], [0, 1]], "output": [[2, 0], [2, 1]]}],
            "test": [{"input": [[1, 1], [0, 0]]}, {"input": [[0, 2], [1, 0]]}]}
    c = tmp_path / "challenges.json"
    c.write_text(json.dumps({"0000grid": task}))
    cfg = load_config(None, [f"data.challenges={c}", f"output.dir={tmp_path / 'out'}", f"model.path={tiny_model_dir}",
                             "budget.seconds=3600", "budget.min_margin_seconds=10", "budget.max_steps=0",
                             "budget.min_steps=0", "inference.decoding=greedy", "inference.n_views=2",
                             "inference.n_score_views=1", "ttt.autocast=\"off\"", f"inference.sources={sources}",
                             f"inference.grid.path={grid_model_dir}", "inference.grid.fit_steps=1"])
    result = run(cfg, progress=False)
    assert result.records[0].status == "ok"
    assert validate_submission(json.loads(c.read_text()), json.loads(open(result.submission_path).read())) == []
    logged = json.loads(open(result.log_path).read())["tasks"][0]["candidates"]
    journaled = read_journal(str(tmp_path / "out" / "journal.jsonl"))["0000grid"]["candidates"]
    for per_test in (*logged, *journaled):
        named = {s for d in per_test for s in d["sources"]}
        assert "grid" in named and named <= set(sources)
        assert all(len(d["view_nlls"]) == 1 for d in per_test)  # the LLM re-scored them all
    assert set(result.records[0].source_seconds) == set(sources)  # each source's proposing, timed apart
    solutions = tmp_path / "solutions.json"
    solutions.write_text(json.dumps({"0000grid": [[[1, 1], [0, 0]], [[0, 2], [1, 0]]]}))
    assert main(["rescore", result.log_path, "--solutions", str(solutions), "--sources", "grid"]) == 0
    assert "(2 test outputs, proposed by grid)" in capsys.readouterr().out  # the grid-alone run, from this one
    found = result.records[0].sources_found()  # e.g. "grid 4, llm 4"
    assert "grid " in found and f"candidate sources: {', '.join(sources)}" in (tmp_path / "out" / "run.log").read_text()
    assert f"| candidates {found}" in (tmp_path / "out" / "run.log").read_text()
    report = open(result.report_path).read()
    labels = set(re.findall(r"attempt [12] · ([a-z+]+)", report))  # who proposed each attempt
    assert f"<td class='l'>{found}</td>" in report and labels and "grid" in "+".join(labels)
    assert labels <= {"+".join(p) for p in itertools.permutations(sources, 2)} | set(sources) | {"fallback"}


def test_a_grid_source_without_a_grid_model_is_a_config_error_before_any_file(tmp_path, challenge_files):
    from arc_ttt.core.config import ConfigError

    c, s, _, _ = challenge_files
    cfg = config(tmp_path, c, s, "inference.sources=[llm, grid]", f"inference.grid.path={tmp_path / 'nothing'}")
    with pytest.raises(ConfigError, match="inference.grid.path: .*nothing holds no grid model"):
        run(cfg, engine=object(), progress=False)
    assert not (tmp_path / "out").exists()
