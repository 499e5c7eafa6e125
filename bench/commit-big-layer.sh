#!/usr/bin/env bash
# Commit a big layer (the big context of the peers' workload: 1 GiB
# incompressible + 1 GiB text) and compare, in the same run, with the floor:
# the same work done by standard tools,
#     tar -cf - DIR | tee FILE | openssl dgst -sha256 ; sync
# Ours: DIR -> tar -> store blob (sha256 while writing, fsync), then sync.
# And, as root with overlayfs, the same through a real snapshot: the context
# copied into a mounted overlay snapshot (not timed), then ib_snapshot_commit
# (its diff reads the upper directory).
# Prints wall times, the ratio (target <= 1.5) and our peak RSS (target < 64 MiB).
#
# Usage: bench/commit-big-layer.sh [BUILD_DIR]     (default: ./build)
# Env:   BIG_CTX (default $PEERS_DATA/ctx-big, generated with gen.sh when missing),
#        PEERS_DATA (default /var/tmp/imagebuild-peers), SCRATCH (default /var/tmp/ib-bench-commit),
#        RUNS (default 3; the best run of each side is compared)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
WORKLOAD=${WORKLOAD:-$ROOT/../shared/bench/peers/workload}
PEERS_DATA=${PEERS_DATA:-/var/tmp/imagebuild-peers}
BIG=${BIG_CTX:-$PEERS_DATA/ctx-big}
SCRATCH=${SCRATCH:-/var/tmp/ib-bench-commit}
RUNS=${RUNS:-3}

mkdir -p "$SCRATCH"
if [ ! -s "$BIG/data/rand-1g.bin" ] || [ ! -s "$BIG/data/text-1g.txt" ]; then
  echo "generating the big context in $BIG (once)..."
  PEERS_DATA=$PEERS_DATA "$WORKLOAD/gen.sh" "$SCRATCH/ctx" "$BIG" >/dev/null
  rm -rf "$SCRATCH/ctx"
fi

lib=$(ls "$BUILD"/libimagebuild.so 2>/dev/null || true)
[ -n "$lib" ] || { echo "no libimagebuild.so in $BUILD: build first (ninja -C $BUILD)" >&2; exit 1; }
cc -O2 -std=gnu11 -I"$ROOT/include" "$ROOT/bench/commit-layer.c" -L"$BUILD" -limagebuild \
   -Wl,-rpath,"$BUILD" -o "$SCRATCH/commit-layer"

bytes=$(du -sb --apparent-size "$BIG" | cut -f1)
echo "context: $BIG ($((bytes / 1048576)) MiB)"
# both sides read from the page cache
cat "$BIG"/data/* > /dev/null

now() { date +%s.%N; }
best_floor=""; best_ours=""; peak=""
for i in $(seq 1 "$RUNS"); do
  rm -f "$SCRATCH/floor.tar"; rm -rf "$SCRATCH/store"; sync
  t0=$(now)
  tar -cf - -C "$BIG" . | tee "$SCRATCH/floor.tar" | openssl dgst -sha256 > /dev/null
  sync
  t1=$(now)
  floor=$(echo "$t1 - $t0" | bc)
  rm -f "$SCRATCH/floor.tar"; sync

  t0=$(now)
  /usr/bin/time -v -o "$SCRATCH/time.txt" "$SCRATCH/commit-layer" tree "$SCRATCH/store" "$BIG" > "$SCRATCH/out.txt"
  sync
  t1=$(now)
  ours=$(echo "$t1 - $t0" | bc)
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$SCRATCH/time.txt")
  printf 'run %d: floor %.2fs  ours %.2fs  (peak RSS %d KiB; layer %s)\n' "$i" "$floor" "$ours" "$rss" \
    "$(cut -c1-19 "$SCRATCH/out.txt")"
  if [ -z "$best_floor" ] || [ "$(echo "$floor < $best_floor" | bc)" = 1 ]; then best_floor=$floor; fi
  if [ -z "$best_ours" ] || [ "$(echo "$ours < $best_ours" | bc)" = 1 ]; then best_ours=$ours; fi
  if [ -z "$peak" ] || [ "$rss" -gt "$peak" ]; then peak=$rss; fi
done
rm -rf "$SCRATCH/store"

snap_line=""
if [ "$(id -u)" = 0 ] && grep -qw overlay /proc/filesystems; then
  cl="$SCRATCH/commit-layer"
  rootfs=$("$cl" prepare "$SCRATCH/store" overlay bench)
  cp -a "$BIG/." "$rootfs/"
  sync
  t0=$(now)
  /usr/bin/time -v -o "$SCRATCH/time.txt" "$cl" commit "$SCRATCH/store" overlay bench > "$SCRATCH/out.txt"
  sync
  t1=$(now)
  "$cl" remove "$SCRATCH/store" overlay bench
  rm -rf "$SCRATCH/store"
  snap=$(echo "$t1 - $t0" | bc)
  srss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$SCRATCH/time.txt")
  snap_line=$(printf 'ours via an overlay snapshot (ib_snapshot_commit; sync): %.2fs, peak RSS %d KiB (one run)' "$snap" "$srss")
fi

ratio=$(echo "scale=2; $best_ours / $best_floor" | bc)
mib=$(echo "scale=1; $bytes / 1048576 / $best_ours" | bc)
printf 'floor (tar | tee | openssl sha256; sync): %.2fs\n' "$best_floor"
printf 'ours  (diff -> tar -> store, sha256, fsync; sync): %.2fs  (%s MiB/s)\n' "$best_ours" "$mib"
printf 'ratio ours/floor: %s (target <= 1.5)\n' "$ratio"
printf 'peak RSS: %d KiB = %.1f MiB (target < 64 MiB)\n' "$peak" "$(echo "scale=1; $peak / 1024" | bc)"
[ -z "$snap_line" ] || echo "$snap_line"
