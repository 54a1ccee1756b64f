#!/bin/sh
# ROAD and the sanity checks on the bias study's models (issue 15, parts 5 and 6), one process per
# job, all at once (each model's ROAD; the sanity checks of SANITY_MODELS split by seed), then the
# pooled report (scripts/faithful/bias.ts).
#   scripts/faithful/bias-run.sh [OUT=runs/faithful-bias]
# Environment: ROAD_MODELS (default "strong-seed1 strong-seed2 strong-seed3"), SANITY_MODELS
# (default "strong-seed1"), ROAD_TILES (100), SANITY_TILES (50), SEEDS ("1 2 3"), NICE (10), STEPS (ROAD's
# removal steps, 5), SANITY_SKIP (conditions left out of the sanity checks, JSON strings; default
# Integrated Gradients, 17 passes per map, ~70 % of the sanity checks' time). Every job rewrites its
# output after each chunk of 5 tiles: a run stopped early keeps its finished chunks.
set -eu
OUT=${1:-runs/faithful-bias}
ROAD_MODELS=${ROAD_MODELS-"strong-seed1 strong-seed2 strong-seed3"}
SANITY_MODELS=${SANITY_MODELS-"strong-seed1"}
ROAD_TILES=${ROAD_TILES:-100}
SANITY_TILES=${SANITY_TILES:-50}
SEEDS=${SEEDS:-"1 2 3"}
NICE=${NICE:-10}
STEPS=${STEPS:-5}
SANITY_SKIP=${SANITY_SKIP-'"integrated-gradients"'}
mkdir -p "$OUT/models"
date -u +%s >"$OUT.start"
uptime >"$OUT.load"
echo "ROAD_MODELS=\"$ROAD_MODELS\" SANITY_MODELS=\"$SANITY_MODELS\" ROAD_TILES=$ROAD_TILES SANITY_TILES=$SANITY_TILES SEEDS=\"$SEEDS\" STEPS=$STEPS SANITY_SKIP='$SANITY_SKIP' NICE=$NICE scripts/faithful/bias-run.sh $OUT" >"$OUT/command.txt"
job() { # job-name model options-json
  s=$(date +%s)
  rc=0
  nice -n "$NICE" node --import tsx scripts/faithful/bias-model.ts "models/bias/$2" "$OUT/models/$1.json" "$3" >"$OUT/$1.log" 2>&1 || rc=$?
  echo "exit $rc wall $(($(date +%s) - s)) s" >>"$OUT/$1.log"
}
for m in $ROAD_MODELS; do
  job "road-$m" "$m" "{\"protocol\":\"road\",\"tileStart\":0,\"tileEnd\":$ROAD_TILES,\"chunk\":5,\"seeds\":[1],\"patchSize\":4,\"randomOrders\":2,\"steps\":$STEPS}" &
done
for m in $SANITY_MODELS; do
  for k in $SEEDS; do
    job "sanity-$m-s$k" "$m" "{\"protocol\":\"sanity\",\"tileStart\":0,\"tileEnd\":$SANITY_TILES,\"chunk\":5,\"seeds\":[$k],\"patchSize\":4,\"randomOrders\":2,\"steps\":$STEPS,\"skip\":[$SANITY_SKIP]}" &
  done
done
wait
