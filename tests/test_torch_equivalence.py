"""One definition, two executions: a step of ``sarlearn.torch`` equals a step of the numpy rule.

On the closed-loop network's shapes (720 inputs, 10 hidden layers of 10 shifted-logistic units,
2 outputs; biases on; output layer drawn so every layer learns), the same weights, inputs and
error: the numpy rule does ``W += lr d x^T``; torch gets ``dL/dy = -e`` (the loss
``L = 1/2 sum_k e_k^2`` with ``e = target - y``), and SGD does ``W -= lr grad``. The weights
after each of three steps agree to float64 round-off, for every rule (the torch rules are the
recipes, under the same names) and both error shapes.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sarlearn.config import RelevanceConfig  # noqa: E402
from sarlearn.stages.network.network import Network  # noqa: E402
from sarlearn.stages.rules import make_rule  # noqa: E402
from sarlearn.torch import RULE_NAMES, ShiftedLogistic, convert  # noqa: E402

N_IN, LAYERS, P = 720, [10] * 10 + [2], 3


def _torch_agent(net: Network, k: int, rule: str, relevance: RelevanceConfig, np_rule):
    mods: list[torch.nn.Module] = []
    for i, w in enumerate(net.weights):
        lin = torch.nn.Linear(w.shape[2], w.shape[1], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w[k]))
            lin.bias.copy_(torch.from_numpy(net.biases[i][k]))
        mods += [lin, ShiftedLogistic()]
    model = convert(
        torch.nn.Sequential(*mods),
        rule,
        gain=relevance.gain,
        normalise=relevance.normalise,
        norm_decay=relevance.norm_decay,
    )
    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    for i, layer in enumerate(layers[1:], start=1):  # the numpy rule's fixed matrices
        if rule == "fa":
            layer.feedback = torch.from_numpy(np_rule.feedback[i - 1][k].T.copy())
        if rule == "dfa":
            layer.direct_feedback = torch.from_numpy(np_rule.feedback[i - 1][k].T.copy())
    return model, layers


@pytest.mark.parametrize("error_shape", ["scalar", "per-output"])
@pytest.mark.parametrize("normalise", [False, True])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_three_steps_equal_the_numpy_rule(rule: str, normalise: bool, error_shape: str) -> None:
    rng = np.random.default_rng(7)
    net = Network(N_IN, LAYERS, population=P, seeds=[1, 2, 3], zero_output=False, bias=True)
    relevance = RelevanceConfig(gain=0.7, normalise=normalise, norm_decay=0.9)
    lr = 0.05
    np_rule = make_rule(rule, lr=lr, relevance=relevance, seeds=[4, 5, 6])
    np_rule.bind(net)
    agents = [_torch_agent(net, k, rule, relevance, np_rule) for k in range(P)]
    opts = [torch.optim.SGD(m.parameters(), lr=lr) for m, _ in agents]
    for _ in range(3):
        x = rng.random((P, N_IN)) * (rng.random((P, N_IN)) < 0.4)
        e = rng.normal(0, 5, (P,) if error_shape == "scalar" else (P, 2))
        net.forward(x)
        np_rule.step(net, e)
        for k, ((model, _), opt) in enumerate(zip(agents, opts, strict=True)):
            opt.zero_grad()
            y = model(torch.from_numpy(x[k : k + 1]))
            e_k = np.broadcast_to(e[k], (2,)).copy()
            y.backward(-torch.from_numpy(e_k)[None, :])  # dL/dy = -e
            opt.step()
    for k, (_, layers) in enumerate(agents):
        for i, layer in enumerate(layers):
            np.testing.assert_allclose(
                layer.weight.detach().numpy(), net.weights[i][k], rtol=1e-9, atol=1e-12
            )
            np.testing.assert_allclose(
                layer.bias.detach().numpy(), net.biases[i][k], rtol=1e-9, atol=1e-12
            )
    # the test has teeth: every layer moved
    moved = [np.abs(net.weights[i] - net.initial_weights[i]).max() for i in range(len(LAYERS))]
    if rule != "relevance-only" or error_shape == "scalar":
        assert min(moved) > 0
