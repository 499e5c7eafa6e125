#!/bin/bash
# refusals.sh IMAGEBUILD [CASE...]: what BuildKit refuses, or what we do not
# implement, must fail the build with an error naming the Dockerfile, the
# line and the reason, and tag nothing. Each folder of refusals/ is a context:
# its Dockerfile, optional files, and `expect`: the first line is the line
# number the error must name ("<...>/Dockerfile:<N>:" or "<...>/Dockerfile: line
# <N>:", as the plan says it), every further line a
# text the error must contain. `args` (optional) as in cases/: one build
# option a line. Exits 1 on any failure, 77 (skip) when it cannot run.
set -uo pipefail
compat_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$compat_dir/../.." && pwd)
# shellcheck source=../common/skip.sh
. "$root/tests/common/skip.sh"

imagebuild=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$imagebuild" ] || [ ! -x "$imagebuild" ]; then
	skip_or_fail "no imagebuild binary (got \`$imagebuild\`)"
fi
[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"

tmp=$(mktemp -d /tmp/ib-refusals.XXXXXX) || exit 1
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
ib() { "$imagebuild" --root "$tmp/store" "$@"; }

sh "$root/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
rc=$?
[ $rc = 77 ] && skip_or_fail "busybox-static is not installed"
[ $rc = 0 ] || { echo "make-busybox-tar.sh failed" >&2; exit 1; }
ib import "$tmp/busybox.tar" ibcompat/busybox:base >"$tmp/import.log" 2>&1 ||
	{ cat "$tmp/import.log" >&2; exit 1; }

if [ $# -eq 0 ]; then
	for d in "$compat_dir"/refusals/*/; do set -- "$@" "$(basename "$d")"; done
fi
passed=0 failed=0
for c in "$@"; do
	src=$compat_dir/refusals/$c
	ctx=$tmp/ctx-$c
	mkdir -p "$ctx"
	(cd "$src" && tar -cf - --exclude=./expect --exclude=./args --exclude=./setup.sh .) | (cd "$ctx" && tar -xf -)
	[ ! -f "$src/setup.sh" ] || (cd "$ctx" && sh -e "$src/setup.sh")
	args=()
	if [ -f "$src/args" ]; then
		while IFS= read -r l; do
			[ -n "$l" ] || continue
			case $l in *" "*) args+=("${l%% *}" "${l#* }") ;; *) args+=("$l") ;; esac
		done <"$src/args"
	fi
	line=$(head -n 1 "$src/expect")
	why=
	if ib build -t "refused/$c" ${args[@]+"${args[@]}"} "$ctx" >"$tmp/$c.out" 2>&1; then
		why="the build succeeded"
	elif ! grep -Eq "Dockerfile(:|: line )$line: " "$tmp/$c.out"; then
		why="the error does not name Dockerfile:$line"
	else
		while IFS= read -r want; do
			[ -n "$want" ] || continue
			grep -qF -- "$want" "$tmp/$c.out" || { why="the error lacks \`$want\`"; break; }
		done < <(tail -n +2 "$src/expect")
	fi
	if [ -z "$why" ] && [ -n "$(ib images -q "refused/$c" 2>/dev/null)" ]; then
		why="a refused build was tagged"
	fi
	if [ -z "$why" ]; then
		echo "ok   $c: $(grep -Em1 "Dockerfile(:|: line )$line: " "$tmp/$c.out")"
		passed=$((passed + 1))
	else
		echo "FAIL $c: $why"
		tail -n 5 "$tmp/$c.out" | sed 's/^/    | /'
		failed=$((failed + 1))
	fi
	rm -rf "$ctx"
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]
