#!/bin/bash
# RUN is contained as Docker's RUN, through the CLI, with one isolation
# backend: Docker's seccomp profile (Seccomp: 2, unshare -U and the kernel
# keyring refused), a session keyring of its own (a key this script put in
# its session keyring is out of reach), and /proc/self/exe — directly, by a
# link, as a `#!` interpreter — never starts the CLI inside the container.
# Usage: contained.sh IMAGEBUILD ISOLATION
set -euo pipefail
IB=$1 ISO=$2
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "containers need root"
command -v keyctl >/dev/null || skip_or_fail "keyctl (keyutils) is not installed"
tmp=$(mktemp -d /tmp/ibtest-contained-XXXXXX)
cleanup() { umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }

"$IB_SOURCE_ROOT/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null

# the context: keyctl, and what the CLI needs to start inside (so that starting it would show)
ctx=$tmp/ctx
mkdir -p "$ctx/libs"
for f in "$(command -v keyctl)" $(ldd "$(command -v keyctl)" "$IB" | grep -o '/[^ ]*' | grep -v ':$'); do
	mkdir -p "$ctx/libs$(dirname "$f")"
	cp -L "$f" "$ctx/libs$f"
done
# the CLI finds its library through $ORIGIN/../.. : from /proc/self/exe that is /
cp -L "$(ldd "$IB" | grep -o '/[^ ]*libimagebuild[^ ]*')" "$ctx/libs/"

build() { # Dockerfile body -> output in $tmp/out, status returned
	printf 'FROM busybox\nCOPY libs/ /\n%s\n' "$1" > "$ctx/Dockerfile"
	"$IB" build --no-cache --isolation "$ISO" "$ctx" > "$tmp/out" 2>&1
}
never_cli() {
	! grep -q 'Usage: imagebuild' "$tmp/out" || fail "$1 started the CLI inside: $(cat "$tmp/out")"
}

# seccomp and keyrings
key=$(keyctl add user ib-contained-secret host-keyring-secret @s)
build "RUN grep '^Seccomp:' /proc/self/status
RUN unshare -U true && echo USERNS-CREATED || echo userns-refused
RUN keyctl print $key && echo READ-SECRET || echo secret-unreadable
RUN keyctl add user planted evil @s && echo PLANTED || echo add-key-refused" ||
	fail "the build failed: $(cat "$tmp/out")"
keyctl unlink "$key" @s >/dev/null 2>&1 || true
cat "$tmp/out"
grep -q 'Seccomp:.2' "$tmp/out" || fail "no seccomp filter in RUN"
grep -q userns-refused "$tmp/out" || fail "RUN could unshare a user namespace"
grep -q secret-unreadable "$tmp/out" || fail "RUN read the host's session key"
! grep -q host-keyring-secret "$tmp/out" || fail "RUN printed the host's session key"
grep -q add-key-refused "$tmp/out" || fail "RUN could add a key"
! keyctl search @s user planted >/dev/null 2>&1 || fail "RUN planted a key in this session keyring"

# /proc/self/exe, directly and by a link: refused clearly
for body in 'RUN ["/proc/self/exe"]' $'RUN ln -s /proc/self/exe /bin/selfexe\nRUN ["selfexe"]'; do
	if build "$body"; then fail "$body succeeded: $(cat "$tmp/out")"; fi
	never_cli "$body"
	grep -q 'magic link' "$tmp/out" || fail "$body: no clear error: $(cat "$tmp/out")"
done
# as a script's interpreter: never the CLI
body=$'RUN printf \'#!/proc/self/exe\\n\' > /bin/selfscript && chmod 755 /bin/selfscript\nRUN ["/bin/selfscript"]'
if build "$body"; then fail "the #! /proc/self/exe script succeeded: $(cat "$tmp/out")"; fi
never_cli "the #! /proc/self/exe script"
echo "contained: ok ($ISO)"
