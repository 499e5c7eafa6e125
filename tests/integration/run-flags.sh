#!/usr/bin/env bash
# The `run` flags of a daemonless runner (podman as the model), end to end
# with one isolation backend: -v (rw, ro), --mount type=tmpfs and --tmpfs,
# a named volume across two runs, --env-file, --read-only, --cap-drop,
# --ulimit, --init (PID 1, zombies reaped); -d with logs, stop, wait, kill
# and ps (running, then exited). At the end nothing of ours is mounted and
# fsck is clean.
# Usage: run-flags.sh ISOLATION (namespaces, oci, chroot). Needs root.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${IMAGEBUILD:?}
ISO=${1:-namespaces}
[ "$(id -u)" = 0 ] || skip_or_fail "containers need root"
command -v findmnt >/dev/null || skip_or_fail "findmnt (util-linux) is not installed"
[ -x /usr/bin/catatonit ] || [ -x /usr/bin/tini-static ] || skip_or_fail "no init for --init (apt-get install catatonit)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-run-flags-XXXXXX")
root=$tmp/store
cleanup() {
	# a failed test may leave a detached container running: kill it, then unmount
	for c in $("$IB" --root "$root" ps -q 2>/dev/null); do
		timeout 20 "$IB" --root "$root" kill "$c" >/dev/null 2>&1 || true
	done
	findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | while read -r m; do umount -l "$m" || true; done || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL ($ISO): $*" >&2; exit 1; }
ib() { timeout 60 "$IB" --root "$root" "$@"; }
run() { ib run --rm --isolation "$ISO" "$@"; }

"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar"
ib import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null

# -v SRC:DST: what the container writes is on the host; :ro refuses writes
mkdir "$tmp/host"
echo from-host >"$tmp/host/in"
out=$(run -v "$tmp/host:/data" busybox sh -c 'cat /data/in; echo from-container >/data/out')
[ "$out" = from-host ] || fail "-v: the container read '$out'"
[ "$(cat "$tmp/host/out")" = from-container ] || fail "-v: the file written in the container is not on the host"
if run -v "$tmp/host:/data:ro" busybox sh -c 'echo x >/data/ro' 2>"$tmp/err"; then
	fail "-v :ro: a write succeeded"
fi
grep -q "Read-only file system" "$tmp/err" || fail "-v :ro: $(cat "$tmp/err")"
[ ! -e "$tmp/host/ro" ] || fail "-v :ro: the write reached the host"
# a bind option we do not implement is refused, never ignored
if ib run --rm -v "$tmp/host:/data:z" busybox true 2>"$tmp/err"; then fail "-v :z was accepted"; fi
grep -q "not supported" "$tmp/err" || fail "-v :z: $(cat "$tmp/err")"

# --mount type=tmpfs and --tmpfs: a tmpfs there, noexec by default as docker's
out=$(run --mount type=tmpfs,dst=/scratch,tmpfs-size=1m --tmpfs /t2:exec busybox \
	sh -c 'grep -E " /(scratch|t2) " /proc/mounts')
echo "$out" | grep -q "^tmpfs /scratch tmpfs .*noexec.*size=1024k" || fail "--mount type=tmpfs: $out"
echo "$out" | grep "^tmpfs /t2 " | grep -qv noexec || fail "--tmpfs /t2:exec: $out"

# a named volume: made on first use, kept in the store across runs
run -v cache:/cache busybox sh -c 'echo kept >/cache/file'
out=$(run --mount type=volume,src=cache,dst=/again busybox cat /again/file)
[ "$out" = kept ] || fail "named volume: the second run read '$out'"
ib volume ls -q | grep -qx cache || fail "volume ls does not list the volume"
# an empty volume first gets the image's files at its target (docker's copy-up), owner and mode kept;
# nocopy leaves it empty
out=$(run -v etcvol:/etc busybox sh -c 'ls /etc/passwd && stat -c %u:%a /etc/passwd')
[ "$out" = "/etc/passwd
0:644" ] || fail "copy-up into a new volume: '$out'"
[ -f "$root/volumes/etcvol/_data/passwd" ] || fail "copy-up: the image's /etc/passwd is not in the volume"
out=$(run -v emptyvol:/etc:nocopy busybox sh -c 'ls -A /etc | wc -l')
[ "$out" = 0 ] || fail "-v :nocopy: the volume got $out entries"

# --env-file: NAME=VALUE lines, comments, NAME alone from our environment; -e wins
printf '# comment\nA=from-file\nB=two words\nFROM_HOST\n' >"$tmp/env"
out=$(FROM_HOST=host-value run --env-file "$tmp/env" -e A=from-flag busybox sh -c 'echo "$A|$B|$FROM_HOST"')
[ "$out" = "from-flag|two words|host-value" ] || fail "--env-file: '$out'"

# --read-only: the root refuses writes, its mounts do not
if run --read-only busybox touch /newfile 2>"$tmp/err"; then fail "--read-only: a write succeeded"; fi
grep -q "Read-only file system" "$tmp/err" || fail "--read-only: $(cat "$tmp/err")"
run --read-only --tmpfs /tmp busybox touch /tmp/ok || fail "--read-only: the tmpfs is read-only too"

# --cap-drop CHOWN: chown fails as root; without it, it works
run busybox sh -c 'touch /f && chown 1 /f' || fail "chown fails without --cap-drop"
if run --cap-drop CHOWN busybox sh -c 'touch /f && chown 1 /f' 2>"$tmp/err"; then fail "--cap-drop CHOWN: chown worked"; fi
grep -q "Operation not permitted" "$tmp/err" || fail "--cap-drop: $(cat "$tmp/err")"
if ib run --rm --cap-add SYS_ADMIN busybox true 2>"$tmp/err"; then fail "--cap-add SYS_ADMIN was accepted"; fi
grep -q "not supported" "$tmp/err" || fail "--cap-add SYS_ADMIN: $(cat "$tmp/err")"

# --ulimit nofile=SOFT:HARD
out=$(run --ulimit nofile=123:456 busybox sh -c 'echo $(ulimit -Sn) $(ulimit -Hn)')
[ "$out" = "123 456" ] || fail "--ulimit nofile=123:456: '$out'"

# --init: the init runs the command; an orphan that ends is reaped, no zombie stays
out=$(run --init busybox sh -c 'tr "\0" " " </proc/1/cmdline; echo')
case $ISO in
chroot) ;; # no PID namespace: the init is a subreaper, not PID 1
*) case $out in "/sbin/docker-init -- sh -c"*) ;; *) fail "--init: PID 1 is '$out'" ;; esac ;;
esac
# (the orphan is the one `sleep` there: in chroot mode, without a PID namespace, ps lists the
# host's processes too, and another test's passing zombie is not this one)
out=$(run --init busybox sh -c '(sleep 0.2 &); sleep 1; ps -o stat,comm | grep "^Z *sleep" || echo no-zombie')
[ "$out" = no-zombie ] || fail "--init: a zombie stayed: $out"

# -d: the supervisor holds the container; logs, ps, stop (TERM, the exit code recorded), wait
id=$(ib run -d --isolation "$ISO" --name trapper busybox \
	sh -c 'trap "echo got TERM; exit 3" TERM; echo started; while :; do sleep 0.1; done')
[[ $id =~ ^[0-9a-f]{64}$ ]] || fail "run -d printed '$id'"
for _ in $(seq 100); do ib logs trapper | grep -q started && break; sleep 0.1; done
ib logs trapper | grep -q started || fail "logs: $(ib logs trapper)"
ib ps | grep trapper | grep -q running || fail "ps does not show the running container: $(ib ps)"
ib stop -t 30 trapper >/dev/null
[ "$(ib wait trapper)" = 3 ] || fail "wait after stop: '$(ib wait trapper)'"
ib logs trapper | grep -q "got TERM" || fail "logs after stop: $(ib logs trapper)"
ib ps | grep -q trapper && fail "ps still shows the stopped container"
ib ps -a | grep trapper | grep -q "exited (3)" || fail "ps -a: $(ib ps -a)"
ib rm trapper >/dev/null

# -d + kill: SIGKILL by default, 137; logs -f ends when the container does
ib run -d --isolation "$ISO" --name sleeper busybox sleep 300 >/dev/null
ib ps | grep -q sleeper || fail "ps does not show sleeper"
if ib rm sleeper 2>/dev/null; then fail "rm removed a running container"; fi
ib kill sleeper >/dev/null
[ "$(ib wait sleeper)" = 137 ] || fail "wait after kill: '$(ib wait sleeper)'"
ib run -d --isolation "$ISO" --name talker busybox sh -c 'echo one; sleep 0.5; echo two; exit 4' >/dev/null
out=$(ib logs -f talker | tr '\n' ' ')
[ "$out" = "one two " ] || fail "logs -f: '$out'"
[ "$(ib wait talker)" = 4 ] || fail "wait talker"
# kill -s TERM goes to the container's process (a shell that traps it)
ib run -d --isolation "$ISO" --name termed busybox \
	sh -c 'trap "exit 9" TERM; echo ready; while :; do sleep 0.1; done' >/dev/null
for _ in $(seq 100); do ib logs termed | grep -q ready && break; sleep 0.1; done
ib kill -s TERM termed >/dev/null
[ "$(ib wait termed)" = 9 ] || fail "kill -s TERM"
ib rm -f sleeper talker termed >/dev/null
# -d fails itself when the command cannot start, as docker's: 127 not found, 126 not
# executable, the reason on stderr, no ID on stdout; it shows in wait as well
set +e
out=$(ib run -d --isolation "$ISO" --name nocmd busybox nosuchcmd 2>"$tmp/err"); rc=$?
set -e
[ "$rc" = 127 ] || fail "run -d nosuchcmd exited $rc (stdout '$out', stderr $(cat "$tmp/err"))"
[ -z "$out" ] || fail "run -d nosuchcmd printed '$out'"
grep -q nosuchcmd "$tmp/err" || fail "run -d nosuchcmd: no reason on stderr: $(cat "$tmp/err")"
[ "$(ib wait nocmd)" = 127 ] || fail "wait nocmd: '$(ib wait nocmd)'"
set +e
out=$(ib run -d --isolation "$ISO" --name noexec busybox / 2>"$tmp/err"); rc=$?
set -e
[ "$rc" = 126 ] || fail "run -d / exited $rc (stdout '$out', stderr $(cat "$tmp/err"))"
[ -z "$out" ] || fail "run -d / printed '$out'"
ib rm nocmd noexec >/dev/null

# nothing of ours stays mounted; the store is consistent
[ -z "$(findmnt -rn -o TARGET | grep "^$tmp/" || true)" ] || fail "left mounted: $(findmnt -rn -o TARGET | grep "^$tmp/")"
ib fsck >/dev/null || fail "fsck: $(ib fsck 2>&1)"
echo "OK ($ISO)"
