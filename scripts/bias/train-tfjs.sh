#!/bin/sh
# Trains one model of the bias study from scratch on a step count (no wall-clock budget):
#   scripts/bias/train-tfjs.sh ARM SEED      (ARM: strong | weak | none | control)
# The TF.js trainer of the first bias-study models (2000 steps; held-out mean IoU 0.11–0.38). The
# models of record come from scripts/bias/train.sh (PyTorch, imported into TF.js).
# writes models/bias/ARM-seedSEED/{model.json,weights.bin,training.json}. Deterministic given the
# seed up to float summation order (single-threaded wasm backend). Any other flags are passed on.
set -e
arm="$1"; seed="$2"; shift 2
out="models/bias/$arm-seed$seed"
node --import tsx scripts/bias/cli.ts train --dataset bias --arm "$arm" --seed "$seed" \
  --size 32 --steps 2000 --depth 3 --base 8 --batch 16 --lr 0.003 --warmup 100 \
  --eval-tiles 300 --val-tiles 0 --checkpoint-every 100000 --no-progress --out "$out" "$@"
rm -rf "$out/checkpoint"
