"""The do-no-harm guard (``guard.*``): a gain on the network's steering that falls while the loop
errs more than the reflex alone, in the numpy reference and the compiled engine alike."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from sarlearn.config import ConfigError, RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.engine.verify import stepwise_deviation
from sarlearn.loop import ClosedLoop
from sarlearn.stages.motor.compiled import gate
from sarlearn.stages.motor.guard import (
    EXEMPT,
    GAIN,
    GUARD,
    LEVEL,
    N_STATE,
    OPEN,
    PHASE,
    PROBE,
    REFERENCE,
    SINCE,
    HarmGuard,
)

# A short guard, so that every phase happens within a few dozen steps.
SHORT = {
    "guard.enabled": True,
    "guard.probe_at": 10,
    "guard.probe_steps": 15,
    "guard.level_steps": 8,
    "guard.rate": 0.05,
}
# An untrained network that steers from step 0 (its output layer is not zero) on a wide line.
HARMFUL = {
    **SHORT,
    "world.track": "hairpin",
    "world.line_width": 8.0,
    "network.zero_output": False,
    "network.init_gain": 3.0,
    "freeze": True,
}


def run_guard(errors: list[float], **kw: float) -> list[tuple[float, ...]]:
    """The guard's states after each of the steps with these |e| (one agent)."""
    guard = HarmGuard(1, **kw)  # type: ignore[arg-type]
    out = []
    for t, e in enumerate(errors):
        guard.update([e], t)
        out.append(tuple(guard.state[0]))
    return out


def test_a_quiet_loop_is_not_probed_and_keeps_its_gain_until_it_errs() -> None:
    states = run_guard([0.0] * 30 + [1.0] * 20, probe_at=10, probe_steps=5, relapse=0.25)
    assert [s[PHASE] for s in states[:10]] == [OPEN] * 10
    assert all(s[PHASE] == EXEMPT and s[GAIN] == 1.0 for s in states[10:30])
    # a learner that had the line and loses it is probed then (level: mean of 31 steps > 0.25)
    late = next(t for t, s in enumerate(states) if s[PHASE] == PROBE)
    assert late > 30 and states[late][SINCE] == late and states[late][GAIN] == 0.0
    assert states[-1][PHASE] == GUARD and states[-1][REFERENCE] == 1.0


def test_the_probe_silences_the_network_and_measures_the_reflex() -> None:
    errors = [5.0] * 10 + [float(k) for k in range(6)] + [5.0] * 5
    states = run_guard(errors, probe_at=10, probe_steps=6, quiet=0.25)
    assert all(s[GAIN] == 1.0 for s in states[:10])
    assert [s[PHASE] for s in states[10:15]] == [PROBE] * 5
    assert all(s[GAIN] == 0.0 for s in states[10:15])
    # the probe's last step: the reference is the mean |e| of the probe, the network drives again
    assert states[15][PHASE] == GUARD and states[15][GAIN] == 1.0
    assert states[15][REFERENCE] == pytest.approx(np.mean(range(1, 6)), rel=1e-15)  # 1st: skipped


def test_the_gain_falls_while_the_loop_errs_more_than_the_reflex_and_rises_back() -> None:
    kw = {"probe_at": 5, "probe_steps": 5, "level_steps": 4, "rate": 0.05, "margin": 0.1}
    worse = run_guard([2.0] * 10 + [4.0] * 200, **kw)  # the reflex errs 2, the learner 4
    gains = [s[GAIN] for s in worse[10:]]
    assert gains[-1] == 0.0 and all(np.diff(gains) <= 0)
    assert worse[-1][REFERENCE] == 2.0  # the probe's mean, kept (follow = 0)
    followed = run_guard([2.0] * 10 + [4.0] * 200, **kw, follow=1.0)
    assert 2.0 < followed[-1][REFERENCE] < 4.0  # ... or following |e| while the reflex drives
    better = run_guard([2.0] * 10 + [4.0] * 30 + [0.5] * 200, **kw)
    assert better[39][GAIN] < 0.5 and better[-1][GAIN] == 1.0


def test_at_the_reflex_level_less_the_margin_the_gain_stays() -> None:
    guard = HarmGuard(1, level_steps=1, margin=0.1)
    guard.state[0] = (1.8, 2.0, 0.5, GUARD, 0.0)
    for t in range(3000, 3010):
        guard.update([1.8], t)
    assert guard.state[0, GAIN] == 0.5 and guard.state[0, LEVEL] == 1.8
    guard.update([2.0], 3010)
    assert guard.state[0, GAIN] < 0.5


def test_the_guard_scales_the_steering_in_float64() -> None:
    guard = HarmGuard(2, probe_at=0, probe_steps=3, quiet=0.25)
    y = np.array([1.5, -2.0], dtype=np.float32)
    out = guard.gate([3.0, -3.0], y, 0)  # step 0 is in the probe: g = 0
    assert out.dtype == np.float64 and np.all(out == 0.0)
    guard.state[:, GAIN] = 0.25
    guard.state[:, PHASE] = GUARD
    guard.state[:, REFERENCE] = 1e9  # far above the level: the gain rises
    out = guard.gate([3.0, -3.0], y, 10)
    np.testing.assert_array_equal(out, guard.gain * y.astype(np.float64))
    assert np.all(guard.gain > 0.25)


def test_a_harmful_frozen_network_is_silenced_and_the_wheels_see_the_reflex() -> None:
    cfg = RunConfig().with_overrides({**HARMFUL, "engine": "numpy"})
    loop = ClosedLoop.from_config(cfg)
    rec = loop.run(400)
    assert loop.guard is not None and loop.guard.state[0, PHASE] == GUARD
    assert np.abs(rec["steering"][0, 10:]).min() > 0  # the network steers all along
    u = (rec["right"] - rec["left"]) / 2
    probe = slice(10, 24)  # steps 10-23: g = 0; step 24 ends the probe with g = 1
    np.testing.assert_allclose(u[0, probe], rec["error"][0, probe], atol=1e-12)
    assert loop.guard.gain[0] == 0.0  # closed at the end: the reflex alone drives
    np.testing.assert_allclose(u[0, -50:], rec["error"][0, -50:], atol=1e-12)
    # without the guard the same network keeps steering
    free = ClosedLoop.from_config(cfg.with_overrides({"guard.enabled": False}))
    rf = free.run(400)
    assert np.abs((rf["right"] - rf["left"])[0, -50:] / 2 - rf["error"][0, -50:]).max() > 0.1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_compiled_gate_is_the_reference_bit_for_bit(dtype: type) -> None:
    """The stage alone: the same errors and steering through the numpy guard and the compiled
    gate give the same states and the same gated steering, every step, in every phase."""
    rng = np.random.default_rng(3)
    guard = HarmGuard(3, level_steps=7, probe_at=20, probe_steps=9, quiet=0.3, rate=0.05)
    rows = np.zeros((3, N_STATE + 9))
    rows[:, :N_STATE] = guard.state
    rows[:, N_STATE:] = (1.0, *guard.params())
    errors = np.abs(rng.normal(0, 3, (200, 3))) * np.array([0.01, 1.0, 1.0])  # one quiet agent
    errors[60:, 2] *= 0.1  # one that gets better after the probe
    phases = set()
    for t in range(200):
        y = rng.normal(0, 1, 3).astype(dtype)
        want = guard.gate(errors[t], y, t)
        got = [gate(rows, p, t, float(errors[t, p]), y[p]) for p in range(3)]
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(rows[:, :N_STATE], guard.state)
        phases.update(guard.state[:, PHASE].tolist())
    assert phases == {OPEN, PROBE, GUARD, EXEMPT}
    assert 0.0 < guard.gain[1] < 1.0 or guard.gain[1] == 0.0
    assert guard.gain[2] == 1.0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_engine_matches_reference_with_the_guard(dtype: str) -> None:
    """Teacher-forced: every step of the engine against the reference from the same state,
    the guard's own state included, through every phase of the guard."""
    cfg = RunConfig().with_overrides({**HARMFUL, "freeze": False, "dtype": dtype})
    fast = FastClosedLoop.from_config(cfg, 2, weights_every=1)
    phases = set()
    for _ in range(60):
        ref = copy.deepcopy(fast.loops[0], memo={id(fast.loops[0].robot.track): fast.robot.track})
        rr = ref.run(1)
        rf = fast.run(1)
        got = fast.loops[0].guard.state
        want = ref.guard.state  # type: ignore[union-attr]
        np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == "float64" else 1e-5)
        phases.update(want[:, PHASE].tolist())
        tol = 1e-12 if dtype == "float64" else 1e-5
        for key in ("left", "right", "error"):
            scale = max(np.abs(rr[key]).max(), 1.0)
            assert np.abs(rr[key] - rf[key]).max() / scale < tol, key
    assert {OPEN, PROBE, GUARD} <= phases
    dev = stepwise_deviation(cfg, steps=40, population=2)
    assert max(dev.values()) < (1e-12 if dtype == "float64" else 1e-5), dev


def test_engine_with_the_guard_differs_from_the_engine_without() -> None:
    """The equality test above can fail: the guard changes what reaches the wheels."""
    runs = []
    for on in (True, False):
        fast = FastClosedLoop.from_config(
            RunConfig().with_overrides({**HARMFUL, "guard.enabled": on})
        )
        runs.append(fast.run(60)["left"])
    assert np.abs(runs[0] - runs[1]).max() > 1e-3


def test_loops_with_and_without_a_guard_stack_and_keep_their_own() -> None:
    on = RunConfig().with_overrides(HARMFUL)
    off = on.with_overrides({"guard.enabled": False, "seed": 1})
    fast = FastClosedLoop.from_configs([on, off])
    fast.run(40)
    a, b = fast.loops
    assert a.guard is not None and a.guard.state[0, PHASE] == GUARD and b.guard is None
    alone = FastClosedLoop.from_config(on)
    alone.run(40)
    np.testing.assert_array_equal(alone.loops[0].guard.state, a.guard.state)


def test_the_guard_is_sars_default_and_bad_settings_are_config_errors() -> None:
    assert ClosedLoop.from_config(RunConfig()).guard is not None  # sar
    gdm = RunConfig().with_overrides({"rule.name": "gdm"})
    assert not gdm.guard_enabled and ClosedLoop.from_config(gdm).guard is None
    assert gdm.with_overrides({"guard.enabled": True}).guard_enabled
    assert not RunConfig().with_overrides({"guard.enabled": False}).guard_enabled
    for key, bad in (("margin", 1.0), ("rate", 0.0), ("quiet", -1.0), ("probe_steps", 0)):
        with pytest.raises(ConfigError, match=f"guard.{key}"):
            RunConfig().with_overrides({f"guard.{key}": bad})


def test_a_guard_built_in_python_has_the_configs_defaults() -> None:
    """HarmGuard's field defaults restate GuardConfig's (the stage may not import the config):
    a bare HarmGuard(P) must be the guard a default run builds."""
    from_config = HarmGuard.from_config(RunConfig().guard, 2)
    assert HarmGuard(2).params() == from_config.params()


def test_a_learner_that_has_the_line_by_the_probe_is_never_touched() -> None:
    """On the built-in tracks sar settles within a few hundred steps: at the probe its level
    is quiet, so the guard stays out of the way (g = 1 throughout)."""
    cfg = RunConfig().with_overrides({"guard.probe_at": 600, "steps": 700})
    fast = FastClosedLoop.from_config(cfg)
    rec = fast.run(700)
    guard = fast.loops[0].guard
    assert guard is not None and guard.state[0, PHASE] == EXEMPT and guard.gain[0] == 1.0
    u = (rec["right"] - rec["left"]) / 2
    np.testing.assert_allclose(u, rec["error"] + 5.0 * rec["steering"], atol=1e-12)
