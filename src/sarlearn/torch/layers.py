"""``nn.Linear`` and ``nn.Conv2d`` whose backward pass follows a learning rule.

The forward pass is the ordinary one. The backward pass (one autograd function per layer type)
receives ``g = dL/dh`` of the layer's output and computes, as the rule declares
(:mod:`sarlearn.torch.rules`):

    d        = g                      (update "gradient")
             = r_n sign(g)            (update "sign"; r_n the relevance, or 1/batch without it)
             = r_n sign(g) or r_n g   (update "output-sign": the sign at the output layer, the
                                       number that arrives below it)
    grad W   = d^T x                  (so W -= lr grad W is W += lr (-d) x^T, the numpy update)
    grad b   = sum over batch (and positions) of d
    grad x   = M^T carried            M = W, sign(W) or the fixed random F ("feedback"),
             = G F_direct             (dfa: the output error G through a fixed (n_out, n_in) F)
             = c_n 1                  (relevance-only: the broadcast global error)

``carried`` is ``g`` or ``sign(g)`` (the rule's ``carries``; below the output layer of
"output-sign", ``g``). The output layer is the first converted layer whose backward runs in a
backward pass (:meth:`~sarlearn.torch.context.FeedbackContext.take_output_layer`): the last
layer of a sequential model. The layers subclass the torch
ones, so ``isinstance(layer, nn.Linear)`` still holds and the parameters keep their names.
Their fixed matrices are buffers (``feedback`` shaped like the weight for ``fa``;
``direct_feedback`` (n_outputs, n_inputs) for ``dfa``, created at the first backward pass,
when the sizes are known) and travel with ``state_dict``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sarlearn.errors import ConfigError
from sarlearn.torch.context import FeedbackContext
from sarlearn.torch.rules import TorchRule


def _draw(shape: tuple[int, ...], std: float, generator: torch.Generator, like: torch.Tensor):
    """U(-a, a) with a = sqrt(3) std: a fixed random matrix of the given std."""
    a = math.sqrt(3.0) * std
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    return ((2.0 * u - 1.0) * a).to(dtype=like.dtype, device=like.device)


class _Plastic:
    """What a converted Linear and Conv2d share: the rule's signal, its path and its buffers."""

    rule: TorchRule
    context: FeedbackContext
    weight: nn.Parameter
    feedback: torch.Tensor | None
    direct_feedback: torch.Tensor | None

    def setup(self, rule: TorchRule, context: FeedbackContext, seed: int) -> None:
        self.rule = rule
        self.context = context
        self.seed = seed
        self.register_buffer("feedback", None)  # type: ignore[attr-defined]
        self.register_buffer("direct_feedback", None)  # type: ignore[attr-defined]
        if rule.path == "feedback":
            w = self.weight.detach()
            std = float(w.std()) if w.numel() > 1 and bool((w != 0).any()) else 0.0
            if std == 0.0:
                std = 1.0 / math.sqrt(3.0 * w[0].numel())  # torch's default init's std
            self.feedback = _draw(tuple(w.shape), std, self._generator(), w)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # the direct feedback is created lazily: make room for a saved one before loading
        key = prefix + "direct_feedback"
        if key in state_dict and self.direct_feedback is None:
            self.direct_feedback = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args)  # type: ignore[misc]

    # -- the rule, shared by both layer types ----------------------------------------------------

    def teaching_signal(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(d, carried): what enters the weight gradient, and what travels on."""
        rule = self.rule
        if rule.update == "gradient":
            return g, g
        batch = g.shape[0]
        if rule.uses_relevance:
            _, r = self.context.require_error(batch)
        else:
            r = torch.full((batch,), 1.0 / batch, dtype=g.dtype, device=g.device)
        r = r.to(g).view(batch, *([1] * (g.dim() - 1)))
        if rule.update == "output-sign" and not self.context.take_output_layer():
            # below the output layer the signed signal travels, and is applied, as a number
            return g * r, g
        s = torch.sign(g)
        return s * r, (s if rule.carries == "sign" else g)

    def transmit(self, carried: torch.Tensor, input_shape: torch.Size) -> torch.Tensor:
        """The gradient handed to the layer's input, (batch, *input_shape[1:])."""
        path = self.rule.path
        if path == "weights":
            return self._input_grad(carried, self.weight, input_shape)
        if path == "sign-weights":
            return self._input_grad(carried, torch.sign(self.weight), input_shape)
        if path == "feedback":
            assert self.feedback is not None
            return self._input_grad(carried, self.feedback.to(carried), input_shape)
        batch = input_shape[0]
        G, r = self.context.require_error(batch)
        if path == "direct":
            G = G.reshape(batch, -1).to(carried)
            n_in = math.prod(input_shape[1:])
            if self.direct_feedback is None:
                # drawn at the first backward pass, when both sizes are known
                self.direct_feedback = _draw(
                    (G.shape[1], n_in), 1.0 / math.sqrt(G.shape[1]), self._generator(), G
                )
            B = self.direct_feedback
            if tuple(B.shape) != (G.shape[1], n_in):
                raise ConfigError(
                    f"dfa feedback matrix is {tuple(B.shape)} but this pass has {G.shape[1]} "
                    f"outputs and {n_in} inputs to the layer"
                )
            return (G @ B.to(G)).reshape(input_shape)
        # broadcast: the global error sign times r, the same for every neuron
        c = torch.sign(G.reshape(batch, -1).mean(dim=1)) * r
        return c.to(carried).view(batch, *([1] * (len(input_shape) - 1))).expand(input_shape)

    def _input_grad(self, g: torch.Tensor, M: torch.Tensor, input_shape: torch.Size):
        raise NotImplementedError


class _LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x, weight, bias, layer):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.layer = layer
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, g):  # type: ignore[override]
        x, _ = ctx.saved_tensors
        layer: SignalLinear = ctx.layer
        d, carried = layer.teaching_signal(g)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = layer.transmit(carried, x.shape)
        if ctx.needs_input_grad[1]:
            grad_w = d.reshape(-1, d.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = d.reshape(-1, d.shape[-1]).sum(0)
        return grad_x, grad_w, grad_b, None


class _Conv2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x, weight, bias, layer):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.layer = layer
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)

    @staticmethod
    def backward(ctx: Any, g):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        layer: SignalConv2d = ctx.layer
        d, carried = layer.teaching_signal(g)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = layer.transmit(carried, x.shape)
        if ctx.needs_input_grad[1]:
            grad_w = torch.nn.grad.conv2d_weight(
                x, weight.shape, d, layer.stride, layer.padding, layer.dilation, layer.groups
            )
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = d.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None


class SignalLinear(_Plastic, nn.Linear):
    """``nn.Linear`` trained by a rule of :mod:`sarlearn.torch.rules` (built by ``convert``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LinearFunction.apply(x, self.weight, self.bias, self)

    def _input_grad(self, g: torch.Tensor, M: torch.Tensor, input_shape: torch.Size):
        return g @ M

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rule={self.rule.name}"


class SignalConv2d(_Plastic, nn.Conv2d):
    """``nn.Conv2d`` trained by a rule of :mod:`sarlearn.torch.rules` (built by ``convert``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Conv2dFunction.apply(x, self.weight, self.bias, self)

    def _input_grad(self, g: torch.Tensor, M: torch.Tensor, input_shape: torch.Size):
        return torch.nn.grad.conv2d_input(
            input_shape, M, g, self.stride, self.padding, self.dilation, self.groups
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rule={self.rule.name}"


__all__ = ["SignalConv2d", "SignalLinear"]
