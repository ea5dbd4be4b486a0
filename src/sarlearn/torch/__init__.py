"""Sign and Relevance learning, and its bio-plausible peers, for any PyTorch model.

    import torch, torch.nn.functional as F
    from sarlearn.torch import convert

    model = convert(model, rule="sar")          # nn.Linear / nn.Conv2d now learn by SaR
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()

Rules (:data:`RULE_NAMES`): those of :mod:`sarlearn.recipes`, under the same names (``gdm``,
``sar``, ``sar-local``, ``sar-exact``, ``sign-only``, ``relevance-only``, ``fa``, ``dfa``,
``sign-symmetry``); ``bp`` is an alias of ``gdm``. The maths, the sign convention and the
relevance on supervised tasks are in docs/torch.md. Needs the optional extra ``sarlearn[torch]``.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    from sarlearn.errors import SarlearnError

    class MissingExtraError(SarlearnError, ImportError):
        """An optional dependency of sarlearn is not installed."""

    raise MissingExtraError(
        "sarlearn.torch needs PyTorch, which is not installed: pip install 'sarlearn[torch]' "
        "(on a machine without a GPU, PyTorch's CPU-only wheel is enough and much smaller)"
    ) from exc

from sarlearn.torch.context import FeedbackContext
from sarlearn.torch.convert import (
    convert,
    feedback_context,
    revert,
    rule_of,
    set_relevance,
    watch_output,
)
from sarlearn.torch.layers import SignalConv2d, SignalLinear
from sarlearn.torch.models import MLP, LeNet, ShiftedLogistic, shifted_logistic
from sarlearn.torch.rules import ALIASES, RULE_NAMES, RULES, TorchRule, get_rule

__all__ = [
    "ALIASES",
    "MLP",
    "RULES",
    "RULE_NAMES",
    "FeedbackContext",
    "LeNet",
    "ShiftedLogistic",
    "SignalConv2d",
    "SignalLinear",
    "TorchRule",
    "convert",
    "feedback_context",
    "get_rule",
    "revert",
    "rule_of",
    "set_relevance",
    "shifted_logistic",
    "watch_output",
]
