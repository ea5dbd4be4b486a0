#!/usr/bin/env bash
# MNIST with the LeNet-style CNN, every rule, 5 seeds: the comparison with BioTorch's published
# LeNet test errors (BP 0.84 %, FA 1.91 %, DFA 1.71 %, uSF 0.83 %).
#
#   bash docs/experiments/supervised_mnist.sh DIR_WITH_MNIST_IDX_FILES [OUT_DIR]
#
# DIR holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
# t10k-labels-idx1-ubyte (optionally .gz), or pass an mnist.npz instead. Nothing is downloaded.
# Each run writes OUT_DIR/<rule>-s<seed>.json (test_accuracy, test_error_percent, curves); runs
# already done are skipped. Every rule uses its default loss and Adam rate (docs/torch.md), 20
# epochs, batch 32, 2 torch threads. Cost measured on this project's shared 2-core machine with
# one thread: 67 ms (bp) to 85 ms (sar) per batch of 32, so ~50 min per 20-epoch run and ~30 h
# for all 35 runs; a free multi-core CPU is several times faster. EPOCHS=5 gives a first look.
# RULES="sar dfa" SEEDS="0 1" limit the runs.
set -euo pipefail
data=${1:?usage: supervised_mnist.sh MNIST_DIR [OUT_DIR]}
out=${2:-runs/supervised-mnist}
mkdir -p "$out"
for rule in ${RULES:-bp sar sar-local sign-only fa dfa sign-symmetry}; do
  for seed in ${SEEDS:-0 1 2 3 4}; do
    json="$out/$rule-s$seed.json"
    [ -f "$json" ] && continue
    sarlearn classify --dataset mnist --data "$data" --model lenet --rule "$rule" \
      --seed "$seed" --epochs "${EPOCHS:-20}" --threads 2 --no-plot --out "$out/$rule-s$seed" --json "$json"
  done
done
python3 - "$out" <<'PY'
import glob, json, statistics, sys
rows = {}
for f in sorted(glob.glob(f"{sys.argv[1]}/*.json")):
    s = json.load(open(f))
    rows.setdefault(s["config"]["rule"], []).append(s["test_error_percent"])
print("| rule | test error % (mean ± std) | seeds |\n|---|---|---|")
for rule, e in rows.items():
    sd = statistics.stdev(e) if len(e) > 1 else 0.0
    print(f"| {rule} | {statistics.mean(e):.2f} ± {sd:.2f} | {len(e)} |")
PY
