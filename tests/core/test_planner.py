import numpy as np
import pytest

from arc_ttt.core.planner import BudgetConfig, Planner, TaskCost, difficulty_weights
from arc_ttt.core.clock import FakeClock


def costs(n, tokens=1000, answer=100):
    return [TaskCost(f"t{i}", tokens, tokens, answer) for i in range(n)]


def planner(cfg, tasks, clock=None, views=8, infer_batch=1):
    return Planner(cfg, tasks, start=0.0, clock=clock or FakeClock(), default_views=views, infer_batch=infer_batch)


def test_deadline_keeps_the_safety_margin():
    p = planner(BudgetConfig(seconds=1000, safety_margin=0.1, min_margin_seconds=30), costs(1))
    assert p.deadline == 900
    p = planner(BudgetConfig(seconds=100, safety_margin=0.1, min_margin_seconds=30), costs(1))
    assert p.deadline == 70


def measured(p):
    """As if a task had run exactly as the priors predict."""
    for cal in (p.train, p.prefill, p.decode):
        cal.add(1.0, 1.0)


def test_plenty_of_time_gives_max_steps_and_all_views():
    p = planner(BudgetConfig(seconds=1e6, adaptive=False, max_steps=48), costs(3))
    plan = p.plan("t0")
    assert (plan.mode, plan.steps, plan.views) == ("full", 48, 8)
    assert plan.train_cap > 0 and plan.infer_reserve > 0


@pytest.mark.parametrize("headroom", [0.0, 0.2])
def test_plan_fits_the_remaining_tasks_and_splits_evenly(headroom):
    """Steps are planned into the time left less the headroom (budget.headroom / sqrt(tasks left)); the headroom is
    the task's to overrun into."""
    cfg = BudgetConfig(seconds=600, safety_margin=0, min_margin_seconds=0, adaptive=False, max_steps=1000,
                       task_overhead_seconds=0, headroom=headroom)
    p = planner(cfg, costs(10))
    plan = p.plan("t0")
    planned = 600 * (1 - headroom / 10 ** 0.5)
    expected_total = 10 * (p.train_seconds(p.tasks[0], plan.steps) + p.infer_seconds(p.tasks[0], plan.views))
    assert expected_total <= planned
    assert 10 * (p.train_seconds(p.tasks[0], plan.steps + 1) + p.infer_seconds(p.tasks[0], 8)) > planned
    own = p.train_seconds(p.tasks[0], plan.steps) + p.infer_seconds(p.tasks[0], plan.views)
    step = p.train_seconds(p.tasks[0], 1)  # the others are reserved at the unrounded step scale
    assert 600 - 9 * (own + step) <= plan.task_cap <= 600 - 9 * own + 1e-6  # the others' plans reserved, the rest its


@pytest.mark.parametrize("seconds, mode", [(600, "full"), (20, "fewer_views"), (8, "no_ttt"), (1, "fallback")])
def test_degrades_in_order_as_time_shrinks(seconds, mode):
    cfg = BudgetConfig(seconds=seconds, safety_margin=0, min_margin_seconds=0, adaptive=False,
                       task_overhead_seconds=0, min_steps=4)
    # per task: a step costs 0.2 s, a view 0.22 s
    p = planner(cfg, costs(10))
    measured(p)
    assert p.plan("t0").mode == mode


def test_batched_decoding_makes_views_cheaper():
    one = planner(BudgetConfig(), costs(1), infer_batch=1)
    eight = planner(BudgetConfig(), costs(1), infer_batch=8)
    t = one.tasks[0]
    assert eight.infer_seconds(t, 8) < one.infer_seconds(t, 8)
    assert eight.infer_seconds(t, 1) == one.infer_seconds(t, 1)
    assert eight.infer_seconds(t, 9) > eight.infer_seconds(t, 8)  # a second batch


def test_fallback_once_the_deadline_has_passed():
    clock = FakeClock()
    p = planner(BudgetConfig(seconds=100, min_margin_seconds=0, safety_margin=0), costs(2), clock)
    clock.advance(101)
    plan = p.plan("t0")
    assert plan.mode == "fallback" and plan.task_cap == 0


def test_caps_never_exceed_time_left_or_task_cap():
    clock = FakeClock()
    cfg = BudgetConfig(seconds=1000, safety_margin=0, min_margin_seconds=0, max_task_seconds=20, adaptive=False)
    p = planner(cfg, costs(2, tokens=5000), clock)
    plan = p.plan("t0")
    assert plan.task_cap <= 20 + 1e-9
    assert p.train_seconds(p.tasks[0], plan.steps) + p.infer_seconds(p.tasks[0], plan.views) <= 20


def test_measured_slowness_lowers_later_plans():
    clock = FakeClock()
    cfg = BudgetConfig(seconds=2000, safety_margin=0, min_margin_seconds=0, adaptive=False, max_steps=10_000)
    p = planner(cfg, costs(4), clock)
    first = p.plan("t0")
    predicted = p.train_seconds(p.tasks[0], first.steps)
    clock.advance(3 * predicted)  # the hardware is 3x slower than the prior
    p.record("t0", first, train_seconds=3 * predicted, steps_done=first.steps, infer_seconds=0, views_done=0)
    assert p.train.factor == pytest.approx(3.0)
    second = p.plan("t1")
    assert second.steps < first.steps


def test_adaptive_gives_more_steps_to_harder_tasks():
    tasks = [TaskCost("easy", 1000, 1000, 50, difficulty=0.2), TaskCost("hard", 1000, 1000, 50, difficulty=1.8)]
    cfg = BudgetConfig(seconds=300, safety_margin=0, min_margin_seconds=0, adaptive=True, max_steps=10_000)
    p = planner(cfg, tasks)
    assert p.weights["hard"] > p.weights["easy"]
    assert p.plan("hard").steps > p.plan("easy").steps
    uniform = planner(BudgetConfig(seconds=300, safety_margin=0, min_margin_seconds=0, adaptive=False,
                                   max_steps=10_000), tasks)
    assert uniform.plan("hard").steps == uniform.plan("easy").steps


def test_difficulty_weights_are_clipped_and_mean_one():
    w = difficulty_weights({"a": 0.01, "b": 1.0, "c": 100.0, "d": None}, 0.25, 2.0)
    known = [w["a"], w["b"], w["c"]]
    assert np.mean(known) == pytest.approx(1.0)
    assert w["d"] == 1.0 and w["a"] < w["b"] < w["c"]
    assert difficulty_weights({"a": None}, 0.25, 2.0) == {"a": 1.0}


def test_an_unmeasured_estimate_never_gives_up_a_task_without_trying():
    clock = FakeClock()
    cfg = BudgetConfig(seconds=100, safety_margin=0, min_margin_seconds=0, adaptive=False, min_steps=2, min_views=2)
    p = planner(cfg, costs(4), clock)
    p.calibrate_forward(seconds=0.1, tokens=100)  # a slow (noisy) forward pass: 50x the prior
    plan = p.plan("t0")
    assert plan.mode == "probe" and plan.steps == 2 and plan.views == 2
    assert plan.task_cap == pytest.approx(100 / 4)  # at most the fair share
    p.record("t0", plan, train_seconds=1.0, steps_done=2, infer_seconds=1.0, views_done=2)
    assert p.train.samples == 1 and p.prefill.samples == 1 and p.decode.samples == 1
    assert p.plan("t1").mode != "probe"  # measured now: the estimates are trusted again


def test_fewer_configured_views_than_min_views_still_trains():
    """inference.n_views=1 with budget.min_views=2 (configs/local.yaml's): TTT is still planned."""
    cfg = BudgetConfig(seconds=600, safety_margin=0, min_margin_seconds=0, adaptive=False, min_views=2)
    p = Planner(cfg, costs(3), start=0.0, clock=FakeClock(), default_views=1)
    plans = []
    for t in ("t0", "t1", "t2"):
        plan = p.plan(t)
        plans.append((plan.mode, plan.views))
        p.record(t, plan, train_seconds=1.0, steps_done=plan.steps, infer_seconds=1.0, views_done=plan.views)
    assert plans == [("full", 1)] * 3


def test_the_cost_model_calibrates_prefill_decoding_and_rescoring_each_on_its_own():
    """A decoder 10x slower than its prior and a prefill at its prior: with the log's split, fewer views save
    prefill time only, and re-scoring (unknown to the priors) is reserved once a task has shown it."""
    cfg = BudgetConfig(seconds=1e6, adaptive=False, prefill_seconds_per_token=1e-3, decode_seconds_per_token=1e-2)
    t = TaskCost("t0", 1000, 500, 50)
    p = Planner(cfg, [t, TaskCost("t1", 1000, 500, 50)], start=0.0, clock=FakeClock(), default_views=8,
                infer_batch=8, score_views=4)
    prefill8, decode8, rescore8 = p.infer_priors(t, 8)
    assert (prefill8, decode8, rescore8) == pytest.approx((8 * 500e-3, 50e-2, 4 * 550e-3))
    assert p.infer_seconds(t, 8) == pytest.approx(prefill8 + decode8)  # nothing measured: priors, no rescoring
    p.record("t0", p.plan("t0"), train_seconds=0.0, steps_done=0, infer_seconds=prefill8 + 10 * decode8 + 3.0,
             views_done=8, prefill_seconds=prefill8, decode_seconds=10 * decode8, rescore_seconds=3.0)
    assert (p.prefill.factor, p.decode.factor) == pytest.approx((1.0, 10.0))
    assert p.rescore.factor == pytest.approx(3.0 / rescore8)
    prefill4, decode4, _ = p.infer_priors(t, 4)  # 4 views: half the prefill, the same single decoding batch
    assert p.infer_seconds(t, 4) == pytest.approx(prefill4 + 10 * decode4 + 3.0)
    assert p.infer_seconds(t, 4) == pytest.approx(2.0 + 5.0 + 3.0)


def test_an_engine_that_does_not_split_inference_gets_one_factor_for_all_of_it():
    cfg = BudgetConfig(seconds=1e6, adaptive=False)
    t = costs(2)[0]
    p = planner(cfg, costs(2), views=8, infer_batch=8)
    before = p.infer_seconds(t, 8)
    p.record("t0", p.plan("t0"), train_seconds=0.0, steps_done=0, infer_seconds=3 * before, views_done=8)
    assert (p.prefill.factor, p.decode.factor) == pytest.approx((3.0, 3.0)) and p.rescore.samples == 0
    assert p.infer_seconds(t, 8) == pytest.approx(3 * before)


def test_long_tasks_get_their_own_step_cap():
    """budget.max_steps_long: a task whose prompt and answer reach long_tokens may train past max_steps; the others
    keep max_steps, and a binding budget still fits every task's plan."""
    tasks = [TaskCost("short", 400, 300, 100), TaskCost("long", 1200, 1000, 200)]
    cfg = dict(safety_margin=0, min_margin_seconds=0, adaptive=False, task_overhead_seconds=0, headroom=0.0,
               max_steps=16, max_steps_long=32, long_tokens=1000)
    p = planner(BudgetConfig(seconds=1e6, **cfg), tasks)
    assert [p.step_cap(t) for t in tasks] == [16, 32]
    assert (p.plan("short").steps, p.plan("long").steps) == (16, 32)
    p = planner(BudgetConfig(seconds=1e6, **{**cfg, "max_steps_long": None}), tasks)
    assert p.plan("long").steps == 16  # unset: one cap for all
    # binding: both tasks' planned seconds fit the budget, and the long one still trains more
    p = planner(BudgetConfig(seconds=60, **cfg), tasks)
    measured(p)
    short, long = p.plan("short"), p.plan("long")
    spent = sum(p.train_seconds(t, plan.steps) + p.infer_seconds(t, plan.views)
                for t, plan in zip(tasks, (short, long)))
    assert spent <= 60 and 0 < short.steps <= 16 and long.steps >= short.steps


def run_as_planned(p, clock, ids):
    """Each task takes exactly what its plan predicts (the priors are right); the plans, in order."""
    plans = []
    for task_id in ids:
        plan = p.plan(task_id)
        t = next(x for x in p.tasks if x.id == task_id)
        train = p.train_seconds(t, plan.steps)
        infer = p.infer_seconds(t, plan.views) if plan.views else 0.0
        clock.advance(train + infer)
        p.record(task_id, plan, train_seconds=train, steps_done=plan.steps, infer_seconds=infer, views_done=plan.views)
        plans.append(plan)
    return plans


@pytest.mark.parametrize("seconds", [1e6, 45, 35, 25])
def test_min_steps_equal_to_max_steps_trains_exactly_that_many_or_none(seconds):
    """budget.min_steps = max_steps (NVARC's fixed 128, 64 for the PoE recipe): whatever the time, a task trains that
    many steps or none (views are cut first, then TTT), never a fraction; with time to spare every task trains it."""
    cfg = BudgetConfig(seconds=seconds, safety_margin=0, min_margin_seconds=0, adaptive=False, policy="uniform",
                       task_overhead_seconds=0, min_steps=16, max_steps=16)
    clock = FakeClock()
    plans = run_as_planned(planner(cfg, costs(10), clock), clock, [f"t{i}" for i in range(10)])
    assert {p.steps for p in plans} <= {0, 16}
    assert all((p.steps == 0) == (p.mode in ("no_ttt", "fallback")) for p in plans)
    if seconds == 1e6:
        assert [(p.mode, p.steps, p.views) for p in plans] == [("full", 16, 8)] * 10
    if seconds == 25:  # per task 16 steps cost 3.2 s and 8 views 1.8 s: not every task can train
        assert {p.steps for p in plans} == {0, 16}
