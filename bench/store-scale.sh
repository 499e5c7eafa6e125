#!/bin/bash
# bench/store-scale.sh [BUILD_DIR]
#
# Flat cost as the store grows: makes a store with 1,000 images, 10,000
# build-cache records and 5,000 layers (store-scale-gen.py: synthetic, but
# laid out as the store writes them and checked by `imagebuild fsck`), and an
# empty store; builds the same small two-stage workload in both (base image
# imported from tests/resources/make-busybox-tar.sh, or CTX=dir with its own
# Dockerfile and BASE_TAR), then times, interleaved, RUNS (default 7) no-op
# rebuilds and `images`, `inspect`, `tag` in each. Prints medians (min-max)
# of wall and cpu (user+sys, from wait4's rusage) seconds and the ratios big / empty.
# Goals (issue 19): no-op in the big store within 1.2x of the empty one;
# images, inspect, tag under 20 ms there. Wall times are upper bounds on a
# loaded machine; the ratios are measured in the same interleaved run.
#   IMAGES=1000 LAYERS_PER_IMAGE=5 CACHE=10000 RUNS=7 KEEP=1 (keep the stores)
#   BEFORE=path/to/imagebuild: also that binary, interleaved, on copies of the same
#   stores (each binary its own: one that does not know a cache file the other
#   keeps — index.names — would make it stale at every write), and a
#   before/after table (e.g. BEFORE=/work/main/build/examples/imagebuild/imagebuild)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
IB=$(cd "$build" && pwd)/examples/imagebuild/imagebuild
[ -x "$IB" ] || { echo "no $IB: build first (scripts/setup)" >&2; exit 1; }
RUNS=${RUNS:-7}
IMAGES=${IMAGES:-1000}; LPI=${LAYERS_PER_IMAGE:-5}; CACHE=${CACHE:-10000}
work=$(mktemp -d /var/tmp/ib-store-scale-XXXXXX)
cleanup() {
	umount -R "$work"/*/snapshots/*/active/*/merged 2>/dev/null || true
	[ -n "${KEEP:-}" ] && { echo "kept $work" >&2; return; }
	rm -rf "$work"
}
trap cleanup EXIT

# the workload: CTX (with BASE_TAR imported as busybox), or a generated one
if [ -n "${CTX:-}" ]; then
	ctx=$CTX
else
	ctx=$work/ctx
	mkdir -p "$ctx/src" "$ctx/late"
	for d in $(seq -w 0 19); do
		mkdir -p "$ctx/src/d$d"
		for f in $(seq -w 0 49); do printf 'file %s/%s\n' "$d" "$f" > "$ctx/src/d$d/f$f.txt"; done
	done
	echo 'name=scale' > "$ctx/late/app.conf"
	cat > "$ctx/Dockerfile" <<'DF'
FROM busybox AS build
ENV APP_HOME=/app
WORKDIR /app
COPY src/ /app/src/
COPY late/ /app/late/
FROM busybox
WORKDIR /app
COPY --from=build /app/src /app/src
COPY --from=build /app/late /app/late
CMD ["sh"]
DF
	touch -d '2024-01-01 00:00:00 UTC' $(find "$ctx" -type f)
fi
base=${BASE_TAR:-$work/busybox.tar}
[ -f "$base" ] || "$root/tests/resources/make-busybox-tar.sh" "$base" >/dev/null

stores="empty big"
for s in $stores; do
	"$IB" --root "$work/$s" import -c 'CMD ["sh"]' "$base" busybox >/dev/null
done
t0=$(date +%s.%N)
python3 "$here/store-scale-gen.py" "$work/big" "$IMAGES" "$LPI" "$CACHE"
t1=$(date +%s.%N)
"$IB" --root "$work/big" fsck >/dev/null || { echo "the generated store fails fsck" >&2; exit 1; }
echo "made in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s: $(find "$work/big/blobs" -type f | wc -l) blobs, $(ls "$work/big/cache" | wc -l) cache records"
for s in $stores; do
	"$IB" --root "$work/$s" build -q -t app:1 "$ctx" >/dev/null
	"$IB" --root "$work/$s" build -q -t app:1 "$ctx" >/dev/null   # the checksum cache and memos settle
	"$IB" --root "$work/$s" images >/dev/null                      # the index memo
done

res=$work/runs.tsv
: > "$res"
# wall and cpu (user+sys of the command, from wait4: microseconds, where
# /usr/bin/time rounds to 10 ms — as much as a whole command costs here)
cat > "$work/timeit.py" <<'PY'
import os, sys, time
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    err = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(err, 2)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
wall = time.monotonic() - t0
print("%.4f %.4f" % (wall, ru.ru_utime + ru.ru_stime))
sys.exit(1 if status else 0)
PY
one() { # scenario store[-before] command...: with $bin
	local sc=$1 s=$2 t; shift 2
	t=$(python3 "$work/timeit.py" "$work/err" "$bin" --root "$work/$s" "$@") ||
		{ echo "$sc in $s failed: $(cat "$work/err")" >&2; exit 1; }
	set -- $t
	printf '%s\t%s\t%s\t%s\n' "$sc" "$s" "$1" "$2" >> "$res"
}
# BEFORE=path/to/imagebuild: that binary too, interleaved, on copies of the stores (before/after runs)
if [ -n "${BEFORE:-}" ]; then
	for s in $stores; do
		cp -a "$work/$s" "$work/$s-before"
		"$BEFORE" --root "$work/$s-before" build -q -t app:1 "$ctx" >/dev/null
		"$BEFORE" --root "$work/$s-before" images >/dev/null
	done
fi
for i in $(seq 1 "$RUNS"); do
	for s in $stores; do
		for tool in after ${BEFORE:+before}; do
			bin=$IB sx=$s
			[ "$tool" = before ] && bin=$BEFORE sx=$s-before
			one noop "$sx" build -q -t app:1 "$ctx"
			one images "$sx" images
			one inspect "$sx" inspect busybox
			one tag "$sx" tag busybox "t$i-$tool:latest"
		done
	done
done

python3 - "$res" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
def get(sc, s, col):
    return [float(r[col]) for r in rows if r[0] == sc and r[1] == s]
def fmt(v):
    return "%.4f (%.4f-%.4f)" % (statistics.median(v), min(v), max(v))
print("| scenario | store | n | wall s median (min-max) | cpu s median (min-max) |")
print("|---|---|---|---|---|")
for sc in ("noop", "images", "inspect", "tag"):
    for s in ("empty", "big"):
        print("| %s | %s | %d | %s | %s |" % (sc, s, len(get(sc, s, 2)), fmt(get(sc, s, 2)), fmt(get(sc, s, 3))))
print()
print("| scenario | big / empty, wall | big / empty, cpu |")
print("|---|---|---|")
for sc in ("noop", "images", "inspect", "tag"):
    w = statistics.median(get(sc, "big", 2)) / max(statistics.median(get(sc, "empty", 2)), 1e-4)
    c = statistics.median(get(sc, "big", 3)) / max(statistics.median(get(sc, "empty", 3)), 1e-4)
    print("| %s | %.2f | %.2f |" % (sc, w, c))
if get("noop", "empty-before", 3):
    print()
    print("| scenario | store | cpu s before | cpu s after | after / before, cpu | big / empty before, cpu |")
    print("|---|---|---|---|---|---|")
    for sc in ("noop", "images", "inspect", "tag"):
        for s in ("empty", "big"):
            b = statistics.median(get(sc, s + "-before", 3))
            a = statistics.median(get(sc, s, 3))
            r = statistics.median(get(sc, "big-before", 3)) / max(statistics.median(get(sc, "empty-before", 3)), 1e-4)
            print("| %s | %s | %.4f | %.4f | %.2f | %s |" % (sc, s, b, a, a / max(b, 1e-4), "%.2f" % r if s == "big" else ""))
PY
