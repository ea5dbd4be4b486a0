"""How well does each rule's weight update align with backprop's gradient, layer by layer?

    PYTHONPATH=src python docs/experiments/supervised_alignment.py [--readout]

MLP 6 x 100 ReLU on digits, hinge loss. Batches of 256 training images at initialisation and
after 5 epochs of training by the rule itself (Adam, its tuned rate). For each linear layer
(first hidden .. output) it prints the cosine between the rule's grad W and backprop's grad W
(on the same weights and batch), averaged over 5 seeds. Takes well under a minute.

With --readout it also trains only the output layer on frozen random hidden layers (depth 2
and 6, hinge, Adam at 1e-3, 3e-3, 1e-2, 20 epochs, seeds 0-4) and prints the test accuracy: the
baseline that shows how much of an accuracy the hidden layers' learning adds (a few minutes).
"""

from __future__ import annotations

import statistics
import sys

import torch
from torch import nn

from sarlearn.datasets import load_digits
from sarlearn.torch import convert, revert
from sarlearn.torch.train import ClassifyConfig, accuracy, rival_hinge, train_classifier

RULES = ("sar", "sar-local", "sign-only", "fa", "dfa", "sign-symmetry")


def layer_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad()
    rival_hinge(model(x), y).mean().backward()
    return [m.weight.grad.flatten().clone() for m in model.modules() if isinstance(m, nn.Linear)]


def cosines(model: nn.Module, rule: str, x: torch.Tensor, y: torch.Tensor, seed: int):
    convert(model, rule, seed=seed)
    g_rule = layer_grads(model, x, y)
    revert(model)
    g_bp = layer_grads(model, x, y)
    return [
        float(torch.nn.functional.cosine_similarity(a, b, dim=0))
        for a, b in zip(g_rule, g_bp, strict=True)
    ]


def main() -> None:
    torch.set_num_threads(1)
    data = load_digits()
    x, y = torch.from_numpy(data.x_train[:256]), torch.from_numpy(data.y_train[:256])
    for when, epochs in (("init", 0), ("after 5 epochs", 5)):
        print(f"\n{when}: cosine(rule's grad W, backprop's grad W), layer 1 .. 7 (output)")
        for rule in RULES:
            rows = []
            for seed in range(5):
                if epochs:
                    cfg = ClassifyConfig(rule=rule, depth=6, epochs=epochs, seed=seed)
                    model, _ = train_classifier(cfg, data)
                    revert(model)
                else:
                    torch.manual_seed(seed)
                    from sarlearn.torch import MLP

                    model = MLP(64, 10, 100, 6)
                rows.append(cosines(model, rule, x, y, seed))
            means = [statistics.mean(c) for c in zip(*rows, strict=True)]
            print(f"{rule:14s} " + " ".join(f"{m:5.2f}" for m in means), flush=True)


def readout_only() -> None:
    """Train only the output layer on frozen random hidden layers."""
    import numpy as np

    from sarlearn.torch import MLP

    data = load_digits()
    xtr, ytr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    xte, yte = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    print("\nreadout only (hidden layers frozen at init): test accuracy %, seeds 0-4")
    for depth in (2, 6):
        for lr in (1e-3, 3e-3, 1e-2):
            accs = []
            for seed in range(5):
                torch.manual_seed(seed)
                model = MLP(64, 10, 100, depth)
                opt = torch.optim.Adam(model[-1].parameters(), lr=lr)
                rng = np.random.default_rng(seed)
                for _ in range(20):
                    order = torch.from_numpy(rng.permutation(len(ytr)))
                    for i in range(0, len(order), 32):
                        idx = order[i : i + 32]
                        loss = rival_hinge(model(xtr[idx]), ytr[idx]).mean()
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                accs.append(accuracy(model, xte, yte))
            mean, std = 100 * statistics.mean(accs), 100 * statistics.stdev(accs)
            print(f"depth {depth}, lr {lr:g}: {mean:.1f} ± {std:.1f}", flush=True)


if __name__ == "__main__":
    main()
    if "--readout" in sys.argv:
        readout_only()
