"""What the Gymnasium environments observe, how their action steers and what they reward.

Shared by the single environment (:mod:`sarlearn.gym.env`) and the vector environment
(:mod:`sarlearn.gym.vector`), so both validate arguments the same way and give the same numbers.

- **Observations** (``observation=``):

  - ``"rows"``: the predictor rows, raw floor darkness of the 3 x 48 ground sensors ahead
    ``(144,)`` in [0, 1] (SPEC section 4);
  - ``"camera"``: the camera's predictors, mirror differences of its segment grid
    ``(grid_rows * grid_cols / 2,)`` in [-1, 1] (what SaR learns from with ``inputs=camera``);
  - ``"frame"``: the raw camera image ``(height_px, width)`` darkness in [0, 1] (1 = dark).

  With ``filtered=True`` the predictors (``rows`` or ``camera``) pass through the filter bank
  first, exactly as the SaR network sees them: ``(n_predictors * n_filters,)``,
  predictor-major. The bounds then come from the bank's impulse response.
  With ``observe_error=True`` the signed reflex error ``e / |error_gain|`` in [-1, 1] is
  appended as the last entry (``rows``/``camera`` only): the sign SaR is taught with.
- **Actions** (``action=``), one number ``a`` in [-1, 1]:

  - ``"reflex"`` (the paper's setting): network steering ``y = action_scale * a`` added to the
    reflex, ``u = e + G * y``; ``action_scale`` defaults to 1.5, the largest ``|y|`` of
    SPEC's readout ``[1, 2]`` of outputs in (-0.5, 0.5) (SaR's default on mirror differences,
    ``[1.5, 3]``, reaches 2.25 but steers at most about 1.52 in practice);
  - ``"full"``: no reflex, ``u = G * y``; ``action_scale`` defaults to ``error_gain / G``
    (10), so the policy can steer as hard as the reflex's largest ``|e|``.

  Wheel speeds are ``v -/+ u`` as in :meth:`sarlearn.stages.world.SimWorld.step`.
- **Rewards** (``reward=``), from the reflex error ``e`` measured *after* the move, times
  ``reward_scale``:

  - ``"abs_error"`` (default): ``-|e|``, the quantity SaR's success criterion sums;
  - ``"squared_error"``: ``-e**2 / |error_gain|`` (units of ``-|e|``;
    punishes big errors more);
  - ``"on_line"``: ``1 - |e| / |error_gain|`` while a ground sensor sees the line, else 0
    (a positive per-step reward: surviving pays, so leaving the line is never attractive);
  - a callable ``f(error, lost_steps) -> reward`` on arrays ``(N,)``, for anything else.

  Reflex sensors that see no line read ``e = 0``, so with ``-|e|`` driving off the line would
  look perfect; therefore a robot that goes off track (``terminated``) also receives
  ``off_track_penalty`` (default ``-|error_gain|`` per step left until truncation, i.e. as if
  the largest error lasted to the end of the episode).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import FilterConfig, WorldConfig
from sarlearn.errors import ConfigError
from sarlearn.stages.filters.bank import make_filter_bank
from sarlearn.stages.perception.perception import n_camera_predictors, n_row_predictors
from sarlearn.stages.world.tracks import TRACK_NAMES

OBSERVATIONS = ("rows", "camera", "frame")
ACTIONS = ("reflex", "full")
REWARDS = ("abs_error", "squared_error", "on_line")

#: Largest |y| of SPEC's readout [1, 2] over outputs in (-0.5, 0.5).
REFLEX_ACTION_SCALE = 1.5

RewardFn = Callable[[NDArray[np.float64], NDArray[np.int64]], NDArray[np.float64]]


@dataclass(frozen=True)
class EnvOptions:
    """The validated settings of a line-following environment (see the module docstring)."""

    world: WorldConfig
    filters: FilterConfig
    observation: str
    filtered: bool
    action: str
    action_scale: float
    reward: str | RewardFn
    reward_scale: float
    off_track_penalty: float | None
    max_steps: int
    random_start: bool
    dtype: np.dtype
    observe_error: bool = False

    @property
    def n_predictors(self) -> int:
        """Predictors before filtering (``rows``: sensors, or their mirror differences with
        ``world.predictor_mode = "mirror"``; ``camera``: mirror differences)."""
        if self.observation == "rows":
            return n_row_predictors(self.world)
        cam = self.world.camera
        return n_camera_predictors(cam.grid_rows, cam.grid_cols)

    @property
    def reflex(self) -> bool:
        """Whether the reflex steers too (``action="reflex"``)."""
        return self.action == "reflex"

    def observation_bounds(self) -> tuple[NDArray, NDArray, tuple[int, ...]]:
        """``(low, high, shape)`` of the observation space (exact bounds; a filter bank's
        come from its impulse response)."""
        if self.observation == "frame":
            cam = self.world.camera
            shape = (cam.height_px, cam.width)
            return np.zeros(shape), np.ones(shape), shape
        raw_rows = self.observation == "rows" and self.world.predictor_mode == "raw"
        lo_in, hi_in = (0.0, 1.0) if raw_rows else (-1.0, 1.0)
        lo, hi = self._predictor_bounds(lo_in, hi_in)
        if self.observe_error:
            lo, hi = np.append(lo, -1.0), np.append(hi, 1.0)
        return lo, hi, lo.shape

    def _predictor_bounds(self, lo_in: float, hi_in: float) -> tuple[NDArray, NDArray]:
        n = self.n_predictors
        if not self.filtered:
            return np.full(n, lo_in), np.full(n, hi_in)
        bank = make_filter_bank(self.filters, n_predictors=1, population=1)
        h = bank.impulse_response(4000)  # (n_filters, T): the tail is long gone by then
        hi = np.maximum(h * hi_in, h * lo_in).sum(axis=1)
        lo = np.minimum(h * hi_in, h * lo_in).sum(axis=1)
        # A little room for rounding (float32) and the truncated tail.
        pad = 1e-3 * np.maximum(np.abs(hi), np.abs(lo)) + 1e-6
        return np.tile(lo - pad, n), np.tile(hi + pad, n)

    def rewards(self, error: NDArray[np.float64], lost: NDArray[np.int64]) -> NDArray[np.float64]:
        """Per-step rewards ``(N,)`` from the errors after the move ``(N,)`` (no penalty)."""
        gain = abs(self.world.error_gain) or 1.0
        if callable(self.reward):
            r = np.asarray(self.reward(error, lost), dtype=np.float64)
        elif self.reward == "abs_error":
            r = -np.abs(error)
        elif self.reward == "squared_error":
            r = -(error * error) / gain
        else:  # on_line
            r = np.where(lost == 0, 1.0 - np.abs(error) / gain, 0.0)
        return r * self.reward_scale

    def penalty(self, steps: NDArray[np.int64]) -> NDArray[np.float64]:
        """The off-track penalty ``(N,)`` for robots that left the track after ``steps``."""
        if self.off_track_penalty is not None:
            return np.full(steps.shape, float(self.off_track_penalty))
        if self.reward == "on_line":
            return np.zeros(steps.shape)
        # As if the largest error lasted until truncation (``-|e|`` and ``-e^2/|gain|`` alike).
        left = np.maximum(self.max_steps - steps, 0)
        return -abs(self.world.error_gain) * left * self.reward_scale


def _pick(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}")
    return str(value)


def make_options(
    track: str | Path = "curvy",
    *,
    observation: str = "rows",
    filtered: bool = False,
    action: str = "reflex",
    action_scale: float | None = None,
    reward: str | RewardFn = "abs_error",
    reward_scale: float = 1.0,
    off_track_penalty: float | None = None,
    max_steps: int = 5000,
    random_start: bool = True,
    observe_error: bool = False,
    world: WorldConfig | dict[str, Any] | None = None,
    filters: FilterConfig | dict[str, Any] | None = None,
    dtype: Any = np.float32,
) -> EnvOptions:
    """Validate the environment's arguments; every bad one raises ``ConfigError`` naming it.

    ``world`` / ``filters`` are a :class:`WorldConfig` / :class:`FilterConfig` or a dict of
    their fields (e.g. ``world={"speed": 40}``); ``track`` overrides ``world.track``.
    """
    try:
        wcfg = (
            world.model_copy() if isinstance(world, WorldConfig) else WorldConfig(**(world or {}))
        )
        fcfg = filters if isinstance(filters, FilterConfig) else FilterConfig(**(filters or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid world/filters settings: {exc}") from None
    key = str(track)
    p = Path(key)
    if key.startswith("random:"):
        from sarlearn.stages.world.family import parse_name

        try:
            parse_name(key)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    elif key not in TRACK_NAMES and not p.is_file():
        raise ConfigError(
            f"track={key!r}: not a built-in track ({', '.join(TRACK_NAMES)}), not a generated "
            "one ('random:SEED') and no such image file"
        )
    wcfg.track = key
    obs = _pick("observation", observation, OBSERVATIONS)
    wcfg.inputs = "camera" if obs in ("camera", "frame") else "rows"
    if filtered and obs == "frame":
        raise ConfigError("filtered=True applies to 'rows' or 'camera' predictors, not 'frame'")
    if observe_error and obs == "frame":
        raise ConfigError("observe_error=True applies to 'rows' or 'camera', not 'frame'")
    act = _pick("action", action, ACTIONS)
    if action_scale is None:
        g = wcfg.net_gain
        action_scale = REFLEX_ACTION_SCALE if act == "reflex" else abs(wcfg.error_gain / g)
    if not (np.isfinite(action_scale) and action_scale > 0):
        raise ConfigError(f"action_scale must be a finite number > 0, got {action_scale}")
    if act == "full" and wcfg.net_gain == 0:
        raise ConfigError("action='full' needs world net_gain != 0 (the policy steers through it)")
    if not callable(reward):
        reward = _pick("reward", reward, REWARDS)
    if not (np.isfinite(reward_scale) and reward_scale > 0):
        raise ConfigError(f"reward_scale must be a finite number > 0, got {reward_scale}")
    if off_track_penalty is not None and not np.isfinite(off_track_penalty):
        raise ConfigError(f"off_track_penalty must be finite, got {off_track_penalty}")
    if int(max_steps) != max_steps or max_steps < 1:
        raise ConfigError(f"max_steps must be an integer >= 1, got {max_steps}")
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ConfigError(f"dtype must be float32 or float64, got {dt}")
    return EnvOptions(
        world=wcfg,
        filters=fcfg,
        observation=obs,
        filtered=bool(filtered),
        action=act,
        action_scale=float(action_scale),
        reward=reward,
        reward_scale=float(reward_scale),
        off_track_penalty=None if off_track_penalty is None else float(off_track_penalty),
        max_steps=int(max_steps),
        random_start=bool(random_start),
        dtype=dt,
        observe_error=bool(observe_error),
    )


__all__ = [
    "ACTIONS",
    "OBSERVATIONS",
    "REFLEX_ACTION_SCALE",
    "REWARDS",
    "EnvOptions",
    "RewardFn",
    "make_options",
]
