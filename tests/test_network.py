"""The population network: forward pass and caches, validation, seeding, dtype, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sarlearn.config import ConfigError, NetworkConfig
from sarlearn.errors import NonFiniteError, ShapeError
from sarlearn.stages.network.activations import get_activation
from sarlearn.stages.network.network import Network


def reference_forward(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Agent by agent, layer by layer, with plain 2-D numpy: outputs of every layer."""
    act = get_activation(net.activation.name)
    outs = []
    for k in range(net.population):
        v = x[k]
        layer_outs = []
        for i, w in enumerate(net.weights):
            h = w[k] @ v + (0 if net.biases is None else net.biases[i][k])
            v = act.f(h)
            layer_outs.append(v)
        outs.append(layer_outs)
    return [np.stack([o[i] for o in outs]) for i in range(net.n_layers)]


@pytest.mark.parametrize("activation", ["logistic", "tanh", "linear"])
@pytest.mark.parametrize("bias", [False, True])
def test_forward_matches_agent_by_agent_reference(activation: str, bias: bool) -> None:
    net = Network(7, [5, 4, 3], population=3, activation=activation, bias=bias,
                  zero_output=False, rng=0)  # fmt: skip
    if bias:
        for b in net.biases or []:
            b[...] = np.random.default_rng(1).normal(size=b.shape)
    x = np.random.default_rng(2).normal(size=(3, 7))
    y = net.forward(x)
    ref = reference_forward(net, x)
    np.testing.assert_allclose(y, ref[-1], rtol=1e-13, atol=1e-15)
    for i in range(net.n_layers):
        np.testing.assert_allclose(net.post[i], ref[i], rtol=1e-13, atol=1e-15)


def test_caches() -> None:
    net = Network(6, [4, 3, 2], population=2, zero_output=False, rng=0)
    x = np.random.default_rng(1).random((2, 6))
    y = net.forward(x)
    np.testing.assert_array_equal(net.layer_inputs[0], x)
    for i in range(1, net.n_layers):
        assert net.layer_inputs[i] is net.post[i - 1]
    for i in range(net.n_layers):
        h = np.einsum("poi,pi->po", net.weights[i], net.layer_inputs[i])
        np.testing.assert_allclose(net.pre[i], h, rtol=1e-14)
        np.testing.assert_array_equal(net.post[i], net.activation.f(net.pre[i]))
        np.testing.assert_array_equal(net.slopes[i], net.activation.slope(net.post[i]))
    assert y is not net.post[-1]  # a copy: later forward passes do not change it
    np.testing.assert_array_equal(y, net.outputs)
    x[...] = 0  # the cache does not alias the caller's input
    assert np.any(net.layer_inputs[0] != 0)


def test_sizes_and_shapes() -> None:
    net = Network(720, [10] * 10 + [2], population=5, rng=0)
    assert net.n_layers == 11 and net.n_outputs == 2 and not net.bias and net.biases is None
    assert net.weights[0].shape == (5, 10, 720)
    assert net.weights[-1].shape == (5, 2, 10)
    assert [p.shape for p in net.pre] == [(5, 10)] * 10 + [(5, 2)]
    assert net.forward(np.zeros((5, 720))).shape == (5, 2)


def test_bad_input_shape_names_expected_and_actual() -> None:
    net = Network(4, [3, 2], population=2, rng=0)
    with pytest.raises(ShapeError, match=r"expected shape \(2, 4\), got \(2, 5\)"):
        net.forward(np.zeros((2, 5)))
    with pytest.raises(ShapeError, match=r"got \(4,\)"):
        net.forward(np.zeros(4))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(bad: float) -> None:
    net = Network(4, [3, 2], population=2, rng=0)
    x = np.zeros((2, 4))
    x[1, 2] = bad
    with pytest.raises(NonFiniteError, match="input"):
        net.forward(x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_inputs": 0}, "n_inputs"),
        ({"n_inputs": 2.5}, "n_inputs"),
        ({"layers": []}, "at least the output layer"),
        ({"layers": [3, 0, 2]}, "positive integer"),
        ({"layers": [3, -1]}, "positive integer"),
        ({"population": 0}, "population"),
        ({"dtype": np.int32}, "float32 or float64"),
        ({"dtype": "float16"}, "float32 or float64"),
        ({"activation": "relu"}, "unknown activation"),
        ({"init": "he"}, "unknown init"),
        ({"init_gain": -1.0}, "init_gain"),
    ],
)
def test_impossible_configurations(kwargs: dict, message: str) -> None:
    args = {"n_inputs": 4, "layers": [3, 2], "population": 2, "rng": 0} | kwargs
    with pytest.raises(ConfigError, match=message):
        Network(**args)


def test_float32() -> None:
    net32 = Network(6, [5, 2], population=2, dtype=np.float32, zero_output=False, rng=0)
    net64 = Network(6, [5, 2], population=2, dtype="float64", zero_output=False, rng=0)
    x = np.random.default_rng(1).random((2, 6))
    y32 = net32.forward(x)
    assert y32.dtype == np.float32
    assert all(a.dtype == np.float32 for a in [*net32.weights, *net32.pre, *net32.slopes])
    np.testing.assert_allclose(y32, net64.forward(x), rtol=1e-5, atol=1e-6)


def test_from_config_equals_direct_construction() -> None:
    cfg = NetworkConfig(layers=[4, 3], activation="tanh", bias=True, readout=[1, 1, 1])
    a = Network.from_config(cfg, 6, population=2, rng=np.random.default_rng(3))
    b = Network(6, [4, 3], population=2, activation="tanh", bias=True,
                rng=np.random.default_rng(3))  # fmt: skip
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.config_dict() == b.config_dict()


def test_population_member_equals_single_agent_run() -> None:
    seeds = [5, 6, 7]
    pop = Network(8, [4, 3, 2], population=3, seeds=seeds, zero_output=False)
    x = np.random.default_rng(0).random((3, 8))
    y = pop.forward(x)
    for k, s in enumerate(seeds):
        one = Network(8, [4, 3, 2], population=1, seeds=[s], zero_output=False)
        for wp, wo in zip(pop.weights, one.weights, strict=True):
            np.testing.assert_array_equal(wp[k], wo[0])
        np.testing.assert_array_equal(y[k], one.forward(x[k : k + 1])[0])


def test_shared_generator_agent_zero_matches_single_run() -> None:
    pop = Network(8, [4, 2], population=3, rng=np.random.default_rng(9))
    one = Network(8, [4, 2], population=1, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(pop.weights[0][0], one.weights[0][0])
    assert not np.array_equal(pop.weights[0][0], pop.weights[0][1])  # agents differ


def test_weight_change() -> None:
    net = Network(5, [4, 3], population=2, rng=0)
    np.testing.assert_array_equal(net.weight_change(), np.zeros((2, 2)))
    delta = np.random.default_rng(1).normal(size=net.weights[1].shape)
    net.weights[1] += delta
    wc = net.weight_change()
    assert wc.shape == (2, 2)
    np.testing.assert_array_equal(wc[:, 0], 0.0)
    np.testing.assert_allclose(wc[:, 1], np.linalg.norm(delta.reshape(2, -1), axis=1))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_load_round_trip(tmp_path: Path, bias: bool, dtype: type) -> None:
    net = Network(6, [4, 3], population=2, activation="tanh", bias=bias, dtype=dtype,
                  zero_output=False, rng=0)  # fmt: skip
    net.weights[0] += 0.1  # moved away from the init
    if net.biases is not None:
        net.biases[1] += 0.2
    x = np.random.default_rng(1).random((2, 6))
    net.forward(x)
    path = tmp_path / "net.npz"
    net.save(path)
    assert path.exists()
    loaded = Network.load(path)
    assert loaded.config_dict() == net.config_dict()
    for name in ["weights", "initial_weights", "pre", "post", "slopes"]:
        for a, b in zip(getattr(net, name), getattr(loaded, name), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.layer_inputs[0], x.astype(dtype))
    np.testing.assert_array_equal(loaded.weight_change(), net.weight_change())
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


def test_save_keeps_the_exact_path_and_load_checks(tmp_path: Path) -> None:
    net = Network(3, [2], rng=0)
    net.save(tmp_path / "weights.bin")
    assert (tmp_path / "weights.bin").exists()
    assert not (tmp_path / "weights.bin.npz").exists()
    with pytest.raises(ConfigError, match="not found"):
        Network.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ConfigError, match="not a saved sarlearn network"):
        Network.load(tmp_path / "other.npz")
