#!/usr/bin/env bash
# Nothing stays behind a build, run or exec that is killed or interrupted:
#   1. kill -9 of a build during RUN and during COPY: fsck reports what it
#      left (a snapshot, a mount), `prune` removes it, then findmnt shows
#      nothing of ours and fsck is clean; the next build works;
#   2. SIGINT / SIGTERM of a build during RUN, and of `run`: the command
#      cancels through the library and exits 130 / 143, leaving nothing,
#      without any prune;
#   3. kill -9 of `run --name`: prune unmounts the container's snapshot but
#      keeps it (its files), `ps` no longer says running; kill -9, SIGTERM
#      and SIGINT of `exec` in it: nothing left (after prune for -9);
#   4. 4 concurrent builders, IB_KILL_ROUNDS (15) short builds each, and a
#      runner of as many `run --rm`, beside a loop of the library's
#      ib_prune(): all succeed.
# Needs root (mounts); the argument (default overlay) picks the snapshotter;
# IB_KILL_PARTS (default "1 2 3 4") runs only some parts.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${IMAGEBUILD:?}
PRUNE_LOOP=${IB_PRUNE_LOOP:?}
SNAP=${1:-overlay}
[ "$(id -u)" = 0 ] || skip_or_fail "mounts and namespaces need root"
command -v findmnt >/dev/null || skip_or_fail "findmnt (util-linux) is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-kill-XXXXXX")
root=$tmp/store
cleanup() {
	# whatever a failure left mounted, so the directory can go
	findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | while read -r m; do umount -l "$m" || true; done || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
part() { [[ " ${IB_KILL_PARTS:-1 2 3 4} " == *" $1 "* ]]; }
ib() { "$IB" --root "$root" "$@"; }
ours() { findmnt -rn -o TARGET | grep -c "^$root/" || true; }
active() { { find "$root/snapshots" -mindepth 3 -maxdepth 3 -path '*/active/*' 2>/dev/null || true; } | wc -l; }
# wait_for FILE TEXT: until the file holds the text (10 s at most)
wait_for() {
	for _ in $(seq 200); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	cat "$1" >&2
	fail "\`$2\` never showed in $1"
}

# until_true WHAT COMMAND...: until the command succeeds (60 s at most)
until_true() {
	local what=$1; shift
	for _ in $(seq 1200); do
		"$@" && return 0
		sleep 0.05
	done
	fail "$what never showed (60 s)"
}

rc=0
"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
[ "$rc" = 0 ] || fail "make-busybox-tar.sh exited $rc"
ib import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null

mkdir -p "$tmp/ctx"
head -c 300M /dev/zero >"$tmp/ctx/big"
printf 'FROM busybox\nRUN echo one >/one && sleep 60\n' >"$tmp/ctx/Dockerfile.run"
printf 'FROM busybox\nRUN echo one >/one\nCOPY big /big\n' >"$tmp/ctx/Dockerfile.copy"

# ---- 1. kill -9 during RUN and COPY ----
if part 1; then
	"$IB" --root "$root" build --snapshotter "$SNAP" -f "$tmp/ctx/Dockerfile.run" "$tmp/ctx" >"$tmp/out" 2>&1 &
	pid=$!
	wait_for "$tmp/out" "RUN echo one"
	# the RUN's snapshot (and mount) exist: the RUN is under way (it sleeps 60 s);
	# waited for rather than a fixed sleep, which a loaded machine or ASan outlasts
	until_true "the RUN's snapshot" eval '[ "$(active)" -ge 1 ] && { [ "$SNAP" != overlay ] || [ "$(ours)" -ge 1 ]; }'
	sleep 0.5
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	[ "$(active)" -ge 1 ] || fail "the killed build left no snapshot to clean (killed too early?)"
	[ "$SNAP" != overlay ] || [ "$(ours)" -ge 1 ] || fail "the killed RUN left no mount (killed too early?)"
	if ib fsck >"$tmp/fsck" 2>&1; then
		cat "$tmp/fsck" >&2
		fail "fsck does not report what the killed build left"
	fi
	grep -q "which is gone" "$tmp/fsck" || { cat "$tmp/fsck" >&2; fail "fsck's report does not name the dead process"; }

	"$IB" --root "$root" build --snapshotter "$SNAP" -f "$tmp/ctx/Dockerfile.copy" "$tmp/ctx" >"$tmp/out" 2>&1 &
	pid=$!
	wait_for "$tmp/out" "COPY big"
	sleep 0.2
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	echo "after kill -9 during RUN and COPY: $(active) snapshots, $(ours) mounts"

	out=$(ib prune) || fail "prune failed"
	echo "$out" | grep -q "Deleted snapshots and unpacked layers: [1-9]" || fail "prune freed no snapshot: $out"
	[ "$(ours)" = 0 ] || { findmnt -rn -o TARGET | grep "^$root/" >&2; fail "mounts are left after prune"; }
	[ "$(active)" = 0 ] || fail "snapshots are left after prune: $(ls "$root"/snapshots/*/active)"
	ib fsck >/dev/null || fail "fsck is not clean after prune"
	ib build -q --snapshotter "$SNAP" -t copied -f "$tmp/ctx/Dockerfile.copy" "$tmp/ctx" >/dev/null || fail "the build after the kills failed"
	got=$(ib run --rm copied sh -c "cat /one; wc -c </big")
	[ "$got" = "$(printf 'one\n314572800')" ] || fail "the image built after the kills is wrong: $got"
fi

# ---- 2. SIGINT and SIGTERM cancel through the library ----
if part 2; then
	for sig in INT TERM; do
		"$IB" --root "$root" build --snapshotter "$SNAP" -f "$tmp/ctx/Dockerfile.run" "$tmp/ctx" >"$tmp/out" 2>&1 &
		pid=$!
		wait_for "$tmp/out" "RUN echo one"
		sleep 0.5
		kill -"$sig" "$pid"
		st=0
		wait "$pid" || st=$?
		want=$([ $sig = INT ] && echo 130 || echo 143)
		[ "$st" = "$want" ] || { cat "$tmp/out" >&2; fail "build on SIG$sig exited $st, not $want"; }
		grep -q "cancelled" "$tmp/out" || fail "build on SIG$sig did not say it was cancelled"
		[ "$(ours)" = 0 ] && [ "$(active)" = 0 ] || fail "build cancelled by SIG$sig left a mount or snapshot"
	done
	"$IB" --root "$root" run --snapshotter "$SNAP" --name sleeper busybox sh -c 'sleep 60' >"$tmp/out" 2>&1 &
	pid=$!
	for _ in $(seq 200); do ib ps | grep -q sleeper && break; sleep 0.05; done
	sleep 0.5
	kill -INT "$pid"
	st=0
	wait "$pid" || st=$?
	[ "$st" = 130 ] || fail "run on SIGINT exited $st, not 130"
	[ "$(ours)" = 0 ] || fail "run cancelled by SIGINT left its mount"
	ib rm sleeper >/dev/null
	ib fsck >/dev/null || fail "fsck is not clean after the cancelled commands"
fi

# ---- 3. kill -9 of run: the container stays, its mount goes ----
if part 3; then
	"$IB" --root "$root" run --snapshotter "$SNAP" --name victim busybox sh -c 'echo kept >/kept; sleep 60' >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 200); do ib ps | grep -q victim && break; sleep 0.05; done
	# its command has written /kept (in its writable snapshot)
	until_true "the container's /kept" eval '[ -n "$(find "$root/snapshots" -name kept 2>/dev/null)" ]'
	sleep 0.2
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	ib prune >/dev/null || fail "prune after the killed run failed"
	[ "$(ours)" = 0 ] || fail "the killed run's mount is left after prune"
	ib ps | grep -q victim && fail "ps still shows the killed container as running"
	[ "$(ib exec victim cat /kept)" = kept ] || fail "the killed container lost its files"
	ib fsck >/dev/null || fail "fsck is not clean after the killed run"
	# exec in it, killed (-9: fsck reports its mount, prune removes it) and
	# interrupted (SIGTERM, SIGINT: cancelled through the library, nothing left)
	for sig in KILL TERM INT; do
		"$IB" --root "$root" exec victim sh -c 'echo started; sleep 60' >"$tmp/out" 2>&1 &
		pid=$!
		wait_for "$tmp/out" started
		[ "$SNAP" != overlay ] || [ "$(ours)" -ge 1 ] || fail "exec mounted nothing (the check below would prove nothing)"
		kill -"$sig" "$pid"
		st=0
		wait "$pid" 2>/dev/null || st=$?
		want=$(case $sig in KILL) echo 137 ;; TERM) echo 143 ;; INT) echo 130 ;; esac)
		[ "$st" = "$want" ] || { cat "$tmp/out" >&2; fail "exec on SIG$sig exited $st, not $want"; }
		if [ "$sig" = KILL ]; then
			[ "$SNAP" != overlay ] || ! ib fsck >/dev/null 2>&1 || fail "fsck does not report the killed exec's mount"
			ib prune >/dev/null || fail "prune after the killed exec failed"
		else
			grep -q "cancelled" "$tmp/out" || fail "exec on SIG$sig did not say it was cancelled"
		fi
		[ "$(ours)" = 0 ] || fail "exec ended by SIG$sig left its mount"
		ib fsck >/dev/null || fail "fsck is not clean after exec ended by SIG$sig"
	done
	echo "exec killed (-9), SIGTERM, SIGINT: nothing left"
	ib rm victim >/dev/null
fi

# ---- 4. concurrent builds and runs beside the library's prune ----
if part 4; then
	ROUNDS=${IB_KILL_ROUNDS:-$([ "$SNAP" = copy ] && echo 6 || echo 15)}
	rm -f "$tmp/stop"
	"$PRUNE_LOOP" "$root" "$tmp/stop" >"$tmp/prunes" 2>&1 &
	pruner=$!
	# short builds: many starts, many steps, each racing the prunes
	echo small >"$tmp/ctx/small"
	printf 'FROM busybox\nARG N\nRUN echo "$N" >/n\nCOPY small /small\nRUN echo "$N" >>/n\n' \
		>"$tmp/ctx/Dockerfile.many"
	builders=()
	for b in 1 2 3 4; do
		(
			for round in $(seq "$ROUNDS"); do
				ib build -q --snapshotter "$SNAP" --build-arg "N=$b.$round" -f "$tmp/ctx/Dockerfile.many" \
					-t "many$b" "$tmp/ctx" >/dev/null 2>"$tmp/build-$b-$round.err" || echo "$b.$round" >>"$tmp/failed"
			done
		) &
		builders+=($!)
	done
	# and runs beside them: a container's snapshot is prepared, mounted and removed while prunes go on
	(
		for round in $(seq "$ROUNDS"); do
			out=$(ib run --rm --snapshotter "$SNAP" busybox sh -c "echo run.$round" 2>"$tmp/run-$round.err") &&
				[ "$out" = "run.$round" ] || echo "run.$round" >>"$tmp/failed"
		done
	) &
	builders+=($!)
	for p in "${builders[@]}"; do wait "$p"; done
	touch "$tmp/stop"
	pst=0
	wait "$pruner" || pst=$?
	cat "$tmp/prunes"
	nfail=$( [ -f "$tmp/failed" ] && wc -l <"$tmp/failed" || echo 0)
	echo "concurrent builds: $((4 * ROUNDS)), runs: $ROUNDS, failed: $nfail"
	if [ "$nfail" != 0 ]; then
		for f in $(cat "$tmp/failed"); do
			case $f in
			run.*) cat "$tmp/run-${f#run.}.err" >&2 ;;
			*) cat "$tmp/build-${f%%.*}-${f#*.}.err" >&2 ;;
			esac
		done
		fail "$nfail of $((5 * ROUNDS)) builds and runs failed beside ib_prune"
	fi
	[ "$pst" = 0 ] || fail "a prune failed beside the builds"
	[ "$(ib run --rm many3 cat /n)" = "3.$ROUNDS
3.$ROUNDS" ] || fail "many3 is not builder 3's last build"
	ib prune >/dev/null
	[ "$(ours)" = 0 ] && [ "$(active)" = 0 ] || fail "something is left after the concurrent builds"
	ib fsck >/dev/null || fail "fsck is not clean after the concurrent builds"
fi

echo "OK"
