#!/usr/bin/env bash
# Stop the control plane started by up.sh <state-dir>.
#
# usage: down.sh <state-dir>
#
# Sends TERM to exactly the pids listed in <state-dir>/pids, then KILL to those still alive after 10 s.
# A pid is only signalled if its command line still mentions <state-dir> (guards against pid reuse).
# Removes nothing (logs and state stay for inspection); safe to call twice or on a state dir that never came up.
set -euo pipefail

GRACE_SECONDS=10

[[ $# -eq 1 && -n "$1" ]] || {
  echo "usage: $0 <state-dir>" >&2
  exit 2
}
if [[ ! -d "$1" ]]; then
  echo "[down] $1: no such state dir; nothing to stop"
  exit 0
fi
STATE=$(cd "$1" && pwd -P)
if [[ ! -s "$STATE/pids" ]]; then
  echo "[down] $STATE/pids is empty or missing; nothing to stop"
  exit 0
fi

# shellcheck source=pids.sh
source "$(dirname "${BASH_SOURCE[0]}")/pids.sh"

pids=()
while read -r pid; do
  [[ -n "$pid" ]] || continue
  if pid_is_ours "$pid"; then pids+=("$pid"); fi
done <"$STATE/pids"

if ((${#pids[@]} == 0)); then
  echo "[down] no process of $STATE is running"
  exit 0
fi

# controller-manager and apiserver first, etcd last (reverse start order)
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
  kill -TERM "${pids[i]}" 2>/dev/null || true
done
echo "[down] sent TERM to ${pids[*]}"

deadline=$((SECONDS + GRACE_SECONDS))
while :; do
  left=()
  for pid in "${pids[@]}"; do
    if pid_is_ours "$pid"; then left+=("$pid"); fi
  done
  ((${#left[@]} > 0)) || break
  if ((SECONDS >= deadline)); then
    kill -KILL "${left[@]}" 2>/dev/null || true
    echo "[down] sent KILL to ${left[*]} (still alive after ${GRACE_SECONDS}s)"
    sleep 0.5
    break
  fi
  sleep 0.2
done
echo "[down] stopped"
