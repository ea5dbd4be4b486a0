"""The success criterion and summary numbers on hand-made error traces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarlearn.metrics import (
    SuccessCriterion,
    moving_mean,
    moving_sum,
    steps_to_success,
    steps_to_success_all,
    success_confirmed_at,
    summarise_errors,
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
