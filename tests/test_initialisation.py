"""Weight inits: distributions, the silent untrained network, activity through depth, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import ConfigError
from sarlearn.stages.filters.bank import ResonatorBank
from sarlearn.stages.network.initialisation import (
    SCALED_KAPPA,
    agent_generators,
    default_gain,
    init_layer,
    init_weights,
)
from sarlearn.stages.network.network import Network

DEEP = [10] * 10 + [2]


def filter_bank_inputs(steps: int = 120, seed: int = 0) -> np.ndarray:
    """Inputs like the simulation's: 3 rows of 48 floor-darkness sensors (spacing 0.25) over
    a 3-unit-wide line that wanders sideways, expanded by the default resonator bank."""
    rng = np.random.default_rng(seed)
    y = (np.arange(48) - 23.5) * 0.25
    bank = ResonatorBank(144, 1)
    out, c = [], 0.0
    for t in range(steps):
        c = 0.95 * c + rng.normal(0, 0.6)
        centres = c + np.array([0.0, 0.3, 0.6]) * np.sin(t / 20)
        dist = np.abs(y[None, :] - centres[:, None])
        dark = np.clip((1.5 - dist) / 0.25 + 0.5, 0, 1).reshape(1, 144)
        out.append(bank.filter(dark)[0])
    return np.array(out[40:])  # (steps - 40, 720), after the filters settled


def layer_activity(init: str, gain: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Std of every hidden layer's activity and mean f'/f'(0), over 60 nets and many inputs."""
    P = 60
    net = Network(720, DEEP, population=P, init=init, init_gain=gain, zero_output=False, rng=1)
    posts: list[list[np.ndarray]] = [[] for _ in DEEP]
    slopes: list[list[np.ndarray]] = [[] for _ in DEEP]
    for x in filter_bank_inputs()[::4]:
        net.forward(np.broadcast_to(x, (P, 720)))
        for i in range(len(DEEP)):
            posts[i].append(net.post[i].copy())
            slopes[i].append(net.slopes[i].copy())
    std = np.array([np.std(p) for p in posts])
    slope = np.array([np.mean(s) for s in slopes]) / 0.25
    return std, slope


def test_inputs_look_like_the_filter_bank() -> None:
    x = filter_bank_inputs()
    assert x.shape[1] == 720
    assert 0.1 < x.mean() < 0.4  # a dark line covers about a quarter of each row
    assert (np.abs(x) < 0.01).mean() > 0.4  # many inputs are (near) zero


def test_scaled_init_keeps_activity_alive_at_depth_10() -> None:
    std, slope = layer_activity("scaled")
    layer10 = 9
    assert 0.1 < std[layer10] < 0.35, std  # neither vanishing nor saturated (max is 0.5)
    assert slope[layer10] > 0.7, slope  # mostly in the linear part of f
    assert std[layer10] > 0.5 * std[2]  # roughly depth-independent after the first layers


def test_naive_symmetric_init_loses_its_activity() -> None:
    std, _ = layer_activity("symmetric")
    assert std[9] < 1e-2, std
    assert std[9] < 0.01 * std[1]  # shrinks ~2x per layer


def test_uniform_init_saturates_into_a_constant() -> None:
    _, slope = layer_activity("uniform")
    assert slope[0] < 1e-3  # the first layer is pinned at +0.5 whatever the input


@pytest.mark.parametrize("init", ["scaled", "uniform", "symmetric"])
def test_zero_output_makes_the_untrained_network_silent(init: str) -> None:
    net = Network(720, DEEP, population=4, init=init, zero_output=True, rng=0)
    x = filter_bank_inputs()[:4]
    y = net.forward(x)
    np.testing.assert_array_equal(y, 0.0)
    steering = y @ np.array([1.0, 2.0])
    np.testing.assert_array_equal(steering, 0.0)
    assert np.any(net.weights[0] != 0)  # only the output layer is zero


def test_init_distributions() -> None:
    rng = np.random.default_rng(0)
    w = init_layer("scaled", 400, 100, rng, gain=2.0)
    assert abs(w.std() - 2.0 / np.sqrt(100)) < 0.005 and abs(w.mean()) < 0.005
    u = init_layer("uniform", 50, 40, rng, gain=0.3)
    assert u.min() >= 0 and u.max() < 0.3 and u.max() > 0.29
    s = init_layer("symmetric", 50, 40, rng, gain=0.3)
    assert s.min() >= -0.3 and s.max() < 0.3 and s.min() < -0.29


def test_default_gains() -> None:
    assert default_gain("scaled", "logistic") == pytest.approx(SCALED_KAPPA * 4)
    assert default_gain("scaled", "tanh") == pytest.approx(SCALED_KAPPA)
    assert default_gain("scaled", "linear") == 1.0
    assert default_gain("uniform") == default_gain("symmetric") == 1.0
    with pytest.raises(ConfigError, match="unknown init 'he'"):
        default_gain("he")


def test_init_weights_shapes_dtype_and_zero_output() -> None:
    rngs = agent_generators(np.random.default_rng(0), 3)
    ws = init_weights("scaled", 5, [4, 2], rngs, dtype=np.float32)
    assert [w.shape for w in ws] == [(3, 4, 5), (3, 2, 4)]
    assert all(w.dtype == np.float32 for w in ws)
    np.testing.assert_array_equal(ws[-1], 0.0)


def test_zero_output_does_not_change_the_other_agents_weights() -> None:
    a = init_weights("scaled", 5, [4, 2], agent_generators(7, 3), zero_output=True)
    b = init_weights("scaled", 5, [4, 2], agent_generators(7, 3), zero_output=False)
    np.testing.assert_array_equal(a[0], b[0])


def test_agent_generators_per_agent_seeds_are_independent_of_population() -> None:
    pop = init_weights("scaled", 6, [3, 2], agent_generators(seeds=[11, 12, 13], population=3))
    for k, s in enumerate([11, 12, 13]):
        one = init_weights("scaled", 6, [3, 2], agent_generators(seeds=[s], population=1))
        for w_pop, w_one in zip(pop, one, strict=True):
            np.testing.assert_array_equal(w_pop[k], w_one[0])


def test_agent_generators_errors() -> None:
    with pytest.raises(ConfigError, match="seeds has 2 entries but population is 3"):
        agent_generators(seeds=[1, 2], population=3)
    with pytest.raises(ConfigError, match="either rng or seeds"):
        agent_generators(np.random.default_rng(0), 1, seeds=[1])
    with pytest.raises(ConfigError, match="sequence of 3 Generators"):
        agent_generators([np.random.default_rng(0)], 3)


def test_init_align_turns_hidden_rows_keeps_norms_and_the_other_layers() -> None:
    plain = Network(720, [10] * 4 + [2], population=3, seeds=[0, 1, 2])
    turned = Network(720, [10] * 4 + [2], population=3, seeds=[0, 1, 2], init_align=0.9)
    for i, (a, b) in enumerate(zip(plain.weights, turned.weights, strict=True)):
        np.testing.assert_allclose(np.linalg.norm(b, axis=-1), np.linalg.norm(a, axis=-1))
        if i in (0, len(plain.weights) - 1):  # fed by the predictors; the output layer
            np.testing.assert_array_equal(a, b)
        else:
            cos = b @ np.ones(10) / np.sqrt(10) / np.linalg.norm(b, axis=-1)
            assert cos.min() > 0.95 and (np.linalg.norm(a, axis=-1) > 1).all()
    one = Network(720, [10] * 4 + [2], seeds=[1], init_align=0.9)
    for a, b in zip(turned.weights, one.weights, strict=True):
        np.testing.assert_array_equal(a[1], b[0])  # per agent, whatever the population


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_init_align_outside_0_1_is_a_config_error(bad: float) -> None:
    from sarlearn.config import RunConfig

    with pytest.raises(ConfigError, match="init_align"):
        RunConfig().with_overrides({"network.init_align": bad})
    with pytest.raises(ConfigError, match="init_align"):
        Network(720, [10, 10, 2], init_align=bad)


@pytest.mark.parametrize(
    ("overrides", "align"),
    [
        ({}, 0.9),  # sar's default step bounds its hidden rows: the aligned start goes with it
        ({"rule.name": "gdm"}, 0.0),  # no hidden bound: the init unchanged
        ({"rule.hidden_weight_bound": float("inf")}, 0.0),
        ({"rule.name": "gdm", "rule.hidden_weight_bound": 1.5}, 0.9),
        ({"network.init_align": 0.0}, 0.0),  # a set value wins
        ({"rule.name": "gdm", "network.init_align": 0.5}, 0.5),
    ],
)
def test_init_align_in_force_is_tied_to_the_hidden_bound(overrides: dict, align: float) -> None:
    from sarlearn.agent import ClosedLoopAgent
    from sarlearn.config import ALIGN_WITH_HIDDEN_BOUND, RunConfig

    assert ALIGN_WITH_HIDDEN_BOUND == 0.9
    cfg = RunConfig().with_overrides(overrides)
    assert cfg.init_align == align
    agent = ClosedLoopAgent.from_config(cfg, n_predictors=144)
    assert agent.network.init_align == align
    want = Network(720, DEEP, rng=np.random.default_rng(cfg.seed).spawn(2)[0], init_align=align)
    for a, b in zip(agent.network.weights, want.weights, strict=True):
        np.testing.assert_array_equal(a, b)
