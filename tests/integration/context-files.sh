#!/bin/bash
# What the host reads from a context: a Dockerfile or .dockerignore that is
# /dev/zero, a FIFO or a directory is a clear error within 5 s and in little
# memory (not a hang, not an endless read); an ignore file that is there but
# cannot be read fails the build instead of sending what it excludes. And the
# store root the CLI makes is 0700.
# Usage: context-files.sh IMAGEBUILD
set -euo pipefail
IB=$1
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"
tmp=$(mktemp -d /tmp/ibtest-ctxfiles-XXXXXX)
cleanup() { umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }

"$IB_SOURCE_ROOT/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null
[ "$(stat -c %a "$IMAGEBUILD_ROOT")" = 700 ] || fail "the store root is $(stat -c %a "$IMAGEBUILD_ROOT"), not 700"
chmod 755 "$IMAGEBUILD_ROOT"
"$IB" images >/dev/null
[ "$(stat -c %a "$IMAGEBUILD_ROOT")" = 700 ] || fail "an existing 0755 store root was left $(stat -c %a "$IMAGEBUILD_ROOT")"

# expect_fail NAME WANT ARGS...: the build fails within 5 s, under 64 MiB, with WANT in its error
expect_fail() {
	local name=$1 want=$2; shift 2
	local rc=0
	timeout -s KILL 5 /usr/bin/time -o "$tmp/$name.rss" -f %M "$IB" build "$@" > "$tmp/$name.out" 2>&1 || rc=$?
	[ $rc = 137 ] && fail "$name: the build did not finish within 5 s"
	[ $rc != 0 ] || { cat "$tmp/$name.out"; fail "$name: the build succeeded"; }
	grep -q -- "$want" "$tmp/$name.out" || { cat "$tmp/$name.out"; fail "$name: the error does not say \`$want\`"; }
	local kib
	kib=$(tail -1 "$tmp/$name.rss")
	[ "$kib" -lt $((64 * 1024)) ] || fail "$name: the build used $kib KiB"
	echo "$name: $(tail -1 "$tmp/$name.out") (max RSS $kib KiB)"
}

ctx=$tmp/ctx
mkdir -p "$ctx"
echo s3cr3t > "$ctx/.env"

# the Dockerfile
mknod "$ctx/Dockerfile" c 1 5
expect_fail dockerfile-zero "Dockerfile.*is a character device, not a regular file" "$ctx"
expect_fail dockerfile-f-zero "/dev/zero.*is a character device" -f /dev/zero "$ctx"
rm "$ctx/Dockerfile"
# a symlink is resolved inside the Dockerfile's directory, as BuildKit's
# frontend does (its "dockerfile" source is that directory): a link out of it
# reads nothing outside (the older docker CLI followed it and the parse
# error printed the outside file's first line)
echo 'TOPSECRET line of a file outside the context' > "$tmp/outside"
chmod 600 "$tmp/outside"
ln -s ../outside "$ctx/Dockerfile"
expect_fail dockerfile-link-out "Dockerfile.*No such file" "$ctx"
! grep -q TOPSECRET "$tmp/dockerfile-link-out.out" || fail "the build read a file outside the context"
rm "$ctx/Dockerfile"
ln -s /dev/zero "$ctx/Dockerfile"
expect_fail dockerfile-link-abs "Dockerfile.*No such file" "$ctx"
rm "$ctx/Dockerfile"
mkfifo "$ctx/Dockerfile"
expect_fail dockerfile-fifo "is a FIFO, not a regular file" "$ctx"
rm "$ctx/Dockerfile"
{ yes '# a comment line' || true; } | head -c $((5 << 20)) > "$ctx/Dockerfile"
expect_fail dockerfile-big "larger than" "$ctx"
printf 'FROM busybox\nCOPY . /ctx/\n' > "$ctx/Dockerfile"

# the .dockerignore: /dev/zero, a FIFO, a directory (there, but not readable as a file)
mknod "$ctx/.dockerignore" c 1 5
expect_fail ignore-zero ".dockerignore.*is a character device" "$ctx"
rm "$ctx/.dockerignore"
mkfifo "$ctx/.dockerignore"
expect_fail ignore-fifo ".dockerignore.*is a FIFO" "$ctx"
rm "$ctx/.dockerignore"
mkdir "$ctx/.dockerignore"
expect_fail ignore-dir ".dockerignore.*is a directory" "$ctx"
rmdir "$ctx/.dockerignore"
ln -s .dockerignore "$ctx/.dockerignore"
expect_fail ignore-loop ".dockerignore.*Too many levels of symbolic links" "$ctx"
rm "$ctx/.dockerignore"
mkfifo "$ctx/Dockerfile.dockerignore"
expect_fail ignore-named-fifo "Dockerfile.dockerignore.*is a FIFO" -f "$ctx/Dockerfile" "$ctx"
rm "$ctx/Dockerfile.dockerignore"
[ -z "$("$IB" images -q)" ] || [ "$("$IB" images -q | wc -l)" = 1 ] || fail "a failed build left an image"

# a link inside the Dockerfile's directory is followed
mkdir "$ctx/docker"
printf 'FROM busybox\nCOPY . /ctx/\n' > "$ctx/docker/Dockerfile.real"
rm "$ctx/Dockerfile"
ln -s docker/Dockerfile.real "$ctx/Dockerfile"

# a readable one still works: .env stays out (an ignore file reached by a link inside the context too)
echo .env > "$ctx/docker/ignore"
ln -s /docker/ignore "$ctx/.dockerignore"
"$IB" build -t ctxok "$ctx" > "$tmp/ok.out" 2>&1 || { cat "$tmp/ok.out"; fail "a build with a regular .dockerignore failed"; }
"$IB" run --rm ctxok sh -c 'test ! -e /ctx/.env && test -e /ctx/Dockerfile' || fail ".dockerignore was not applied"
echo "context-files: ok"
