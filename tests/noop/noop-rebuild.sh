#!/bin/bash
# A no-op rebuild writes nothing: the store's listing (every path, inode,
# size and mtime, directories included, so a snapshot made and removed
# shows in its parent's mtime) is the same before and after it, and nothing
# is left mounted. COPY --from another stage is found through the memo
# (lib/build/memo.c) without a mount; the memo keeps BuildKit's semantics:
# a change in the source stage outside the copied files still hits the
# cache, a change of a copied file changes the image.
# Usage: noop-rebuild.sh IMAGEBUILD
set -euo pipefail
IB=$1
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "the overlay snapshotter needs root"
tmp=$(mktemp -d /tmp/ibtest-noop-XXXXXX)
cleanup() {
	umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
"$IB_MAKE_BUSYBOX" "$tmp/bb.tar"
"$IB" import "$tmp/bb.tar" busybox >/dev/null
ctx=$tmp/ctx
mkdir -p "$ctx/app" "$ctx/other"
for i in 1 2 3 4 5; do echo "file $i" > "$ctx/app/f$i"; done
echo other > "$ctx/other/o"
cat > "$ctx/Dockerfile" <<'DF'
FROM busybox AS build
COPY app/ /app/
COPY other/ /other/
FROM busybox
COPY --from=build /app /app
ENV X=1
DF
# files older than the checksum cache's racy window (2 s, of mtime and
# ctime, which touch cannot set back), as a real context's are: a file
# changed within it is hashed again and remembered by the next build
settle() { sleep 3; }
touch -d '2024-01-01 00:00:00 UTC' "$ctx"/app/* "$ctx"/other/* "$ctx/Dockerfile"
settle
build() { "$IB" build -q -t app:1 "$ctx"; }
listing() { find "$IMAGEBUILD_ROOT" -printf '%P %i %s %T@\n' | sort; }
id1=$(build)
[ "$(build)" = "$id1" ] || fail "a rebuild gave another image"
listing > "$tmp/before"
[ "$(build)" = "$id1" ] || fail "a no-op rebuild gave another image"
listing > "$tmp/after"
diff "$tmp/before" "$tmp/after" >&2 || fail "a no-op rebuild wrote into the store"
! grep -q "$IMAGEBUILD_ROOT" /proc/self/mountinfo || fail "a no-op rebuild left a mount"

# the source stage changes outside what is copied: the COPY --from is the same, the image too
echo changed > "$ctx/other/o"
touch -d '2024-01-02 00:00:00 UTC' "$ctx/other/o"
[ "$(build)" = "$id1" ] || fail "a change the COPY --from does not copy changed the image"
# a copied file changes: a new image (the memo does not hide it)
echo "file 3, edited" > "$ctx/app/f3"
touch -d '2024-01-03 00:00:00 UTC' "$ctx/app/f3"
settle
id2=$(build)
[ "$id2" != "$id1" ] || fail "a change of a copied file kept the image"
# and once built, that is a no-op too
listing > "$tmp/before"
[ "$(build)" = "$id2" ] || fail "the no-op after the edit gave another image"
listing > "$tmp/after"
diff "$tmp/before" "$tmp/after" >&2 || fail "the no-op after a late edit wrote into the store"
# back to the first content: the first image again (its memo and cache entries still hold)
echo "file 3" > "$ctx/app/f3"
touch -d '2024-01-01 00:00:00 UTC' "$ctx/app/f3"
[ "$(build)" = "$id1" ] || fail "the first content did not give the first image again"
# the files COPY --from hashed in the stage are remembered by the checksum cache (by inode and
# times, under /from/<stage>/: docs/cache.md), so a stage change that keys the COPY --from again
# stats them instead of reading them; they were made more than the racy window ago
echo "changed again" > "$ctx/other/o"
touch -d '2024-01-04 00:00:00 UTC' "$ctx/other/o"
[ "$(build)" = "$id1" ] || fail "a change the COPY --from does not copy changed the image (2)"
grep -qa "/from/build/app/f1" "$IMAGEBUILD_ROOT"/build-sums/* || fail "COPY --from's files are not in the checksum cache"
echo "noop-rebuild: ok"
