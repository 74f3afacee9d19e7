#!/usr/bin/env bash
# Stop the node-mode cluster started by up.sh <state-dir>, and undo what it did to the machine.
#
# usage: down.sh <state-dir>
#
# In order: the controllers (no new pods); the pods, through the kubelet (CNI DEL, volumes unmounted); any container
# left, through containerd; then TERM to exactly the pids in <state-dir>/pids (only those whose command line still
# names the state dir), KILL after 10 s; containerd's shims for this state dir's socket, by pid. Then the mounts under
# the state dir, the network namespace (its bridge, veths, iptables rules and conntrack entries go with it), the
# kubepods cgroups, and the hard-coded host paths up.sh found absent. Reports anything it could not remove and exits
# 1 then. Logs stay for inspection. Safe to call twice, or on a state dir that never came up.
set -uo pipefail

SCRIPT=down-node
START_TS=$SECONDS
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
GRACE_SECONDS=10
[[ $# -eq 1 && -n "$1" ]] || {
  echo "usage: $0 <state-dir>" >&2
  exit 2
}
if [[ ! -d "$1" ]]; then
  echo "[$SCRIPT] $1: no such state dir; nothing to stop"
  exit 0
fi
STATE=$(cd "$1" && pwd -P)
# shellcheck source=common.sh
source "$HERE/common.sh"
log() { node_log "$@"; }
problems=()

pid_of() { awk -v n="$1" '$2 == n { print $1 }' "$STATE/names" 2>/dev/null | tail -n 1; }
running() { local p; p=$(pid_of "$1"); [[ -n "$p" ]] && pid_is_ours "$p"; }
stop() { # <name>...: TERM, wait up to GRACE_SECONDS, KILL
  local name pid pids=() left deadline
  for name in "$@"; do
    pid=$(pid_of "$name")
    [[ -n "$pid" ]] && pid_is_ours "$pid" && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  ((${#pids[@]} > 0)) || return 0
  deadline=$((SECONDS + GRACE_SECONDS))
  while :; do
    left=()
    for pid in "${pids[@]}"; do pid_is_ours "$pid" && left+=("$pid"); done
    ((${#left[@]} > 0)) || break
    if ((SECONDS >= deadline)); then
      kill -KILL "${left[@]}" 2>/dev/null
      log "sent KILL to ${left[*]} (still alive after ${GRACE_SECONDS}s)"
      sleep 0.5
      break
    fi
    sleep 0.1
  done
  log "stopped $*"
}

# 1. No new pods, then the pods themselves through the kubelet, while the API server and containerd still run.
stop kube-controller-manager kube-scheduler
if running kubelet && running kube-apiserver && running containerd && [[ -s "$STATE/admin.kubeconfig" ]]; then
  kube delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1
  deadline=$((SECONDS + 60))
  # Stopped containers stay listed until the kubelet's garbage collection: what matters is that none runs.
  while [[ -n "$(ctr_ns tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"')" ]] && ((SECONDS < deadline)); do sleep 0.25; done
  # The kubelet unmounts a deleted pod's volumes once its containers are gone.
  while grep -q " $STATE/var/kubelet/pods/" /proc/self/mountinfo && ((SECONDS < deadline)); do sleep 0.25; done
  log "pods torn down through the kubelet (containers still running: $(ctr_ns tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"' | wc -l))"
fi
stop dns-sync dnsmasq kube-proxy kubelet

# 2. Whatever containerd still runs (the kubelet was gone, or too slow).
if running containerd; then
  for t in $(ctr_ns tasks ls -q 2>/dev/null); do ctr_ns tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  deadline=$((SECONDS + 10))
  while [[ -n "$(ctr_ns tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"')" ]] && ((SECONDS < deadline)); do sleep 0.2; done
  for t in $(ctr_ns tasks ls -q 2>/dev/null); do ctr_ns tasks delete -f "$t" >/dev/null 2>&1; done
fi
stop containerd
# The shims outlive containerd by design; ours name our socket on their command line.
for p in $(grep -l -a -s -- "$STATE/run/containerd/containerd.sock" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
  [[ "$({ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | head -n 1)" == */containerd-shim-runc-v2 ]] || continue
  pid_is_ours "$p" && kill -KILL "$p" 2>/dev/null && log "killed leftover shim $p"
done
stop kube-apiserver
stop etcd
# Anything else in the pids file (none expected).
while read -r pid; do
  [[ -n "$pid" ]] && pid_is_ours "$pid" && kill -KILL "$pid" 2>/dev/null && log "killed $pid"
done <"$STATE/pids" 2>/dev/null

# 3. Mounts under the state dir (container root filesystems, pod network namespaces, volumes, the kubelet's bind).
for m in $(awk '{ print $5 }' /proc/self/mountinfo | grep -F -- "$STATE/" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
[[ -s "$STATE/mounts" ]] && while read -r m; do mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }; done <"$STATE/mounts"
left=$(awk '{ print $5 }' /proc/self/mountinfo | grep -cF -- "$STATE/")
((left == 0)) || problems+=("$left mounts under $STATE are left")

# 4. The network namespace, if this state dir made it.
if [[ -s "$STATE/netns" && -e "$NS_PATH" ]]; then
  if ip netns pids "$NETNS" 2>/dev/null | grep -q .; then
    problems+=("processes still in the network namespace $NETNS: $(ip netns pids "$NETNS" | tr '\n' ' ')")
  fi
  ip netns del "$NETNS" && log "deleted the network namespace $NETNS" || problems+=("could not delete the network namespace $NETNS")
  rm -f "$STATE/netns"
fi

# 5. The cgroups the kubelet made (rmdir removes only empty ones, deepest first).
for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [[ -d "$c" ]] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  [[ -d "$c" ]] && problems+=("cgroup $c is left (busy)")
done

# 6. The host paths the kubelet, containerd and libcni hard-code, where up.sh found them absent.
if [[ -s "$STATE/created-paths" ]]; then
  while read -r d; do
    [[ -n "$d" && -e "$d" ]] || continue
    if grep -q " $d" /proc/self/mountinfo; then
      problems+=("$d still has mounts; left in place")
    else
      rm -rf "$d" && log "removed $d"
    fi
  done <"$STATE/created-paths"
  : >"$STATE/created-paths"
fi

if ((${#problems[@]} > 0)); then
  printf '[%s] LEFT BEHIND: %s\n' "$SCRIPT" "${problems[@]}" >&2
  exit 1
fi
log "down: nothing left running, mounted or in the way"
