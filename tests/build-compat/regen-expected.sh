#!/bin/bash
# regen-expected.sh [CASE...]: rebuild expected/<case>.json with Docker's
# BuildKit. Needs a docker engine with BuildKit: by default the one of
# ../shared/bench/peers (run its setup.sh first); or set DOCKER to a docker
# command line (e.g. "/usr/bin/docker -H unix:///run/docker.sock").
# Each case is built with --network=none from the same busybox base image
# that run.sh imports (tests/resources/make-busybox-tar.sh, which is
# deterministic), tagged ibcompat/busybox:base.
set -euo pipefail
compat_dir=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$compat_dir/common.sh"
root=$(cd "$compat_dir/../.." && pwd)
if [ -z "${DOCKER:-}" ]; then
	peers=${PEERS_DIR:-$root/../shared/bench/peers}
	if [ ! -f "$peers/env.sh" ]; then
		echo "regen-expected.sh: set DOCKER, or have $peers/env.sh" >&2
		exit 1
	fi
	# shellcheck disable=SC1091
	. "$peers/env.sh"
fi
export DOCKER_BUILDKIT=1
python=/usr/bin/python3

tmp=$(mktemp -d /tmp/ib-compat-regen.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sh "$root/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
$DOCKER rmi -f ibcompat/busybox:base >/dev/null 2>&1 || :
$DOCKER import "$tmp/busybox.tar" ibcompat/busybox:base >/dev/null

mkdir -p "$compat_dir/expected"
if [ $# -eq 0 ]; then
	mapfile -t names < <(case_names)
	set -- "${names[@]}"
fi
for c in "$@"; do
	echo "== $c"
	case_context "$c" "$tmp/ctx-$c"
	mapfile -t args < <(case_args "$c")
	# shellcheck disable=SC2086
	if ! $DOCKER build --network=none --no-cache -t "ibcompat/$c" ${args[@]+"${args[@]}"} \
		"$tmp/ctx-$c" >"$tmp/build-$c.log" 2>&1; then
		cat "$tmp/build-$c.log" >&2
		echo "regen-expected.sh: $c: docker build failed" >&2
		exit 1
	fi
	$DOCKER save -o "$tmp/$c.tar" "ibcompat/$c"
	"$python" "$compat_dir/dump-image.py" --base-layers "$(case_base_layers "$c")" \
		"$tmp/$c.tar" >"$compat_dir/expected/$c.json"
	$DOCKER rmi "ibcompat/$c" >/dev/null
	rm -rf "$tmp/ctx-$c" "$tmp/$c.tar"
done
