"""SaR on supervised tasks: the digits benchmark of docs/results.md ("Supervised benchmarks").

    PYTHONPATH=src python docs/experiments/supervised_digits.py [--out DIR] [--quick]

One process, one torch thread (about an hour on a shared 2-core machine). Every run is stored
as it finishes in DIR/runs.json (atomically; a second call resumes and skips finished runs),
and DIR/report.md is rewritten after each phase:

1. tuning (MLP 2 x 100 ReLU, Adam, batch 32, 20 epochs): every rule x loss {cross-entropy,
   hinge} x lr {3e-4, 1e-3, 3e-3, 1e-2}, 2 seeds, on a validation split (20 % of the training
   set) -- the test set is not looked at;
2. test: every rule at its best (loss, lr) and at its best cross-entropy lr, seeds 0-4;
3. relevance: sar and sar-local with the relevance from the error, normalised, or the loss;
4. depth 1-6: each rule's loss; lr re-tuned per depth on validation (1 seed) among the grid
   values within 3x of its depth-2 rate; seeds 0-4;
5. with --lenet: the LeNet-style CNN on the 8x8 digits, lr 3e-3, 3 seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from sarlearn.atomic import atomic_write_bytes
from sarlearn.datasets import load_digits
from sarlearn.torch.rules import RULE_NAMES
from sarlearn.torch.train import ClassifyConfig, train_classifier

LRS = (3e-4, 1e-3, 3e-3, 1e-2)
LOSSES = ("cross-entropy", "hinge")
TUNE_SEEDS = (100, 101)
TEST_SEEDS = (0, 1, 2, 3, 4)
DEPTHS = (1, 2, 3, 4, 5, 6)
RELEVANCES = ("error", "normalised", "loss")


class Runs:
    """Finished runs keyed by their settings, saved after each one."""

    def __init__(self, path: Path, epochs: int) -> None:
        self.path = path
        self.epochs = epochs
        self.data = json.loads(path.read_text()) if path.exists() else {}
        self.full = load_digits()
        self.val = self.full.validation_split(0.2, seed=0)

    def get(self, rule, loss, lr, depth, relevance, split, seed, model="mlp") -> float:
        key = f"{rule}|{loss}|{lr:g}|{depth}|{relevance}|{split}|{seed}"
        key += "" if model == "mlp" else f"|{model}"
        if key not in self.data:
            cfg = ClassifyConfig(
                rule=rule,
                model=model,
                loss=loss,
                lr=lr,
                depth=depth,
                relevance=relevance,
                seed=seed,
                epochs=self.epochs,
            )
            t = time.perf_counter()
            try:
                _, h = train_classifier(cfg, self.val if split == "val" else self.full)
                acc = h.test_accuracy[-1]
            except Exception as exc:  # a diverging run counts as chance, and is reported
                print(f"  {key}: {exc}", file=sys.stderr)
                acc = float("nan")
            self.data[key] = {"accuracy": acc, "seconds": time.perf_counter() - t}
            atomic_write_bytes(self.path, json.dumps(self.data, indent=1).encode())
            print(f"{key}: {acc:.4f}", flush=True)
        return self.data[key]["accuracy"]


def mean_std(values: list[float]) -> str:
    ok = [v for v in values if v == v]
    if not ok:
        return "diverged"
    s = statistics.stdev(ok) if len(ok) > 1 else 0.0
    bad = f" ({len(values) - len(ok)} diverged)" if len(ok) < len(values) else ""
    return f"{100 * statistics.mean(ok):.1f} ± {100 * s:.1f}{bad}"


def nanmean(values: list[float]) -> float:
    return statistics.mean(v if v == v else 0.0 for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/supervised-digits"))
    parser.add_argument("--quick", action="store_true", help="3 epochs, rules bp and sar only")
    parser.add_argument("--lenet", action="store_true", help="also LeNet on digits (phase 5)")
    parser.add_argument(
        "--reverse", action="store_true", help="depth phase from the last rule (a 2nd process)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = Runs(args.out / "runs.json", epochs=3 if args.quick else 20)
    rules = ("bp", "sar") if args.quick else RULE_NAMES
    depths = (1, 2) if args.quick else DEPTHS
    report: list[str] = []

    def write_report() -> None:
        atomic_write_bytes(args.out / "report.md", "\n".join(report).encode())

    def tune(rule, losses, depth, seeds, relevance="normalised"):
        scores = {
            (loss, lr): nanmean(
                [runs.get(rule, loss, lr, depth, relevance, "val", s) for s in seeds]
            )
            for loss in losses
            for lr in LRS
        }
        return max(scores, key=scores.get), scores

    # 1. tuning at depth 2
    best, best_ce = {}, {}
    report += ["## Tuning (validation accuracy %, mean of 2 seeds, MLP 2 x 100)", ""]
    report += ["| rule | " + " | ".join(f"{lo} {lr:g}" for lo in LOSSES for lr in LRS) + " |"]
    report += ["|---" * (1 + len(LOSSES) * len(LRS)) + "|"]
    for rule in rules:
        best[rule], scores = tune(rule, LOSSES, 2, TUNE_SEEDS)
        best_ce[rule], _ = tune(rule, ("cross-entropy",), 2, TUNE_SEEDS)
        cells = [f"{100 * scores[(lo, lr)]:.1f}" for lo in LOSSES for lr in LRS]
        report += [f"| {rule} | " + " | ".join(cells) + " |"]
    write_report()

    # 2. test at depth 2
    report += ["", "## Test accuracy %, MLP 2 x 100, 5 seeds", ""]
    report += ["| rule | best (loss, lr) | test accuracy | cross-entropy (lr) | test accuracy |"]
    report += ["|---|---|---|---|---|"]
    for rule in rules:
        (loss, lr), (_, lr_ce) = best[rule], best_ce[rule]
        acc = [runs.get(rule, loss, lr, 2, "normalised", "test", s) for s in TEST_SEEDS]
        ce = [
            runs.get(rule, "cross-entropy", lr_ce, 2, "normalised", "test", s) for s in TEST_SEEDS
        ]
        report += [f"| {rule} | {loss}, {lr:g} | {mean_std(acc)} | {lr_ce:g} | {mean_std(ce)} |"]
    write_report()

    # 3. relevance choices
    report += ["", "## Relevance from the loss (test accuracy %, depth 2, 5 seeds)", ""]
    report += ["| rule (loss, lr) | " + " | ".join(RELEVANCES) + " |", "|---" * 4 + "|"]
    for rule in [r for r in ("sar", "sar-local") if r in rules]:
        loss, lr = best[rule]
        cells = [
            mean_std([runs.get(rule, loss, lr, 2, rel, "test", s) for s in TEST_SEEDS])
            for rel in RELEVANCES
        ]
        report += [f"| {rule} ({loss}, {lr:g}) | " + " | ".join(cells) + " |"]
    write_report()

    # 4. depth (relevance-only is left out: its global error sign is 0 for both losses)
    report += ["", "## Depth: test accuracy %, MLP d x 100, 5 seeds (lr re-tuned per depth)", ""]
    report += ["| rule (loss) | " + " | ".join(f"d={d}" for d in depths) + " |"]
    report += ["|---" * (1 + len(depths)) + "|"]
    depth_rules = [r for r in rules if r != "relevance-only"]
    for rule in depth_rules[::-1] if args.reverse else depth_rules:
        loss, lr2 = best[rule]
        near = tuple(lr for lr in LRS if lr2 / 3.5 < lr < lr2 * 3.5)  # within 3x of depth 2's
        cells = []
        for d in depths:
            scores = {
                lr: runs.get(rule, loss, lr, d, "normalised", "val", TUNE_SEEDS[0]) for lr in near
            }
            lr = max(scores, key=lambda k: scores[k] if scores[k] == scores[k] else -1.0)
            acc = [runs.get(rule, loss, lr, d, "normalised", "test", s) for s in TEST_SEEDS]
            cells.append(f"{mean_std(acc)} <sub>{lr:g}</sub>")
        report += [f"| {rule} ({loss}) | " + " | ".join(cells) + " |"]
        write_report()
    # 5. LeNet on the 8x8 digits (optional: about 30 s a run here)
    if args.lenet:
        report += ["", "## LeNet on digits: test accuracy %, lr 3e-3 (not tuned), 3 seeds", ""]
        report += ["| rule (loss) | test accuracy |", "|---|---|"]
        for rule in [r for r in rules if r != "relevance-only"]:
            loss = best[rule][0]
            acc = [
                runs.get(rule, loss, 3e-3, 2, "normalised", "test", s, model="lenet")
                for s in TEST_SEEDS[:3]
            ]
            report += [f"| {rule} ({loss}) | {mean_std(acc)} |"]
            write_report()
    print("\n".join(report))


if __name__ == "__main__":
    main()
