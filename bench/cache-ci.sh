#!/bin/bash
# bench/cache-ci.sh [BUILD_DIR]
#
# The CI scenario of docs/cache.md on the peers' reference workload
# (../shared/bench/peers/workload): a fresh runner (an empty store but the
# base image) builds with a warm registry cache. Interleaved, RUNS times:
#   ours cold   fresh store, no cache
#   ours warm   fresh store, --cache-from type=registry (written once by a
#               --cache-to type=registry,mode=max build, untimed)
#   bk cold     BuildKit (the peers' dockerd, Docker 20.10): builder prune,
#               no cache
#   bk warm     builder prune, image removed, then docker build --cache-from
#               of the image built with BUILDKIT_INLINE_CACHE=1 and pushed
# and prints the medians and the ratios ours-warm / ours-cold,
# ours-warm / bk-warm, bk-warm / bk-cold. Without the peers' dockerd
# (../shared/bench/peers/setup.sh) the BuildKit rows are skipped (said so).
# Runs as root (RUN). The registry is a docker-registry started here.
#   RUNS=3 (default)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
peers=$root/../shared/bench/peers
build=${1:-$root/build}
IB=$(cd "$build" && pwd)/examples/imagebuild/imagebuild
[ -x "$IB" ] || { echo "no $IB: build first (scripts/setup)" >&2; exit 1; }
RUNS=${RUNS:-3}
. "$peers/env.sh"

tmp=$(mktemp -d /var/tmp/ib-cache-bench-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$root/tests/common/registry.sh"
port=$(free_port)
REGISTRY=/usr/bin/docker-registry start_registry reg "$port" # env.sh took the name REGISTRY
reg=127.0.0.1:$port

# the base image: busybox, in the registry (BuildKit pulls it) and as an archive (our fresh stores load it)
"$root/tests/resources/make-busybox-tar.sh" "$tmp/bb.tar"
"$IB" --root "$tmp/seed" import -c 'CMD ["sh"]' "$tmp/bb.tar" "$reg/busybox:latest" >/dev/null
"$IB" --root "$tmp/seed" push "$reg/busybox:latest" >/dev/null
"$IB" --root "$tmp/seed" save "$reg/busybox:latest" -o "$tmp/base.tar"
BASE_REF=$reg/busybox:latest SKIP_BIG=1 PEERS_DATA=$tmp "$peers/workload/gen.sh" "$tmp/ctx" "$tmp/ctx-big" >/dev/null

have_docker=0
if $DOCKER info >/dev/null 2>&1; then have_docker=1; else echo "(no peers' dockerd: BuildKit rows skipped)"; fi

now() { date +%s.%N; }
fresh() { rm -rf "$tmp/store"; "$IB" --root "$tmp/store" load -i "$tmp/base.tar" >/dev/null; }
timed() { # NAME CMD...: appends "NAME seconds" to $tmp/times
	local t0 t1
	t0=$(now)
	"${@:2}" >"$tmp/last.log" 2>&1 || { cat "$tmp/last.log" >&2; exit 1; }
	t1=$(now)
	echo "$1 $(python3 -c "print($t1 - $t0)")" >>"$tmp/times"
}

# the cache, written once
fresh
"$IB" --root "$tmp/store" build -q -t app --cache-to "type=registry,ref=$reg/app:buildcache,mode=max" "$tmp/ctx" >/dev/null
if [ $have_docker = 1 ]; then
	$DOCKER builder prune -af >/dev/null
	$DOCKER build --network=none -q --build-arg BUILDKIT_INLINE_CACHE=1 -t "$reg/app:inline" "$tmp/ctx" >/dev/null
	$DOCKER push "$reg/app:inline" >/dev/null
fi
bk_clean() { $DOCKER rmi -f "$reg/app:inline" "$reg/app:bk" "$reg/busybox:latest" >/dev/null 2>&1 || true; $DOCKER builder prune -af >/dev/null; }

for i in $(seq "$RUNS"); do
	fresh
	timed ours-cold "$IB" --root "$tmp/store" build -q -t app "$tmp/ctx"
	fresh
	timed ours-warm "$IB" --root "$tmp/store" build -q -t app --cache-from "type=registry,ref=$reg/app:buildcache" "$tmp/ctx"
	grep -q . "$tmp/last.log"
	if [ $have_docker = 1 ]; then
		bk_clean
		timed bk-cold $DOCKER build --network=none -q -t "$reg/app:bk" "$tmp/ctx"
		bk_clean
		timed bk-warm $DOCKER build --network=none -q --cache-from "$reg/app:inline" -t "$reg/app:bk" "$tmp/ctx"
	fi
done
python3 - "$tmp/times" <<'EOF'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    t.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in t.items()}
for k in ("ours-cold", "ours-warm", "bk-cold", "bk-warm"):
    if k in med:
        print("%-10s median %.2f s  (%s)" % (k, med[k], ", ".join("%.2f" % x for x in t[k])))
def ratio(a, b):
    if a in med and b in med:
        print("%s / %s = %.2f" % (a, b, med[a] / med[b]))
ratio("ours-warm", "ours-cold")
ratio("ours-warm", "bk-warm")
ratio("bk-warm", "bk-cold")
ratio("ours-cold", "bk-cold")
EOF
