#!/usr/bin/env bash
# Provision a real kube-apiserver + kube-controller-manager (Kubernetes v1.20.2) for the end-to-end tests.
#
# Builds both binaries from Debian's `kubernetes` source package (offline: the orig tarball ships vendor/)
# into a cache folder OUTSIDE the repository, and installs etcd from Debian.
#
#   FALCO_RESPONSE_E2E_CACHE   cache folder (default: $HOME/.cache/falco-response-e2e)
#
# Result: $CACHE/bin/kube-apiserver, $CACHE/bin/kube-controller-manager, /usr/bin/etcd.
# Idempotent: a second run with a valid cache does nothing and prints "cached".
# Exit codes: 0 ok, 1 failure, 3 unsupported machine (not Debian / not root).
set -euo pipefail

CACHE="${FALCO_RESPONSE_E2E_CACHE:-${HOME:-/root}/.cache/falco-response-e2e}"
# Bump when the recipe below changes: a different stamp forces a rebuild.
RECIPE="k8s=v1.20.2;src=debian:kubernetes;openapi=1;reflect2=debian;json-iterator=debian;cgo=0;recipe=2"
K8S_VERSION="v1.20.2"
APT_PACKAGES=(golang-go etcd-server dpkg-dev openssl curl
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)
SRC_LIST=/etc/apt/sources.list.d/falco-response-e2e-src.sources
HEARTBEAT_SECONDS=30

START_TS=$SECONDS
log() { printf '[provision] [%4ds] %s\n' "$((SECONDS - START_TS))" "$*"; }
die() {
  printf '[provision] ERROR: %s\n' "$*" >&2
  exit 1
}

unsupported() {
  printf '[provision] %s\n' "$*" >&2
  # shellcheck disable=SC2016 # the backticks are literal text
  printf '[provision] the end-to-end tests need a Debian machine and root to provision a kube-apiserver; run the rest with `npm run test:unit`\n' >&2
  exit 3
}

# --- 0. machine check --------------------------------------------------------------------------------------------
check_machine() {
  [[ -r /etc/debian_version ]] || unsupported "not a Debian machine (no /etc/debian_version)"
  command -v apt-get >/dev/null 2>&1 || unsupported "apt-get not found"
  [[ "$(id -u)" -eq 0 ]] || unsupported "not running as root"
}

# Run a command in a directory (a subshell: the caller's cwd is untouched).
in_dir() {
  local dir=$1
  shift
  (cd "$dir" && "$@")
}

# Run a long, silent command with its output in a log file; print a heartbeat every HEARTBEAT_SECONDS.
# usage: run_logged <label> <logfile> <cmd...>
run_logged() {
  local label=$1 logfile=$2
  shift 2
  local t0=$SECONDS
  log "$label: started (log: $logfile)"
  "$@" >"$logfile" 2>&1 &
  local pid=$! rc=0 next=$HEARTBEAT_SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - t0 >= next)); then
      log "$label: still running ($((SECONDS - t0))s)"
      next=$((next + HEARTBEAT_SECONDS))
    fi
  done
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    printf '[provision] ---- last lines of %s ----\n' "$logfile" >&2
    tail -n 40 "$logfile" >&2 || true
    die "$label failed (exit $rc) after $((SECONDS - t0))s"
  fi
  log "$label: done in $((SECONDS - t0))s"
}

binaries_cached() {
  [[ -x "$CACHE/bin/kube-apiserver" && -x "$CACHE/bin/kube-controller-manager" && -f "$CACHE/stamp" ]] &&
    [[ "$(cat "$CACHE/stamp")" == "$RECIPE" ]]
}

runtime_present() {
  command -v etcd >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 && command -v curl >/dev/null 2>&1
}

packages_installed() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}

# --- 1. deb-src entry, derived from the configured Debian mirror (no host name is hard-coded here) -----------------
ensure_deb_src() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] && grep -Eq '^[[:space:]]*deb-src[[:space:]]' "$f" && {
      log "deb-src already configured in $f"
      return 0
    }
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] && grep -Eqi '^Types:.*\bdeb-src\b' "$f" && {
      log "deb-src already configured in $f"
      return 0
    }
  done
  local base=/etc/apt/sources.list.d/debian.sources
  [[ -f "$base" ]] || die "no deb-src entry and no $base to derive one from"
  local tmp
  tmp=$(mktemp)
  # Copy every stanza whose Types has "deb", with Types rewritten to deb-src; stanzas are blank-line separated.
  awk 'BEGIN { RS = ""; ORS = "\n\n" }
       {
         n = split($0, lines, "\n"); out = ""; keep = 0
         for (i = 1; i <= n; i++) {
           l = lines[i]
           if (l ~ /^[Tt]ypes:/) { if (l ~ /[[:space:]]deb([[:space:]]|$)/) keep = 1; l = "Types: deb-src" }
           out = out l "\n"
         }
         if (keep) printf "%s\n", out
       }' "$base" >"$tmp"
  [[ -s "$tmp" ]] || {
    rm -f "$tmp"
    die "could not derive a deb-src entry from $base"
  }
  install -m 0644 "$tmp" "$SRC_LIST"
  rm -f "$tmp"
  log "wrote $SRC_LIST (deb-src stanzas derived from $base)"
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  run_logged "apt-get update" "$CACHE/logs/apt-update.log" apt-get update
  # etcd-server ships a service that would start a system-wide etcd on the default ports: forbid service starts
  # during this install (policy-rc.d exit 101), unless the machine already has its own policy.
  local policy=/usr/sbin/policy-rc.d added=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    added=1
  fi
  local rc=0
  (run_logged "apt-get install" "$CACHE/logs/apt-install.log" \
    apt-get install -y --no-install-recommends "$@") || rc=$?
  ((added)) && rm -f "$policy"
  ((rc == 0)) || exit "$rc"
}

# --- 2. source ----------------------------------------------------------------------------------------------------
ensure_source() {
  if [[ -f "$CACHE/src/.complete" && -d "$CACHE/src/kubernetes/cmd/kube-apiserver" ]]; then
    log "kubernetes source already unpacked: $CACHE/src/kubernetes"
    return 0
  fi
  rm -rf "$CACHE/src" "$CACHE/src.tmp"
  mkdir -p "$CACHE/src.tmp"
  # apt-get source as root warns about an unsandboxed download; harmless.
  run_logged "apt-get source kubernetes" "$CACHE/logs/apt-source.log" \
    in_dir "$CACHE/src.tmp" apt-get source kubernetes
  local dir
  dir=$(find "$CACHE/src.tmp" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
  [[ -n "$dir" && -d "$dir/cmd/kube-apiserver" && -d "$dir/vendor" ]] ||
    die "apt-get source did not produce a kubernetes tree with vendor/ (see $CACHE/logs/apt-source.log)"
  mv "$dir" "$CACHE/src.tmp/kubernetes"
  basename "$dir" >"$CACHE/src.tmp/kubernetes/.debian-source-dir"
  rm -f "$CACHE/src.tmp"/*.tar.* "$CACHE/src.tmp"/*.dsc # keep only the unpacked tree
  mv "$CACHE/src.tmp" "$CACHE/src"
  touch "$CACHE/src/.complete"
  log "unpacked $(cat "$CACHE/src/kubernetes/.debian-source-dir")"
}

go_env() {
  export GOPATH="$CACHE/gopath"
  export GOCACHE="$CACHE/go-build"
  export GO111MODULE=off GOPROXY=off GOFLAGS="" CGO_ENABLED=0 GOSUMDB=off
  mkdir -p "$GOPATH/src/k8s.io" "$GOCACHE"
  ln -sfn "$CACHE/src/kubernetes" "$GOPATH/src/k8s.io/kubernetes"
  KROOT="$GOPATH/src/k8s.io/kubernetes"
}

# --- 4. openapi (pkg/generated/openapi/zz_generated.openapi.go is not in the tarball) ------------------------------
gen_openapi() {
  local out="$KROOT/pkg/generated/openapi/zz_generated.openapi.go" dirs
  # The packages upstream's build/root/Makefile.generated_files feeds to openapi-gen for the KUBE target: files with a
  # column-0 "// +k8s:" tag that mention +k8s:openapi-gen=, minus code-generator and sample-apiserver. Staging
  # packages are named through their vendor/ symlinks, as GOPATH builds import them.
  dirs=$(cd "$KROOT" &&
    grep -rl --include='*.go' -e '^// *+k8s:' \
      --exclude-dir=vendor --exclude-dir=third_party --exclude-dir=_output --exclude-dir=.git . |
    xargs grep -l -e '+k8s:openapi-gen=' | xargs -n1 dirname |
    sed -e 's|^\./||' -e 's|^staging/src/|vendor/|' |
    grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' -e '^\.$' |
    LC_ALL=C sort -u | sed -e 's|^|k8s.io/kubernetes/|' | paste -sd, -)
  [[ -n "$dirs" ]] || die "found no package tagged +k8s:openapi-gen="
  if [[ -s "$out" && -f "$CACHE/src/.openapi-done" && "$(cat "$CACHE/src/.openapi-done")" == "$dirs" ]]; then
    log "openapi already generated"
    return 0
  fi
  mkdir -p "$CACHE/tools"
  run_logged "build openapi-gen" "$CACHE/logs/openapi-gen-build.log" \
    in_dir "$KROOT" go build -o "$CACHE/tools/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  log "openapi-gen over $(tr ',' '\n' <<<"$dirs" | wc -l) packages"
  rm -f "$out" "$CACHE/src/.openapi-done"
  # API rule violations are reported (-r), not enforced: upstream compares them to a known list; we only build.
  run_logged "openapi-gen" "$CACHE/logs/openapi-gen.log" \
    in_dir "$KROOT" "$CACHE/tools/openapi-gen" --logtostderr \
    -i "$dirs" \
    -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    -o "$GOPATH/src" \
    -r "$CACHE/logs/openapi-violations.report"
  [[ -s "$out" ]] || die "openapi-gen did not write $out"
  printf '%s\n' "$dirs" >"$CACHE/src/.openapi-done"
}

# --- 5. reflect2 / json-iterator from Debian (Go 1.19 crashes the 1.20 vendored copies) ----------------------------
replace_vendored() {
  local name src dst
  for name in modern-go/reflect2 json-iterator/go; do
    src="/usr/share/gocode/src/github.com/$name"
    dst="$KROOT/vendor/github.com/$name"
    [[ -d "$src" ]] || die "missing $src (package golang-github-${name//\//-}-dev?)"
    [[ -d "$dst" ]] || die "missing $dst in the kubernetes tree"
    find "$dst" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' -o -name 'LICENSE' \) -delete
    find "$src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' -o -name 'LICENSE' \) ! -name '*_test.go' \
      -exec cp -L {} "$dst/" \;
  done
  log "vendored reflect2 and json-iterator replaced with Debian's"
}

# --- 6. build ------------------------------------------------------------------------------------------------------
build_binaries() {
  local v="k8s.io/component-base/version" date ldflags="-s -w" pkg key val
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for pkg in "k8s.io/kubernetes/vendor/$v" "$v" "k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version"; do
    for key in gitVersion=$K8S_VERSION gitMajor=1 gitMinor=20 gitTreeState=archive buildDate=$date; do
      val=${key#*=}
      ldflags+=" -X '$pkg.${key%%=*}=$val'"
    done
  done
  rm -rf "$CACHE/bin.tmp"
  mkdir -p "$CACHE/bin.tmp"
  run_logged "go build kube-apiserver + kube-controller-manager" "$CACHE/logs/go-build.log" \
    in_dir "$KROOT" go build -trimpath -ldflags "$ldflags" -o "$CACHE/bin.tmp/" ./cmd/kube-apiserver ./cmd/kube-controller-manager
  [[ -x "$CACHE/bin.tmp/kube-apiserver" && -x "$CACHE/bin.tmp/kube-controller-manager" ]] ||
    die "go build did not produce both binaries"
  mkdir -p "$CACHE/bin"
  mv -f "$CACHE/bin.tmp/kube-apiserver" "$CACHE/bin.tmp/kube-controller-manager" "$CACHE/bin/"
  rmdir "$CACHE/bin.tmp"
  printf '%s\n' "$RECIPE" >"$CACHE/stamp"
  {
    echo "built=$date"
    echo "source=$(cat "$KROOT/.debian-source-dir" 2>/dev/null || echo unknown)"
    echo "go=$(go version)"
  } >"$CACHE/build-info"
}

main() {
  check_machine
  mkdir -p "$CACHE"
  CACHE=$(cd "$CACHE" && pwd -P)
  mkdir -p "$CACHE/logs"
  exec 9>"$CACHE/.lock"
  if ! flock -n 9; then
    log "another provision run holds $CACHE/.lock; waiting"
    flock 9
  fi

  if binaries_cached && runtime_present; then
    log "cached: $CACHE/bin/kube-apiserver, $CACHE/bin/kube-controller-manager ($(command -v etcd))"
    return 0
  fi

  log "cache: $CACHE"
  if binaries_cached; then
    log "binaries cached; installing the runtime packages only"
    packages_installed etcd-server openssl curl || apt_install etcd-server openssl curl
  else
    if packages_installed "${APT_PACKAGES[@]}" && [[ -f "$CACHE/src/.complete" ]]; then
      log "packages already installed and source unpacked; skipping apt"
    else
      ensure_deb_src
      apt_install "${APT_PACKAGES[@]}"
    fi
    ensure_source
    go_env
    log "$(go version)"
    gen_openapi
    replace_vendored
    build_binaries
  fi
  runtime_present || die "etcd/openssl/curl still missing after install"
  log "ready: $CACHE/bin/kube-apiserver, $CACHE/bin/kube-controller-manager, $(command -v etcd)"
}

main "$@"
