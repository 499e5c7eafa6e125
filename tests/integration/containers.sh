#!/bin/bash
# The seed's first half, end to end, with one isolation backend and one
# snapshotter: run -it (through a real pseudo-terminal), change, commit with
# a message, history, run the new image, commit with a new CMD, run, rm.
# Usage: containers.sh IMAGEBUILD ISOLATION SNAPSHOTTER
set -euo pipefail
IB=$1 ISO=$2 SNAP=$3
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "containers need root"
tmp=$(mktemp -d /tmp/ibtest-containers-XXXXXX)
loop=
cleanup() {
	[ -z "$loop" ] || losetup -d "$loop" || true
	umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { "$IB" run --isolation "$ISO" --snapshotter "$SNAP" "$@"; }

"$IB_SOURCE_ROOT/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
"$IB" import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null

# imagebuild run --name base-container -it busybox: typed at a real terminal
/usr/bin/python3 - "$IB" "$ISO" "$SNAP" <<'PY'
import os, pty, sys, time, select
ib, iso, snap = sys.argv[1:4]
pid, fd = pty.fork()
if pid == 0:
    os.execv(ib, [ib, "run", "--isolation", iso, "--snapshotter", snap,
                  "--name", "base-container", "-it", "busybox"])
def read_until(token, timeout=20):
    buf = b""
    end = time.time() + timeout
    while time.time() < end and token not in buf:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf
# the shell is interactive: it prints a prompt and echoes what we type
out = read_until(b"#")
os.write(fd, b"tty -s && echo IS-A-TTY; mkdir -p /opt/tools && echo hammer > /opt/tools/hammer\n")
out += read_until(b"IS-A-TTY\r\n")
os.write(fd, b"exit 0\n")
rest = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    rest += chunk
_, status = os.waitpid(pid, 0)
if b"IS-A-TTY" not in out:
    sys.exit("run -it: no terminal inside the container; output: %r" % (out + rest))
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit("run -it exited with %d; output: %r" % (os.waitstatus_to_exitcode(status), out + rest))
PY

"$IB" commit -m "Add tools" base-container tools-base >/dev/null
hist=$("$IB" history tools-base)
echo "$hist"
first=$(echo "$hist" | sed -n 2p)
case $first in *"Add tools"*) ;; *) fail "history's newest entry lacks the message: $first" ;; esac
case $first in *" 0B "*) fail "the committed layer is empty: $first" ;; esac

# as docker history (Docker 20.10 shows the same for the same image and run):
# a container that ran the image's default CMD is committed with that command
# as CREATED BY, and SIZE is the content of the layer's files (symlink targets
# included, a hardlink group once: 7 + 6 bytes), not its tar
"$IB" import -c 'CMD ["sh","-c","printf abcdefg > /seven && ln /seven /seven2 && ln -s /seven /sym"]' \
	"$tmp/busybox.tar" defcmd >/dev/null
run --name defcmd-c defcmd
"$IB" commit defcmd-c defcmd:c >/dev/null
hist=$("$IB" history --no-trunc defcmd:c)
echo "$hist"
row=$(echo "$hist" | sed -n 2p)
case $row in *" sh -c printf abcdefg > /seven && ln /seven /seven2 && ln -s /seven /sym "*) ;;
	*) fail "the commit of the default CMD is not CREATED BY it: $row" ;; esac
case $row in *" 13B "*) ;; *) fail "the committed layer's SIZE is not its content (13B): $row" ;; esac
base=$(echo "$hist" | sed -n 3p)
case $base in *" 1.99MB "*) ;; *) fail "the busybox layer's SIZE is not its content (1.99MB): $base" ;; esac
run --name defcmd-e --entrypoint true defcmd
"$IB" commit defcmd-e defcmd:e >/dev/null
row=$("$IB" history --no-trunc defcmd:e | sed -n 2p)
case $row in *"printf"*) fail "--entrypoint without a command ran no CMD, yet CREATED BY says: $row" ;; esac
"$IB" rm defcmd-c defcmd-e >/dev/null

[ "$(run --rm tools-base sh -c 'ls /opt/tools')" = hammer ] || fail "the committed change is not in tools-base"
run --name app-container -i tools-base sh -c 'echo hello > /app.txt' </dev/null
"$IB" commit -c 'CMD ["cat","/app.txt"]' -m "Add app" app-container sample-app >/dev/null
out=$(run --rm sample-app)
[ "$out" = hello ] || fail "sample-app printed '$out', not hello"
"$IB" inspect sample-app | grep -q '"/app.txt"' || fail "sample-app lacks its CMD"
"$IB" rm app-container base-container >/dev/null
[ -z "$("$IB" ps -a -q)" ] || fail "containers left after rm: $("$IB" ps -a)"

# a container keeps its changes from one process to the next
run --name keep busybox sh -c 'echo first > /state'
"$IB" exec keep sh -c 'echo second >> /state'
[ "$("$IB" exec keep cat /state | tr '\n' ' ')" = "first second " ] || fail "changes did not persist across runs"
"$IB" rm keep >/dev/null

# the hostname, as docker run's: the id's first 12 hex digits, or -h/--hostname;
# on every backend (chroot in a UTS namespace of its own), never the host's changed
host_before=$(hostname)
run --name hn busybox sh -c 'hostname; cat /etc/hosts' >"$tmp/hn.out"
id=$("$IB" ps -a -q)
[ "$(sed -n 1p "$tmp/hn.out")" = "$id" ] || fail "the hostname is not the id's first 12 ($id): $(cat "$tmp/hn.out")"
grep -q "^127.0.1.1	$id\$" "$tmp/hn.out" || fail "/etc/hosts lacks the hostname: $(cat "$tmp/hn.out")"
"$IB" rm hn >/dev/null
[ "$(run --rm -h named busybox hostname)" = named ] || fail "run -h did not set the hostname"
[ "$(run --rm --hostname other busybox hostname)" = other ] || fail "run --hostname did not set the hostname"
[ "$(hostname)" = "$host_before" ] || fail "the host's hostname changed to $(hostname)"

# exit codes and signal deaths come back
set +e
run --rm busybox sh -c 'exit 3'; rc=$?
[ $rc = 3 ] || fail "exit 3 came back as $rc"
# (the command is PID 1 in its namespace, where SIGKILL from inside is ignored: kill a child)
run --rm busybox sh -c 'sh -c "kill -9 \$\$"; exit $?'; rc=$?
[ $rc = 137 ] || fail "SIGKILL came back as $rc, not 137"
run --rm busybox /nonexistent; rc=$?
[ $rc != 0 ] || fail "a missing command succeeded"
run --rm -u nosuchuser busybox true 2>"$tmp/err"; rc=$?
[ $rc != 0 ] && grep -q nosuchuser "$tmp/err" || fail "a missing USER did not fail clearly: $(cat "$tmp/err")"
set -e
# ---- what an untrusted image or command must not reach (issue 10) ----
# a loop device over a scratch file of ours (never a real disk), its content
# passwd lines of a uid-0 user, so reading it from the host shows either way
command -v losetup >/dev/null || skip_or_fail "losetup (util-linux) is missing"
line='ibscratch:x:0:0:IMAGEBUILD-SCRATCH:/:/bin/sh'
for i in $(seq 2048); do echo "$line"; done > "$tmp/scratch.img"
truncate -s 65536 "$tmp/scratch.img"
cp "$tmp/scratch.img" "$tmp/scratch.orig"
loop=$(losetup -f --show "$tmp/scratch.img")
maj=$((0x$(stat -c %t "$loop"))) min=$((0x$(stat -c %T "$loop")))
# a 0666 node made by RUN and shipped in the committed layer, read and written as nobody
set +e
run --name dev-container busybox sh -c "mknod /disk b $maj $min && chmod 666 /disk" </dev/null
rc=$?
set -e
[ $rc = 0 ] || fail "mknod failed in the container ($rc); Docker allows it"
"$IB" commit dev-container dev-image >/dev/null
"$IB" rm dev-container >/dev/null
set +e
out=$(run --rm -u 65534 dev-image sh -c 'head -c 64 /disk; echo pwned > /disk && echo WROTE; echo done' 2>&1)
set -e
echo "$out"
case $out in *IMAGEBUILD-SCRATCH*|*WROTE*) fail "a device node shipped in a layer reached the loop device" ;; esac
case $out in *done*) ;; *) fail "the device check did not run: $out" ;; esac
# USER ids the kernel takes for -1 ("unchanged")
for u in 4294967295 1000:4294967295; do
	set +e
	out=$(run --rm -u "$u" busybox id 2>&1); rc=$?
	set -e
	[ $rc != 0 ] && case $out in *"out of range"*) true ;; *) false ;; esac ||
		fail "USER $u was not refused clearly ($rc): $out"
done
# /etc/passwd as a FIFO, then as the loop device's node: a clear error at once, nothing read
for kind in fifo blk; do
	if [ $kind = fifo ]; then mk='mkfifo /etc/passwd'; else mk="mknod /etc/passwd b $maj $min"; fi
	run --name pw-container busybox sh -c "rm /etc/passwd && $mk" </dev/null
	"$IB" commit pw-container pw-image >/dev/null
	"$IB" rm pw-container >/dev/null
	set +e
	start=$(date +%s)
	out=$(timeout 20 "$IB" run --isolation "$ISO" --snapshotter "$SNAP" --rm -u ibscratch pw-image id 2>&1); rc=$?
	took=$(( $(date +%s) - start ))
	set -e
	[ $rc != 0 ] && [ $rc != 124 ] && case $out in *"not a regular file"*) true ;; *) false ;; esac ||
		fail "a $kind /etc/passwd did not fail clearly ($rc): $out"
	[ $took -lt 5 ] || fail "a $kind /etc/passwd took ${took}s to refuse"
	"$IB" rmi pw-image >/dev/null
done
cmp -s "$tmp/scratch.orig" "$tmp/scratch.img" || fail "the scratch file behind the loop device changed"
# a systemd-style /etc/resolv.conf (in the image: inside a container it is a mount point):
# the run's file lands at the link's target
cp "$tmp/busybox.tar" "$tmp/rs.tar"
/usr/bin/python3 - "$tmp/rs.tar" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "a") as t:
    i = tarfile.TarInfo("etc/resolv.conf")
    i.type = tarfile.SYMTYPE
    i.linkname = "../run/systemd/resolve/stub-resolv.conf"
    t.addfile(i)
PY
"$IB" import "$tmp/rs.tar" rs-image >/dev/null
out=$(run --rm rs-image sh -c 'cat /etc/resolv.conf; echo; readlink /etc/resolv.conf')
[ "$out" = "$(cat /etc/resolv.conf; echo; echo ../run/systemd/resolve/stub-resolv.conf)" ] ||
	fail "a symlinked /etc/resolv.conf did not get the host's: $out"
losetup -d "$loop"; loop=

# rm removes the record first: a snapshot that cannot be removed leaves no container behind,
# only files prune removes (an immutable file makes the removal fail)
run --name stuck busybox sh -c 'echo x > /stuck' >/dev/null
f=$(find "$IMAGEBUILD_ROOT/snapshots/$SNAP/active" -name stuck -type f | head -1)
[ -n "$f" ] || fail "no file /stuck in the container's snapshot"
chattr +i "$f" || fail "chattr +i $f (the test needs a file system with immutable files)"
if "$IB" rm stuck 2>"$tmp/err"; then chattr -i "$f"; fail "rm of a container whose files cannot go succeeded"; fi
chattr -i "$f"
grep -q "its record is removed, its snapshot is left for prune" "$tmp/err" || fail "rm: $(cat "$tmp/err")"
! "$IB" ps -a | grep -q stuck || fail "the container stays after its rm failed on its files: $("$IB" ps -a)"
"$IB" prune >/dev/null
[ ! -e "$f" ] || fail "prune left the removed container's files"

echo "containers: ok ($ISO, $SNAP)"
