#!/bin/sh
# Trains one model of the bias study from scratch on a step count (no wall-clock budget):
#   scripts/bias/train.sh ARM SEED      (ARM: strong | weak | none | control)
# 1. renders the training tiles (train split, indices 0..TILES-1) and 300 held-out tiles with the
#    TS generator (scripts/bias/dump-tiles.ts) into scratch/bias-tiles/ (not committed; re-created
#    identically from (arm, seed));
# 2. trains the project's U-Net in PyTorch (scripts/bias/train.py, /usr/bin/python3, 1 thread):
#    class-weighted cross-entropy + soft Dice, the last 1000 training tiles held back to calibrate
#    the logits bias against the class weights; for the control arm each pixel is weighted by the
#    class of the digit under it rather than by its label (--weight-by-object), so that its bias
#    digits labelled background weigh as much as those labelled as the bias digit;
# 3. imports the weights into a TF.js LayersModel, checks TF.js labels the held-out tiles as
#    PyTorch did, and writes models/bias/ARM-seedSEED/{model.json,weights.bin,training.json}.
# Deterministic given the seed up to float summation order. Env: STEPS, TILES, BASE, PY, GEN.
set -e
arm="$1"; seed="$2"
steps="${STEPS:-4000}"; tiles="${TILES:-20000}"; base="${BASE:-8}"; py="${PY:-/usr/bin/python3}"
gen="${GEN:-{\}}"
out="models/bias/$arm-seed$seed"
data="scratch/bias-tiles"; run="scratch/bias-runs/$arm-seed$seed"
mkdir -p "$data" "$run"
train="$data/$arm-seed$seed-train.bin"; held="$data/$arm-seed$seed-heldout.bin"
# the tile files are a pure function of (arm, seed, count, GEN, the generator's code): kept between
# runs when their record matches
code=$(cat src/data/bias-tiles.ts src/data/textures.ts src/data/texture-mnist.ts | sha1sum | cut -c1-12)
objects=""; weighting=""
if [ "$arm" = control ]; then objects="--objects"; weighting=" --weight-by-object $train.obj"; fi
dump() {
  want="{\"arm\":\"$arm\",\"seed\":$seed,\"split\":\"$1\",\"count\":$2,\"gen\":$gen,\"objects\":\"$objects\",\"code\":\"$code\"}"
  if [ -f "$3" ] && [ "$(cat "$3.want" 2>/dev/null)" = "$want" ]; then return; fi
  node --import tsx scripts/bias/dump-tiles.ts --arm "$arm" --seed "$seed" --split "$1" --count "$2" --size 32 --gen "$gen" $objects --out "$3"
  echo "$want" > "$3.want"
}
dump train "$tiles" "$train"
dump heldout 300 "$held"
cmd="$py scripts/bias/train.py --train $train --eval $held --out $run --steps $steps --base $base --depth 3 --batch 32 --lr 0.003 --warmup 200 --class-weight-power 0.5 --val 1000 --seed $seed --threads 1$weighting"
$cmd
node --import tsx scripts/bias/import-torch.ts "$run" "$out" \
  --command "STEPS=$steps TILES=$tiles BASE=$base GEN='$gen' scripts/bias/train.sh $arm $seed  # runs: $cmd"
