# Sourced by the node mode's scripts: what the cluster runs.
# shellcheck disable=SC2034 # used by the scripts that source this file
K8S_VERSION=v1.20.2
PAUSE_IMAGE=registry.k8s.io/pause:3.4.1
# The Node releases the function images run: the Kubeless nodejs14 runtime's, and the standalone target's default.
NODE_VERSIONS=(14.21.3 24.22.3)
node_image() { printf 'docker.io/library/node:%s-alpine' "$1"; }
