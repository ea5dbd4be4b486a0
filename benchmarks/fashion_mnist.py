"""Fashion-MNIST table: MLP and LeNet, five seeds, backprop against the bio-plausible rules.

    python benchmarks/fashion_mnist.py --out benchmarks/results/fashion_mnist.json

Reads Debian's ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``) or
``--data DIR``. Every run uses the rule's default learning rate and loss (tuned on the digits
validation split, :data:`sarlearn.torch.train.DEFAULT_LR`), Adam, batch 32, the first
20,000 (MLP) or 10,000 (LeNet) training images and all 10,000 test images. The JSON is
rewritten after every run and finished runs are skipped when the command is repeated;
``--rules`` splits the work between processes (each with its own ``--out``), and
``--table --merge`` prints the markdown table of docs/torch.md from their files.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

RULES = ("bp", "fa", "dfa", "sign-symmetry", "sar")
#: Epochs and training images (the first N of the 60,000; all 10,000 test images) per model:
#: chosen so that the whole table fits the CPU a shared 2-core machine could spare.
EPOCHS = {"mlp": 5, "lenet": 2}
TRAIN_SUBSET = {"mlp": 20_000, "lenet": 10_000}


def run_all(out: Path, data: str | None, seeds: int, threads: int, rules: list[str]) -> dict:
    import torch

    from sarlearn.datasets import load_dataset
    from sarlearn.torch.train import ClassifyConfig, summary, train_classifier

    torch.set_num_threads(threads)
    full = load_dataset("fashion-mnist", data)
    res = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    done = {(r["model"], r["rule"], r["seed"]) for r in res["runs"]}
    res.update(
        epochs=EPOCHS,
        train_subset=TRAIN_SUBSET,
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        note="2-core machine shared with other jobs; seconds are CPU-bound wall times",
    )
    for model, epochs in EPOCHS.items():
        images = full.subset(TRAIN_SUBSET[model], None)
        for rule in rules:
            for seed in range(seeds):
                if (model, rule, seed) in done:
                    continue
                cfg = ClassifyConfig(rule=rule, model=model, epochs=epochs, seed=seed)
                t, cpu = time.perf_counter(), time.process_time()
                _, history = train_classifier(cfg, images)
                s = summary(cfg, images, history)
                res["runs"].append(
                    {
                        "model": model,
                        "rule": rule,
                        "seed": seed,
                        "test_accuracy": s["test_accuracy"],
                        "lr": s["config"]["lr"],
                        "loss": s["config"]["loss"],
                        "seconds": time.perf_counter() - t,
                        "cpu_seconds": time.process_time() - cpu,
                        "curve": s["curves"]["test_accuracy"],
                    }
                )
                res["date"] = datetime.now(UTC).isoformat(timespec="seconds")
                out.write_text(json.dumps(res, indent=1))
                print(f"{model} {rule} seed {seed}: {s['test_accuracy']:.4f}", flush=True)
    return res


def table(res: dict) -> str:
    """Markdown: test accuracy mean ± sd (%) per rule and model, and the CPU time."""
    head = [f"{m} ({TRAIN_SUBSET[m]:,} images, {e} epochs)" for m, e in EPOCHS.items()]
    lines = ["| rule | " + " | ".join(head) + " |"]
    lines.append("|---" * (len(EPOCHS) + 1) + "|")
    total = 0.0
    for rule in RULES:
        cells = []
        for model in EPOCHS:
            runs = [r for r in res["runs"] if r["model"] == model and r["rule"] == rule]
            total += sum(r["cpu_seconds"] for r in runs)
            acc = [100 * r["test_accuracy"] for r in runs]
            if not acc:
                cells.append("–")
                continue
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            cells.append(f"{statistics.mean(acc):.2f} ± {sd:.2f} (n={len(acc)})")
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    lines.append(f"\nCPU time of the training runs: {total / 60:.1f} min.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fashion_mnist.json"))
    ap.add_argument("--rules", default=",".join(RULES), help="this process's rules (parallel)")
    ap.add_argument("--merge", type=Path, nargs="*", default=[], help="with --table: more JSONs")
    ap.add_argument("--save", type=Path, default=None, help="with --table: write the merged JSON")
    ap.add_argument("--data", default=None, help="folder of the IDX files (default: Debian's)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", action="store_true", help="only print the table of --out")
    a = ap.parse_args()
    if a.table:
        res = json.loads(a.out.read_text())
        for extra in a.merge:
            res["runs"] += json.loads(extra.read_text())["runs"]
        if a.save is not None:
            a.save.write_text(json.dumps(res, indent=1))
    else:
        res = run_all(a.out, a.data, a.seeds, a.threads, a.rules.split(","))
    print(table(res))


if __name__ == "__main__":
    main()
