#!/bin/sh
# Runs a command in its own session (so its own scheduler autogroup) and gives that autogroup
# priority on a shared machine (needs root; otherwise it just runs). Usage: run-prio.sh NICE cmd…
n="$1"; shift
exec setsid sh -c 'echo "$0" > /proc/self/autogroup 2>/dev/null || true; exec "$@"' "$n" "$@"
