#!/bin/bash
# Exit codes of run and exec as docker's: the container's code passed
# through (128 + its signal), 125 for imagebuild's own errors (bad flags,
# missing image or container), 126 when the command cannot be executed,
# 127 when it is not found; with every isolation backend. A build
# interrupted by two SIGINTs exits 130 and leaves nothing behind.
# Usage: cli-run.sh IMAGEBUILD
set -euo pipefail
IB=$1
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "run needs root"
tmp=$(mktemp -d /tmp/ibtest-cli-run-XXXXXX)
cleanup() {
	umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
"$IB_MAKE_BUSYBOX" "$tmp/bb.tar"
"$IB" import -c 'CMD ["sh"]' "$tmp/bb.tar" busybox >/dev/null
code() { set +e; "$@" >/dev/null 2>&1; echo $?; set -e; }
for iso in namespaces oci chroot; do
	r() { "$IB" run --rm --isolation "$iso" "$@"; }
	[ "$(code r busybox sh -c 'exit 3')" = 3 ] || fail "$iso: the container's code"
	[ "$(code r busybox true)" = 0 ] || fail "$iso: true"
	[ "$(code r busybox no-such-command)" = 127 ] || fail "$iso: a command not found: $(code r busybox no-such-command)"
	[ "$(code r busybox /no/such/file)" = 127 ] || fail "$iso: a path not found"
	[ "$(code r busybox /etc/passwd)" = 126 ] || fail "$iso: a file not executable: $(code r busybox /etc/passwd)"
	[ "$(code r busybox /etc)" = 126 ] || fail "$iso: a directory: $(code r busybox /etc)"
	[ "$(code r --no-such-flag busybox true)" = 125 ] || fail "$iso: an unknown flag"
	[ "$(code r --network bogus busybox true)" = 125 ] || fail "$iso: a bad --network"
	[ "$(code r no-such-image:here true)" = 125 ] || fail "$iso: a missing image (the pull fails)"
done
# docker run -h is --hostname; run's options stop at the image (the rest is the command's)
[ "$("$IB" run --rm -h myhost busybox hostname)" = myhost ] || fail "run -h NAME"
[ "$("$IB" run --rm -hmyhost busybox hostname)" = myhost ] || fail "run -hNAME"
[ "$("$IB" run --rm busybox echo -t --rm)" = "-t --rm" ] || fail "flags after the image are the command's"
[ "$("$IB" run --rm -e A=1 -eB=2 --env=C=3 busybox sh -c 'echo $A$B$C')" = 123 ] || fail "-e forms"
"$IB" run --name c busybox true
[ "$(code "$IB" exec c sh -c 'exit 4')" = 4 ] || fail "exec: the command's code"
[ "$(code "$IB" exec c no-such-command)" = 127 ] || fail "exec: not found"
[ "$(code "$IB" exec c /etc/passwd)" = 126 ] || fail "exec: not executable"
[ "$(code "$IB" exec no-such-container true)" = 125 ] || fail "exec: a missing container"
[ "$(code "$IB" exec --rm c true)" = 125 ] || fail "exec --rm is run's flag only"
[ "$(code "$IB" container exec c true)" = 0 ] || fail "container exec"

# Ctrl-C twice during a silent RUN: the second does not cut the cleanup short (130, no mount,
# no active snapshot, fsck clean)
"$IB" rm c >/dev/null # its snapshot is the only one left active
[ "$(find "$tmp/store/snapshots" -mindepth 3 -maxdepth 3 -path '*/active/*' | wc -l)" = 0 ] ||
	fail "an active snapshot before the build"
mkdir -p "$tmp/ctx"
printf 'FROM busybox\nRUN echo started; sleep 60\n' >"$tmp/ctx/Dockerfile"
"$IB" build "$tmp/ctx" >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 400); do grep -q started "$tmp/out" && break; sleep 0.05; done
grep -q started "$tmp/out" || fail "the build's RUN did not start: $(cat "$tmp/out")"
kill -INT "$pid"
kill -INT "$pid" 2>/dev/null || true
st=0
wait "$pid" || st=$?
[ "$st" = 130 ] || fail "build after two SIGINTs exited $st, not 130: $(cat "$tmp/out")"
[ "$(findmnt -rn -o TARGET | grep -c "^$tmp/" || true)" = 0 ] || fail "a mount is left after two SIGINTs"
[ "$(find "$tmp/store/snapshots" -mindepth 3 -maxdepth 3 -path '*/active/*' | wc -l)" = 0 ] ||
	fail "an active snapshot is left after two SIGINTs"
"$IB" fsck >/dev/null || fail "fsck is not clean after two SIGINTs"
echo ok
