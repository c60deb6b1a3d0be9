#!/usr/bin/env bash
# Runs a command with CPU hogs beside it (default: two, MEMVIEW_CPU_HOGS=N to change), so the suite is
# proven on a loaded machine like CI's: a test that only passes on an idle machine fails here first.
# The hogs are always killed, whatever way the command ends; the command's exit code is returned.
set -uo pipefail
n="${MEMVIEW_CPU_HOGS:-2}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in $(seq 1 "$n"); do
  # a busy loop in its own process; no output, no memory: pure CPU contention
  bash -c 'while :; do :; done' &
  pids+=("$!")
done
echo "with-cpu-hogs: ${#pids[@]} CPU hogs running (pids ${pids[*]})" >&2
"$@"
