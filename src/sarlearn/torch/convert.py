"""``convert(model, rule=...)``: swap a model's Linear and Conv2d layers for ones that learn by
a rule, leaving everything else (activations, pooling, normalisation, parameters) alone.

    model = convert(model, "sar")              # in place; returns the model
    opt = torch.optim.Adam(model.parameters())  # before or after: the Parameters are the same
    loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from sarlearn.errors import ConfigError
from sarlearn.torch.context import FeedbackContext
from sarlearn.torch.layers import SignalConv2d, SignalLinear
from sarlearn.torch.rules import get_rule

_ATTR = "_sarlearn_feedback"


def convert(
    model: nn.Module,
    rule: str = "sar",
    *,
    seed: int = 0,
    gain: float = 1.0,
    normalise: bool = False,
    norm_decay: float = 0.99,
) -> nn.Module:
    """Make every ``nn.Linear`` and ``nn.Conv2d`` of ``model`` learn by ``rule``.

    Subclasses of the two count too when they keep the base class's ``forward`` (a subclass
    with its own ``forward`` is left alone, with a warning). Any other layer with weights
    (``Conv1d``, ``Embedding``, ``LSTM``, ...; normalisation layers excepted) stays on backprop:
    a ``UserWarning`` names them, since their backward pass transports weights.

    The layers are replaced in place by :class:`~sarlearn.torch.layers.SignalLinear` /
    :class:`~sarlearn.torch.layers.SignalConv2d`, which hold the *same* Parameter objects (an
    optimiser built before the call keeps working; ``state_dict`` keys are unchanged, plus the
    fixed feedback buffers of ``fa``/``dfa``). A model converted before is reverted first.

    Args:
        model: any module; its forward must return the tensor the loss is computed from for the
            rules that need the output error (``sar``, ``sar-local``, ``sar-exact``,
            ``relevance-only``, ``dfa``), otherwise call :func:`watch_output` on it.
        rule: one of :data:`sarlearn.torch.RULE_NAMES` (the recipes' names) or an alias
            (:data:`sarlearn.torch.ALIASES`: ``bp`` = ``gdm``).
        seed: seed of the fixed random feedback matrices (``fa``, ``dfa``); layer k (in
            module order) uses ``seed * 1000 + k``.
        gain, normalise, norm_decay: the relevance (see :mod:`sarlearn.torch.context`).

    Returns:
        the model (a new module only when ``model`` itself is a single Linear/Conv2d layer).

    Raises:
        ConfigError: unknown rule, a Conv2d with a padding mode other than 'zeros', or a model
            without any Linear/Conv2d layer.
    """
    spec = get_rule(rule)
    if not (gain >= 0 and 0 <= norm_decay < 1):
        raise ConfigError(f"need gain >= 0 and 0 <= norm_decay < 1, got {gain}, {norm_decay}")
    model = revert(model)
    context = FeedbackContext(spec, gain=gain, normalise=normalise, norm_decay=norm_decay)
    counter = iter(range(1 << 30))

    def swap(layer: nn.Module) -> nn.Module:
        return _convert_layer(layer, spec, context, seed * 1000 + next(counter))

    if _convertible(model):
        model = swap(model)
    else:
        targets = [(name, m) for name, m in model.named_modules() if _convertible(m)]
        if not targets:
            raise ConfigError("the model has no nn.Linear or nn.Conv2d layer to convert")
        for name, layer in targets:
            _set_submodule(model, name, swap(layer))
    _warn_unconverted(model)
    handle = model.register_forward_hook(context.output_hook)
    setattr(model, _ATTR, (context, handle))
    return model


def revert(model: nn.Module) -> nn.Module:
    """Undo :func:`convert`: plain ``nn.Linear``/``nn.Conv2d`` with the same Parameters (the
    feedback buffers are dropped). A model that was never converted is returned unchanged."""
    if isinstance(model, SignalLinear | SignalConv2d):
        model = _restore(model)
    for name, m in list(model.named_modules()):
        if name and isinstance(m, SignalLinear | SignalConv2d):
            _set_submodule(model, name, _restore(m))
    state = model.__dict__.pop(_ATTR, None)
    if state is not None:
        state[1].remove()
    return model


def feedback_context(model: nn.Module) -> FeedbackContext:
    """The shared context (output error, relevance) of a converted model."""
    state = getattr(model, _ATTR, None)
    if state is None:
        raise ConfigError("the model was not converted with sarlearn.torch.convert")
    return state[0]


def set_relevance(model: nn.Module, relevance: torch.Tensor) -> None:
    """Use ``relevance`` (batch,) as r in the next backward pass (replaces phi(|e|))."""
    feedback_context(model).set_relevance(relevance)


def watch_output(model: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """Take ``output`` as the model's output (for models whose forward does not return the
    tensor the loss uses). Returns ``output``."""
    output.register_hook(feedback_context(model).on_output_grad)
    return output


def rule_of(model: nn.Module) -> str | None:
    """The rule a model was converted to, or None."""
    state = getattr(model, _ATTR, None)
    return None if state is None else state[0].rule.name


# -- helpers ------------------------------------------------------------------------------------


_BASES = (nn.Linear, nn.Conv2d)
_ORIGINAL = "_sarlearn_original"
#: Layers with parameters that need no weight transport (per-feature scales and shifts).
_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
)


def _convertible(m: nn.Module) -> bool:
    """An ``nn.Linear`` / ``nn.Conv2d`` or a subclass that keeps the base's ``forward``
    (not already converted, not lazy)."""
    if isinstance(m, (SignalLinear, SignalConv2d, nn.modules.lazy.LazyModuleMixin)):
        return False
    return any(isinstance(m, b) and type(m).forward is b.forward for b in _BASES)


def _warn_unconverted(model: nn.Module) -> None:
    """Warn about layers with their own weights that keep learning by backprop."""
    left = [
        f"{name or '(model)'} ({type(m).__name__})"
        for name, m in model.named_modules()
        if not isinstance(m, (SignalLinear, SignalConv2d, *_NORMS))
        and any(True for _ in m.parameters(recurse=False))
    ]
    if left:
        warnings.warn(
            f"these layers have weights but stay on backprop (only nn.Linear and nn.Conv2d "
            f"learn by the rule): {', '.join(left)}",
            UserWarning,
            stacklevel=3,
        )


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def _conv_padding(layer: nn.Conv2d) -> tuple[int, int]:
    if layer.padding_mode != "zeros":
        raise ConfigError(
            f"Conv2d with padding_mode={layer.padding_mode!r} is not supported (only 'zeros')"
        )
    p = layer.padding
    if p == "valid":
        return (0, 0)
    if p == "same":
        total = [d * (k - 1) for d, k in zip(layer.dilation, layer.kernel_size, strict=True)]
        if any(t % 2 for t in total) or any(s != 1 for s in layer.stride):
            raise ConfigError("Conv2d padding='same' with an even kernel is not supported")
        return (total[0] // 2, total[1] // 2)
    return tuple(p)  # type: ignore[return-value]


def _share(new: nn.Module, old: nn.Module) -> nn.Module:
    new.weight = old.weight
    new.bias = old.bias
    new.train(old.training)
    return new


def _convert_layer(layer: nn.Module, spec: Any, context: FeedbackContext, seed: int) -> nn.Module:
    w = layer.weight
    if isinstance(layer, nn.Linear):
        new: Any = SignalLinear(
            layer.in_features, layer.out_features, bias=layer.bias is not None, device="meta"
        )
    else:
        new = SignalConv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            stride=layer.stride,
            padding=_conv_padding(layer),
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias is not None,
            device="meta",
        )
    _share(new, layer)
    new.setup(spec, context, seed)
    assert new.weight is w
    if type(layer) not in _BASES:
        # A subclass: revert gives the user's own object back (not in _modules: no submodule).
        new.__dict__[_ORIGINAL] = layer
    return new


def _restore(layer: nn.Module) -> nn.Module:
    original = layer.__dict__.get(_ORIGINAL)
    if original is None:
        return _plain(layer)
    return _share(original, layer)


def _plain(layer: nn.Module) -> nn.Module:
    if isinstance(layer, SignalLinear):
        new: Any = nn.Linear(
            layer.in_features, layer.out_features, bias=layer.bias is not None, device="meta"
        )
    else:
        new = nn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias is not None,
            device="meta",
        )
    return _share(new, layer)


__all__ = ["convert", "feedback_context", "revert", "rule_of", "set_relevance", "watch_output"]
