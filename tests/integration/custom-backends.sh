#!/bin/bash
# The example backends (examples/custom-isolation.c, custom-snapshotter.c),
# each used for a real build: FROM a busybox image made offline, RUN and
# COPY; the result runs. A backend's own message reaches ib_error_last(),
# and one that fails without a reason is named in the error.
# Usage: custom-backends.sh IMAGEBUILD CUSTOM_ISOLATION CUSTOM_SNAPSHOTTER
set -euo pipefail
IB=$1 CISO=$2 CSNAP=$3
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds with RUN need root"
tmp=$(mktemp -d /tmp/ibtest-custom-XXXXXX)
cleanup() { umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }

"$IB_SOURCE_ROOT/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null

ctx=$tmp/ctx
mkdir -p "$ctx"
echo "from the context" > "$ctx/note.txt"
# ENV first: each backend's build runs every RUN (the cache does not know backends)
dockerfile() {
	cat > "$ctx/Dockerfile" <<DF
FROM busybox
ENV BUILT_WITH=$1
RUN echo "made by RUN as \$(id -u)" > /made.txt
COPY note.txt /note.txt
RUN cat /made.txt /note.txt > /both.txt && echo done
DF
}
want=$'made by RUN as 0\nfrom the context'

# ---- the logging isolation backend, delegating to chroot and to namespaces ----
for inner in chroot namespaces; do
	dockerfile "$inner"
	"$CISO" --inner "$inner" "$IMAGEBUILD_ROOT" "$ctx" "iso-$inner" > "$tmp/out" 2> "$tmp/err" ||
		{ cat "$tmp/out" "$tmp/err"; fail "custom-isolation --inner $inner failed"; }
	grep -q "^logged: run #2 .*\[/bin/sh\] \[-c\] \[cat /made.txt /note.txt" "$tmp/err" ||
		{ cat "$tmp/err"; fail "the logged backend did not see the second RUN"; }
	grep -q "(through \`$inner\`)" "$tmp/err" || fail "the run did not go through $inner"
	grep -q "^   done$" "$tmp/out" || { cat "$tmp/out"; fail "RUN's output did not reach the progress callback"; }
	got=$("$IB" run --rm "iso-$inner" cat /both.txt)
	[ "$got" = "$want" ] || fail "iso-$inner: /both.txt is '$got'"
done
# a second build is cached: the backend is not asked to run anything
dockerfile chroot
"$CISO" --inner chroot "$IMAGEBUILD_ROOT" "$ctx" > "$tmp/out" 2> "$tmp/err"
! grep -q "^logged: run" "$tmp/err" || fail "a cached build ran processes"
[ "$(grep -c '^=> CACHED' "$tmp/out")" = 4 ] || { cat "$tmp/out"; fail "a rebuild was not cached"; }

# its errors: its own message, and its name when it gives none
echo "bust the cache" >> "$ctx/note.txt"
want=$'made by RUN as 0\nfrom the context\nbust the cache'
if "$CISO" --fail "disk on fire" "$IMAGEBUILD_ROOT" "$ctx" > "$tmp/out" 2> "$tmp/err"; then
	fail "custom-isolation --fail succeeded"
fi
grep -q "^custom-isolation: .*RUN.*disk on fire" "$tmp/err" || { cat "$tmp/err"; fail "the backend's message is not in the error"; }
if "$CISO" --fail-silently "$IMAGEBUILD_ROOT" "$ctx" > "$tmp/out" 2> "$tmp/err"; then
	fail "custom-isolation --fail-silently succeeded"
fi
grep -q "isolation backend \`logged\`: start failed without a reason" "$tmp/err" ||
	{ cat "$tmp/err"; fail "a failure without a reason does not name the backend"; }

# ---- the counting snapshotter, wrapping copy ----
dockerfile counting
"$CSNAP" "$IMAGEBUILD_ROOT" "$ctx" snap > "$tmp/out" 2> "$tmp/err" ||
	{ cat "$tmp/out" "$tmp/err"; fail "custom-snapshotter failed"; }
grep -q "^counting: [1-9][0-9]* prepares, [1-9][0-9]* diffs$" "$tmp/err" || { cat "$tmp/err"; fail "the counting snapshotter was not used"; }
grep -q "^counting: prepare #1 " "$tmp/err" || fail "no prepare went through the counting snapshotter"
got=$("$IB" run --rm snap cat /both.txt)
[ "$got" = "$want" ] || fail "snap: /both.txt is '$got'"
[ -d "$IMAGEBUILD_ROOT/snapshots/counting" ] || fail "the backend got no directory of its own"
# nothing stays: no snapshot of the build in either directory
[ -z "$(ls "$IMAGEBUILD_ROOT/snapshots/counting/owners" 2>/dev/null)" ] || fail "snapshots of the build stayed (counting)"
[ -z "$(ls "$IMAGEBUILD_ROOT/snapshots/copy/owners" 2>/dev/null)" ] || fail "snapshots of the build stayed (copy)"

echo "one more" >> "$ctx/note.txt"
if "$CSNAP" --fail "disk on fire" "$IMAGEBUILD_ROOT" "$ctx" > "$tmp/out" 2> "$tmp/err"; then
	fail "custom-snapshotter --fail succeeded"
fi
grep -q "^custom-snapshotter: .*disk on fire" "$tmp/err" || { cat "$tmp/err"; fail "the snapshotter's message is not in the error"; }
if "$CSNAP" --fail-silently "$IMAGEBUILD_ROOT" "$ctx" > "$tmp/out" 2> "$tmp/err"; then
	fail "custom-snapshotter --fail-silently succeeded"
fi
grep -q "snapshotter \`counting\`: prepare failed without a reason" "$tmp/err" ||
	{ cat "$tmp/err"; fail "a failure without a reason does not name the snapshotter"; }
echo "custom backends: OK"
