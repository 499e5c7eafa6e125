#!/bin/bash
# imagebuild build --jobs (issue 19, stages in parallel), end to end with the
# real isolation and overlayfs: two independent stages meet through a shared
# cache mount (each writes its file and waits, under a timeout, for the
# other's), so the build passes only when they run at once and fails with
# --jobs 1; the image is the same whatever --jobs is; the plain progress
# numbers the steps in the order they start; a failing stage cancels the one
# beside it and nothing is left behind; bad --jobs values are refused.
set -euo pipefail
IB=$IMAGEBUILD
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"
tmp=$(mktemp -d /tmp/ibtest-jobs-XXXXXX)
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
export TMPDIR=$tmp
fail() { echo "FAIL: $*" >&2; exit 1; }

sh "$IB_MAKE_BUSYBOX" "$tmp/busybox.tar" || skip_or_fail "busybox-static is not installed"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null

# ---- the rendezvous: each stage waits up to ~5 s for the other's file in the shared cache ----
mkdir -p "$tmp/rdv"
cat >"$tmp/rdv/Dockerfile" <<'EOF'
FROM busybox AS left
RUN --mount=type=cache,id=meet,target=/meet,sharing=shared \
    echo left > /meet/left; i=0; while [ ! -f /meet/right ]; do i=$((i+1)); \
    [ $i -gt 50 ] && { echo "left: right never came"; exit 1; }; sleep 0.1; done; echo left-met-right > /left.txt
FROM busybox AS right
RUN --mount=type=cache,id=meet,target=/meet,sharing=shared \
    echo right > /meet/right; i=0; while [ ! -f /meet/left ]; do i=$((i+1)); \
    [ $i -gt 50 ] && { echo "right: left never came"; exit 1; }; sleep 0.1; done; echo right-met-left > /right.txt
FROM busybox
COPY --from=left /left.txt /
COPY --from=right /right.txt /
EOF
"$IB" build --progress=plain --jobs 2 -t jobs/rdv "$tmp/rdv" 2>"$tmp/rdv.err" >/dev/null ||
	fail "--jobs 2: the stages did not meet: $(cat "$tmp/rdv.err")"
[ "$("$IB" run --rm jobs/rdv cat /left.txt /right.txt)" = $'left-met-right\nright-met-left' ] ||
	fail "the image lacks what both stages made"
# steps numbered #1, #2... in the order they first appear; the last stage's after both others
nums=$(sed -n 's/^#\([0-9]*\) \[.*/\1/p' "$tmp/rdv.err" | tr '\n' ' ')
[ "$nums" = "1 2 3 4 " ] || fail "steps numbered '$nums': $(cat "$tmp/rdv.err")"
grep -q '^#3 \[stage-2 1/2\] COPY --from=left' "$tmp/rdv.err" || fail "BuildKit's label of an unnamed stage: $(cat "$tmp/rdv.err")"
# the default (the online CPUs) too, when there are two
if [ "$(getconf _NPROCESSORS_ONLN)" -gt 1 ]; then
	rm -rf "$IMAGEBUILD_ROOT/cache-mounts"
	"$IB" build -q --no-cache "$tmp/rdv" >/dev/null 2>"$tmp/rdv-default.err" ||
		fail "default --jobs: the stages did not meet: $(cat "$tmp/rdv-default.err")"
fi
# one stage after the other: the first never meets the second
rm -rf "$IMAGEBUILD_ROOT/cache-mounts"
if "$IB" build -q --no-cache --jobs 1 "$tmp/rdv" >/dev/null 2>"$tmp/serial.err"; then
	fail "--jobs 1 ran the stages at once"
fi
grep -q "left: right never came" "$tmp/serial.err" || fail "--jobs 1: $(cat "$tmp/serial.err")"

# ---- the same image whatever --jobs is ----
mkdir -p "$tmp/same"
cat >"$tmp/same/Dockerfile" <<'EOF'
FROM busybox AS one
RUN echo one > /one
FROM busybox AS two
RUN echo two > /two
FROM busybox AS three
COPY --from=one /one /three
RUN echo three >> /three
FROM busybox
COPY --from=two /two /
COPY --from=three /three /
EOF
# (built cold at once, then one stage after the other from the cache: the keys the stages
# recorded at once are those a serial build looks up; tests/build's jobs group compares cold
# builds with SOURCE_DATE_EPOCH)
id1=$("$IB" build -q --jobs 3 "$tmp/same")
"$IB" build --progress=plain --jobs 1 "$tmp/same" >/dev/null 2>"$tmp/same.err"
id2=$("$IB" build -q --jobs 1 "$tmp/same")
[ -n "$id1" ] && [ "$id1" = "$id2" ] || fail "--jobs 3 built $id1, --jobs 1 $id2"
[ "$(grep -c '^#[0-9]* CACHED$' "$tmp/same.err")" = 6 ] || fail "--jobs 1 after --jobs 3: $(cat "$tmp/same.err")"

# ---- a failing stage cancels the one beside it; nothing stays behind ----
mkdir -p "$tmp/fails"
cat >"$tmp/fails/Dockerfile" <<'EOF'
FROM busybox AS slow
RUN echo waiting; sleep 67
FROM busybox AS broken
RUN sleep 0.5; echo broken-stage; exit 7
FROM busybox
COPY --from=slow / /s
COPY --from=broken / /b
EOF
if "$IB" build --progress=plain --jobs 2 "$tmp/fails" >/dev/null 2>"$tmp/fails.err"; then
	fail "a failing stage did not fail the build"
fi
grep -q '^#[0-9]* ERROR: \[broken 1/1\] RUN sleep 0.5; echo broken-stage; exit 7: .*exit code 7' "$tmp/fails.err" ||
	fail "the first error is not the failing stage's: $(cat "$tmp/fails.err")"
grep -q '^#[0-9]* CANCELED$' "$tmp/fails.err" || fail "the slow stage is not CANCELED: $(cat "$tmp/fails.err")"
"$IB" fsck >/dev/null 2>"$tmp/fsck.err" || fail "left behind: $(cat "$tmp/fsck.err")"
! pgrep -f "sleep 67" >/dev/null || fail "the slow stage's process still runs"
if awk -v t="$tmp/" 'index($2, t) == 1' /proc/self/mounts | grep -q .; then
	fail "mounts left: $(awk -v t="$tmp/" 'index($2, t) == 1' /proc/self/mounts)"
fi

# ---- --jobs takes a count ----
for bad in 0 -1 x 2x; do
	if "$IB" build --jobs "$bad" "$tmp/same" >/dev/null 2>"$tmp/bad.err"; then
		fail "--jobs $bad was accepted"
	fi
	grep -q -- "--jobs $bad: a number from 1 to 1024" "$tmp/bad.err" || fail "--jobs $bad: $(cat "$tmp/bad.err")"
done
echo "jobs: ok"
