"""The compiled engine against the numpy reference loop.

The closed loop amplifies last-bit differences (a pose difference of 1e-15 moves the reflex
error by about 1e-12, and so on; see ``sarlearn.engine.verify``), so exactness is tested in two
ways: teacher-forced (before every step the reference is reset to the engine's state, then both
take one step: every stage of every step must agree to ~1e-12) and free-running over horizons
where the reference itself is not yet chaotic, with a tolerance set by the reference's own
sensitivity to one ulp (measured in the test, on the CPU it runs on). No test compares the last
bits of a free run of the two loops: they differ between CPUs (Intel and AMD) and numpy's SIMD
paths. Everything that involves only the engine (population vs single runs, chunking, lockstep
vs blocked, checkpoints) is bit-identical on one CPU, by construction: the same compiled code
does the same operations in the same order.

Two kernel signatures are compiled (float64, float32); numba caches them on disk.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from engine_checks import (
    assert_population_equals_single_runs,
    free_run_tolerance,
    teacher_forced_steps,
)
from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop, make_closed_loop
from sarlearn.engine.put import tanh_saturation
from sarlearn.engine.verify import (
    reference_sensitivity,
    stepwise_deviation,
    trajectory_deviation,
)
from sarlearn.errors import DivergenceError
from sarlearn.loop import RECORDS, ClosedLoop

ALL_RULES = ["sar", "gdm", "sign-only", "sar-local", "relevance-only", "sar-exact", "fa", "dfa",
             "sign-symmetry"]  # fmt: skip


def cfg_of(**overrides: object) -> RunConfig:
    return RunConfig().with_overrides({k.replace("__", "."): v for k, v in overrides.items()})


def assert_same_records(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ---------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("rule", ALL_RULES)
def test_every_step_matches_reference(rule: str) -> None:
    """Teacher-forced: 11 layers, 3 agents, 150 steps; records and weights to 1e-12."""
    lr = 1e-3 if rule in ("gdm", "fa", "dfa", "sign-symmetry") else 1e-4
    dev = stepwise_deviation(cfg_of(rule__name=rule, rule__lr=lr), steps=150, population=3)
    assert max(dev.values()) < 1e-12, dev


@pytest.mark.parametrize(
    "overrides",
    [
        {"rule.relevance.normalise": True, "rule.relevance.lowpass": 0.5, "rule.relevance.gain": 2},
        {"rule.relevance.mode": "forward", "network.zero_output": False},
        {"rule.name": "relevance-only", "rule.relevance.mode": "forward",
         "network.zero_output": False},
        {"network.activation": "tanh", "rule.name": "gdm", "rule.lr": 1e-3},
        {"network.activation": "linear", "network.layers": [5, 2], "rule.name": "gdm"},
        {"network.bias": True, "network.zero_output": False, "rule.name": "gdm", "rule.lr": 1e-3},
        {"filters.kind": "delay"},
        {"filters.kind": "ico", "filters.q": 0.8},
        {"rule.layer_lr_scale": [1.0] * 10 + [0.5], "network.init": "uniform"},
        {"rule.slope_gate": True, "rule.step_norm": "sqrt-fan-in", "rule.lr": 0.1},
        {"rule.weight_bound": 0.5, "rule.relevance.cap": 2.0, "rule.output_share": "readout"},
        {"rule.name": "gdm", "rule.lr": 1e-2, "rule.weight_bound": 0.3,
         "rule.output_share": "readout", "rule.step_norm": "fan-in"},
        {"rule.name": "sar-local", "rule.slope_gate": True, "network.activation": "tanh"},
    ],
    ids=["relevance-filters", "forward-relevance", "relevance-only-forward", "tanh", "linear",
         "bias", "delay-bank", "ico-bank", "layer-rates", "slope-gate-sqrt-fan-in",
         "bound-cap-readout-share", "gdm-bound-share-fan-in", "sar-local-slope-gate-tanh"],
)  # fmt: skip
def test_options_match_reference(overrides: dict) -> None:
    dev = stepwise_deviation(RunConfig().with_overrides(overrides), steps=60, population=2)
    assert max(dev.values()) < 1e-12, dev


def test_float32_matches_reference_to_float32_precision() -> None:
    dev = stepwise_deviation(cfg_of(dtype="float32", rule__lr=1e-4), steps=60, population=2)
    assert max(dev.values()) < 1e-5, dev


@pytest.mark.parametrize(
    ("overrides", "population", "steps"),
    [
        # sar's default rate (10) amplifies last-bit differences 1e5-fold per 20 steps (its
        # teacher-forced deviation stays ~1e-14): free-run it at a calmer rate
        ({"rule.name": "sar", "rule.lr": 1.0}, 1, 60),
        ({"rule.name": "gdm"}, 3, 60),
        ({"rule.name": "sign-only"}, 3, 60),
        ({"rule.name": "relevance-only"}, 1, 60),
        ({"network.layers": [2]}, 3, 300),
        # this run meets a steep edge of the line early, where 1e-13 in x moves a sensor by
        # 1e-9: one ulp grows to 4e-7 by step 30 and 5e-4 by step 60 (measured), so stop at 20
        ({"network.layers": [10, 10, 2], "rule.name": "gdm", "rule.lr": 1e-3}, 3, 20),
        ({"network.layers": [10, 10, 2]}, 1, 150),
    ],
)
def test_free_run_matches_reference(overrides: dict, population: int, steps: int) -> None:
    """Close trajectories, errors and weights without any resetting, within what the loop's
    chaos explains: 100 times the reference's deviation from itself after one ulp (measured on
    this CPU: 1e-12 to 1e-8 over these horizons, with the engine 30x to 1e7 inside it)."""
    cfg = RunConfig().with_overrides(overrides)
    dev = trajectory_deviation(cfg, steps, population)
    sens = reference_sensitivity(cfg, steps, population)
    assert max(sens.values()) < 1e-6, ("the horizon is past the chaos", sens)
    assert max(dev.values()) <= free_run_tolerance(sens), (dev, sens)


def test_records_have_the_reference_layout() -> None:
    """The same keys, shapes and dtypes over a free run; the recorded ground sensors agree
    teacher-forced (a free run's sensors at the line's edge amplify last bits: 2.4e-10 after 30
    steps on an AMD EPYC)."""
    cfg = cfg_of(network__layers=[10, 2])
    fast = FastClosedLoop.from_config(cfg, 2, weights_every=7, record_ground=True)
    ref = ClosedLoop.from_config(cfg, 2, weights_every=7, record_ground=True)
    rf, rr = fast.run(30), ref.run(30)
    assert set(rf) == set(rr)
    for key in rr:
        assert rf[key].shape == rr[key].shape, key
        assert rf[key].dtype == rr[key].dtype, key
    np.testing.assert_array_equal(rf["weight_steps"], rr["weight_steps"])
    assert fast.t == ref.t == 30
    forced = FastClosedLoop.from_config(cfg, 2, record_ground=True)
    for one_ref, one_fast in teacher_forced_steps(forced, 30):
        assert one_fast["ground"].shape == one_ref["ground"].shape
        np.testing.assert_allclose(one_fast["ground"], one_ref["ground"], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- engine invariants


def test_population_equals_single_runs() -> None:
    """Agent k of a stacked population is bit-identical to the single run of cfgs[k]."""
    cfgs = [cfg_of(seed=s, rule__lr=lr) for s, lr in ((0, 1e-4), (1, 3e-5), (2, 1e-5))]
    assert_population_equals_single_runs(cfgs, 120)


def test_chunks_and_lockstep_change_nothing() -> None:
    cfg = cfg_of(rule__lr=1e-4)
    whole = FastClosedLoop.from_config(cfg, 3, weights_every=7)
    lockstep = FastClosedLoop.from_config(cfg, 3, weights_every=7, block=1)
    chunked = FastClosedLoop.from_config(cfg, 3, weights_every=7)
    a = whole.run(100)
    b = lockstep.run(100)
    c1, c2 = chunked.run(33), chunked.run(67)
    assert_same_records(a, b)
    for key in a:
        joined = np.concatenate([c1[key], c2[key]], axis=0 if a[key].ndim == 1 else 1)
        np.testing.assert_array_equal(a[key], joined, err_msg=key)


def test_reference_objects_stay_in_sync() -> None:
    cfg = cfg_of(rule__lr=1e-4)
    fast = FastClosedLoop.from_config(cfg, 2)
    fast.run(50)
    net = fast.agent.network  # syncs
    for layer, w in enumerate(net.weights):
        np.testing.assert_array_equal(w, fast.weights(layer))
    assert fast.robot.steps == 50 and fast.loops[0].t == 50
    np.testing.assert_array_equal(fast.agent.weight_change(), fast.weight_change())
    # a change made through the reference objects is put into the engine by reload()
    net.weights[-1][...] = 0.01
    fast.reload()
    # teacher-forced: each step from the engine's state (a free run amplifies last bits)
    for b, a in teacher_forced_steps(fast, 20):
        np.testing.assert_allclose(a["steering"], b["steering"], rtol=0, atol=1e-12)
        assert np.all(a["steering"][:, 0] != 0)


def test_checkpoint_roundtrip_continues_identically() -> None:
    cfg = cfg_of(rule__lr=1e-4)
    a = FastClosedLoop.from_config(cfg, 1)
    a.run(40)
    b = pickle.loads(pickle.dumps(a))
    assert isinstance(b, FastClosedLoop) and b.t == 40
    assert_same_records(a.run(60), b.run(60))


def test_divergence_raises_like_the_reference() -> None:
    cfg = cfg_of(network__activation="linear", network__layers=[10, 10, 2], rule__name="gdm",
                 rule__lr=1e3, network__zero_output=False)  # fmt: skip
    ref = ClosedLoop.from_config(cfg, 1)
    fast = FastClosedLoop.from_config(cfg, 1)
    # Where exploding weights first overflow (forward pass, a layer's update, the steering
    # command) depends on BLAS's last bits; each is a DivergenceError, with no overflow warning
    # on the way (warnings are errors here).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DivergenceError):
            ref.run(400)
        with pytest.raises(DivergenceError):
            fast.run(400)
    for loop in (fast, ref):
        assert loop.partial is not None
        assert loop.partial["step"].shape == (loop.t,)
        assert all(loop.partial[key].shape[1] == loop.t for key in RECORDS)
    with pytest.raises(RuntimeError, match="diverged"):
        fast.run(1)


def test_step_agents_equals_agent_steps() -> None:
    fast = FastClosedLoop.from_config(cfg_of(rule__lr=1e-4), 2)
    agent = pickle.loads(pickle.dumps(fast.agent))
    rng = np.random.default_rng(1)
    pred = rng.random((80, 2, agent.bank.n_predictors))
    err = rng.normal(0.0, 5.0, (80, 2))
    y = fast.step_agents(pred, err)
    y_ref = np.stack([agent.step(err[t], pred[t]) for t in range(80)], axis=1)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-12)
    for layer, w in enumerate(agent.network.weights):
        np.testing.assert_allclose(fast.weights(layer), w, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- coverage and fallback


def test_unsupported_configurations_fall_back() -> None:
    # camera inputs run compiled (tests/test_engine_camera.py); a custom perception does not
    camera = ClosedLoop.from_config(cfg_of(world__inputs="camera"))
    camera.perception = lambda frame: frame[:, :4, :4].reshape(len(frame), -1)
    with pytest.raises(NotImplementedError, match="perception"):
        FastClosedLoop(camera)
    reflex = cfg_of(rule__name="reflex")
    assert type(make_closed_loop(reflex)) is ClosedLoop
    assert isinstance(make_closed_loop(RunConfig()), FastClosedLoop)
    assert type(make_closed_loop(RunConfig(), engine="numpy")) is ClosedLoop


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_saturation_is_numpys(dtype: type) -> None:
    sat = dtype(tanh_saturation(dtype))
    below = np.nextafter(sat, dtype(0))
    assert np.tanh(np.array([sat]))[0] == 1.0
    assert np.tanh(np.array([below]))[0] < 1.0


def test_run_zero_compiles_without_stepping() -> None:
    from sarlearn.engine import kernels

    loop = make_closed_loop(cfg_of())
    assert isinstance(loop, FastClosedLoop)
    loop.run(0)  # the warm-up run_follow does before its clock starts
    assert loop.t == 0 and len(kernels.run_chunk.signatures) >= 1
    warm = loop.run(120)
    cold = make_closed_loop(cfg_of()).run(120)
    for key in RECORDS:
        np.testing.assert_array_equal(warm[key], cold[key])


@pytest.mark.parametrize("activation", ["logistic", "tanh"])
def test_saturated_units_record_matches_reference(activation: str) -> None:
    """The per-layer share of saturated units (the dead-unit measure) is the same record in
    both loops; a naive wide init saturates part of the first layers from the start."""
    from sarlearn.engine.verify import _copy_loop
    from sarlearn.metrics import layer_saturation

    # sar's plain step: its default weight bound would tame the wide init
    cfg = cfg_of(
        network__init="symmetric", network__init_gain=0.5, network__activation=activation,
        rule__lr=1e-4, rule__step_norm="none", rule__slope_gate=False,
        rule__weight_bound=float("inf"), rule__hidden_weight_bound=float("inf"),
    )  # fmt: skip
    fast = FastClosedLoop.from_config(cfg, 2)
    ref = _copy_loop(fast.loops[0])
    rr, rf = ref.run(40), fast.run(40)
    assert rf["saturated"].shape == rr["saturated"].shape == (2, 40, 11)
    np.testing.assert_array_equal(rf["saturated"], rr["saturated"])
    assert 0 < rr["saturated"][:, :, 0].mean() < 1  # the record is not trivially 0 or 1
    net = ref.agent.network
    np.testing.assert_array_equal(
        rr["saturated"][:, -1], layer_saturation(net.slopes, net.activation.slope_at_zero)
    )


@pytest.mark.parametrize("kind", ["resonator", "delay"])
def test_a_single_filter_per_predictor_runs(kind: str) -> None:
    # (found by the fuzz: with one filter the expanded previous input was a read-only view)
    cfg = cfg_of(filters__n_filters=1, filters__kind=kind, network__layers=[2, 2])
    fast = FastClosedLoop.from_config(cfg, 2)
    fast.run(20)
    assert fast.t == 20


def test_a_chunk_without_sync_defers_it_until_the_references_are_read() -> None:
    cfg = cfg_of(rule__lr=1e-4)
    synced, deferred = FastClosedLoop.from_config(cfg, 2), FastClosedLoop.from_config(cfg, 2)
    a = synced.run(30)
    b = deferred.run(30, sync=False)
    assert_same_records(a, b)
    np.testing.assert_array_equal(synced.weight_change(), deferred.weight_change())
    assert deferred.loops[0].t == 30  # reading the references syncs them first
    for ref_a, ref_b in zip(synced.loops, deferred.loops, strict=True):
        for wa, wb in zip(ref_a.agent.network.weights, ref_b.agent.network.weights, strict=True):
            np.testing.assert_array_equal(wa, wb)
    # pickling (checkpoints) and reload() see the state after the deferred chunk too
    deferred.run(20, sync=False)
    copy = pickle.loads(pickle.dumps(deferred))
    assert copy.t == 50
    deferred.run(10, sync=False)
    deferred.reload()  # must not put stale references back into the engine
    c, d = FastClosedLoop.from_config(cfg, 2), deferred
    c.run(60)
    assert_same_records(c.run(15), d.run(15))
