"""Decaying states are flushed to exactly 0 below sqrt(tiny), identically in both loops."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sarlearn.config import RelevanceConfig, RunConfig
from sarlearn.numerics import flush_small, flush_threshold
from sarlearn.stages.filters.bank import ResonatorBank
from sarlearn.stages.rules.relevance import Relevance


def _no_tiny(a: np.ndarray) -> bool:
    """No entry with 0 < |a| < sqrt(tiny) (subnormals included)."""
    a = np.abs(a)
    return not np.any((a > 0) & (a < flush_threshold(a.dtype)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_flush_threshold_and_flush_small(dtype: type) -> None:
    thr = flush_threshold(dtype)
    assert thr == pytest.approx(np.sqrt(np.finfo(dtype).tiny), rel=1e-6)
    assert thr * thr >= np.finfo(dtype).tiny * (1 - 1e-6)  # products of survivors are normal
    a = np.array([1.0, -thr, thr / 2, -thr / 2, np.finfo(dtype).smallest_subnormal, -0.0], dtype)
    flush_small(a)
    assert a.tolist() == [1.0, -thr, 0.0, 0.0, 0.0, 0.0]
    assert not np.signbit(a[3]) and not np.signbit(a[5])  # +0, as the engine writes


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["resonator", "ico"])
def test_resonator_states_reach_exact_zero(dtype: type, kind: str) -> None:
    bank = ResonatorBank(3, population=2, q=0.8 if kind == "ico" else 0.51, kind=kind, dtype=dtype)
    bank.filter(np.ones((2, 3), dtype))
    zeros = np.zeros((2, 3), dtype)
    for _ in range(1500):
        y = bank.filter(zeros)
        state = bank.state_dict()
        assert _no_tiny(y) and _no_tiny(state["y1"]) and _no_tiny(state["y2"])
    assert not np.any(y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relevance_filters_reach_exact_zero(dtype: type) -> None:
    rel = Relevance(RelevanceConfig(lowpass=0.9, normalise=True, norm_decay=0.9))
    rel.bind(2, dtype=dtype)
    rel(np.ones(2, dtype))
    for _ in range(4000):
        r = rel(np.zeros(2, dtype))
        assert _no_tiny(rel.lowpassed) and _no_tiny(rel.mean_abs) and _no_tiny(r)
    assert not np.any(rel.lowpassed) and not np.any(rel.mean_abs)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_engine_flushes_like_the_reference(dtype: str) -> None:
    """An input pulse, then silence: both loops' states decay to exactly 0, bit for bit."""
    from sarlearn.engine import FastClosedLoop

    cfg = RunConfig().with_overrides(
        {"dtype": dtype, "rule.relevance.lowpass": 0.5, "rule.relevance.normalise": True,
         "rule.relevance.norm_decay": 0.5, "network.layers": [4, 2]}
    )  # fmt: skip
    fast = FastClosedLoop.from_config(cfg, 2)
    agent = pickle.loads(pickle.dumps(fast.agent))
    n = 900
    m = agent.bank.n_predictors  # sar's 72 mirror differences
    pred = np.zeros((n, 2, m))
    pred[:5] = np.random.default_rng(0).random((5, 2, m))
    err = np.zeros((n, 2))
    err[:5] = 1.0
    fast.step_agents(pred, err)
    for t in range(n):
        agent.step(err[t], pred[t])
    ref, eng = agent.bank.state_dict(), fast.agent.bank.state_dict()
    for key in ("y1", "y2", "u1"):
        np.testing.assert_array_equal(eng[key], ref[key], err_msg=key)
        assert not np.any(ref[key]), key
    rel_ref, rel_eng = agent.rule.relevance, fast.agent.rule.relevance
    np.testing.assert_array_equal(rel_eng.lowpassed, rel_ref.lowpassed)
    np.testing.assert_array_equal(rel_eng.mean_abs, rel_ref.mean_abs)
    assert not np.any(rel_ref.lowpassed) and not np.any(rel_ref.mean_abs)
