"""The shared context of a converted model: the output error of the current backward pass and
the relevance computed from it.

Some rules need, inside every layer's backward, something only the output knows: the
relevance r (``sar``, ``sar-local``, ``sar-exact``, ``relevance-only``), the output error
itself (``dfa``), the global error sign (``relevance-only``) or which layer is the output
(``sar-exact``). :func:`sarlearn.torch.convert` therefore puts a
forward hook on the model that registers a tensor hook on its output; autograd calls that hook
with ``G = dL/dy`` (batch, n_out) before any layer's backward runs, and the hook stores ``G``
and the relevance here, where every converted layer reads them.

Relevance, per sample n (``a_n`` the sample's error magnitude):

    a_n = mean_k |G_nk|                 (relevance-only: |mean_k G_nk|, the global error)
    r_n = gain * a_n                    or, with normalise,
    r_n = gain * a_n / m_t,   m_t = bias-corrected exponential mean over steps of sum_n a_n

With the closed-loop loss ``L = 1/2 sum_k e_k^2`` (so ``G = -e``) and a batch of one, this is
exactly the numpy relevance ``r = gain * |e|`` (``/ running mean of |e|`` with normalise). With a
batch-mean loss ``G`` already carries 1/batch, so sum_n r_n is O(1) like a mean gradient. An
external relevance (batch,) set with :meth:`FeedbackContext.set_relevance` replaces r for the
next backward pass (e.g. the per-sample loss); the normaliser keeps tracking the error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sarlearn.errors import NonFiniteError, SarlearnError, ShapeError
from sarlearn.torch.rules import TorchRule

if TYPE_CHECKING:
    import torch

NORM_EPS = 1e-12


class FeedbackContext:
    """Output error and relevance of the current backward pass, shared by a model's layers.

    Args:
        rule: the rule of the converted layers.
        gain: relevance gain.
        normalise: divide by a running mean of the error magnitude (r is O(1) whatever the
            loss's scale).
        norm_decay: decay of that running mean (bias-corrected).
    """

    def __init__(
        self,
        rule: TorchRule,
        gain: float = 1.0,
        normalise: bool = False,
        norm_decay: float = 0.99,
    ) -> None:
        self.rule = rule
        self.gain = float(gain)
        self.normalise = bool(normalise)
        self.norm_decay = float(norm_decay)
        self.mean_abs = 0.0  # uncorrected exponential mean of sum_n a_n
        self.count = 0
        self.error: torch.Tensor | None = None  # G = dL/dy, (batch, n_out)
        self.relevance: torch.Tensor | None = None  # r, (batch,)
        self._external: torch.Tensor | None = None
        self._output_pending = False  # no layer's backward has run yet in this pass

    # -- set by the hooks and the user ----------------------------------------------------------

    def set_relevance(self, relevance: torch.Tensor) -> None:
        """Use ``relevance`` (batch,), >= 0 and finite, as r in the next backward pass."""
        import torch

        r = torch.as_tensor(relevance).detach()
        if r.dim() != 1:
            raise ShapeError(f"relevance: expected shape (batch,), got {tuple(r.shape)}")
        if not torch.isfinite(r).all():
            raise NonFiniteError("relevance contains NaN or inf")
        if (r < 0).any():
            raise ValueError("relevance must be >= 0 (it scales plasticity, the sign does not)")
        self._external = r

    def on_output_grad(self, grad: torch.Tensor) -> torch.Tensor | None:
        """Tensor hook on the model's output: store G and r; for ``relevance-only`` replace
        the gradient by the broadcast global error ``c_n = sign(mean_k G_nk) r_n``."""
        import torch

        G = grad.detach()
        if not torch.isfinite(G).all():
            raise NonFiniteError("the gradient at the model's output contains NaN or inf")
        batch = G.shape[0]
        flat = G.reshape(batch, -1)
        a = flat.mean(dim=1).abs() if self.rule.path == "broadcast" else flat.abs().mean(dim=1)
        if self.normalise:
            self.mean_abs = self.norm_decay * self.mean_abs + (1.0 - self.norm_decay) * float(
                a.sum()
            )
        self.count += 1
        if self._external is not None:
            r = self._external.to(G)
            self._external = None
            if r.shape != (batch,):
                raise ShapeError(
                    f"relevance: expected shape ({batch},) (one per sample), got {tuple(r.shape)}"
                )
        else:
            r = self.gain * a
            if self.normalise:
                mean = self.mean_abs / (1.0 - self.norm_decay**self.count)
                r = r / max(mean, NORM_EPS)
        self.error = G
        self.relevance = r
        self._output_pending = True
        if self.rule.path == "broadcast":
            c = torch.sign(flat.mean(dim=1)) * r
            return c.view(batch, *([1] * (G.dim() - 1))).expand_as(G).contiguous()
        return None

    def output_hook(self, module: Any, inputs: Any, output: Any) -> None:
        """Forward hook on the converted model: watch its output for the backward pass."""
        import torch

        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(self.on_output_grad)

    # -- read by the layers ---------------------------------------------------------------------

    def require_error(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, r) of the current backward pass, checked against the layer's batch size."""
        if self.error is None or self.relevance is None:
            raise SarlearnError(
                f"rule {self.rule.name!r} needs the output error, but no gradient reached the "
                "converted model's output: its forward must return a tensor that the loss uses "
                "(or call sarlearn.torch.watch_output(model, y) on the output y yourself)"
            )
        if self.error.shape[0] != batch:
            raise ShapeError(
                f"the output error has batch size {self.error.shape[0]} but a layer saw "
                f"{batch}; one forward pass per backward pass (rule {self.rule.name!r})"
            )
        return self.error, self.relevance

    def take_output_layer(self) -> bool:
        """True for the first layer whose backward runs after the output's gradient arrived,
        i.e. the output layer (rules that take the sign at the output: ``sar-exact``); False
        for every later layer of the same backward pass."""
        first, self._output_pending = self._output_pending, False
        return first

    def state_dict(self) -> dict[str, Any]:
        """The normaliser's state (for exact continuation)."""
        return {"mean_abs": self.mean_abs, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.mean_abs = float(state["mean_abs"])
        self.count = int(state["count"])


__all__ = ["FeedbackContext"]
