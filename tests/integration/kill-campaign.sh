#!/usr/bin/env bash
# A kill -9 campaign: IB_KILLS (50) commands — build (RUN, COPY; overlay and
# copy snapshotters), run, exec, commit, load, pull, push, prune — each
# killed with SIGKILL after a random delay, against one store and a
# docker-registry on 127.0.0.1. Then `prune` and `fsck` on every store, and
# findmnt: nothing of ours may stay mounted, no snapshot may stay, fsck
# must be clean, and the store must still build, run and push. Prints
#   kills: 50, fsck failures: 0, leftover mounts: 0, leftover snapshots: 0, ...
# Bounded: at most IB_KILL_ROUNDS (150) commands and IB_KILL_SECONDS (240 s).
# IB_KILL_SEED makes a run repeatable (printed).
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${IMAGEBUILD:?}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
WANT=${IB_KILLS:-50}
ROUNDS=${IB_KILL_ROUNDS:-150}
SECONDS_MAX=${IB_KILL_SECONDS:-240}
SEED=${IB_KILL_SEED:-$$}
RANDOM=$SEED
[ "$(id -u)" = 0 ] || skip_or_fail "mounts and namespaces need root"
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
command -v findmnt >/dev/null || skip_or_fail "findmnt (util-linux) is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-campaign-XXXXXX")
regpid=
cleanup() {
	[ -z "$regpid" ] || { kill "$regpid" 2>/dev/null; wait "$regpid" 2>/dev/null; } || true
	findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | while read -r m; do umount -l "$m" || true; done || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL (IB_KILL_SEED=$SEED repeats this run): $*" >&2; exit 1; }
# a command that fails under set -e says where
trap 'echo "FAIL at line $LINENO (IB_KILL_SEED=$SEED): $BASH_COMMAND" >&2' ERR
root=$tmp/store
pullroot=$tmp/pulled
ib() { "$IB" --root "$root" "$@"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mounts() { findmnt -rn -o TARGET | grep -c "^$tmp/" || true; }
snapshots() { { find "$root/snapshots" "$pullroot/snapshots" -mindepth 3 -maxdepth 3 -path '*/active/*' 2>/dev/null || true; } | wc -l; }
# temporary directories the library's commands make ($TMPDIR is ours)
export TMPDIR=$tmp/tmp
mkdir -p "$TMPDIR"

rc=0
"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
[ "$rc" = 0 ] || fail "make-busybox-tar.sh exited $rc"
ib import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null

port=$(free_port)
mkdir -p "$tmp/registry"
cat >"$tmp/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/registry/data
http:
  addr: 127.0.0.1:$port
EOF
"$REGISTRY" serve "$tmp/registry/config.yml" >"$tmp/registry/log" 2>&1 &
regpid=$!
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$tmp/registry/log" >&2; fail "the registry did not start"; }
reg=127.0.0.1:$port

# what the commands work on: a context with a big file, an image with a layer
# that takes a while to compress, a container, an archive, a pushed image
mkdir -p "$tmp/ctx"
head -c 40M /dev/urandom >"$tmp/ctx/big"
printf 'FROM busybox\nARG N\nRUN echo "$N" >/n && dd if=/dev/urandom of=/r bs=1M count=20 2>/dev/null && sleep 0.3\nCOPY big /big\nRUN cat /n /big | md5sum >/sum\n' \
	>"$tmp/ctx/Dockerfile"
ib build -q -t app --build-arg N=0 "$tmp/ctx" >/dev/null
ib run --name box busybox sh -c 'echo box >/box' >/dev/null
ib save --format oci-archive -o "$tmp/app.tar" app
ib push --insecure -q app "$reg/app:seed" >/dev/null

# one command, into the array cmd
pick_command() {
	local n=$1 snap
	snap=overlay
	[ $((RANDOM % 2)) = 0 ] || snap=copy
	case $((RANDOM % 9)) in
	0 | 1) cmd=(build -q --no-cache --snapshotter "$snap" --build-arg "N=$n" -t "app$((n % 3))" "$tmp/ctx") ;;
	2) cmd=(run --rm --snapshotter "$snap" busybox sh -c "dd if=/dev/urandom of=/x bs=1M count=30 2>/dev/null; sleep 1") ;;
	3) cmd=(exec box sh -c "dd if=/dev/urandom of=/x$((n % 2)) bs=1M count=20 2>/dev/null; sleep 0.5") ;;
	4) cmd=(commit -m "round $n" box "box$((n % 3))") ;;
	5) cmd=(load -q -i "$tmp/app.tar") ;;
	6) cmd=(push --insecure -q app "$reg/app$n:latest") ;;
	7) cmd=(--root "$pullroot" pull --insecure -q "$reg/app:seed") ;;
	8) cmd=(prune) ;;
	esac
}

kills=0 finished=0 rounds=0 start=$(date +%s)
declare -A killed_by=()
echo "seed: $SEED"
while [ "$kills" -lt "$WANT" ] && [ "$rounds" -lt "$ROUNDS" ] && [ $(($(date +%s) - start)) -lt "$SECONDS_MAX" ]; do
	rounds=$((rounds + 1))
	pick_command "$rounds"
	# a fresh pull store now and then, so that pulls download again
	[ "${cmd[0]}" != --root ] || [ $((RANDOM % 3)) != 0 ] || "$IB" --root "$pullroot" rmi -f "$reg/app:seed" >/dev/null 2>&1 || true
	"$IB" --root "$root" "${cmd[@]}" >/dev/null 2>"$tmp/last.err" &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
	name=${cmd[0]}
	[ "$name" != --root ] || name=pull
	if kill -9 "$pid" 2>/dev/null; then
		kills=$((kills + 1))
		killed_by[$name]=$((${killed_by[$name]:-0} + 1))
	else
		finished=$((finished + 1))
	fi
	wait "$pid" 2>/dev/null || true
done
summary=""
for k in "${!killed_by[@]}"; do summary+=" $k=${killed_by[$k]}"; done
echo "commands: $rounds, killed:$summary, finished before the kill: $finished"

# what the kills left, then what prune leaves
before_mounts=$(mounts) before_snapshots=$(snapshots)
fsck_before=0
ib fsck >/dev/null 2>&1 || fsck_before=$((fsck_before + 1))
echo "before prune: $before_mounts mounts, $before_snapshots snapshots, fsck failures: $fsck_before"
ib prune >/dev/null || fail "prune failed: $(ib prune 2>&1)"
"$IB" --root "$pullroot" prune >/dev/null || fail "prune of the pull store failed"
fsck_failures=0
for r in "$root" "$pullroot"; do
	if ! "$IB" --root "$r" fsck >"$tmp/fsck" 2>&1; then
		fsck_failures=$((fsck_failures + 1))
		cat "$tmp/fsck" >&2
	fi
done
left_mounts=$(mounts)
left_snapshots=$(snapshots)
# the container's snapshot is the only one that stays (it is persistent)
left_snapshots=$((left_snapshots - $(ib ps -a -q | wc -l)))
left_store_tmp=$({ find "$root/tmp" "$pullroot/tmp" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l)
left_tmp=$(find "$TMPDIR" -mindepth 1 -maxdepth 1 | wc -l)
echo "kills: $kills, fsck failures: $fsck_failures, leftover mounts: $left_mounts, leftover snapshots: $left_snapshots, leftover temporary files in the stores: $left_store_tmp"
echo "temporary files left in \$TMPDIR: $left_tmp"
[ "$left_mounts" = 0 ] || { findmnt -rn -o TARGET | grep "^$tmp/" >&2; fail "mounts are left"; }
[ "$left_snapshots" = 0 ] || { ls "$root"/snapshots/*/active >&2; fail "snapshots are left"; }
[ "$fsck_failures" = 0 ] || fail "fsck is not clean"
[ "$left_store_tmp" = 0 ] || { ls "$root/tmp" "$pullroot/tmp" >&2; fail "temporary files are left in the stores"; }
[ "$left_tmp" = 0 ] || { ls "$TMPDIR" >&2; fail "temporary files are left in \$TMPDIR"; }
[ "$kills" -ge $((WANT / 2)) ] || fail "only $kills of $rounds commands were killed: the campaign did not test much"

# the store still works
ib build -q -t after --build-arg N=after "$tmp/ctx" >/dev/null || fail "a build after the campaign failed"
[ "$(ib run --rm after cat /n)" = after ] || fail "the image built after the campaign is wrong"
[ "$(ib exec box cat /box)" = box ] || fail "the container lost its files"
ib push --insecure -q after "$reg/after:1" >/dev/null || fail "a push after the campaign failed"
echo "OK"
