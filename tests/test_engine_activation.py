"""The engine's tanh (``stages.network.compiled.tanh_sat``) against numpy's: within 3 ulp
everywhere, exactly +-1 from numpy's saturation point on, and (float64) never 1 before it."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from sarlearn.engine.put import tanh_saturation
from sarlearn.stages.network.compiled import tanh_sat


@njit(cache=False)
def _engine_tanh(x, sat, one):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = tanh_sat(x[i], sat, one)
    return out


def _grid(dt: type) -> np.ndarray:
    tiny = 1e-300 if dt is np.float64 else 1e-37
    x = np.concatenate([np.linspace(-25.0, 25.0, 400_001), np.geomspace(tiny, 1.0, 20_001)])
    x = np.concatenate([x, -x, [0.0, 0.625, -0.625]]).astype(dt)
    return x


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_within_three_ulp_of_numpy(dt: type) -> None:
    x = _grid(dt)
    sat = dt(tanh_saturation(dt))
    got = _engine_tanh(x, sat, dt(1))
    ref = np.tanh(x)
    assert got.dtype == dt
    ulp = np.spacing(np.abs(ref))
    assert np.max(np.abs(got - ref) / ulp) <= 3.0
    assert np.array_equal(np.sign(got), np.sign(ref))  # odd, 0 at 0


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_saturates_exactly_where_numpy_does(dt: type) -> None:
    sat = dt(tanh_saturation(dt))
    at = np.array([sat, np.nextafter(sat, dt(np.inf)), dt(100.0)], dtype=dt)
    assert np.all(_engine_tanh(at, sat, dt(1)) == 1.0)
    assert np.all(_engine_tanh(-at, sat, dt(1)) == -1.0)
    if dt is np.float64:  # below numpy's point never exactly 1 (so f'(h) is never exactly 0)
        below = [sat]
        for _ in range(5000):
            below.append(np.nextafter(below[-1], dt(0)))
        x = np.concatenate([np.array(below[1:], dtype=dt), np.linspace(sat - 3, sat, 100_001)[:-1]])
        assert np.all(_engine_tanh(x, sat, dt(1)) < 1.0)
