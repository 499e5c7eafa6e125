#!/bin/bash
# Build the libFuzzer targets (clang, ASan+UBSan, in build-fuzz/) and run
# each for IB_FUZZ_SECONDS (default 30) from its committed seeds; fail on
# any finding. This run's findings are kept in build-fuzz/fuzz-findings/<target>/.
#   tests/fuzz/run-all.sh [--build-only] [TARGET...]     (default: every target)
# IB_FUZZ_JOBS (default 1) targets run at once, each its full time: libFuzzer
# is single-threaded, so on an idle 2-core machine 2 jobs do the same work
# (executions per target) in half the wall time. --build-only sets up and
# builds the targets, runs nothing (CI builds while the tests run).
# A finding: fix it, then copy the input to tests/fuzz/regress/<target>/
# (the normal test suite replays it from then on).
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
secs=${IB_FUZZ_SECONDS:-30}
build=${IB_FUZZ_BUILD:-build-fuzz}
# target:max_len (bytes): each parser's inputs are small documents or layers
all=(dockerfile:8192 expand:256 dockerignore:1024 reference:300 image-config:4096 manifest:8192
	image-archive:16384 www-authenticate:512 docker-config:2048 layer-apply:16384)
jobs=${IB_FUZZ_JOBS:-1}
build_only=0
[ "${1:-}" = --build-only ] && { build_only=1; shift; }
want=("$@")

if [ ! -d "$build" ]; then
	# CXX: lib/push's registries.conf shim is C++, sanitized by the same toolchain
	CC=clang CXX=clang++ meson setup "$build" -Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false \
		-Dtests=enabled -Dpython=disabled -Dexamples=disabled >/dev/null
fi
targets=()
for t in "${all[@]}"; do
	name=${t%%:*}
	if [ ${#want[@]} = 0 ] || [[ " ${want[*]} " == *" $name "* ]]; then
		targets+=("$t")
	fi
done
[ ${#targets[@]} -gt 0 ] || { echo "run-all.sh: no such target: ${want[*]}" >&2; exit 2; }
ninja -C "$build" $(for t in "${targets[@]}"; do echo "tests/fuzz/fuzz-${t%%:*}"; done)

[ "$build_only" = 0 ] || exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# fuzz_one TARGET:MAX_LEN: runs it, writes what it reports to its work
# directory's `report`, and fails on a finding
fuzz_one() {
	local name=${1%%:*} max=${1##*:} rc=0
	local work=$src/$build/fuzz-work/$name out=$src/$build/fuzz-findings/$name
	rm -rf "$work" "$out"
	mkdir -p "$work/corpus" "$out"
	# the seeds and regression inputs; new inputs go to the scratch copy only
	cp "$src/tests/fuzz/corpus/$name"/* "$work/corpus/"
	if [ -d "$src/tests/fuzz/regress/$name" ]; then
		cp "$src/tests/fuzz/regress/$name"/* "$work/corpus/"
	fi
	{
		echo "=== fuzz $name (${secs}s, max_len $max)"
		# relative paths: the layer-apply target works in a private mount namespace
		(cd "$work" && "$src/$build/tests/fuzz/fuzz-$name" -max_total_time="$secs" -max_len="$max" \
			-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/" corpus \
			>log 2>&1) || rc=$?
		grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added):|#[0-9]+.*DONE' \
			"$work/log" | tail -4 || true
		if [ $rc != 0 ] || ls "$out" | grep -q .; then
			echo "FINDING in $name (exit $rc):"
			grep -E 'ERROR|SUMMARY|fuzz check failed|layer-apply:|runtime error|Test unit written' "$work/log" | head -20
			ls -l "$out"
			rc=1
		fi
	} >"$work.report" 2>&1
	return $rc
}
# the targets in IB_FUZZ_JOBS queues, each queue one after the other
pids=()
for ((j = 0; j < jobs; j++)); do
	(
		rc=0
		for ((k = j; k < ${#targets[@]}; k += jobs)); do
			fuzz_one "${targets[k]}" || rc=1
		done
		exit $rc
	) &
	pids+=($!)
done
qfail=0
for p in "${pids[@]}"; do wait "$p" || qfail=1; done
failed=()
for t in "${targets[@]}"; do
	name=${t%%:*}
	cat "$src/$build/fuzz-work/$name.report"
	grep -q "^FINDING in $name" "$src/$build/fuzz-work/$name.report" && failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ] || [ $qfail != 0 ]; then
	echo "fuzz: failed; findings in ${failed[*]:-none} (inputs in $build/fuzz-findings/, logs in $build/fuzz-work/)"
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs}s each, $jobs at a time, no finding"
