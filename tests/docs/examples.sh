#!/bin/bash
# Runs the example programs of examples/ as an embedder would, and checks
# what they print and do. Usage: examples.sh WHAT, WHAT being
#   plan-print  parse and plan a multi-stage Dockerfile (no root, no store)
#   build       build a small Dockerfile on a busybox base made offline (root)
#   push        push an image to a local docker-registry
#   readme      the README's program is examples/readme.c word for word, and it
#               compiles and links through pkg-config (then builds, as root)
#   embedding   every C block of docs/embedding.md compiles against the headers
# Environment (tests/docs/meson.build): IB_EXAMPLES (the build dir of
# examples/), IMAGEBUILD (the CLI, for setup only), IB_SOURCE_ROOT,
# IB_BUILD_ROOT, IB_MAKE_BUSYBOX.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"
what=$1 ex=${IB_EXAMPLES:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-examples-XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export IMAGEBUILD_ROOT=$tmp/store

busybox() { # import the offline busybox image as "busybox"
	local rc=0
	"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" || rc=$?
	[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
	[ "$rc" = 0 ] || fail "make-busybox-tar.sh exited $rc"
	"${IMAGEBUILD:?}" import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null
}

case $what in
plan-print)
	df=$IB_SOURCE_ROOT/tests/docs/multi-stage.Dockerfile
	"$ex/example-plan-print" "$df" > "$tmp/out"
	diff -u "$IB_SOURCE_ROOT/tests/docs/multi-stage.expected" "$tmp/out" || fail "plan-print printed another plan"
	# a target prunes what it does not need; build args reach FROM
	"$ex/example-plan-print" "$df" deps BASE=alpine:3 > "$tmp/out"
	[ "$(cat "$tmp/out")" = 'stage 0 "deps" from image alpine:3, level 0, needs []
  1/1 line 3: RUN echo deps > /deps
target: stage 0' ] || { cat "$tmp/out"; fail "--target deps with BASE=alpine:3"; }
	# errors come back with the library's message
	if "$ex/example-plan-print" "$df" nope > "$tmp/out" 2> "$tmp/err"; then fail "an unknown target was accepted"; fi
	grep -q 'plan-print: .*nope' "$tmp/err" || { cat "$tmp/err"; fail "no error message for an unknown target"; }
	;;
build)
	[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"
	busybox
	mkdir -p "$tmp/ctx"
	echo world > "$tmp/ctx/name"
	cat > "$tmp/ctx/Dockerfile" <<-'DF'
	FROM busybox
	COPY name /name
	RUN for i in 1 2 3; do echo "line $i"; done && echo "hello $(cat /name)" > /greeting
	CMD ["cat", "/greeting"]
	DF
	"$ex/example-build" "$tmp/ctx" ex:1 > "$tmp/out" || { cat "$tmp/out"; fail "build failed"; }
	cat "$tmp/out"
	grep -q '^=> \[1/3\] COPY name /name$' "$tmp/out" || fail "no finished COPY step"
	grep -q '^   line 3$' "$tmp/out" || fail "RUN's output was not shown"
	grep -q '^3 steps (0 cached): sha256:[0-9a-f]\{64\} tagged ex:1$' "$tmp/out" || fail "no summary"
	[ "$("$IMAGEBUILD" run --rm ex:1)" = "hello world" ] || fail "the image does not print hello world"
	# again on a terminal: every step cached, the status line is redrawn in place
	script -qec "$ex/example-build $tmp/ctx ex:2" /dev/null > "$tmp/tty" || { cat "$tmp/tty"; fail "build on a tty failed"; }
	grep -q 'CACHED \[3/3\] CMD' "$tmp/tty" || { cat -v "$tmp/tty"; fail "no cached steps on the tty"; }
	grep -q $'\r\033\\[K' "$tmp/tty" || { cat -v "$tmp/tty"; fail "the status line was not redrawn"; }
	grep -q '3 steps (3 cached)' "$tmp/tty" || { cat -v "$tmp/tty"; fail "no summary on the tty"; }
	# a failing step: the library's message, exit 1
	printf 'FROM busybox\nRUN exit 3\n' > "$tmp/ctx/Dockerfile"
	if "$ex/example-build" "$tmp/ctx" ex:3 > "$tmp/out" 2> "$tmp/err"; then fail "a failing RUN built"; fi
	grep -q '^build: .*exit code 3' "$tmp/err" || { cat "$tmp/err"; fail "no error message"; }
	# Ctrl-C during a silent RUN: the build stops within seconds, with the library's message
	printf 'FROM busybox\nRUN sleep 60\n' > "$tmp/ctx/Dockerfile"
	"$ex/example-build" "$tmp/ctx" ex:4 > "$tmp/out" 2> "$tmp/err" &
	pid=$!
	sleep 1
	start=$SECONDS
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" = 1 ] || { cat "$tmp/out" "$tmp/err"; fail "an interrupted build exited $rc"; }
	[ $((SECONDS - start)) -le 5 ] || fail "the build took $((SECONDS - start)) s to stop"
	grep -q '^build: ' "$tmp/err" || { cat "$tmp/err"; fail "no message for the interrupted build"; }
	cat "$tmp/err"
	"$IMAGEBUILD" fsck > "$tmp/fsck" 2>&1 || { cat "$tmp/fsck"; fail "the interrupted build left something behind"; }
	;;
push)
	REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
	[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
	command -v curl >/dev/null || skip_or_fail "curl is not installed"
	. "$IB_SOURCE_ROOT/tests/common/registry.sh"
	busybox
	port=$(free_port)
	start_registry plain "$port"
	reg=127.0.0.1:$port
	"$ex/example-push" busybox "$reg/ex/busybox:1" > "$tmp/out" || { cat "$tmp/out"; fail "push failed"; }
	cat "$tmp/out"
	grep -q '^[0-9a-f]\{12\}: ' "$tmp/out" || fail "no per-blob progress"
	digest=$(sed -n 's|^pushed .*: \(sha256:[0-9a-f]\{64\}\)$|\1|p' "$tmp/out")
	[ -n "$digest" ] || fail "no manifest digest printed"
	served=$(curl -sf -o /dev/null -D - -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$reg/v2/ex/busybox/manifests/1" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
	[ "$served" = "$digest" ] || fail "the registry serves $served, push printed $digest"
	if "$ex/example-push" no-such-image "$reg/ex/x:1" 2> "$tmp/err"; then fail "pushing a missing image worked"; fi
	grep -q '^push: No such image: no-such-image' "$tmp/err" || { cat "$tmp/err"; fail "no error message"; }
	;;
readme)
	# the ```c block after "<!-- examples/readme.c -->" in README.md
	awk '/<!-- examples\/readme.c -->/ { on = 1; next } on && /^```c$/ { inblock = 1; next }
	     inblock && /^```$/ { exit } inblock { print }' "$IB_SOURCE_ROOT/README.md" > "$tmp/readme.c"
	[ -s "$tmp/readme.c" ] || fail "README.md has no program after <!-- examples/readme.c -->"
	diff -u "$IB_SOURCE_ROOT/examples/readme.c" "$tmp/readme.c" || fail "README.md's program is not examples/readme.c"
	grep -q 'pkg-config --cflags --libs libimagebuild' "$IB_SOURCE_ROOT/README.md" || fail "README.md does not name the pkg-config module"
	dest=$tmp/dest
	meson install -C "$IB_BUILD_ROOT" --no-rebuild --quiet --destdir "$dest" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "meson install"; }
	pc=$(find "$dest" -name libimagebuild.pc | head -1)
	export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
	# as the README says, with only the installed headers
	${CC:-cc} -std=c99 -Wall -Wextra -Werror -o "$tmp/readme" "$tmp/readme.c" $(pkg-config --cflags --libs libimagebuild)
	so=$(find "$dest" -name libimagebuild.so.0 | head -1)
	export LD_LIBRARY_PATH=$(dirname "$so")
	mkdir -p "$tmp/ctx"
	printf 'FROM scratch\nCOPY hello /hello\n' > "$tmp/ctx/Dockerfile"
	echo hi > "$tmp/ctx/hello"
	if [ "$(id -u)" = 0 ]; then
		out=$("$tmp/readme" "$tmp/ctx" hello:1) || fail "the README's program failed: $out"
		[[ $out =~ ^hello:1\ sha256:[0-9a-f]{64}$ ]] || fail "the README's program printed: $out"
	fi
	if "$tmp/readme" "$tmp/no-such-dir" x 2> "$tmp/err"; then fail "a missing context built"; fi
	grep -q '^error: ' "$tmp/err" || { cat "$tmp/err"; fail "no error message"; }
	;;
embedding)
	# every ```c block of docs/embedding.md, in order, in one translation unit
	{
		printf '#include <imagebuild.h>\n#include <imagebuild/sys/isolation.h>\n#include <signal.h>\n#include <stdio.h>\n#include <stdlib.h>\n'
		printf 'static int on_progress_bytes(const ib_progress *p, void *payload) { (void)p; (void)payload; return 0; }\n'
		awk '/^```c$/ { on = 1; printf "#line %d \"docs/embedding.md\"\n", NR + 1; next }
		     on && /^```$/ { on = 0; next } on { print }' "$IB_SOURCE_ROOT/docs/embedding.md"
		# what the guide leaves to the reader
		printf 'static int my_ctor(ib_isolation **out, const ib_execute_options *opts, void *param)\n'
		printf '{ (void)out; (void)opts; (void)param; return IB_EUNSUPPORTED; }\n'
	} > "$tmp/embedding.c"
	[ "$(grep -c '^#line' "$tmp/embedding.c")" -ge 8 ] || fail "docs/embedding.md has fewer C blocks than expected"
	${CC:-cc} -std=c99 -Wall -Wextra -Werror -Wno-unused-function -I "$IB_SOURCE_ROOT/include" \
		-c "$tmp/embedding.c" -o "$tmp/embedding.o" || fail "a C block of docs/embedding.md does not compile"
	;;
*) fail "unknown example $what" ;;
esac
echo "ok: $what"
