#!/bin/sh
# Trains every model of the bias study, two at a time (about 7 min each on a 2-core machine):
#   scripts/bias/train-all.sh
# Each model: scripts/bias/train.sh ARM SEED → models/bias/ARM-seedSEED/.
set -e
queue() { for m in "$@"; do scripts/bias/train.sh ${m%:*} ${m#*:}; done; }
queue strong:1 weak:1 none:2 strong:3 weak:3 &
queue none:1 control:1 strong:2 weak:2 none:3 &
wait
