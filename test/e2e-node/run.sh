#!/usr/bin/env bash
# The node-mode end-to-end suite: provisions (or reuses) a single-node cluster whose pods really run
# (test/e2e/cluster/node/), starts it, applies the generated manifests/standalone/ as the README says, runs
# test/e2e-node/ inside the cluster's network namespace, and tears everything down on exit, whatever happened:
# only what it started, by pid, leaving no network namespace, mount or cgroup behind (a failure to clean up fails
# the run).
#   E2E_NODE_TESTS   the test files (default: test/e2e-node/**/*.test.ts)
set -euo pipefail
cd "$(dirname "$0")/../.."
H=test/e2e/cluster/node

t0=$SECONDS
if ! bash "$H/provision.sh"; then
  echo "[e2e-node] FAILED: could not provision the node-mode cluster (see above)." >&2
  echo "[e2e-node] It needs a Debian machine and root; without them, run: npm run test:unit && npm run test:runtimes" >&2
  exit 1
fi
echo "[e2e-node] provisioning took $((SECONDS - t0))s"

STATE=$(mktemp -d "${TMPDIR:-/tmp}/falco-response-e2e-node.XXXXXX")
cleanup() {
  local rc=$? down=0
  trap - EXIT INT TERM
  bash "$H/down.sh" "$STATE" || down=$?
  if ((rc != 0 || down != 0)); then
    local keep
    keep=$(mktemp -d "${TMPDIR:-/tmp}/falco-response-e2e-node-logs.XXXXXX")
    cp -r "$STATE/logs" "$keep/" 2>/dev/null || true
    echo "[e2e-node] the cluster's logs are in $keep/logs" >&2
  fi
  ((down == 0)) && rm -rf "$STATE"
  ((down == 0)) || echo "[e2e-node] FAILED: the teardown left something behind (see above); state kept in $STATE" >&2
  ((rc != 0)) && exit "$rc"
  ((down == 0)) || exit 1
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$SECONDS
bash "$H/up.sh" "$STATE"
echo "[e2e-node] cluster up in $((SECONDS - t0))s"
[ -f dist/runtime/kubeless-runtime.js ] || npm run -s build -- --check
# shellcheck disable=SC1091
source "$STATE/env"
t0=$SECONDS
# Inside the namespace, where the API server, the Services and the pods are.
nsenter --net="/run/netns/$E2E_NETNS" npx mocha --timeout 300000 --slow 20000 "${E2E_NODE_TESTS:-test/e2e-node/**/*.test.ts}"
echo "[e2e-node] suite took $((SECONDS - t0))s"
