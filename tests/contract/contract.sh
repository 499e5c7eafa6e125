#!/usr/bin/env bash
# contract.sh TEST-CONTRACT: the embedding contract's C test (contract.c)
# with what it needs: a busybox tarball made offline and a local registry
# (Debian's docker-registry, started as the registry integration test does).
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

exe=${1:?usage: contract.sh TEST-CONTRACT}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ "$(id -u)" = 0 ] || skip_or_fail "the contract test runs builds: it needs root"
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-contract-XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
. "$IB_SOURCE_ROOT/tests/common/registry.sh" # free_port, start_registry

rc=0
"$IB_SOURCE_ROOT/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
[ "$rc" = 0 ] || fail "make-busybox-tar.sh exited $rc"

port=$(free_port)
start_registry plain "$port"
export DOCKER_CONFIG=$tmp/docker HOME=$tmp/home
IB_BUSYBOX_TAR=$tmp/busybox.tar IB_TEST_REGISTRY=127.0.0.1:$port "$exe"
