"""Filter banks: impulse responses, DC gain, peaks, delays, layout, state."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import ConfigError, FilterConfig
from sarlearn.errors import NonFiniteError, ShapeError
from sarlearn.stages.filters.bank import (
    DelayLineBank,
    ResonatorBank,
    ico_frequency,
    ico_peak,
    make_filter_bank,
)


def test_default_bank_is_the_simulations() -> None:
    bank = make_filter_bank(FilterConfig(), n_predictors=144, population=2)
    assert isinstance(bank, ResonatorBank) and bank.kind == "resonator"
    assert bank.n_filters == 5 and bank.n_outputs == 720
    np.testing.assert_allclose(bank.frequencies, np.linspace(0.1, 1 / 3, 5))
    assert bank.filter(np.zeros((2, 144))).shape == (2, 720)


@pytest.mark.parametrize("q", [0.3, 0.51, 2.0])
def test_resonators_have_unit_dc_gain(q: float) -> None:
    bank = ResonatorBank(1, q=q)
    np.testing.assert_allclose(bank.impulse_response(400).sum(axis=1), 1.0, rtol=1e-12)
    for _ in range(300):
        y = bank.filter(np.full((1, 1), 0.7))
    np.testing.assert_allclose(y, 0.7, rtol=1e-12)


def test_default_resonators_smooth_more_than_they_delay() -> None:
    bank = ResonatorBank(1)
    np.testing.assert_array_equal(bank.peaks, [1, 0, 0, 0, 0])
    ir = bank.impulse_response(50)
    assert np.all(ir[:, 0] > 0)  # responds at once
    assert np.all(ir >= -1e-3)  # q = 0.51: barely any undershoot


@pytest.mark.parametrize("q", [0.51, 1.0, 3.0])
def test_ico_filters_peak_where_configured(q: float) -> None:
    f_first, f_last = ico_frequency(np.array([12.0, 3.0]), q)
    bank = ResonatorBank(1, f_min=f_first, f_max=f_last, q=q, kind="ico")
    assert bank.peaks[0] in (11, 12, 13) and bank.peaks[-1] in (2, 3, 4)
    expected = ico_peak(bank.frequencies, q)
    for peak, t in zip(bank.peaks, expected, strict=True):
        assert np.floor(t) <= peak <= np.ceil(t)
    ir = bank.impulse_response(3000)  # long enough for q = 3 to ring out
    np.testing.assert_array_equal(ir[:, 0], 0.0)  # h(0) = sin(0) = 0: a delay, not a smoother
    np.testing.assert_allclose(ir.sum(axis=1), 1.0, rtol=1e-9)


def test_ico_impulse_response_is_the_damped_sine() -> None:
    f, q = 0.05, 0.8
    bank = ResonatorBank(1, n_filters=1, f_min=f, f_max=f, q=q, kind="ico")
    a = -np.pi * f / q
    b = np.sqrt((2 * np.pi * f) ** 2 - a**2)
    t = np.arange(300)
    h = np.exp(a * t) * np.sin(b * t)
    np.testing.assert_allclose(bank.impulse_response(300)[0], h / h.sum(), atol=1e-12)


def test_ico_frequency_inverts_ico_peak() -> None:
    peaks = np.array([1.5, 4.0, 10.0])
    np.testing.assert_allclose(ico_peak(ico_frequency(peaks, 0.7), 0.7), peaks)


def test_ico_needs_oscillatory_poles() -> None:
    with pytest.raises(ConfigError, match=r"q > 0\.5"):
        make_filter_bank(FilterConfig(kind="ico", q=0.5), n_predictors=3)


def test_delay_line_taps_are_exact() -> None:
    bank = make_filter_bank(FilterConfig(kind="delay"), n_predictors=2)
    assert isinstance(bank, DelayLineBank)
    np.testing.assert_array_equal(bank.impulse_response(8), np.eye(5, 8))
    np.testing.assert_array_equal(bank.peaks, [0, 1, 2, 3, 4])
    signal = np.random.default_rng(0).normal(size=(20, 1, 2))
    outs = np.array([bank.filter(x) for x in signal])  # (20, 1, 10)
    for k in range(5):
        np.testing.assert_array_equal(outs[k:, 0, k], signal[: 20 - k, 0, 0])  # predictor 0
        np.testing.assert_array_equal(outs[k:, 0, 5 + k], signal[: 20 - k, 0, 1])


@pytest.mark.parametrize("kind", ["resonator", "ico", "delay"])
def test_population_and_predictors_are_independent_channels(kind: str) -> None:
    cfg = FilterConfig(kind=kind, n_filters=3)
    signal = np.random.default_rng(1).normal(size=(15, 2, 4))  # (T, P, n_predictors)
    bank = make_filter_bank(cfg, n_predictors=4, population=2)
    together = np.array([bank.filter(x) for x in signal])  # (T, P, 4 * 3)
    for p in range(2):
        for i in range(4):
            single = make_filter_bank(cfg, n_predictors=1, population=1)
            alone = np.array([single.filter(x[p : p + 1, i : i + 1]) for x in signal])
            # predictor-major layout: predictor i's filters are columns 3i .. 3i + 2
            np.testing.assert_allclose(together[:, p, 3 * i : 3 * i + 3], alone[:, 0], rtol=1e-14)


@pytest.mark.parametrize("kind", ["resonator", "ico", "delay"])
def test_reset_and_state_dict(kind: str) -> None:
    cfg = FilterConfig(kind=kind)
    bank = make_filter_bank(cfg, n_predictors=3, population=2)
    signal = np.random.default_rng(2).normal(size=(10, 2, 3))
    for x in signal[:5]:
        bank.filter(x)
    state = bank.state_dict()
    copy = make_filter_bank(cfg, n_predictors=3, population=2)
    copy.load_state_dict(state)
    for x in signal[5:]:
        np.testing.assert_array_equal(bank.filter(x), copy.filter(x))
    bank.reset()
    fresh = make_filter_bank(cfg, n_predictors=3, population=2)
    np.testing.assert_array_equal(bank.filter(signal[0]), fresh.filter(signal[0]))


def test_input_checks() -> None:
    bank = ResonatorBank(3, population=2)
    with pytest.raises(ShapeError, match=r"expected shape \(2, 3\), got \(3,\)"):
        bank.filter(np.zeros(3))
    with pytest.raises(NonFiniteError):
        bank.filter(np.array([[0.0, np.nan, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ConfigError, match="n_predictors"):
        ResonatorBank(0)
    with pytest.raises(ShapeError, match="filter state"):
        bank.load_state_dict({"y1": np.zeros(3), "y2": np.zeros(3), "u1": np.zeros(3)})


def test_float32_bank() -> None:
    bank = make_filter_bank(FilterConfig(), n_predictors=2, population=1, dtype=np.float32)
    y = bank.filter(np.ones((1, 2)))
    assert y.dtype == np.float32
    assert bank.impulse_response(5).dtype == np.float32
