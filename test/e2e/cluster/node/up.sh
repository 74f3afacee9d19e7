#!/usr/bin/env bash
# Start a throw-away single-node Kubernetes v1.20.2 cluster in which pods really run: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd, the kubelet, kube-proxy (iptables mode) and dnsmasq as the
# cluster DNS, all inside ONE network namespace made here (falco-response-e2e), entered with `nsenter --net`.
#
# usage: up.sh <state-dir>
#
# Needs ../provision.sh and ./provision.sh (FALCO_RESPONSE_E2E_CACHE, default $HOME/.cache/falco-response-e2e).
# The namespace has no link to the host and no default route: node address 10.200.0.1 (a veth pair whose both ends
# stay inside), Services 10.96.0.0/24 (kubernetes 10.96.0.1, kube-dns 10.96.0.10), pods 10.244.0.0/24 on a bridge.
# The host's sysctls are left as they are: the kubelet runs in its own mount namespace where the host-wide ones it
# would set are covered by files that already hold the values it wants; kube-proxy is told not to touch conntrack's.
# Writes into <state-dir>: admin.kubeconfig, ca.crt, env, pids, logs/, and the cluster's state. On any failure it
# prints the reason and the log that tells it, and stops everything it started (down.sh).
# Stop it with down.sh <state-dir> (run.sh does, on exit).
set -euo pipefail

SCRIPT=up-node
START_TS=$SECONDS
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CACHE="${FALCO_RESPONSE_E2E_CACHE:-${HOME:-/root}/.cache/falco-response-e2e}"
[[ $# -eq 1 && -n "$1" ]] || {
  echo "usage: $0 <state-dir>" >&2
  exit 2
}
mkdir -p "$1"
STATE=$(cd "$1" && pwd -P)
# shellcheck source=common.sh
source "$HERE/common.sh"
# shellcheck source=versions.sh
source "$HERE/versions.sh"
log() { node_log "$@"; }
die() { node_die "$@"; }

BIN="$CACHE/bin" NBIN="$CACHE/node/bin" IMAGES="$CACHE/node/images"
for b in "$BIN/kube-apiserver" "$BIN/kube-controller-manager" "$NBIN/kubelet" "$NBIN/kube-scheduler" "$NBIN/kube-proxy" "$IMAGES/pause.tar"; do
  [[ -e "$b" ]] || {
    echo "[$SCRIPT] $b is missing: run test/e2e/cluster/node/provision.sh first" >&2
    exit 3
  }
done
for c in etcd containerd ctr runc iptables dnsmasq kubectl openssl curl nsenter unshare ip; do
  command -v "$c" >/dev/null 2>&1 || die "$c is required: run test/e2e/cluster/node/provision.sh first"
done
[[ "$(id -u)" -eq 0 ]] || die "the node mode needs root (network namespace, containerd, kubelet)"
if [[ -e "$NS_PATH" ]]; then
  die "the network namespace $NETNS exists: a node-mode cluster is up or was not torn down; run down.sh on its state dir (or 'ip netns del $NETNS' once nothing runs in it)"
fi

rm -rf "$STATE/pki" "$STATE/etcd" "$STATE/run" "$STATE/var" "$STATE/logs"
mkdir -p "$STATE/pki" "$STATE/run" "$STATE/var" "$STATE/logs" "$STATE/etc/cni" "$STATE/dns"
chmod 0700 "$STATE/pki"
: >"$STATE/pids"
: >"$STATE/created-paths"
for d in "${HARD_CODED_PATHS[@]}"; do [[ -e "$d" ]] || echo "$d" >>"$STATE/created-paths"; done
L="$STATE/logs"

cleanup_on_error() {
  local rc=$?
  if ((rc != 0)); then
    echo "[$SCRIPT] failed; stopping what was started" >&2
    bash "$HERE/down.sh" "$STATE" >&2 || true
  fi
}
trap cleanup_on_error EXIT

# --- network namespace -------------------------------------------------------------------------------------------------
ip netns add "$NETNS"
echo "netns $NETNS" >"$STATE/netns"
ip -n "$NETNS" link set lo up
# This kernel may have no dummy driver: the node address sits on a veth pair whose both ends stay in the namespace.
ip -n "$NETNS" link add e2e-node0 type veth peer name e2e-node1
ip -n "$NETNS" addr add "$NODE_IP/24" dev e2e-node0
ip -n "$NETNS" link set e2e-node0 up
ip -n "$NETNS" link set e2e-node1 up
# Only the Service range is routed, so that processes of the namespace can connect() to ClusterIPs (kube-proxy DNATs
# them in OUTPUT). No default route: nothing leaves, and the kubelet's cloud metadata probe fails at once.
ip -n "$NETNS" route add "$SERVICE_CIDR" dev e2e-node0
# Both are per network namespace.
"${IN_NS[@]}" sysctl -qw net.ipv4.ip_forward=1
"${IN_NS[@]}" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null ||
  { modprobe br_netfilter 2>/dev/null && "${IN_NS[@]}" sysctl -qw net.bridge.bridge-nf-call-iptables=1; } ||
  log "note: net.bridge.bridge-nf-call-iptables is not available; pod to Service traffic on the bridge may bypass kube-proxy"
log "network namespace $NETNS: node $NODE_IP, Services $SERVICE_CIDR, pods $POD_CIDR"

# --- certificates -------------------------------------------------------------------------------------------------------
P="$STATE/pki"
ossl() { openssl "$@" >>"$P/openssl.log" 2>&1 || die "openssl $1 failed (see $P/openssl.log)"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -keyout "$P/ca.key" -out "$P/ca.crt" -subj "/CN=falco-response-e2e-node-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:%s,IP:%s,DNS:localhost,DNS:%s,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' \
  "$NODE_IP" "$KUBERNETES_SERVICE_IP" "$NODE_NAME" >"$P/server.ext"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$P/client.ext"
cert() { # <name> <subject> <ext>
  ossl req -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" -subj "$2"
  ossl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 3650 -sha256 -extfile "$P/$3" -out "$P/$1.crt"
}
cert server "/CN=kube-apiserver" server.ext
cert admin "/O=system:masters/CN=e2e-admin" client.ext
cert controller-manager "/CN=system:kube-controller-manager" client.ext
cert scheduler "/CN=system:kube-scheduler" client.ext
cert kube-proxy "/CN=system:kube-proxy" client.ext
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" client.ext
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client.ext
ossl genrsa -out "$P/sa.key" 2048
ossl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub"
chmod 0600 "$P"/*.key
cp "$P/ca.crt" "$STATE/ca.crt"
SERVER="https://$NODE_IP:$API_PORT"
b64() { base64 -w0 <"$1"; }
kubeconfig() { # <user> <file>
  (umask 077 && cat >"$2" <<K
apiVersion: v1
kind: Config
clusters:
- name: e2e-node
  cluster: {server: "$SERVER", certificate-authority-data: "$(b64 "$P/ca.crt")"}
users:
- name: $1
  user: {client-certificate-data: "$(b64 "$P/$1.crt")", client-key-data: "$(b64 "$P/$1.key")"}
contexts:
- name: e2e-node
  context: {cluster: e2e-node, user: $1, namespace: default}
current-context: e2e-node
K
  )
}
kubeconfig admin "$STATE/admin.kubeconfig"
for u in controller-manager scheduler kube-proxy kubelet; do kubeconfig "$u" "$P/$u.kubeconfig"; done
log "certificates and kubeconfigs written"

# --- configuration files ------------------------------------------------------------------------------------------------
E="$STATE/etc" V="$STATE/var" R="$STATE/run"
cat >"$E/containerd.toml" <<C
version = 2
root = "$V/containerd"
state = "$R/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$R/containerd/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$V/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  enable_selinux = false
  # Where root lacks CAP_SYS_RESOURCE, runc cannot lower oom_score_adj and every sandbox fails with
  # "nsexec: failed to update /proc/self/oom_score_adj: Permission denied" unless containerd keeps it as it is.
  restrict_oom_score_adj = true
  # The pods' network namespaces under our own state dir, not the shared /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
        Root = "$R/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$E/cni"
    max_conf_num = 1
C
cat >"$E/cni/10-e2e-bridge.conflist" <<N
{"cniVersion": "0.4.0", "name": "e2e-net", "plugins": [
  {"type": "bridge", "bridge": "e2e-cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$V/cni", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "${POD_CIDR%.*}.1"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
N
: >"$E/resolv.conf" # the pods never learn the host's name servers: cluster DNS only
cat >"$E/kubelet.yaml" <<Y
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
clusterDomain: cluster.local
clusterDNS: [$DNS_SERVICE_IP]
resolvConf: $E/resolv.conf
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $P/server.crt
tlsPrivateKeyFile: $P/server.key
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
# The default (1 min) makes a mounted ConfigMap's update take up to ~80 s to reach the pod; 10 s: within ~15 s.
syncFrequency: ${E2E_NODE_SYNC_FREQUENCY:-10s}
Y
cat >"$E/kube-proxy.yaml" <<Y
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $P/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: 10.244.0.0/16
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
hostnameOverride: $NODE_NAME
# 0: leave nf_conntrack_max and the hash size alone (they are host-wide, not per namespace).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
# A single node with a handful of Services programs a change within milliseconds, sooner than the kubelet stops a
# deleted pod. A busy cluster takes longer (seconds, with many Services or many nodes): at most one resync per 2 s
# here, so that a pod which stopped accepting calls at SIGTERM would still be sent some.
iptables: {minSyncPeriod: ${E2E_NODE_PROXY_MIN_SYNC:-2s}}
Y

# --- processes ----------------------------------------------------------------------------------------------------------
# setsid: the daemons outlive this script and no signal sent to the caller's process group reaches them. nsenter and
# unshare exec their command (no fork), so $! is the daemon's own pid.
start() { # <name> <cmd...>
  local name=$1
  shift
  setsid "$@" </dev/null >"$L/$name.log" 2>&1 &
  echo "$!" >>"$STATE/pids"
  echo "$! $name" >>"$STATE/names"
  eval "PID_${name//-/_}=$!"
  log "$name pid $!"
}
# Our own child, not reaped (this script never waits for it), so its pid cannot have been reused: alive unless it is
# gone or a zombie. (pid_is_ours would say no for a child still between fork and exec: its command line is then this
# script's, which names the state dir without a slash after it.)
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat%% *}" != Z ]]
}
alive_or_die() { # <name>
  local var="PID_${1//-/_}"
  running "${!var}" && return 0
  echo "[$SCRIPT] ---- last lines of $L/$1.log ----" >&2
  tail -n 30 "$L/$1.log" >&2 || true
  die "$1 exited early"
}
# wait_for <what> <timeout-s> <process-to-watch> <cmd...>: poll every 0.25 s; fail naming what did not happen.
wait_for() {
  local what=$1 timeout=$2 watch=$3 deadline
  shift 3
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    alive_or_die "$watch"
    if ((SECONDS >= deadline)); then
      echo "[$SCRIPT] ---- last lines of $L/$watch.log ----" >&2
      tail -n 30 "$L/$watch.log" >&2 || true
      die "$what: not within ${timeout}s"
    fi
    sleep 0.25
  done
  log "$what"
}
: >"$STATE/names"

start etcd "${IN_NS[@]}" etcd --name e2e --data-dir "$V/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster e2e=http://127.0.0.1:2380 --initial-cluster-state new --initial-cluster-token "e2e-node-$$"
wait_for "etcd healthy" 30 etcd "${IN_NS[@]}" curl -sf --max-time 2 http://127.0.0.1:2379/health

start kube-apiserver "${IN_NS[@]}" "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=0.0.0.0 --secure-port="$API_PORT" --insecure-port=0 --advertise-address="$NODE_IP" \
  --tls-cert-file="$P/server.crt" --tls-private-key-file="$P/server.key" --client-ca-file="$P/ca.crt" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP --profiling=false
wait_for "kube-apiserver ready at $SERVER" 90 kube-apiserver \
  "${IN_NS[@]}" curl -sf --max-time 2 --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "$SERVER/readyz"

start kube-controller-manager "${IN_NS[@]}" "$BIN/kube-controller-manager" --kubeconfig="$P/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$P/controller-manager.kubeconfig" --authorization-kubeconfig="$P/controller-manager.kubeconfig" \
  --secure-port=0 --port=0 --leader-elect=false --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
  --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" --allocate-node-cidrs=false \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --controllers='*,-cloud-node-lifecycle,-route,-service'
start kube-scheduler "${IN_NS[@]}" "$NBIN/kube-scheduler" --kubeconfig="$P/scheduler.kubeconfig" \
  --authentication-kubeconfig="$P/scheduler.kubeconfig" --authorization-kubeconfig="$P/scheduler.kubeconfig" \
  --leader-elect=false --port=0 --secure-port=0

start containerd "${IN_NS[@]}" containerd --config "$E/containerd.toml" --log-level info
wait_for "containerd answers" 30 containerd ctr_ns version
for tar in "$IMAGES"/*.tar; do
  ctr_ns images import "$tar" >>"$L/images-import.log" 2>&1 || die "ctr images import $tar failed (see $L/images-import.log)"
done
log "images: $(ctr_ns images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

# The kubelet, at start, sets host-wide sysctls (vm.overcommit_memory, kernel.panic, ...). It runs in a mount
# namespace of its own in which each such /proc/sys file that differs is covered by a file holding the wanted value,
# so it finds nothing to change and the host keeps its settings. Its root dir is a shared bind mount, so the volumes
# it mounts there reach containerd and runc in the host's mount namespace.
mkdir -p "$V/kubelet" "$R/sysctl"
mount --bind "$V/kubelet" "$V/kubelet"
echo "$V/kubelet" >"$STATE/mounts"
mount --make-shared "$V/kubelet"
cat >"$R/kubelet.sh" <<W
#!/usr/bin/env bash
set -euo pipefail
# Mounts made below /proc stay in this namespace.
mount --make-rslave /proc
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  k=\${kv%=*} v=\${kv#*=}
  [[ "\$(cat /proc/sys/\$k)" == "\$v" ]] && continue
  f="$R/sysctl/\${k//\//_}"
  echo "\$v" >"\$f"
  mount --bind "\$f" "/proc/sys/\$k"
done
exec "$NBIN/kubelet" --config="$E/kubelet.yaml" --kubeconfig="$P/kubelet.kubeconfig" \\
  --container-runtime=remote --container-runtime-endpoint="unix://$R/containerd/containerd.sock" \\
  --root-dir="$V/kubelet" --cert-dir="$V/kubelet/pki" --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" --v=1
W
chmod +x "$R/kubelet.sh"
start kubelet unshare --mount --propagation unchanged "${IN_NS[@]}" "$R/kubelet.sh"
start kube-proxy "${IN_NS[@]}" "$NBIN/kube-proxy" --config="$E/kube-proxy.yaml"

# Cluster DNS: Debian has no CoreDNS. dnsmasq answers on the node address from a hosts directory that dns-sync.sh
# keeps equal to the Service list; the kubelet's --cluster-dns address is a selector-less Service in front of it.
mkdir -p "$STATE/dns/hosts"
start dnsmasq "${IN_NS[@]}" dnsmasq --keep-in-foreground --log-facility=- --no-resolv --no-hosts --no-poll \
  --listen-address="$NODE_IP" --bind-interfaces --port=53 --user=root --pid-file= \
  --hostsdir="$STATE/dns/hosts" --local=/cluster.local/ --domain-needed
start dns-sync "${IN_NS[@]}" bash "$HERE/dns-sync.sh" "$STATE/admin.kubeconfig" "$STATE/dns/hosts"

node_ready() {
  [[ "$(kube get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
wait_for "node $NODE_NAME registered" 120 kubelet kube get node "$NODE_NAME"
wait_for "node $NODE_NAME Ready" 180 kubelet node_ready

kube apply -f - >"$L/kube-dns.log" 2>&1 <<Y || die "could not create the kube-dns Service (see $L/kube-dns.log)"
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_SERVICE_IP
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: kube-dns, namespace: kube-system}
subsets: [{addresses: [{ip: $NODE_IP}], ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]}]
Y
sa_has_token() { kube -n default get serviceaccount default -o 'jsonpath={.secrets[0].name}' | grep -q .; }
wait_for "default ServiceAccount with its token" 60 kube-controller-manager sa_has_token
dns_direct() { [[ -s "$STATE/dns/hosts/services" ]] && grep -q " kubernetes.default.svc.cluster.local" "$STATE/dns/hosts/services"; }
wait_for "cluster DNS knows kubernetes.default.svc.cluster.local" 30 dns-sync dns_direct

{
  printf 'KUBECONFIG=%q\n' "$STATE/admin.kubeconfig"
  printf 'E2E_SERVER=%q\n' "$SERVER"
  printf 'E2E_CA=%q\n' "$STATE/ca.crt"
  printf 'E2E_STATE_DIR=%q\n' "$STATE"
  printf 'E2E_NETNS=%q\n' "$NETNS"
  printf 'E2E_NODE_NAME=%q\n' "$NODE_NAME"
  echo 'export KUBECONFIG E2E_SERVER E2E_CA E2E_STATE_DIR E2E_NETNS E2E_NODE_NAME'
} >"$STATE/env"
trap - EXIT
log "up: $SERVER, node $NODE_NAME Ready (state: $STATE; run commands inside with: nsenter --net=$NS_PATH ...; stop with down.sh $STATE)"
