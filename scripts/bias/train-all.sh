#!/bin/sh
# Trains every model of the bias study, two at a time (about 7 min each on a loaded 2-core machine):
#   scripts/bias/train-all.sh
# Each model: scripts/bias/train.sh ARM SEED → models/bias/ARM-seedSEED/ (run with scheduler priority).
set -e
queue() { for m in "$@"; do scripts/bias/run-prio.sh -5 scripts/bias/train.sh ${m%:*} ${m#*:}; done; }
queue strong:1 none:1 strong:3 weak:1 weak:3 &
queue strong:2 none:2 none:3 control:1 weak:2 &
wait
