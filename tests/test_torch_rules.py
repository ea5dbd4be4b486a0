"""sarlearn.torch: the rules move weights the documented way; convert round-trips; errors."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from sarlearn.errors import ConfigError, SarlearnError  # noqa: E402
from sarlearn.torch import (  # noqa: E402
    MLP,
    RULE_NAMES,
    LeNet,
    SignalConv2d,
    SignalLinear,
    convert,
    feedback_context,
    revert,
    rule_of,
    set_relevance,
    watch_output,
)


def _grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


def _two_layers() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))


def test_sar_step_is_relevance_times_sign_path_by_hand() -> None:
    model = convert(_two_layers(), "sar")
    l1, l2 = model[0], model[2]
    x = torch.randn(2, 5)
    e = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])  # the teaching error (target - y)
    h1 = l1(x).detach()
    y = model(x)
    y.backward(-e)  # dL/dy = -e
    r = e.abs().mean(1)  # per-sample relevance: mean |e_k|
    s2 = torch.sign(e)  # linear output: f' = 1
    s1 = torch.sign((s2 @ l2.weight.detach()) * (1 - torch.tanh(h1) ** 2))
    x1 = torch.tanh(h1)
    # gradient descent W -= lr grad is W += lr r s x^T: grad = -(r s)^T x
    torch.testing.assert_close(l2.weight.grad, -(r[:, None] * s2).T @ x1)
    torch.testing.assert_close(l1.weight.grad, -(r[:, None] * s1).T @ x)
    torch.testing.assert_close(l2.bias.grad, -(r[:, None] * s2).sum(0))
    # the first sample's 0-error output neuron gets no update from that sample
    assert s2[1, 0] == 0


def test_sign_rules_ignore_the_error_size_and_relevance_scales_it() -> None:
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    for rule, expected_ratio in (("sign-only", 1.0), ("sar", 10.0), ("bp", 10.0)):
        grads = []
        for scale in (1.0, 10.0):
            model = convert(_two_layers(), rule)
            (scale * F.cross_entropy(model(x), y)).backward()
            grads.append(_grads(model))
        for a, b in zip(*grads, strict=True):
            torch.testing.assert_close(b, expected_ratio * a)


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_every_rule_moves_the_output_layer_downhill(rule: str) -> None:
    """Every rule's output-layer update has a positive inner product with backprop's (with one
    output, relevance-only's broadcast is that output's own error), and every layer learns."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    x, target = torch.randn(16, 6), torch.randn(16, 1)
    bp = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    bp.load_state_dict(model.state_dict())
    F.mse_loss(bp(x), target).backward()
    model = convert(model, rule)
    F.mse_loss(model(x), target).backward()
    out_rule, out_bp = model[2].weight.grad.flatten(), bp[2].weight.grad.flatten()
    assert float(out_rule @ out_bp) > 0
    assert all(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_a_full_image_conv_net_learns_exactly_like_its_linear_twin(rule: str) -> None:
    """A 3x3 convolution on a 3x3 image is a Linear layer: same grads for every rule (checks
    the convolution's weight gradient, its backward path and its feedback matrices)."""
    torch.manual_seed(1)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(9, 4), nn.Tanh(), nn.Linear(4, 2))
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Conv2d(4, 2, 1), nn.Flatten()).double()
    lin = lin.double()
    with torch.no_grad():
        conv[0].weight.copy_(lin[1].weight.view(4, 1, 3, 3))
        conv[0].bias.copy_(lin[1].bias)
        conv[2].weight.copy_(lin[3].weight.view(2, 4, 1, 1))
        conv[2].bias.copy_(lin[3].bias)
    lin, conv = convert(lin, rule, seed=5), convert(conv, rule, seed=5)
    x, y = torch.randn(7, 1, 3, 3, dtype=torch.float64), torch.randint(0, 2, (7,))
    F.cross_entropy(lin(x), y).backward()
    F.cross_entropy(conv(x), y).backward()
    for a, b in zip(_grads(lin), _grads(conv), strict=True):
        torch.testing.assert_close(a, b.reshape(a.shape))


def test_bp_through_the_converted_layers_is_autograd() -> None:
    torch.manual_seed(0)
    ref = LeNet(10, 1, 28).double()
    model = LeNet(10, 1, 28).double()
    model.load_state_dict(ref.state_dict())
    convert(model, "bp")
    x, y = torch.randn(4, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (4,))
    F.cross_entropy(ref(x), y).backward()
    F.cross_entropy(model(x), y).backward()
    for a, b in zip(_grads(ref), _grads(model), strict=True):
        torch.testing.assert_close(a, b)


def test_convert_swaps_only_linear_and_conv_and_keeps_the_parameters() -> None:
    model = LeNet(10, 1, 8)
    before = dict(model.named_modules())
    params = [id(p) for p in model.parameters()]
    keys = set(model.state_dict())
    out = convert(model, "sar")
    assert out is model and rule_of(model) == "sar"
    for name, m in model.named_modules():
        old = before[name]
        if type(old) in (nn.Linear, nn.Conv2d):
            assert isinstance(m, SignalLinear | SignalConv2d) and isinstance(m, type(old))
        else:
            assert m is old
    assert [id(p) for p in model.parameters()] == params
    assert set(model.state_dict()) == keys
    revert(model)
    assert rule_of(model) is None
    assert {type(m) for m in model.modules()} == {type(m) for m in before.values()}
    assert [id(p) for p in model.parameters()] == params


def test_state_dict_round_trip_with_lazy_dfa_feedback() -> None:
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    torch.manual_seed(0)
    a = convert(LeNet(10, 1, 8), "dfa", seed=1)
    F.cross_entropy(a(x), y).backward()  # draws the direct feedback matrices
    state = a.state_dict()
    assert any(k.endswith("direct_feedback") for k in state)
    b = convert(LeNet(10, 1, 8), "dfa", seed=99)  # other seed: only the loaded state counts
    b.load_state_dict(state)
    for p in a.parameters():
        p.grad = None
    F.cross_entropy(a(x), y).backward()
    F.cross_entropy(b(x), y).backward()
    for ga, gb in zip(_grads(a), _grads(b), strict=True):
        torch.testing.assert_close(ga, gb)
    # a plain model loads the converted weights (the feedback buffers are extra keys)
    plain = LeNet(10, 1, 8)
    missing, _ = plain.load_state_dict(state, strict=False)
    assert missing == []


def test_convert_twice_and_a_single_layer() -> None:
    model = convert(convert(MLP(4, 2, 3, 1), "fa"), "sar")
    assert rule_of(model) == "sar"
    assert all(m.rule.name == "sar" for m in model.modules() if isinstance(m, SignalLinear))
    single = convert(nn.Linear(3, 2), "sign-only")
    assert isinstance(single, SignalLinear)
    single(torch.randn(4, 3)).sum().backward()
    assert single.weight.grad is not None


def test_clear_errors() -> None:
    with pytest.raises(ConfigError, match="known rules"):
        convert(MLP(4, 2), "backprop")
    with pytest.raises(ConfigError, match=r"no nn\.Linear"):
        convert(nn.Sequential(nn.ReLU()), "sar")
    with pytest.raises(ConfigError, match="padding_mode"):
        convert(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")), "sar")

    class DictOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = MLP(4, 3, 5, 1)

        def forward(self, x):
            return {"logits": self.net(x)}

    model = convert(DictOut(), "dfa")
    x, y = torch.randn(2, 4), torch.tensor([0, 1])
    with pytest.raises(SarlearnError, match="watch_output"):
        F.cross_entropy(model(x)["logits"], y).backward()
    logits = watch_output(model, model(x)["logits"])
    F.cross_entropy(logits, y).backward()
    assert model.net[1].weight.grad.abs().sum() > 0


def test_external_relevance_replaces_the_error_magnitude() -> None:
    model = convert(_two_layers(), "sar")
    x, y = torch.randn(4, 5), torch.randint(0, 3, (4,))
    set_relevance(model, torch.tensor([0.0, 0.0, 1.0, 0.0]))
    F.cross_entropy(model(x), y).backward()
    only_third = _grads(model)
    for p in model.parameters():
        p.grad = None
    set_relevance(model, torch.tensor([0.0, 0.0, 1.0, 0.0]) * 2)
    F.cross_entropy(model(x), y).backward()
    for a, b in zip(only_third, _grads(model), strict=True):
        torch.testing.assert_close(b, 2 * a)
    assert feedback_context(model).relevance.tolist() == [0.0, 0.0, 2.0, 0.0]
    with pytest.raises(ValueError, match=">= 0"):
        set_relevance(model, torch.tensor([-1.0, 0.0, 0.0, 0.0]))
    set_relevance(model, torch.ones(3))
    with pytest.raises(SarlearnError, match=r"\(4,\)"):
        F.cross_entropy(model(x), y).backward()


def test_relevance_only_cannot_learn_from_a_softmax_error() -> None:
    """Documented limitation: the softmax error sums to 0 over the classes, so its one global
    sign is 0 and relevance-only gets no update from cross-entropy."""
    model = convert(_two_layers(), "relevance-only")
    x, y = torch.randn(4, 5), torch.randint(0, 3, (4,))
    F.cross_entropy(model(x), y).backward()
    assert all(float(g.abs().max()) < 1e-6 for g in _grads(model))


def test_subclasses_of_linear_and_conv2d_are_converted_and_restored() -> None:
    class MyLinear(nn.Linear):
        """A subclass that only adds an attribute keeps nn.Linear's forward."""

        tag = "mine"

    class Scaled(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    model = nn.Sequential(MyLinear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    first = model[0]
    convert(model, "fa")
    assert isinstance(model[0], SignalLinear) and model[0].weight is first.weight
    model(torch.randn(5, 4)).sum().backward()
    assert model[0].weight.grad is not None
    revert(model)
    assert model[0] is first and model[0].tag == "mine"
    with pytest.warns(UserWarning, match=r"0 \(Scaled\)"):
        convert(nn.Sequential(Scaled(4, 3), nn.Tanh(), nn.Linear(3, 2)), "sar")


def test_weighted_layers_left_on_backprop_are_named_in_a_warning() -> None:
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2), nn.Flatten(), nn.Linear(2 * 6, 2))
    with pytest.warns(UserWarning, match=r"0 \(Conv1d\)") as caught:
        convert(model, "dfa")
    assert "BatchNorm" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert(MLP(4, 2, 3, 1), "sar")  # nothing left behind: no warning


def test_every_recipe_is_a_torch_rule_read_off_its_recipe() -> None:
    """The torch rules are the recipes under the same names: the sign and the path of each
    come from its recipe, not from a second table of names."""
    from sarlearn.recipes import RECIPES, Carrier, SignAt
    from sarlearn.torch import RULES, get_rule

    assert tuple(RECIPES) == RULE_NAMES
    paths = {Carrier.WEIGHTS: "weights", Carrier.WEIGHT_SIGNS: "sign-weights",
             Carrier.FEEDBACK: "feedback", Carrier.DIRECT_FEEDBACK: "direct",
             Carrier.NONE: "broadcast"}  # fmt: skip
    for name, recipe in RECIPES.items():
        rule = get_rule(name)
        assert rule is RULES[name] and rule.recipe is recipe and rule.name == name
        assert rule.uses_relevance == recipe.relevance
        assert rule.path == paths[recipe.carrier]
        assert (rule.update == "gradient") == (recipe.sign_at is SignAt.NONE)
        assert (rule.carries == "sign") == (recipe.sign_at in (SignAt.PATH, SignAt.OUTPUT))
    assert get_rule("sar-exact").update == "output-sign"


def test_bp_is_an_alias_of_gdm_and_unknown_names_list_the_known_ones() -> None:
    from sarlearn.torch import get_rule

    assert get_rule("bp") is get_rule("gdm")
    model = convert(_two_layers(), "bp")
    assert rule_of(model) == "gdm"
    with pytest.raises(ConfigError, match=r"unknown rule 'backprop'.*gdm, sar.*bp = gdm"):
        convert(_two_layers(), "backprop")


def test_a_recipe_the_layers_cannot_run_is_refused_naming_why(monkeypatch) -> None:
    from sarlearn.recipes import RECIPES, SignAt
    from sarlearn.torch import rules

    monkeypatch.delitem(rules._SIGN, SignAt.OUTPUT)
    with pytest.raises(ConfigError, match=r"'sar-exact' takes its sign output.*no backward pass"):
        rules.torch_rule(RECIPES["sar-exact"])


def test_sar_exact_takes_the_sign_at_the_output_only() -> None:
    """sar-exact: the output layer steps by r sign(g); the signed signal travels back as a
    number, and the hidden layer steps by r times what arrives."""
    model = convert(_two_layers(), "sar-exact")
    l1, l2 = model[0], model[2]
    x = torch.randn(2, 5)
    e = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    h1 = l1(x).detach()
    model(x).backward(-e)
    r = e.abs().mean(1)
    s2 = torch.sign(e)
    d1 = (s2 @ l2.weight.detach()) * (1 - torch.tanh(h1) ** 2)  # a number, not its sign
    torch.testing.assert_close(l2.weight.grad, -(r[:, None] * s2).T @ torch.tanh(h1))
    torch.testing.assert_close(l1.weight.grad, -(r[:, None] * d1).T @ x)


def test_classify_needs_lr_and_loss_for_a_rule_not_tuned_on_digits(monkeypatch) -> None:
    from sarlearn.torch import train
    from sarlearn.torch.train import ClassifyConfig

    assert set(train.DEFAULT_LR) == set(train.DEFAULT_LOSS) == set(RULE_NAMES)  # all tuned
    assert ClassifyConfig(rule="bp").learning_rate == train.DEFAULT_LR["gdm"]
    monkeypatch.delitem(train.DEFAULT_LR, "sar-exact")
    with pytest.raises(ConfigError, match="no tuned rate and loss on digits"):
        ClassifyConfig(rule="sar-exact").check()
    ClassifyConfig(rule="sar-exact", lr=1e-3, loss="hinge").check()
