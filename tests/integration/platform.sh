#!/usr/bin/env bash
# Multi-platform builds (issue 18), on a two-platform busybox index made
# offline (tests/resources/make-multiplatform-busybox.sh: Debian's
# busybox-static for amd64 and arm64):
#   1. --platform linux/arm64: FROM takes the index's arm64 image, RUN runs
#      under qemu-user-static (binfmt_misc, F flag: `imagebuild binfmt`),
#      `uname -m` says aarch64, the config says arm64;
#   2. without an emulator (IMAGEBUILD_BINFMT_MISC pointing at a
#      binfmt_misc with no handler) the build fails naming the missing one;
#   3. FROM --platform=$BUILDPLATFORM ... AS build + COPY --from=build:
#      --platform linux/amd64,linux/arm64 needs no emulator (same empty
#      binfmt_misc), and gives an OCI index of two manifests;
#   4. a local image of another platform is never used: --platform
#      linux/arm64 FROM an amd64-only image fails (no registry to pull from);
#   5. push sends the index and both manifests: skopeo inspect --raw and
#      --override-arch arm64, podman pull --arch arm64 and run;
#      pull --platform of it into a fresh store; save writes the index.
# Needs root (binfmt_misc, RUN). Emulated RUNs are slow: few of them.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${IMAGEBUILD:?}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ "$(id -u)" = 0 ] || skip_or_fail "binfmt_misc and RUN need root"
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
for tool in skopeo podman python3; do
	command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done
[ -x /usr/bin/qemu-aarch64-static ] || skip_or_fail "qemu-user-static is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-platform-XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
export IMAGEBUILD_ROOT=$tmp/store
export HOME=$tmp/home
. "$IB_SOURCE_ROOT/tests/common/registry.sh"

rc=0
"$IB_SOURCE_ROOT/tests/resources/make-multiplatform-busybox.sh" "$tmp/layout" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static (amd64 and the arm64 .deb of scripts/setup) is missing"
[ "$rc" = 0 ] || fail "make-multiplatform-busybox.sh exited $rc"
"$IB" load -i "$tmp/layout" >/dev/null
"$IB" binfmt linux/arm64 >/dev/null || fail "imagebuild binfmt linux/arm64"
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || fail "qemu-aarch64 registered without F"
# a binfmt_misc with no handler
mkdir -p "$tmp/nobinfmt" && echo enabled >"$tmp/nobinfmt/status"

# 1. RUN under emulation
mkdir -p "$tmp/run"
printf 'FROM busybox-multi\nARG TARGETARCH\nRUN echo "$(uname -m) $TARGETARCH" > /arch\n' >"$tmp/run/Dockerfile"
"$IB" build -q --platform linux/arm64 -t run:arm "$tmp/run" >/dev/null
got=$("$IB" run --rm run:arm cat /arch)
[ "$got" = "aarch64 arm64" ] || fail "arm64 RUN said '$got'"
[ "$("$IB" inspect --format '{{.Architecture}}/{{.Os}}' run:arm)" = "arm64/linux" ] || fail "config of run:arm"

# 2. no emulator: a clear error naming it
out=$(IMAGEBUILD_BINFMT_MISC=$tmp/nobinfmt "$IB" build --no-cache --platform linux/arm64 "$tmp/run" 2>&1) &&
	fail "a RUN for arm64 without an emulator succeeded"
grep -q "RUN for linux/arm64 needs an emulator: no binfmt_misc handler for aarch64" <<<"$out" ||
	fail "no emulator: $out"

# 3. cross-compiling stage: no emulation; one index of two manifests
mkdir -p "$tmp/cross"
cat >"$tmp/cross/Dockerfile" <<'DF'
FROM --platform=$BUILDPLATFORM busybox-multi AS build
ARG TARGETPLATFORM
ARG BUILDPLATFORM
RUN echo "on $(uname -m) for $TARGETPLATFORM from $BUILDPLATFORM" > /out
FROM busybox-multi
COPY --from=build /out /out
DF
IMAGEBUILD_BINFMT_MISC=$tmp/nobinfmt "$IB" build -q --platform linux/amd64,linux/arm64 -t cross:multi "$tmp/cross" \
	>"$tmp/cross.id" || fail "cross build (no emulator needed)"
# save writes the index and both platforms; skopeo reads the arm64 one from it
"$IB" save --format oci -o "$tmp/cross-oci" cross:multi
[ "$(json 'd["manifests"][0]["mediaType"]' <"$tmp/cross-oci/index.json")" = application/vnd.oci.image.index.v1+json ] ||
	fail "save: $(cat "$tmp/cross-oci/index.json")"
skopeo inspect --override-arch arm64 "oci:$tmp/cross-oci" >"$tmp/oci-arm.json"
[ "$(json 'd["Architecture"]' <"$tmp/oci-arm.json")" = arm64 ] || fail "saved arm64 image: $(cat "$tmp/oci-arm.json")"
# inspect --platform: each platform's image of the index, never another's
[ "$("$IB" inspect --platform linux/arm64 --format '{{.Architecture}}' cross:multi)" = arm64 ] || fail "inspect --platform arm64"
[ "$("$IB" inspect --platform linux/amd64 --format '{{.Architecture}}' cross:multi)" = amd64 ] || fail "inspect --platform amd64"
"$IB" inspect --platform linux/s390x cross:multi >/dev/null 2>&1 && fail "inspect --platform s390x found an image"
[ "$("$IB" run --rm cross:multi cat /out)" = "on x86_64 for linux/amd64 from linux/amd64" ] ||
	fail "amd64 image of cross:multi: $("$IB" run --rm cross:multi cat /out)"

# 4. never a local image of another platform
"$IB" tag run:arm armonly
printf 'FROM armonly\nRUN true\n' >"$tmp/run/Dockerfile.amd"
out=$("$IB" build -f "$tmp/run/Dockerfile.amd" --platform linux/amd64 "$tmp/run" 2>&1) &&
	fail "built linux/amd64 from an arm64-only image"
grep -q "is linux/arm64, not linux/amd64" <<<"$out" || fail "another platform's image: $out"

# 5. push the index; skopeo and podman read it
port=$(free_port)
start_registry reg "$port"
"$IB" push cross:multi "127.0.0.1:$port/cross:multi" >/dev/null
skopeo inspect --tls-verify=false --raw "docker://127.0.0.1:$port/cross:multi" >"$tmp/raw.json"
[ "$(json 'sorted(m["platform"]["architecture"] for m in d["manifests"])' <"$tmp/raw.json")" = "['amd64', 'arm64']" ] ||
	fail "pushed index: $(cat "$tmp/raw.json")"
[ "$(json 'd["Architecture"]' < <(skopeo inspect --tls-verify=false --override-arch arm64 "docker://127.0.0.1:$port/cross:multi"))" = arm64 ] ||
	fail "skopeo --override-arch arm64"
skopeo copy -q --src-tls-verify=false --override-arch arm64 "docker://127.0.0.1:$port/cross:multi" "dir:$tmp/arm-dir"
[ "$(json 'd["architecture"]' <"$tmp/arm-dir/$(json 'd["config"]["digest"].split(":")[1]' <"$tmp/arm-dir/manifest.json")")" = arm64 ] ||
	fail "skopeo copy of the arm64 image"
pod=(env podman --root "$tmp/podman/root" --runroot "$tmp/podman/run" --storage-driver vfs)
"${pod[@]}" pull -q --tls-verify=false --arch arm64 "127.0.0.1:$port/cross:multi" >/dev/null || fail "podman pull --arch arm64"
[ "$("${pod[@]}" image inspect --format '{{.Architecture}}' "127.0.0.1:$port/cross:multi")" = arm64 ] ||
	fail "podman's image is not arm64"
# pull --platform into a fresh store: the arm64 image of the index
IMAGEBUILD_ROOT=$tmp/store2 "$IB" pull --platform linux/arm64 "127.0.0.1:$port/cross:multi" >/dev/null
[ "$(IMAGEBUILD_ROOT=$tmp/store2 "$IB" run --rm "127.0.0.1:$port/cross:multi" cat /out)" = "on x86_64 for linux/arm64 from linux/amd64" ] ||
	fail "pull --platform linux/arm64"
echo "platform: ok"
