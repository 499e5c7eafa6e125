#!/bin/bash
# A RUN that makes a tree 10,000 directories deep (paths of 20,000 bytes, far
# beyond PATH_MAX): committed as a layer, used by the next step (which
# changes the file at the bottom: another deep layer) and run, its writable
# snapshots removed. Time and peak memory of the build are printed.
# Usage: deep-tree.sh IMAGEBUILD SNAPSHOTTER
set -euo pipefail
IB=$1 SNAP=$2
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"
tmp=$(mktemp -d /tmp/ibtest-deep-XXXXXX)
cleanup() { umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }

"$IB_SOURCE_ROOT/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null

# 100 levels per `mkdir -p` + `cd -P` (busybox's cd -P takes a relative path
# beyond PATH_MAX; its plain cd does not), 100 times
ctx=$tmp/ctx
mkdir -p "$ctx"
cat > "$ctx/Dockerfile" <<'DF'
FROM busybox
ENV Q=d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d
RUN mkdir /deep && cd -P /deep && i=0 && while [ $i -lt 100 ]; do mkdir -p $Q && cd -P $Q || exit 1; i=$((i+1)); done && echo bottom > f
RUN cd -P /deep && i=0 && while [ $i -lt 100 ]; do cd -P $Q || exit 1; i=$((i+1)); done && [ ! -e d ] && cat f > /seen && echo more >> f
DF
[ "$(printf %s 'd/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d' | tr -cd d | wc -c)" = 100 ] ||
	fail "the test's Q is not 100 levels"
start=$(date +%s)
/usr/bin/time -o "$tmp/rss" -f %M "$IB" build --snapshotter "$SNAP" -t deep "$ctx" > "$tmp/out" 2>&1 ||
	{ cat "$tmp/out"; fail "the build of a 10,000-level tree failed"; }
echo "deep-tree ($SNAP): build $(($(date +%s) - start)) s, max RSS $(tail -1 "$tmp/rss") KiB"
# (100 levels per cd: busybox's getcwd walks up with readdir past PATH_MAX)
got=$("$IB" run --snapshotter "$SNAP" --rm deep sh -c 'cat /seen; cd -P /deep && i=0 && while [ $i -lt 100 ]; do cd -P $Q || exit 1; i=$((i+1)); done && [ ! -e d ] && echo 10000 levels && cat f' | tr '\n' '|')
[ "$got" = "bottom|10000 levels|bottom|more|" ] || fail "the image holds: $got"
# removal: the build's and the run's writable snapshots (whole copies of the
# tree with the copy snapshotter) are gone; overlay keeps the two layers unpacked
left=$(find "$IMAGEBUILD_ROOT/snapshots"/*/active -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
[ "$left" = 0 ] || fail "$left writable snapshots are left in the store"
want=0
[ "$SNAP" = overlay ] && want=20000
left=$(find "$IMAGEBUILD_ROOT/snapshots" -name d | wc -l)
[ "$left" = $want ] || fail "$left directories named d in the store, not $want"
"$IB" rmi deep >/dev/null
"$IB" prune >/dev/null || fail "prune failed"
"$IB" fsck >/dev/null || fail "fsck failed"
echo "deep-tree: ok ($SNAP)"
