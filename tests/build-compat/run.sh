#!/bin/bash
# run.sh IMAGEBUILD [CASE...]: build every case (or the named ones) with
# `IMAGEBUILD build` in a fresh store, save it as a docker-archive, dump it
# with dump-image.py and compare with expected/<case>.json, which Docker's
# BuildKit made (regen-expected.sh). Prints the differing fields of each
# failing case (and the notes of the others: created_by and comment of the
# history) and "N passed, N failed"; exits 1 on any failure, 77 (skip)
# when it cannot run (not root, no imagebuild, no busybox-static).
# IB_COMPAT_KEEP=1 keeps the temporary directory (store, contexts, dumps);
# IB_COMPAT_BUILD_OPTS adds options to every build (e.g. "--snapshotter copy").
set -uo pipefail
compat_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$compat_dir/../.." && pwd)
# shellcheck source=common.sh
. "$compat_dir/common.sh"
# shellcheck source=../common/skip.sh
. "$root/tests/common/skip.sh"
python=/usr/bin/python3

imagebuild=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$imagebuild" ] || [ ! -x "$imagebuild" ]; then
	skip_or_fail "no imagebuild binary (got \`$imagebuild\`)"
fi
[ "$(id -u)" = 0 ] || skip_or_fail "build-compat needs root"
[ -x "$python" ] || skip_or_fail "no $python"

tmp=$(mktemp -d /tmp/ib-compat.XXXXXX) || exit 1
# Unmount what a failed build may have left mounted under $tmp (deepest
# first) before removing it, so that rm never reaches into a mount.
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
if [ "${IB_COMPAT_KEEP:-}" = 1 ]; then
	echo "keeping $tmp"
else
	trap cleanup EXIT
fi
store=$tmp/store
ib() { "$imagebuild" --root "$store" "$@"; }

sh "$root/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
rc=$?
[ $rc = 77 ] && skip_or_fail "busybox-static is not installed"
[ $rc = 0 ] || { echo "make-busybox-tar.sh failed" >&2; exit 1; }
if ! ib import "$tmp/busybox.tar" ibcompat/busybox:base >"$tmp/import.log" 2>&1; then
	cat "$tmp/import.log" >&2
	echo "build-compat: imagebuild import of the base image failed" >&2
	exit 1
fi

if [ $# -eq 0 ]; then
	mapfile -t names < <(case_names)
	set -- "${names[@]}"
fi
passed=0 failed=0 noted=0 failed_names=
for c in "$@"; do
	if [ ! -f "$compat_dir/expected/$c.json" ]; then
		echo "FAIL $c: no expected/$c.json (run regen-expected.sh $c)"
		failed=$((failed + 1)) failed_names="$failed_names $c"
		continue
	fi
	why=
	mapfile -t args < <(case_args "$c")
	# shellcheck disable=SC2206
	args=(${IB_COMPAT_BUILD_OPTS:-} ${args[@]+"${args[@]}"})
	if ! case_context "$c" "$tmp/ctx-$c" >"$tmp/$c.log" 2>&1; then
		why="assembling the context failed"
	elif ! ib build -t "ibcompat/$c" ${args[@]+"${args[@]}"} "$tmp/ctx-$c" \
		>"$tmp/$c.log" 2>&1; then
		why="imagebuild build failed"
	elif ! ib save --format docker-archive -o "$tmp/$c.tar" "ibcompat/$c" \
		>"$tmp/$c.log" 2>&1; then
		why="imagebuild save failed"
	elif ! "$python" "$compat_dir/dump-image.py" --base-layers "$(case_base_layers "$c")" \
		"$tmp/$c.tar" >"$tmp/$c.json" 2>"$tmp/$c.log"; then
		why="dump-image.py failed"
	elif ! "$python" "$compat_dir/dump-image.py" --compare "$compat_dir/expected/$c.json" \
		"$tmp/$c.json" >"$tmp/$c.diff" 2>&1; then
		why="differs from BuildKit"
	fi
	if [ -z "$why" ]; then
		echo "ok   $c"
		passed=$((passed + 1))
		if [ -s "$tmp/$c.diff" ]; then
			sed 's/^/    /' "$tmp/$c.diff"
			noted=$((noted + 1))
		fi
	else
		echo "FAIL $c: $why"
		if [ -s "$tmp/$c.diff" ]; then
			sed 's/^/    /' "$tmp/$c.diff"
		else
			tail -n 15 "$tmp/$c.log" | sed 's/^/    | /'
		fi
		failed=$((failed + 1)) failed_names="$failed_names $c"
	fi
	rm -rf "$tmp/ctx-$c" "$tmp/$c.tar"
done
[ $noted = 0 ] || echo "($noted passing cases have notes: history created_by/comment differ)"
echo "$passed passed, $failed failed"
[ $failed = 0 ] || { echo "failed:$failed_names"; exit 1; }
exit 0
