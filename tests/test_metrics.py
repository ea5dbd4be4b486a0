"""The success criterion and summary numbers on hand-made error traces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarlearn.metrics import (
    SuccessCriterion,
    above_threshold,
    above_threshold_fraction,
    dead_layers,
    dead_units,
    layer_saturation,
    moving_mean,
    moving_sum,
    relapses,
    saturated_steering_fraction,
    settle_span,
    settled,
    settled_step,
    steering_flips_per_1000,
    steering_max,
    steps_to_success,
    steps_to_success_all,
    success_confirmed_at,
    summarise_errors,
    summarise_settling,
)

SMALL = SuccessCriterion(warmup=5, window=3, threshold=0.1, hold=4)


def test_moving_sum_matches_definition() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(moving_sum(x, 2), [1, 3, 5, 7, 9])
    np.testing.assert_allclose(moving_sum(x, 10), np.cumsum(x))
    np.testing.assert_allclose(moving_mean(x, 2), [1, 1.5, 2.5, 3.5, 4.5])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-100, 100), min_size=1, max_size=60),
    st.integers(1, 10),
)
def test_moving_sum_equals_naive(values: list[float], window: int) -> None:
    x = np.array(values)
    naive = [x[max(0, t - window + 1) : t + 1].sum() for t in range(len(x))]
    np.testing.assert_allclose(moving_sum(x, window), naive, atol=1e-9)


def test_moving_sum_population_axis() -> None:
    x = np.arange(12.0).reshape(2, 6)
    np.testing.assert_allclose(moving_sum(x, 3)[1], moving_sum(x[1], 3))


def test_all_zero_trace_succeeds_right_after_warmup() -> None:
    assert steps_to_success(np.zeros(20), SMALL) == 5
    # default criterion: warm-up 200, window 200 -> the first possible start is step 200
    assert steps_to_success(np.zeros(400)) == 200
    assert steps_to_success(np.zeros(399)) is None  # one step short of the 200-step hold


def test_window_must_be_full_before_counting() -> None:
    crit = SuccessCriterion(warmup=0, window=10, threshold=0.1, hold=2)
    assert crit.first_start == 9
    assert steps_to_success(np.zeros(30), crit) == 9


def test_success_starts_once_big_errors_leave_the_window() -> None:
    e = np.zeros(30)
    e[8] = 5.0  # in the window at steps 8, 9, 10
    assert steps_to_success(e, SMALL) == 11


def test_a_break_restarts_the_stretch() -> None:
    e = np.zeros(40)
    e[[10, 20]] = -1.0  # negative errors count by magnitude
    # quiet at 5..9 (5 steps >= hold 4) -> success at 5 already
    assert steps_to_success(e, SMALL) == 5
    crit = SuccessCriterion(warmup=5, window=3, threshold=0.1, hold=8)
    # stretches: 5..9 (5), 13..19 (7), 23..39 (17): the first long enough starts at 23
    assert steps_to_success(e, crit) == 23


def test_threshold_is_strict_and_never_reached() -> None:
    e = np.full(50, 0.25)  # window sum exactly 0.5 (exact in binary)
    assert steps_to_success(e, SuccessCriterion(warmup=0, window=2, threshold=0.5, hold=5)) is None
    assert steps_to_success(e, SuccessCriterion(warmup=0, window=2, threshold=0.51, hold=5)) == 1
    assert steps_to_success(np.full(50, 0.05), SMALL) is None


def test_nan_poisons_the_rest() -> None:
    e = np.zeros(40)
    e[15] = np.nan
    assert steps_to_success(e, SuccessCriterion(warmup=12, window=3, threshold=0.1, hold=5)) is None
    assert steps_to_success(e, SMALL) == 5  # the stretch before the NaN already counted


def test_empty_and_short_traces() -> None:
    assert steps_to_success(np.zeros(0), SMALL) is None
    assert steps_to_success(np.zeros(7), SMALL) is None
    assert steps_to_success(np.zeros(9), SMALL) == 5


def test_population_and_shape_checks() -> None:
    e = np.zeros((3, 20))
    e[1, :] = 1.0
    e[2, 10] = 1.0
    assert steps_to_success_all(e, SMALL) == [5, None, 5]
    with pytest.raises(ValueError):
        steps_to_success(e, SMALL)
    with pytest.raises(ValueError):
        SuccessCriterion(window=0)


def test_confirmed_at() -> None:
    assert success_confirmed_at(5, SMALL) == 8
    assert success_confirmed_at(None, SMALL) is None


def test_summary_numbers() -> None:
    e = np.concatenate([np.full(1000, 2.0), np.full(500, 1.0), np.zeros(1000)])
    off = np.zeros(e.size, bool)
    off[:7] = True
    s = summarise_errors(-e, off)
    assert s["steps"] == 2500
    assert s["mean_abs_error_first_1000"] == 2.0
    assert s["mean_abs_error_last_1000"] == 0.0
    assert s["off_track_steps"] == 7
    assert s["steps_to_success"] == 1699  # window of step 1699 is 1500..1699: all zero
    assert s["final_moving_sum"] == 0.0
    short = summarise_errors(np.array([1.0, -3.0]))
    assert short["mean_abs_error_first_1000"] == short["mean_abs_error_last_1000"] == 2.0
    assert summarise_errors(np.zeros(0))["mean_abs_error"] is None


# ---------------------------------------------------------------------- settling measures
# SMALL: warm-up 5, window 3, threshold 0.1, hold 4 -> first judged step 5.
SETTLE = SuccessCriterion(warmup=5, window=3, threshold=0.1, hold=4, settle_window=10)


def spikes(n: int, at: list[int]) -> np.ndarray:
    """A clean trace with a spike of |e| = 1 at each step in ``at`` (above for 3 steps)."""
    e = np.zeros(n)
    e[at] = 1.0
    return e


def test_above_threshold_flags_the_window_of_a_spike() -> None:
    above = above_threshold(spikes(20, [10]), SETTLE)
    np.testing.assert_array_equal(np.flatnonzero(above), [10, 11, 12])
    # before the first judged step nothing counts, even a big error
    assert not above_threshold(spikes(20, [1]), SETTLE)[:5].any()


def test_settled_step_relapses_and_first_passage() -> None:
    e = spikes(40, [15, 25])  # success from 5 (hold 4), relapses at 15 and 25
    assert steps_to_success(e, SETTLE) == 5
    assert relapses(e, SETTLE) == 2
    assert settled_step(e, SETTLE) == 28  # the last spike leaves the window at 28
    assert above_threshold_fraction(e, SETTLE) == 0.0  # last 10 steps: 30..39
    assert settled(e, SETTLE)


def test_settled_step_is_none_when_above_at_the_end() -> None:
    e = spikes(30, [29])
    assert settled_step(e, SETTLE) is None
    assert not settled(e, SETTLE)
    assert above_threshold_fraction(e, SETTLE) == pytest.approx(0.1)
    # NaN never counts as below
    e = np.zeros(30)
    e[20] = np.nan
    assert settled_step(e, SETTLE) is None and relapses(e, SETTLE) == 1


def test_never_successful_run_has_no_relapses_but_may_settle_late() -> None:
    e = np.ones(30)
    assert relapses(e, SETTLE) is None and settled_step(e, SETTLE) is None
    e[27:] = 0.0  # clean only in the last 1 step after the window empties (29)
    assert settled_step(e, SETTLE) == 29 and not settled(e, SETTLE)


def test_settling_window_is_clipped_to_the_judged_steps() -> None:
    assert settle_span(40, SETTLE) == 10
    assert settle_span(12, SETTLE) == 7  # steps 5..11
    assert settle_span(5, SETTLE) == 0 and settle_span(0, SETTLE) == 0
    assert above_threshold_fraction(np.zeros(5), SETTLE) is None
    assert not settled(np.zeros(5), SETTLE)  # nothing judged: not settled
    assert settled(np.zeros(6), SETTLE)  # one judged step, clean
    # the default window is 5,000
    assert SuccessCriterion().settle_window == 5000
    with pytest.raises(ValueError, match="settle_window"):
        SuccessCriterion(settle_window=0)


def test_settling_measures_are_population_aware() -> None:
    pop = np.stack([spikes(40, [15, 25]), spikes(40, [39]), np.ones(40)])
    assert settled_step(pop, SETTLE) == [28, None, None]
    assert relapses(pop, SETTLE) == [2, 1, None]  # the spike at 39 is a relapse too
    assert settled(pop, SETTLE) == [True, False, False]
    assert above_threshold_fraction(pop, SETTLE) == pytest.approx([0.0, 0.1, 1.0])
    for row, want in zip(pop, settled_step(pop, SETTLE), strict=True):
        assert settled_step(row, SETTLE) == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.0, 0.0, 1.0]), min_size=1, max_size=50))
def test_settled_step_matches_its_definition(values: list[float]) -> None:
    e = np.array(values)
    above = above_threshold(e, SETTLE)
    got = settled_step(e, SETTLE)
    starts = [
        s for s in range(SETTLE.first_start, e.size) if not above[s:].any()
    ]  # every step from which the rest is clean
    assert got == (starts[0] if starts else None)
    if settled(e, SETTLE):
        assert got is not None and got <= e.size - settle_span(e.size, SETTLE)


def test_steering_flips_count_sign_changes_per_1000_steps() -> None:
    y = np.array([0.5, -0.5, 0.5, 0.0, 0.2, -1.0, -1.0, 0.0, 0.0, 0.3])
    # signs without zeros: + - + + - - + -> 4 changes over 9 transitions
    assert steering_flips_per_1000(y) == pytest.approx(4000 / 9)
    assert steering_flips_per_1000(np.zeros(100)) == 0.0  # the reflex alone never flips
    assert steering_flips_per_1000(np.ones(1)) is None
    # over the last 4 steps only: -1, 0, 0, 0.3 -> one flip over 3 transitions
    assert steering_flips_per_1000(y, span=4) == pytest.approx(1000 / 3)
    graded = np.sin(np.linspace(0, 4 * np.pi, 2001))  # two periods: 4 crossings
    assert steering_flips_per_1000(graded) == pytest.approx(4 * 1000 / 2000, abs=1)
    assert steering_flips_per_1000(np.stack([y, -y])) == pytest.approx([4000 / 9] * 2)


def test_saturated_steering_against_the_readout_bound() -> None:
    y_max = steering_max([1.0, 2.0], "logistic")
    assert y_max == pytest.approx(1.5)
    assert steering_max([1.0, -2.0], "tanh") == pytest.approx(3.0)
    assert steering_max([1.0, 2.0], "linear") is None
    y = np.array([1.5, -1.4, 1.3, 0.1, -1.36])  # |y| > 1.35: 1.5, 1.4, 1.36
    assert saturated_steering_fraction(y, y_max) == pytest.approx(3 / 5)
    assert saturated_steering_fraction(y, y_max, span=2) == pytest.approx(1 / 2)
    assert saturated_steering_fraction(y, None) is None


def test_layer_saturation_uses_the_slope_relative_to_its_peak() -> None:
    # logistic: f'(0) = 1/4, saturated below 0.0025
    slopes = [np.array([[0.25, 0.001, 0.0, 0.0024]]), np.array([[0.1, 0.2]])]
    np.testing.assert_allclose(layer_saturation(slopes, 0.25), [[0.75, 0.0]])
    with pytest.raises(ValueError):
        layer_saturation([], 0.25)


def test_dead_units_and_dead_layers() -> None:
    sat = np.zeros((50, 3))
    sat[:, 0] = 1.0  # layer 0 saturated throughout
    sat[:, 1] = 0.5
    sat[-5, 1] = 0.2  # one step with fewer saturated units
    sat[:40, 2] = 1.0  # layer 2 dead early, revived in the last 10 steps
    assert dead_units(sat, span=10) == pytest.approx([1.0, 0.2, 0.0])
    assert dead_units(sat, span=3) == pytest.approx([1.0, 0.5, 0.0])
    assert dead_layers(dead_units(sat, span=10)) == 1
    assert dead_units(np.stack([sat, 1 - sat]), span=10)[1] == pytest.approx([0.0, 0.5, 1.0])
    assert dead_units(np.zeros((0, 2))) is None and dead_layers(None) is None
    with pytest.raises(ValueError):
        dead_units(np.zeros(5))


def test_summarise_settling_keys_and_reflex_case() -> None:
    e = spikes(40, [15, 25])
    y = np.where(np.arange(40) % 2, 1.5, -1.5)
    sat = np.ones((40, 2))
    s = summarise_settling(e, y, sat, SETTLE, y_max=1.5)
    assert s == {
        "settled_step": 28,
        "settled": True,
        "settle_window": 10,
        "above_threshold_fraction": 0.0,
        "relapses": 2,
        "steering_flips_per_1000": pytest.approx(1000.0),
        "saturated_steering_fraction": 1.0,
        "dead_units": [1.0, 1.0],
        "dead_layers": 2,
    }
    reflex = summarise_settling(np.ones(40), None, np.zeros((40, 0)), SETTLE)
    assert reflex["steering_flips_per_1000"] == 0.0
    assert reflex["saturated_steering_fraction"] is None and reflex["dead_units"] is None
    with pytest.raises(ValueError):
        summarise_settling(e, np.zeros(3))
