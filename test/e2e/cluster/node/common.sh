# Sourced by the node mode's up.sh and down.sh (after they set STATE): names, addresses and helpers they share.
# shellcheck disable=SC2034 # used by the scripts that source this file
# One network namespace holds everything networked: the API server, etcd, the kubelet, kube-proxy's rules, the pod
# bridge, dnsmasq. It has no link to the host and no default route, so no address outside it is ever reached.
NETNS=falco-response-e2e
NS_PATH=/run/netns/$NETNS
IN_NS=(nsenter "--net=$NS_PATH")
NODE_NAME=e2e-node
NODE_IP=10.200.0.1
API_PORT=6443
SERVICE_CIDR=10.96.0.0/24
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
POD_CIDR=10.244.0.0/24
# kubelet, containerd, runc's shim and libcni write into these whatever they are told: one such cluster per machine.
# up.sh notes which of them it created (created-paths); down.sh removes exactly those.
HARD_CODED_PATHS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/containerd)

node_log() { printf '[%s] [%3ds] %s\n' "$SCRIPT" "$((SECONDS - START_TS))" "$*"; }
node_die() {
  printf '[%s] ERROR: %s\n' "$SCRIPT" "$*" >&2
  exit 1
}

# A pid is ours when it is alive, not a zombie, and its command line names the state dir (a reused pid never is).
pid_is_ours() {
  local pid=$1 stat cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat%% *}" != Z ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"$STATE/"* ]]
}

# kubectl with the admin kubeconfig, inside the namespace.
kube() { "${IN_NS[@]}" kubectl --kubeconfig="$STATE/admin.kubeconfig" --request-timeout=10s "$@"; }
ctr_ns() { "${IN_NS[@]}" ctr --address "$STATE/run/containerd/containerd.sock" --namespace k8s.io "$@"; }
