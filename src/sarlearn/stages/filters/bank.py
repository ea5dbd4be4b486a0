"""Filter banks that expand every predictor in time (SPEC section 3).

Each raw predictor ``u_i`` becomes ``n_filters`` filtered copies. All banks work on a whole
population at once and keep their state per agent and per predictor.

``ResonatorBank`` — second-order IIR filters, natural frequencies ``f_k`` spaced linearly from
``f_min`` to ``f_max`` (cycles per sample), quality factor ``q``. With ``w = 2 pi f_k``,
``zeta = 1 / (2 q)`` and the continuous poles ``s = w (-zeta +- sqrt(zeta^2 - 1))`` mapped to
``p = exp(s)`` (impulse invariance), every filter is

    y[n] = b0 u[n] + b1 u[n-1] + c1 y[n-1] - c2 y[n-2],   c1 = p1 + p2,  c2 = p1 p2,

scaled to unit DC gain (a constant input comes out unchanged). States whose magnitude falls
below ``sqrt(tiny)`` of the dtype are set to exactly 0 after each step
(:mod:`sarlearn.numerics`: no subnormal numbers, which are slow on Intel CPUs). Two kinds:

- ``resonator`` (default; the authors' simulation): ``b0 = 1 - c1 + c2, b1 = 0``. With
  q = 0.51 these are nearly critically damped low-passes; the impulse response starts at its
  largest values and peaks at sample 1 (f = 0.1) or 0 (f >= 0.15): they smooth, hardly delay.
- ``ico`` (the ICO-learning resonator ``h(t) = exp(a t) sin(b t) / b`` with ``a = -pi f / q``,
  ``b = sqrt((2 pi f)^2 - a^2)``, sampled at t = n): ``b0 = 0, b1 = 1 - c1 + c2``. The
  response starts at 0 and peaks at ``T = atan(b / -a) / b`` samples (:func:`ico_peak`), so
  each filter both smooths and delays. Needs q > 1/2. ``T`` scales like 1/f, so choose the
  band from the peaks you want with :func:`ico_frequency` (e.g. f from 0.016 to 0.08 at
  q = 0.51 gives peaks at 10, 5, 3.3, 2.5, 2 samples); with the default band (0.1 .. 1/3)
  the continuous peaks lie at 1.6 .. 0.5 samples, i.e. at samples 2, 1, 1, 1, 1. A higher q
  makes the filters ring (band-pass) and moves the peaks a little later.

``DelayLineBank`` — taps ``y_k[n] = u[n - k]``, k = 0 .. n_filters - 1 (the real robot).

Output layout (all banks): predictor-major, ``[u0f0 .. u0f4, u1f0 .. u1f4, ...]``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import ConfigError, FilterConfig
from sarlearn.errors import NonFiniteError, ShapeError
from sarlearn.numerics import flush_small

Array = NDArray[np.floating]


def ico_peak(f: float | Array, q: float) -> float | Array:
    """Peak time (samples) of the ICO resonator ``exp(a t) sin(b t)`` of frequency f, quality q."""
    if q <= 0.5:
        raise ConfigError(f"ico filters need q > 0.5 (oscillatory poles), got q = {q}")
    w = 2 * np.pi * np.asarray(f, dtype=float)
    a = -w / (2 * q)  # = -pi f / q
    b = np.sqrt(w**2 - a**2)
    return np.arctan(b / -a) / b


def ico_frequency(peak: float | Array, q: float) -> float | Array:
    """Inverse of :func:`ico_peak`: the frequency whose ICO resonator peaks at ``peak`` samples."""
    return ico_peak(1.0, q) / np.asarray(peak, dtype=float)  # T * f depends on q only


def resonator_coefficients(
    frequencies: Array, q: float, kind: str = "resonator"
) -> tuple[Array, Array, Array, Array]:
    """Coefficients ``(b0, b1, c1, c2)``, each (n_filters,), of the unit-DC-gain resonators."""
    if kind not in ("resonator", "ico"):
        raise ConfigError(f"unknown resonator kind {kind!r}; known: resonator, ico")
    if kind == "ico" and q <= 0.5:
        raise ConfigError(f"ico filters need q > 0.5 (oscillatory poles), got q = {q}")
    f = np.asarray(frequencies, dtype=float)
    if np.any(f <= 0) or np.any(f >= 0.5):
        raise ConfigError(f"filter frequencies must lie in (0, 0.5) cycles/sample, got {f}")
    w = 2 * np.pi * f
    zeta = 1 / (2 * q)
    root = np.sqrt(complex(zeta**2 - 1))  # imaginary for q > 1/2, real when over-damped
    p1, p2 = np.exp(w * (-zeta + root)), np.exp(w * (-zeta - root))
    c1 = (p1 + p2).real
    c2 = (p1 * p2).real
    gain = 1 - c1 + c2  # makes the DC gain b / (1 - c1 + c2) exactly 1
    zero = np.zeros_like(f)
    if kind == "resonator":
        return gain, zero, c1, c2
    return zero, gain, c1, c2


class _Bank:
    """Shared bookkeeping: sizes, input checks, output layout."""

    n_filters: int

    def __init__(self, n_predictors: int, population: int, n_filters: int, dtype: np.dtype) -> None:
        if n_predictors < 1 or population < 1:
            raise ConfigError(
                f"a filter bank needs n_predictors >= 1 and population >= 1, got "
                f"n_predictors={n_predictors}, population={population}"
            )
        if n_filters < 1:
            raise ConfigError(f"n_filters must be >= 1, got {n_filters}")
        self.n_predictors = n_predictors
        self.population = population
        self.n_filters = n_filters
        self.dtype = np.dtype(dtype)

    @property
    def n_outputs(self) -> int:
        """Network inputs produced: n_predictors * n_filters."""
        return self.n_predictors * self.n_filters

    def _check(self, x: Array) -> Array:
        x = np.asarray(x)
        expected = (self.population, self.n_predictors)
        if x.shape != expected:
            raise ShapeError(f"filter input x: expected shape {expected}, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise NonFiniteError("filter input x contains NaN or inf")
        return x

    def impulse_response(self, n: int) -> Array:
        """Response of each filter to a unit impulse at sample 0: (n_filters, n)."""
        bank = self._fresh(n_predictors=1, population=1)
        x = np.zeros((1, 1), dtype=self.dtype)
        out = np.empty((self.n_filters, n), dtype=self.dtype)
        for t in range(n):
            x[0, 0] = 1.0 if t == 0 else 0.0
            out[:, t] = bank.filter(x)[0]
        return out

    def _fresh(self, n_predictors: int, population: int) -> _Bank:
        raise NotImplementedError


class ResonatorBank(_Bank):
    """Second-order IIR resonators of unit DC gain, ``n_filters`` per predictor.

    Args:
        n_predictors: raw predictors per agent.
        population: agents P.
        n_filters, f_min, f_max, q: the bank (frequencies linearly spaced, cycles/sample).
        kind: ``"resonator"`` (low-pass-like, responds at once) or ``"ico"`` (delayed peak).
        dtype: float64 or float32.
    """

    def __init__(
        self,
        n_predictors: int,
        population: int = 1,
        n_filters: int = 5,
        f_min: float = 0.1,
        f_max: float = 1 / 3,
        q: float = 0.51,
        kind: str = "resonator",
        dtype: type[np.floating] | np.dtype = np.float64,
    ) -> None:
        super().__init__(n_predictors, population, n_filters, np.dtype(dtype))
        self.kind = kind
        self.q = q
        self.frequencies = np.linspace(f_min, f_max, n_filters)
        b0, b1, c1, c2 = resonator_coefficients(self.frequencies, q, kind)
        self._b0, self._b1, self._c1, self._c2 = (c.astype(self.dtype) for c in (b0, b1, c1, c2))
        shape = (population, n_predictors, n_filters)
        self._y = np.zeros(shape, dtype=self.dtype)  # y[n-1], becomes y[n]
        self._y2 = np.zeros(shape, dtype=self.dtype)  # y[n-2]
        self._u1 = np.zeros((population, n_predictors, 1), dtype=self.dtype)  # u[n-1]
        self._tmp = np.zeros(shape, dtype=self.dtype)

    @property
    def coefficients(self) -> tuple[Array, Array, Array, Array]:
        """Copies of ``(b0, b1, c1, c2)``, each ``(n_filters,)`` in the bank's dtype."""
        return (self._b0.copy(), self._b1.copy(), self._c1.copy(), self._c2.copy())

    @property
    def peaks(self) -> Array:
        """Peak time (samples) of each filter's impulse response: (n_filters,)."""
        return np.argmax(self.impulse_response(200), axis=1).astype(float)

    def filter(self, x: Array) -> Array:
        """Advance one sample. x: (P, n_predictors) -> (P, n_predictors * n_filters)."""
        u = self._check(x)[:, :, None]
        # tmp = c1 y[n-1] - c2 y[n-2] + b0 u[n] + b1 u[n-1]
        np.multiply(self._c1, self._y, out=self._tmp)
        self._tmp -= self._c2 * self._y2
        self._tmp += self._b0 * u
        self._tmp += self._b1 * self._u1
        # decayed states to exactly 0: no subnormal stalls (see sarlearn.numerics)
        flush_small(self._tmp)
        self._y, self._y2, self._tmp = self._tmp, self._y, self._y2
        self._u1[...] = u
        return self._y.reshape(self.population, -1).copy()

    def reset(self) -> None:
        """Forget the past: all filter states back to zero."""
        for a in (self._y, self._y2, self._u1):
            a.fill(0.0)

    def state_dict(self) -> dict[str, Array]:
        """Copies of the filter state (for checkpoints)."""
        return {"y1": self._y.copy(), "y2": self._y2.copy(), "u1": self._u1.copy()}

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Restore a state saved by :meth:`state_dict` from a bank of the same sizes."""
        for key, dst in (("y1", self._y), ("y2", self._y2), ("u1", self._u1)):
            _load_into(dst, state[key], f"filter state {key}")

    def _fresh(self, n_predictors: int, population: int) -> ResonatorBank:
        return ResonatorBank(
            n_predictors,
            population,
            self.n_filters,
            float(self.frequencies[0]),
            float(self.frequencies[-1]),
            self.q,
            self.kind,
            self.dtype,
        )


class DelayLineBank(_Bank):
    """Tapped delay line: output k of predictor i is ``u_i[n - k]``, k = 0 .. n_filters - 1."""

    def __init__(
        self,
        n_predictors: int,
        population: int = 1,
        n_filters: int = 5,
        dtype: type[np.floating] | np.dtype = np.float64,
    ) -> None:
        super().__init__(n_predictors, population, n_filters, np.dtype(dtype))
        self._taps = np.zeros((population, n_predictors, n_filters), dtype=self.dtype)

    @property
    def peaks(self) -> Array:
        """Peak time (samples) of each tap: 0, 1, ..., n_filters - 1."""
        return np.arange(self.n_filters, dtype=float)

    def filter(self, x: Array) -> Array:
        """Advance one sample. x: (P, n_predictors) -> (P, n_predictors * n_filters)."""
        u = self._check(x)
        self._taps[:, :, 1:] = self._taps[:, :, :-1]  # numpy copes with the overlap
        self._taps[:, :, 0] = u
        return self._taps.reshape(self.population, -1).copy()

    def reset(self) -> None:
        """Forget the past: all taps back to zero."""
        self._taps.fill(0.0)

    def state_dict(self) -> dict[str, Array]:
        """A copy of the taps (for checkpoints)."""
        return {"taps": self._taps.copy()}

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Restore a state saved by :meth:`state_dict` from a bank of the same sizes."""
        _load_into(self._taps, state["taps"], "filter state taps")

    def _fresh(self, n_predictors: int, population: int) -> DelayLineBank:
        return DelayLineBank(n_predictors, population, self.n_filters, self.dtype)


FilterBank = ResonatorBank | DelayLineBank


def make_filter_bank(
    cfg: FilterConfig,
    n_predictors: int,
    population: int = 1,
    dtype: type[np.floating] | np.dtype = np.float64,
) -> FilterBank:
    """Build the bank ``cfg`` describes for ``n_predictors`` predictors and P agents."""
    if cfg.kind == "delay":
        return DelayLineBank(n_predictors, population, cfg.n_filters, dtype)
    return ResonatorBank(
        n_predictors, population, cfg.n_filters, cfg.f_min, cfg.f_max, cfg.q, cfg.kind, dtype
    )


def _load_into(dst: Array, src: Array, name: str) -> None:
    src = np.asarray(src)
    if src.shape != dst.shape:
        raise ShapeError(f"{name}: expected shape {dst.shape}, got {src.shape}")
    dst[...] = src


__all__ = [
    "DelayLineBank",
    "FilterBank",
    "ResonatorBank",
    "ico_frequency",
    "ico_peak",
    "make_filter_bank",
    "resonator_coefficients",
]
