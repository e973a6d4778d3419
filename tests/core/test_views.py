import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from arc_ttt.core.views import IDENTITY, View, ViewPlan, d8, d8_inverse, sample_views
from arc_ttt.core.tasks import Pair, Task

grids = st.tuples(st.integers(1, 30), st.integers(1, 30)).flatmap(
    lambda hw: arrays(np.uint8, hw, elements=st.integers(0, 9)))
colour_perms = st.permutations(list(range(10))).map(tuple)
views = st.builds(View, d8=st.integers(0, 7), colors=colour_perms)


@settings(max_examples=300, deadline=None)
@given(view=views, grid=grids)
def test_invert_apply_is_identity_for_every_view(view, grid):
    out = view.apply_grid(grid)
    back = view.invert(out)
    assert back.dtype == grid.dtype
    np.testing.assert_array_equal(back, grid)


@given(grid=grids)
def test_d8_gives_eight_distinct_maps_on_asymmetric_grid(grid):
    for k in range(8):
        np.testing.assert_array_equal(d8_inverse(d8(grid, k), k), grid)


def test_d8_elements_are_distinct():
    g = np.arange(6, dtype=np.uint8).reshape(2, 3)
    images = {d8(g, k).tobytes() + bytes(d8(g, k).shape) for k in range(8)}
    assert len(images) == 8


@settings(max_examples=100, deadline=None)
@given(view=views, pairs=st.lists(st.tuples(grids, grids), min_size=1, max_size=4), data=st.data())
def test_view_maps_each_train_pair_consistently(view, pairs, data):
    order = tuple(data.draw(st.permutations(list(range(len(pairs))))))
    view = View(view.d8, view.colors, order)
    task = Task("t", tuple(Pair(a, b) for a, b in pairs), (Pair(pairs[0][0]),))
    out = view.apply(task)
    for new_pos, old_pos in enumerate(order):
        src, dst = task.train[old_pos], out.train[new_pos]
        np.testing.assert_array_equal(dst.input, view.apply_grid(src.input))
        np.testing.assert_array_equal(dst.output, view.apply_grid(src.output))
        np.testing.assert_array_equal(view.invert(dst.output), src.output)
    np.testing.assert_array_equal(view.invert(out.test[0].input), task.test[0].input)
    assert out.test[0].output is None


@given(view=views)
def test_key_round_trips(view):
    assert View.from_key(view.key) == view


def test_identity_key_and_order_key():
    assert IDENTITY.key == "id"
    v = View(3, tuple(range(10)), (2, 0, 1))
    assert v.key == "d3.o2-0-1"
    assert View.from_key(v.key) == v


def test_bad_views_are_rejected():
    with pytest.raises(ValueError):
        View(8)
    with pytest.raises(ValueError):
        View(0, (0,) * 10)


def test_sample_views_deterministic_distinct_and_stratified(small_tasks):
    task = small_tasks[0]
    a = sample_views(task, 16, seed=1)
    b = sample_views(task, 16, seed=1)
    c = sample_views(task, 16, seed=2)
    assert [v.key for v in a] == [v.key for v in b]
    assert [v.key for v in a] != [v.key for v in c]
    assert len({v.key for v in a}) == 16
    assert a[0] == IDENTITY
    assert sorted(v.d8 for v in a[:8]) == list(range(8))


def test_sample_views_keep_background_and_options(small_tasks):
    task = small_tasks[1]
    vs = sample_views(task, 8, seed=0, keep_background=True)
    assert all(v.colors[0] == 0 for v in vs)
    vs = sample_views(task, 8, seed=0, colors=False, shuffle_examples=False)
    assert all(v.colors == tuple(range(10)) and v.order is None for v in vs)
    assert len(vs) == 8
    assert len(sample_views(task, 20, seed=0, colors=False, shuffle_examples=False)) == 8  # only 8 exist


def test_the_plan_gives_each_use_its_own_stream(small_tasks):
    """One plan, four uses: generation starts at the identity, scoring and TTT draw other views, fine-tuning
    sample k one view of its own; all fixed by (task, seed), and the augmentation options reach every use."""
    task = small_tasks[0]
    plan = ViewPlan(seed=3)
    gen, score, ttt = plan.generation(task, 8), plan.scoring(task, 8), plan.ttt(task, 8)
    assert gen[0] == IDENTITY and IDENTITY not in ttt
    assert [v.key for v in gen] != [v.key for v in score] != [v.key for v in ttt]
    assert plan.generation(task, 8) == gen and ViewPlan(seed=4).generation(task, 8) != gen
    assert plan.inference(task, 8, 8) == [*gen, *score]
    avoided = plan.ttt(task, 8, avoid=gen + score)
    assert not {v.effect(task) for v in avoided} & {v.effect(task) for v in gen + score}
    samples = [plan.sample(task, k) for k in range(16)]
    assert len({v.d8 for v in samples}) > 1 and samples == [plan.sample(task, k) for k in range(16)]
    assert plan.fixed(task, 8) == gen
    fixed_order = ViewPlan(seed=3, shuffle_examples=False, keep_background=False)
    assert all(v.order is None for v in fixed_order.generation(task, 8) + fixed_order.ttt(task, 8))
    assert any(v.colors[0] != 0 for v in fixed_order.scoring(task, 8))  # background free to move


def test_a_config_names_its_plan():
    from arc_ttt.core.config import RunConfig, ViewsConfig  # the config module is not what this file tests

    assert ViewPlan.of(ViewsConfig(keep_background=False), 7) == ViewPlan(seed=7, keep_background=False)
    assert ViewPlan.of(RunConfig().views, RunConfig().seed) == ViewPlan(seed=RunConfig().seed)
