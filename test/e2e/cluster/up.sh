#!/usr/bin/env bash
# Start a throw-away Kubernetes v1.20.2 control plane (etcd + kube-apiserver + kube-controller-manager) on loopback.
#
# usage: up.sh <state-dir>
#
# Needs the binaries from provision.sh (FALCO_RESPONSE_E2E_CACHE, default $HOME/.cache/falco-response-e2e).
# Listens on 127.0.0.1 only, on free ports chosen at start. No kubelet: pods stay Pending.
# Writes into <state-dir>: admin.kubeconfig, ca.crt, server, pids, env, admin.token, etcd.log, apiserver.log,
# controller-manager.log, and its private certs/ and etcd-data/ folders.
# Each run on a stopped state dir starts a FRESH cluster (etcd data and certs are recreated).
# If the cluster of <state-dir> is already up and ready, it says so and exits 0.
# Stop it with down.sh <state-dir>.
set -euo pipefail

CACHE="${FALCO_RESPONSE_E2E_CACHE:-${HOME:-/root}/.cache/falco-response-e2e}"
BIN="$CACHE/bin"
READY_TIMEOUT=60
SA_TIMEOUT=60
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

START_TS=$SECONDS
log() { printf '[up] [%3ds] %s\n' "$((SECONDS - START_TS))" "$*"; }
die() {
  printf '[up] ERROR: %s\n' "$*" >&2
  exit 1
}

[[ $# -eq 1 && -n "$1" ]] || {
  echo "usage: $0 <state-dir>" >&2
  exit 2
}
mkdir -p "$1"
STATE=$(cd "$1" && pwd -P)

for b in kube-apiserver kube-controller-manager; do
  [[ -x "$BIN/$b" ]] || {
    echo "[up] $BIN/$b is missing: run test/e2e/cluster/provision.sh first" >&2
    exit 3
  }
done
ETCD=$(command -v etcd || true)
[[ -n "$ETCD" ]] || {
  echo "[up] etcd is not installed: run test/e2e/cluster/provision.sh first" >&2
  exit 3
}
for c in openssl curl; do command -v "$c" >/dev/null 2>&1 || die "$c is required"; done

# shellcheck source=pids.sh
source "$(dirname "${BASH_SOURCE[0]}")/pids.sh"

curl_admin() {
  curl --silent --show-error --max-time 5 --cacert "$STATE/ca.crt" \
    --cert "$STATE/certs/admin.crt" --key "$STATE/certs/admin.key" "$@"
}

# --- already running? --------------------------------------------------------------------------------------------
if [[ -s "$STATE/pids" ]]; then
  alive=0 total=0
  while read -r pid; do
    [[ -n "$pid" ]] || continue
    total=$((total + 1))
    if pid_is_ours "$pid"; then alive=$((alive + 1)); fi
  done <"$STATE/pids"
  if ((alive > 0)); then
    if ((alive == total)) && [[ -s "$STATE/server" ]] &&
      [[ "$(curl_admin "$(cat "$STATE/server")/readyz" 2>/dev/null || true)" == ok ]]; then
      log "already up: $(cat "$STATE/server") (state: $STATE)"
      exit 0
    fi
    die "$alive of $total processes in $STATE/pids are still running but the cluster is not ready; run down.sh $STATE first"
  fi
fi

# --- fresh state -------------------------------------------------------------------------------------------------
rm -rf "$STATE/etcd-data" "$STATE/certs"
rm -f "$STATE/pids" "$STATE/server" "$STATE/env" "$STATE/admin.kubeconfig" "$STATE/ca.crt" "$STATE/admin.token" \
  "$STATE/etcd.log" "$STATE/apiserver.log" "$STATE/controller-manager.log"
mkdir -p "$STATE/certs"
chmod 0700 "$STATE/certs"
: >"$STATE/pids"

# --- free ports: ask the kernel (bind to port 0), else pick at random and probe ----------------------------------
free_ports() {
  local n=$1
  if command -v python3 >/dev/null 2>&1 &&
    python3 - "$n" <<'PY' 2>/dev/null; then
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
    return 0
  fi
  local ports=() p tries=0
  while ((${#ports[@]} < n)); do
    ((tries++ < 200)) || return 1
    p=$((20000 + RANDOM % 30000))
    [[ " ${ports[*]} " == *" $p "* ]] && continue
    # A refused connection means nothing listens there.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ports+=("$p"); fi
  done
  echo "${ports[*]}"
}
read -r ETCD_CLIENT_PORT ETCD_PEER_PORT API_PORT < <(free_ports 3) || die "could not find free ports"
[[ -n "${API_PORT:-}" ]] || die "could not find free ports"
SERVER="https://127.0.0.1:$API_PORT"
log "ports: etcd client $ETCD_CLIENT_PORT, etcd peer $ETCD_PEER_PORT, apiserver $API_PORT"

# --- certificates --------------------------------------------------------------------------------------------------
C="$STATE/certs"
ossl() { openssl "$@" >>"$C/openssl.log" 2>&1 || die "openssl $1 failed (see $C/openssl.log)"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -keyout "$C/ca.key" -out "$C/ca.crt" \
  -subj "/CN=falco-response-e2e-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
# serving cert: 127.0.0.1 / localhost, plus the in-cluster names and the first service IP of the service range
cat >"$C/server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
ossl req -newkey rsa:2048 -nodes -keyout "$C/server.key" -out "$C/server.csr" -subj "/CN=kube-apiserver"
ossl x509 -req -in "$C/server.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -days 3650 -sha256 \
  -extfile "$C/server.ext" -out "$C/server.crt"
cat >"$C/client.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
ossl req -newkey rsa:2048 -nodes -keyout "$C/admin.key" -out "$C/admin.csr" -subj "/O=system:masters/CN=e2e-admin"
ossl x509 -req -in "$C/admin.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -days 3650 -sha256 \
  -extfile "$C/client.ext" -out "$C/admin.crt"
ossl genrsa -out "$C/sa.key" 2048
ossl rsa -in "$C/sa.key" -pubout -out "$C/sa.pub"
chmod 0600 "$C"/*.key
cp "$C/ca.crt" "$STATE/ca.crt"

# static admin token (bearer auth for clients that prefer it to client certificates)
ADMIN_TOKEN=$(openssl rand -hex 32)
printf '%s\n' "$ADMIN_TOKEN" >"$STATE/admin.token"
chmod 0600 "$STATE/admin.token"
printf '%s,e2e-admin-token,e2e-admin-token,system:masters\n' "$ADMIN_TOKEN" >"$C/tokens.csv"
chmod 0600 "$C/tokens.csv"

b64() { base64 -w0 <"$1"; }
umask 077
cat >"$STATE/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: $SERVER
    certificate-authority-data: $(b64 "$C/ca.crt")
users:
- name: e2e-admin
  user:
    client-certificate-data: $(b64 "$C/admin.crt")
    client-key-data: $(b64 "$C/admin.key")
contexts:
- name: e2e
  context:
    cluster: e2e
    user: e2e-admin
    namespace: default
current-context: e2e
EOF
umask 022

# --- processes -----------------------------------------------------------------------------------------------------
# setsid: the daemons outlive this script and are not hit by signals sent to the caller's process group.
# (A background job of a non-interactive shell is not a group leader, so setsid does not fork: $! is the daemon.)
start() {
  local logfile=$1
  shift
  setsid "$@" </dev/null >"$logfile" 2>&1 &
  echo "$!" >>"$STATE/pids"
  LAST_PID=$!
}

# On any failure from here on, stop what we started (down.sh kills exactly the pids file).
cleanup_on_error() {
  local rc=$?
  if ((rc != 0)); then
    echo "[up] failed; stopping what was started" >&2
    "$HERE/down.sh" "$STATE" >&2 || true
  fi
}
trap cleanup_on_error EXIT

# Our own child, not reaped (this script never waits for it), so its pid cannot have been reused: alive unless it is
# gone or a zombie. (pid_is_ours would say no for a child still between fork and exec: its command line is then this
# script's, which names the state dir without a slash after it; down.sh, where a pid may have been reused, keeps it.)
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat%% *}" != Z ]]
}

alive_or_die() { # <pid> <name> <log>
  running "$1" && return 0
  echo "[up] ---- last lines of $3 ----" >&2
  tail -n 40 "$3" >&2 || true
  die "$2 exited early"
}

start "$STATE/etcd.log" "$ETCD" \
  --name e2e \
  --data-dir "$STATE/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster-state new \
  --initial-cluster-token "e2e-$$"
ETCD_PID=$LAST_PID
log "etcd pid $ETCD_PID"

deadline=$((SECONDS + 30))
etcd_healthy() {
  local body
  body=$(curl --silent --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" 2>/dev/null) || return 1
  [[ "${body//[[:space:]]/}" == *'"health":"true"'* ]]
}
until etcd_healthy; do
  alive_or_die "$ETCD_PID" etcd "$STATE/etcd.log"
  ((SECONDS < deadline)) || {
    tail -n 40 "$STATE/etcd.log" >&2
    die "etcd not healthy after 30s"
  }
  sleep 0.2
done
log "etcd healthy"

start "$STATE/apiserver.log" "$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --bind-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --insecure-port=0 \
  --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --tls-cert-file="$C/server.crt" \
  --tls-private-key-file="$C/server.key" \
  --client-ca-file="$C/ca.crt" \
  --token-auth-file="$C/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$C/sa.pub" \
  --service-account-signing-key-file="$C/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --profiling=false
API_PID=$LAST_PID
log "kube-apiserver pid $API_PID"

deadline=$((SECONDS + READY_TIMEOUT))
until [[ "$(curl_admin "$SERVER/readyz" 2>/dev/null || true)" == ok ]]; do
  alive_or_die "$API_PID" kube-apiserver "$STATE/apiserver.log"
  alive_or_die "$ETCD_PID" etcd "$STATE/etcd.log"
  if ((SECONDS >= deadline)); then
    echo "[up] ---- $SERVER/readyz?verbose ----" >&2
    curl_admin "$SERVER/readyz?verbose" >&2 || true
    echo "[up] ---- last lines of $STATE/apiserver.log ----" >&2
    tail -n 40 "$STATE/apiserver.log" >&2 || true
    die "kube-apiserver not ready after ${READY_TIMEOUT}s"
  fi
  sleep 0.5
done
log "kube-apiserver ready at $SERVER"

start "$STATE/controller-manager.log" "$BIN/kube-controller-manager" \
  --kubeconfig="$STATE/admin.kubeconfig" \
  --secure-port=0 \
  --port=0 \
  --leader-elect=false \
  --service-account-private-key-file="$C/sa.key" \
  --root-ca-file="$C/ca.crt" \
  --cluster-signing-cert-file="$C/ca.crt" \
  --cluster-signing-key-file="$C/ca.key" \
  --use-service-account-credentials=true
CM_PID=$LAST_PID
log "kube-controller-manager pid $CM_PID"

# Pods need the default ServiceAccount and (in 1.20) its token secret before admission lets them in.
deadline=$((SECONDS + SA_TIMEOUT))
# (The apiserver pretty-prints JSON for curl: drop all whitespace before matching.)
sa_has_token() {
  local body
  body=$(curl_admin "$SERVER/api/v1/namespaces/default/serviceaccounts/default" 2>/dev/null) || return 1
  body=${body//[[:space:]]/}
  [[ "$body" == *'"secrets":[{'* ]]
}
until sa_has_token; do
  alive_or_die "$CM_PID" kube-controller-manager "$STATE/controller-manager.log"
  alive_or_die "$API_PID" kube-apiserver "$STATE/apiserver.log"
  if ((SECONDS >= deadline)); then
    echo "[up] ---- last lines of $STATE/controller-manager.log ----" >&2
    tail -n 40 "$STATE/controller-manager.log" >&2 || true
    die "no default ServiceAccount (with its token) in namespace default after ${SA_TIMEOUT}s"
  fi
  sleep 0.5
done
log "default ServiceAccount ready"

printf '%s\n' "$SERVER" >"$STATE/server"
{
  printf 'KUBECONFIG=%q\n' "$STATE/admin.kubeconfig"
  printf 'E2E_SERVER=%q\n' "$SERVER"
  printf 'E2E_CA=%q\n' "$STATE/ca.crt"
  printf 'E2E_ADMIN_TOKEN_FILE=%q\n' "$STATE/admin.token"
  printf 'E2E_STATE_DIR=%q\n' "$STATE"
  echo 'export KUBECONFIG E2E_SERVER E2E_CA E2E_ADMIN_TOKEN_FILE E2E_STATE_DIR'
} >"$STATE/env"
trap - EXIT
log "up: $SERVER (state: $STATE; source $STATE/env; stop with down.sh $STATE)"
