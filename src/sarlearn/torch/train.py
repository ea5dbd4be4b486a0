"""Supervised training of a (converted) classifier: the loop behind ``sarlearn classify``.

Softmax cross-entropy or the rival hinge (:func:`rival_hinge`) on the logits, mini-batches in
a seeded order, any rule of :mod:`sarlearn.torch.rules` (``gdm``, alias ``bp``: plain autograd,
no conversion). The relevance of the SaR family comes from the loss (``relevance=``):

- ``"error"``: r_n = mean_k |dL/dy_nk|, the per-sample output error (the numpy rules' |e|;
  2 (1 - p_true) / (K batch) for the cross-entropy, 2 / (K batch) or 0 for the hinge);
- ``"normalised"``: the same divided by a running mean (decay 0.99) of its batch sum, so the
  step keeps its size as the error shrinks (sum_n r_n is about 1);
- ``"loss"``: r_n = the sample's loss / batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sarlearn.datasets import ImageData
from sarlearn.errors import ConfigError, DivergenceError
from sarlearn.torch.convert import convert, set_relevance
from sarlearn.torch.models import MLP, LeNet
from sarlearn.torch.rules import get_rule

MODEL_NAMES = ("mlp", "lenet")
RELEVANCE_NAMES = ("error", "normalised", "loss")
OPTIMISER_NAMES = ("adam", "sgd")
LOSS_NAMES = ("cross-entropy", "hinge")
"""``hinge`` is :func:`rival_hinge`."""

DEFAULT_LR: dict[str, float] = {
    "gdm": 1e-3,
    "sar": 1e-3,
    "sar-local": 3e-4,
    "sar-exact": 1e-3,
    "sign-only": 3e-3,
    "relevance-only": 3e-4,
    "fa": 3e-3,
    "dfa": 1e-3,
    "sign-symmetry": 3e-3,
}
"""Adam's rate per rule: the best on the digits validation split (MLP 2 x 100, 20 epochs, grid
3e-4 .. 1e-2; docs/results.md, "Supervised benchmarks"; the tuning of
docs/experiments/supervised_digits.py)."""

DEFAULT_LOSS: dict[str, str] = {
    "gdm": "hinge",
    "sar": "hinge",
    "sar-local": "hinge",
    "sar-exact": "hinge",
    "sign-only": "hinge",
    "relevance-only": "hinge",
    "fa": "hinge",
    "dfa": "hinge",
    "sign-symmetry": "cross-entropy",
}
"""The loss each rule does best with on digits (validation accuracy, same tuning). A rule
missing from these two tables has not been tuned: it needs ``lr`` and ``loss`` given."""


@dataclass
class ClassifyConfig:
    """One supervised run. ``lr=None`` / ``loss=None`` take the rule's :data:`DEFAULT_LR` /
    :data:`DEFAULT_LOSS`."""

    rule: str = "sar"
    model: str = "mlp"
    width: int = 100
    depth: int = 2
    activation: str = "relu"
    lr: float | None = None
    optimiser: str = "adam"
    epochs: int = 20
    batch_size: int = 32
    relevance: str = "normalised"
    loss: str | None = None
    seed: int = 0

    def check(self) -> None:
        """ConfigError naming the first impossible field."""
        get_rule(self.rule)
        if self.model not in MODEL_NAMES:
            raise ConfigError(f"unknown model {self.model!r}; known: {', '.join(MODEL_NAMES)}")
        if self.relevance not in RELEVANCE_NAMES:
            raise ConfigError(
                f"unknown relevance {self.relevance!r}; known: {', '.join(RELEVANCE_NAMES)}"
            )
        if self.optimiser not in OPTIMISER_NAMES:
            raise ConfigError(
                f"unknown optimiser {self.optimiser!r}; known: {', '.join(OPTIMISER_NAMES)}"
            )
        if self.loss is not None and self.loss not in LOSS_NAMES:
            raise ConfigError(f"unknown loss {self.loss!r}; known: {', '.join(LOSS_NAMES)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be >= 1")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr}")
        name = get_rule(self.rule).name
        if (self.lr is None and name not in DEFAULT_LR) or (
            self.loss is None and name not in DEFAULT_LOSS
        ):
            raise ConfigError(
                f"rule {self.rule!r} has no tuned rate and loss on digits; give both lr and loss"
            )

    @property
    def learning_rate(self) -> float:
        """``lr``, or the rule's :data:`DEFAULT_LR`."""
        return self.lr if self.lr is not None else DEFAULT_LR[get_rule(self.rule).name]

    @property
    def loss_name(self) -> str:
        """``loss``, or the rule's :data:`DEFAULT_LOSS`."""
        return self.loss if self.loss is not None else DEFAULT_LOSS[get_rule(self.rule).name]


@dataclass
class History:
    """Per-epoch curves of one run."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def rival_hinge(logits: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Per-sample multi-class hinge of Crammer and Singer, (batch,):
    ``max(0, margin + max_{k != y} z_k - z_y)``.

    Its error is sparse and balanced: while the margin is violated, dL/dz is -1 at the true
    class, +1 at the strongest rival and 0 elsewhere, so its sign is the whole error (the
    softmax cross-entropy's error is non-zero at every output, and its sign is always -1 at
    the true class and +1 at all nine others, whatever their size).
    """
    true = logits.gather(1, target[:, None])[:, 0]
    rivals = logits.masked_fill(F.one_hot(target, logits.shape[1]).bool(), float("-inf"))
    return torch.clamp(margin + rivals.max(dim=1).values - true, min=0.0)


def build_model(cfg: ClassifyConfig, data: ImageData) -> nn.Module:
    """The MLP or LeNet for ``data``'s image shape, converted to ``cfg.rule`` (not for ``gdm``,
    which is plain autograd)."""
    torch.manual_seed(cfg.seed)
    channels, height, width = data.image_shape
    if cfg.model == "mlp":
        model: nn.Module = MLP(
            channels * height * width, data.n_classes, cfg.width, cfg.depth, cfg.activation
        )
    else:
        model = LeNet(data.n_classes, channels, height, cfg.activation)
    if get_rule(cfg.rule).name != "gdm":
        model = convert(model, cfg.rule, seed=cfg.seed, normalise=cfg.relevance == "normalised")
    return model


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    """Fraction of ``x`` (n, ...) classified as ``y`` (n,)."""
    model.eval()
    correct = sum(
        int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
        for i in range(0, len(y), batch)
    )
    model.train()
    return correct / max(len(y), 1)


def train_classifier(
    cfg: ClassifyConfig,
    data: ImageData,
    on_epoch: Callable[[int, History], Any] | None = None,
) -> tuple[nn.Module, History]:
    """Train ``cfg.model`` with ``cfg.rule`` on ``data``; test accuracy after every epoch.

    Raises:
        ConfigError: an impossible config.
        DivergenceError: the loss became NaN/inf (the message names the epoch).
    """
    cfg.check()
    model = build_model(cfg, data)
    x_tr, y_tr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_te, y_te = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    params = list(model.parameters())
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(params, lr=cfg.learning_rate)
        if cfg.optimiser == "adam"
        else torch.optim.SGD(params, lr=cfg.learning_rate, momentum=0.9)
    )
    order_rng = np.random.default_rng(cfg.seed)
    per_sample_relevance = cfg.relevance == "loss" and get_rule(cfg.rule).uses_relevance
    history = History()
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        order = torch.from_numpy(order_rng.permutation(len(y_tr)))
        total, correct = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb, yb = x_tr[idx], y_tr[idx]
            logits = model(xb)
            losses = (
                F.cross_entropy(logits, yb, reduction="none")
                if cfg.loss_name == "cross-entropy"
                else rival_hinge(logits, yb)
            )
            loss = losses.mean()
            if not torch.isfinite(loss):
                raise DivergenceError(
                    f"the loss became {float(loss)} in epoch {epoch + 1} (rule {cfg.rule!r}, "
                    f"lr {cfg.learning_rate:g}); try a smaller --lr"
                )
            if per_sample_relevance:
                set_relevance(model, losses.detach() / len(idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        history.train_loss.append(total / len(y_tr))
        history.train_accuracy.append(correct / len(y_tr))
        history.test_accuracy.append(accuracy(model, x_te, y_te))
        history.seconds.append(time.perf_counter() - start)
        if on_epoch is not None:
            on_epoch(epoch, history)
    return model, history


def summary(cfg: ClassifyConfig, data: ImageData, history: History) -> dict[str, Any]:
    """The JSON summary of a run: config, final and best test accuracy, curves."""
    return {
        "dataset": data.name,
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "config": {**asdict(cfg), "lr": cfg.learning_rate, "loss": cfg.loss_name},
        "test_accuracy": history.test_accuracy[-1],
        "test_error_percent": 100.0 * (1.0 - history.test_accuracy[-1]),
        "best_test_accuracy": max(history.test_accuracy),
        "train_accuracy": history.train_accuracy[-1],
        "train_loss": history.train_loss[-1],
        "seconds": float(sum(history.seconds)),
        "curves": asdict(history),
    }


__all__ = [
    "DEFAULT_LOSS",
    "DEFAULT_LR",
    "LOSS_NAMES",
    "MODEL_NAMES",
    "OPTIMISER_NAMES",
    "RELEVANCE_NAMES",
    "ClassifyConfig",
    "History",
    "accuracy",
    "build_model",
    "rival_hinge",
    "summary",
    "train_classifier",
]
