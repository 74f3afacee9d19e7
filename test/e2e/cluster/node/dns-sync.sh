#!/usr/bin/env bash
# The cluster DNS's data: keeps <hosts-dir>/services equal to "<ClusterIP> <svc>.<ns>.svc.cluster.local <svc>.<ns>.svc"
# for every Service with a ClusterIP, polling the API every second (dnsmasq re-reads the directory on change).
# usage (inside the cluster's network namespace, started by up.sh): dns-sync.sh <admin-kubeconfig> <hosts-dir>
set -uo pipefail
KC=$1 D=$2
T=$(dirname "$D") # scratch files beside the directory: dnsmasq reads every file in it
while :; do
  if kubectl --kubeconfig="$KC" --request-timeout=5s get services --all-namespaces \
    -o 'jsonpath={range .items[*]}{.spec.clusterIP} {.metadata.name}.{.metadata.namespace}{"\n"}{end}' >"$T/services.tmp" 2>"$T/sync.error"; then
    awk '$1 != "None" && $1 != "" { print $1, $2 ".svc.cluster.local", $2 ".svc" }' "$T/services.tmp" >"$T/services.new"
    if [[ -s "$T/services.new" ]] && ! cmp -s "$T/services.new" "$D/services"; then mv -f "$T/services.new" "$D/services"; fi
  fi
  sleep 1
done
