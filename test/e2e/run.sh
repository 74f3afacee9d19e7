#!/usr/bin/env bash
# End-to-end suite: provisions (or reuses) a real kube-apiserver + etcd, starts them on 127.0.0.1, runs the e2e tests
# against the BUILT bundles, and stops exactly the processes it started, whatever the tests do.
# A machine that cannot provision fails here with the reason; run the rest with `npm run test:unit && npm run test:runtimes`.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! bash test/e2e/cluster/provision.sh; then
  echo "[e2e] FAILED: could not provision the Kubernetes control plane (see above)." >&2
  echo "[e2e] The end-to-end tests need a Debian machine and root. Without them, run the rest of the suite with:" >&2
  echo "[e2e]   npm run lint && npm run typecheck && npm run build -- --check && npm run test:unit && npm run test:runtimes" >&2
  exit 1
fi

STATE=$(mktemp -d "${TMPDIR:-/tmp}/falco-response-e2e.XXXXXX")
cleanup() {
  bash test/e2e/cluster/down.sh "$STATE" || true
  rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

bash test/e2e/cluster/up.sh "$STATE"
[ -f dist/runtime/kubeless-runtime.js ] || npm run -s build -- --check
E2E_STATE="$STATE" npx mocha --timeout 120000 "${E2E_TESTS:-test/e2e/**/*.test.ts}"
