#!/bin/bash
# bench/platform-vs-buildah.sh [RUNS] [BUILD_DIR]
#
# A two-platform build (linux/amd64 + linux/arm64, the arm64 RUN under
# qemu-user-static) by `imagebuild build --platform linux/amd64,linux/arm64`
# against `buildah build --platform linux/amd64,linux/arm64 --manifest`, in
# one interleaved run, no cache, the base image (the tests' two-platform
# busybox, tests/resources/make-multiplatform-busybox.sh) already local to
# both. Prints each time and the ratio imagebuild/buildah per run and of the
# medians. Needs root, buildah, qemu-user-static (registers aarch64 with
# `imagebuild binfmt`), docker-registry and the arm64 busybox .deb of
# scripts/setup. imagebuild builds the platforms at once (--jobs, default the
# online CPUs; JOBS=1 in the environment: one after another). buildah uses its
# own root with BUILDAH_DRIVER (default overlay; vfs is much slower).
# BEFORE_BUILD=DIR: also an older imagebuild (DIR/examples/imagebuild/imagebuild,
# e.g. main's build) in the same interleaved run, on the same store, with the
# ratio of the two.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${1:-3}
build=${2:-$root/build}
IB=$(cd "$build" && pwd)/examples/imagebuild/imagebuild
IB_BEFORE=${BEFORE_BUILD:+$(cd "$BEFORE_BUILD" && pwd)/examples/imagebuild/imagebuild}
jobs=(${JOBS:+--jobs "$JOBS"})
tmp=$(mktemp -d /tmp/ib-bench-platform-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	buildah --root "$tmp/buildah" --runroot "$tmp/buildah-run" --storage-driver "${BUILDAH_DRIVER:-overlay}" rm -a >/dev/null 2>&1 || true
	umount -R "$tmp/buildah" 2>/dev/null || true
	rm -rf "$tmp" 2>/dev/null || true
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
"$root/tests/resources/make-multiplatform-busybox.sh" "$tmp/layout"
"$IB" load -i "$tmp/layout" >/dev/null
"$IB" binfmt linux/arm64 >/dev/null
. "$root/tests/common/registry.sh"
port=$(free_port)
start_registry reg "$port"
"$IB" push "busybox-multi" "127.0.0.1:$port/busybox-multi:latest" >/dev/null
bah=(buildah --root "$tmp/buildah" --runroot "$tmp/buildah-run" --storage-driver "${BUILDAH_DRIVER:-overlay}")
for a in amd64 arm64; do
	"${bah[@]}" pull -q --tls-verify=false --arch "$a" "127.0.0.1:$port/busybox-multi:latest" >/dev/null
done
"$IB" tag busybox-multi "127.0.0.1:$port/busybox-multi:latest"
mkdir -p "$tmp/ctx"
cat >"$tmp/ctx/Dockerfile" <<DF
FROM --platform=\$BUILDPLATFORM 127.0.0.1:$port/busybox-multi:latest AS build
ARG TARGETARCH
RUN echo "for \$TARGETARCH" > /out
FROM 127.0.0.1:$port/busybox-multi:latest
COPY --from=build /out /out
RUN uname -m > /arch && cat /out >> /arch
DF
now() { date +%s.%N; }
ours=() theirs=() befores=()
for r in $(seq "$runs"); do
	if [ -n "$IB_BEFORE" ]; then
		tb=$(now)
		"$IB_BEFORE" build -q --no-cache --platform linux/amd64,linux/arm64 -t bench:before "$tmp/ctx" >/dev/null 2>&1
		befores+=("$(echo "$(now) - $tb" | bc -l)")
	fi
	t0=$(now)
	"$IB" build -q --no-cache "${jobs[@]}" --platform linux/amd64,linux/arm64 -t bench:multi "$tmp/ctx" >/dev/null 2>&1
	t1=$(now)
	"${bah[@]}" manifest rm bench-multi >/dev/null 2>&1 || true
	"${bah[@]}" build -q --no-cache --pull=missing --tls-verify=false --isolation chroot \
		--platform linux/amd64,linux/arm64 --manifest bench-multi "$tmp/ctx" >/dev/null
	t2=$(now)
	o=$(echo "$t1 - $t0" | bc -l) b=$(echo "$t2 - $t1" | bc -l)
	ours+=("$o") theirs+=("$b")
	printf 'run %d: imagebuild %.2fs  buildah %.2fs  ratio %.2f' "$r" "$o" "$b" "$(echo "$o / $b" | bc -l)"
	[ -z "$IB_BEFORE" ] || printf '  before %.2fs  ratio %.2f  imagebuild/before %.2f' "${befores[-1]}" \
		"$(echo "${befores[-1]} / $b" | bc -l)" "$(echo "$o / ${befores[-1]}" | bc -l)"
	printf '\n'
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mo=$(median "${ours[@]}") mb=$(median "${theirs[@]}")
printf 'median: imagebuild %.2fs  buildah %.2fs  ratio imagebuild/buildah %.2f\n' "$mo" "$mb" "$(echo "$mo / $mb" | bc -l)"
if [ -n "$IB_BEFORE" ]; then
	mbf=$(median "${befores[@]}")
	printf 'median: before %.2fs  ratio before/buildah %.2f  imagebuild/before %.2f\n' "$mbf" "$(echo "$mbf / $mb" | bc -l)" \
		"$(echo "$mo / $mbf" | bc -l)"
fi
