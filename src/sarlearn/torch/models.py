"""Small reference models for the supervised benchmarks: an MLP and a LeNet-style CNN, plus
the shifted logistic of the closed-loop network as a torch module."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from sarlearn.errors import ConfigError


class _ShiftedLogisticFunction(torch.autograd.Function):
    """f(h) = 1/(1 + exp(-h)) - 1/2 = tanh(h/2)/2, with f'(h) = (1/2 + f)(1/2 - f) computed from
    f exactly as the numpy network does (exactly 0 where f saturates)."""

    @staticmethod
    def forward(ctx: Any, h):  # type: ignore[override]
        f = 0.5 * torch.tanh(0.5 * h)
        ctx.save_for_backward(f)
        return f

    @staticmethod
    def backward(ctx: Any, g):  # type: ignore[override]
        (f,) = ctx.saved_tensors
        return g * ((0.5 - f) * (0.5 + f))


def shifted_logistic(h: torch.Tensor) -> torch.Tensor:
    """The closed-loop network's activation, in (-1/2, 1/2), f'(0) = 1/4."""
    return _ShiftedLogisticFunction.apply(h)


class ShiftedLogistic(nn.Module):
    """Module form of :func:`shifted_logistic`."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return shifted_logistic(h)


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": ShiftedLogistic}
"""Hidden-layer activations by name."""


def make_activation(name: str) -> nn.Module:
    """``relu``, ``tanh`` or ``logistic`` (the shifted logistic)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None


class MLP(nn.Sequential):
    """Fully connected network: ``depth`` hidden layers of ``width`` units, linear output.

    Input (batch, *shape) is flattened to (batch, n_inputs); output (batch, n_outputs) logits.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        width: int = 100,
        depth: int = 2,
        activation: str = "relu",
    ) -> None:
        if depth < 0 or width < 1:
            raise ConfigError(f"MLP needs depth >= 0 and width >= 1, got {depth}, {width}")
        layers: list[nn.Module] = [nn.Flatten()]
        sizes = [n_inputs] + [width] * depth
        for m, n in itertools.pairwise(sizes):
            layers += [nn.Linear(m, n), make_activation(activation)]
        layers.append(nn.Linear(sizes[-1], n_outputs))
        super().__init__(*layers)


class LeNet(nn.Sequential):
    """LeNet-5-style CNN: conv(6) - pool - conv(16) - pool - fc 120 - fc 84 - fc n_outputs.

    For 28x28 inputs (MNIST) the convolutions are 5x5 (the first padded by 2: 28 -> 14 -> 10 ->
    5); for small images (< 28, e.g. the 8x8 digits) they are 3x3 with padding 1 (8 -> 4 -> 2).
    Input (batch, channels, size, size).
    """

    def __init__(
        self,
        n_outputs: int = 10,
        in_channels: int = 1,
        size: int = 28,
        activation: str = "relu",
    ) -> None:
        if size >= 28:
            k, p1, p2 = 5, 2, 0
            side = (size // 2 - 4) // 2
        else:
            k, p1, p2 = 3, 1, 1
            side = size // 4
        if side < 1:
            raise ConfigError(f"LeNet needs images of at least 4x4 pixels, got {size}")
        super().__init__(
            nn.Conv2d(in_channels, 6, k, padding=p1),
            make_activation(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, k, padding=p2),
            make_activation(activation),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            make_activation(activation),
            nn.Linear(120, 84),
            make_activation(activation),
            nn.Linear(84, n_outputs),
        )


__all__ = ["ACTIVATIONS", "MLP", "LeNet", "ShiftedLogistic", "make_activation", "shifted_logistic"]
