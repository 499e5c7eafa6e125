#!/bin/bash
# Stages in parallel (issue 19): a Dockerfile with two independent builder
# stages and a final stage copying from both, built cold (--no-cache) with
# `--jobs 1` (one stage after the other: the peer) and `--jobs 2`,
# interleaved, RUNS times each. Two workloads:
#   wait: each builder waits WAIT_S seconds (a download, a remote test);
#   cpu:  each builder hashes CPU_MIB MiB of generated data (busybox sha256sum).
# Prints each run's wall time and the median ratio jobs2/jobs1 (and its range);
# the ideal is max(a, b)/(a + b) = 0.5 for two equal builders. The machine's
# other load shows in `cpu` (two busy builders need two idle cores).
#
#   bench/jobs.sh [BUILD_DIR]       RUNS=5 WAIT_S=2 CPU_MIB=400 WORKLOADS="wait cpu"
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
IB=$build/examples/imagebuild/imagebuild
RUNS=${RUNS:-5}
WAIT_S=${WAIT_S:-2}
CPU_MIB=${CPU_MIB:-400}
WORKLOADS=${WORKLOADS:-wait cpu}
[ -x "$IB" ] || { echo "no $IB: build first (ninja -C $build)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "builds need root" >&2; exit 2; }
tmp=$(mktemp -d /tmp/ib-bench-jobs-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export IMAGEBUILD_ROOT=$tmp/store
sh "$here/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar" >/dev/null
"$IB" import "$tmp/busybox.tar" busybox >/dev/null

workload() { # NAME: a context directory with its Dockerfile
	local d=$tmp/$1 work
	mkdir -p "$d"
	case $1 in
	wait) work="sleep $WAIT_S; echo done" ;;
	cpu) work="head -c $((CPU_MIB << 20)) /dev/zero | sha256sum" ;;
	esac
	cat >"$d/Dockerfile" <<EOF
FROM busybox AS builder-a
RUN $work > /a.out
FROM busybox AS builder-b
RUN $work > /b.out
FROM busybox
COPY --from=builder-a /a.out /
COPY --from=builder-b /b.out /
EOF
	echo "$d"
}

t() { # seconds of one cold build of context $2 with --jobs $1
	local s e
	s=$(date +%s.%N)
	"$IB" build -q --no-cache --jobs "$1" "$2" >/dev/null
	e=$(date +%s.%N)
	echo "$s $e" | awk '{ printf "%.3f", $2 - $1 }'
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); RUNS=$RUNS"
for w in $WORKLOADS; do
	ctx=$(workload "$w")
	t 2 "$ctx" >/dev/null # warm: layers unpacked, page cache
	ratios=() j1s=() j2s=()
	for i in $(seq "$RUNS"); do
		# interleaved, alternating which goes first
		if [ $((i % 2)) = 1 ]; then a=$(t 1 "$ctx"); b=$(t 2 "$ctx"); else b=$(t 2 "$ctx"); a=$(t 1 "$ctx"); fi
		j1s+=("$a")
		j2s+=("$b")
		ratios+=("$(echo "$b $a" | awk '{ printf "%.2f", $1 / $2 }')")
		echo "$w run $i: --jobs 1 ${a}s, --jobs 2 ${b}s, ratio ${ratios[-1]}"
	done
	med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s (%s-%s)", m, v[1], v[NR] }'; }
	echo "$w: --jobs 1 median $(med "${j1s[@]}") s; --jobs 2 median $(med "${j2s[@]}") s; jobs2/jobs1 $(med "${ratios[@]}")"
done
