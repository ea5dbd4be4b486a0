"""Activation functions: values, slopes from outputs, numerical stability, lookup."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sarlearn.config import ConfigError
from sarlearn.stages.network.activations import ACTIVATIONS, get_activation

H = np.linspace(-8, 8, 161)


def test_shifted_logistic_matches_its_definition() -> None:
    f = get_activation("logistic")
    np.testing.assert_allclose(f.f(H), 1 / (1 + np.exp(-H)) - 0.5, rtol=0, atol=1e-15)
    assert f.f(np.zeros(1))[0] == 0.0


def test_tanh_and_linear_values() -> None:
    np.testing.assert_array_equal(get_activation("tanh").f(H), np.tanh(H))
    np.testing.assert_array_equal(get_activation("linear").f(H), H)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_slope_from_output_is_the_derivative(name: str) -> None:
    act = get_activation(name)
    eps = 1e-6
    numeric = (act.f(H + eps) - act.f(H - eps)) / (2 * eps)
    np.testing.assert_allclose(act.slope(act.f(H)), numeric, rtol=1e-7, atol=1e-9)
    assert act.slope(act.f(np.zeros(1)))[0] == act.slope_at_zero


def test_logistic_slope_formula() -> None:
    act = get_activation("logistic")
    f = act.f(H)
    np.testing.assert_array_equal(act.slope(f), (0.5 + f) * (0.5 - f))
    assert act.slope_at_zero == 0.25


@pytest.mark.parametrize("name", ["logistic", "tanh"])
def test_saturating_activations_are_stable_for_huge_inputs(name: str) -> None:
    act = get_activation(name)
    h = np.array([-1e308, -1e4, -745.0, 745.0, 1e4, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = act.f(h)
        s = act.slope(f)
    assert np.all(np.isfinite(f)) and np.all(np.isfinite(s))
    bound = 0.5 if name == "logistic" else 1.0
    np.testing.assert_array_equal(np.abs(f), bound)
    np.testing.assert_array_equal(s, 0.0)  # exact zero slope when saturated


def test_out_argument_is_used_and_dtype_kept() -> None:
    act = get_activation("logistic")
    h = H.astype(np.float32)
    out = np.empty_like(h)
    res = act.f(h, out=out)
    assert res is out and res.dtype == np.float32
    assert act.slope(res).dtype == np.float32


def test_unknown_activation_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"relu.*known: linear, logistic, tanh"):
        get_activation("relu")


def test_activation_object_passes_through() -> None:
    act = get_activation("tanh")
    assert get_activation(act) is act
    np.testing.assert_array_equal(act(H), np.tanh(H))
