"""core.clock: the fake clock moves only by simulated work, a deadline and its shares, a training cap."""
import time

from arc_ttt.core.clock import Deadline, FakeClock, TrainCap
from arc_ttt.core.policy import GATE_STEPS


def test_a_fake_clock_moves_only_when_advanced():
    clock = FakeClock()
    assert [clock() for _ in range(5)] == [0.0] * 5  # reading costs nothing
    clock.advance(2.5)
    clock.advance(0.5)
    assert clock() == 3.0
    assert FakeClock(100.0)() == 100.0


def test_a_deadline_passes_at_its_time_and_remembers_it_was_found_passed():
    clock = FakeClock()
    d = Deadline(clock, 10.0)
    clock.advance(9.9)
    assert not d.passed() and not d.hit
    clock.advance(0.1)
    assert not d.hit  # nobody has looked yet
    assert d.passed() and d.hit
    clock.advance(100.0)
    assert d.passed()


def test_a_deadline_without_a_time_never_passes():
    clock = FakeClock()
    d = Deadline(clock)
    clock.advance(1e12)
    assert not d.passed() and not d.hit
    assert not Deadline().passed()  # the real clock by default
    assert Deadline().clock is time.monotonic


def test_a_share_is_an_equal_part_of_the_time_left_with_its_own_hit():
    clock = FakeClock()
    d = Deadline(clock, 12.0)
    clock.advance(3.0)
    first = d.share(3)
    assert first.clock is clock and first.at == 3.0 + 9.0 / 3
    clock.advance(3.0)
    assert first.passed() and not d.passed()  # the share is spent, the deadline is not
    assert not d.hit
    second = d.share(2)
    assert second.at == 6.0 + 6.0 / 2 and not second.hit
    assert d.share(1).at == 12.0  # the last share: all that is left
    assert d.share(0).at == 12.0  # no parts: taken as one


def test_a_share_of_a_passed_deadline_has_passed_and_a_share_of_none_is_none():
    clock = FakeClock()
    late = Deadline(clock, 5.0)
    clock.advance(8.0)
    assert late.share(4).at == 8.0 and late.share(4).passed()
    assert Deadline(clock).share(4).at is None


def test_a_train_cap_of_seconds():
    cap = TrainCap(50.0)
    assert TrainCap.of(50) == cap and TrainCap.of(50.0) == cap
    assert TrainCap.of(cap) is cap and TrainCap.of(None) is None
    assert not cap.reached(0.0, 0) and not cap.reached(49.9, 1) and cap.reached(50.0, 10)


def test_a_train_cap_comes_sooner_by_the_inference_reserve_times_the_slowdown():
    cap = TrainCap(seconds=50.0, infer_reserve=10.0, step_seconds=1.0)
    assert not cap.reached(0.0, 0)
    assert not cap.reached(49.0, 49) and cap.reached(50.0, 50)  # on plan: while the next step ends in time
    assert not cap.reached(38.0, 19) and cap.reached(40.0, 20)  # 2x slow: inference needs 10 s more, from 40 s
    assert not cap.reached(16.0, 4) and cap.reached(20.0, 5)  # 4x slow: 30 s more, the step 16-20 s is the last
    assert not cap.reached(30.0, 60) and cap.reached(49.75, 99)  # faster than planned: never sooner, never later


def test_a_train_cap_asks_its_gate_once_after_the_gate_steps():
    assert GATE_STEPS == 2
    assert not TrainCap(50.0).reached(10.0, 2, [0.0, 0.0])  # no gate: the losses do not matter
    stop = TrainCap(50.0, gate=lambda losses: losses[1] < 0.1)
    assert stop.reached(10.0, 2, [0.5, 0.05]) and not stop.reached(10.0, 2, [0.5, 0.5])
    assert not stop.reached(10.0, 3, [0.5, 0.05, 0.01])  # only after 2 steps
    assert not stop.reached(10.0, 2, [0.05])  # not without both losses


def test_training_on_a_fake_clock_stops_at_its_cap():
    """The loop every trainer runs (modeling.ttt.train, lab.simulate): check between steps, a step is work."""
    clock, cap = FakeClock(), TrainCap(10.0, infer_reserve=4.0, step_seconds=1.0)
    start, steps = clock(), 0
    while not cap.reached(clock() - start, steps):
        clock.advance(2.0)  # steps run at half the planned pace: inference needs 4 s more, so stop by 6 s
        steps += 1
    assert (steps, clock()) == (3, 6.0)
