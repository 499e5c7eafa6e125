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
cleanup() { umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true; rm -rf "$tmp"; }
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
echo "containers: ok ($ISO, $SNAP)"
