#!/usr/bin/env bash
# --platform A,B builds its platforms at once (issue 18, with --jobs), on the
# two-platform busybox index of tests/resources/make-multiplatform-busybox.sh
# and with no emulator at all (IMAGEBUILD_BINFMT_MISC pointing at an empty
# binfmt_misc): every RUN is in a FROM --platform=$BUILDPLATFORM stage.
#   1. a rendezvous: each platform's RUN writes its file in a shared cache
#      mount and waits (under a timeout) for the other's, so the build passes
#      only when the platforms run at once; labels name the platform as
#      BuildKit's ("[linux/amd64->arm64 meet 2/2]");
#   2. --jobs 1: one platform after the other, the first never meets the
#      second, and the error names its platform;
#   3. the same index (so the same image per platform) with --jobs 2 and
#      --jobs 1, cold builds with SOURCE_DATE_EPOCH;
#   4. one platform failing stops the other (its RUN killed): the error names
#      the failing platform, nothing is left (fsck, processes, mounts,
#      untagged images);
#   5. images --tree lists the index's platforms;
#   6. base images pulled by both platforms at once into a fresh store (the
#      real docker-registry): each gets its own, the index names both;
#   7. a step both platforms share (a $BUILDPLATFORM stage no TARGET* arg
#      makes differ) runs once, as in BuildKit's one graph: the other
#      platform waits for it and takes it from the cache.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${IMAGEBUILD:?}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ "$(id -u)" = 0 ] || skip_or_fail "RUN needs root"
command -v python3 >/dev/null || skip_or_fail "python3 is not installed"
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-platform-jobs-XXXXXX")
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export IMAGEBUILD_ROOT=$tmp/store
export HOME=$tmp/home
# no emulator: a RUN for arm64 would fail
mkdir -p "$tmp/nobinfmt" && echo enabled >"$tmp/nobinfmt/status"
export IMAGEBUILD_BINFMT_MISC=$tmp/nobinfmt

rc=0
"$IB_SOURCE_ROOT/tests/resources/make-multiplatform-busybox.sh" "$tmp/layout" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static (amd64 and the arm64 .deb of scripts/setup) is missing"
[ "$rc" = 0 ] || fail "make-multiplatform-busybox.sh exited $rc"
"$IB" load -i "$tmp/layout" >/dev/null

# ---- 1. the rendezvous ----
mkdir -p "$tmp/rdv"
cat >"$tmp/rdv/Dockerfile" <<'EOF'
FROM --platform=$BUILDPLATFORM busybox-multi AS meet
ARG TARGETARCH
RUN --mount=type=cache,id=meet,target=/meet,sharing=shared \
    other=amd64; [ "$TARGETARCH" = amd64 ] && other=arm64; echo "$TARGETARCH" > "/meet/$TARGETARCH"; i=0; \
    while [ ! -f "/meet/$other" ]; do i=$((i+1)); \
    [ $i -gt 100 ] && { echo "$TARGETARCH: $other never came"; exit 1; }; sleep 0.1; done; echo "$TARGETARCH met $other" > /met
FROM busybox-multi
COPY --from=meet /met /met
EOF
"$IB" build --progress=plain --jobs 2 --platform linux/amd64,linux/arm64 -t pj:rdv --iidfile "$tmp/rdv.iid" "$tmp/rdv" \
	2>"$tmp/rdv.err" >/dev/null || fail "--jobs 2: the platforms did not meet: $(cat "$tmp/rdv.err")"
[ "$("$IB" run --rm pj:rdv cat /met)" = "amd64 met arm64" ] || fail "the amd64 image of pj:rdv"
[ "$("$IB" inspect --platform linux/arm64 --format '{{.Architecture}}' pj:rdv)" = arm64 ] || fail "no arm64 image in pj:rdv"
# inspect of the index: the host's image (this test runs on amd64), as docker's
[ "$("$IB" inspect --format '{{.Architecture}}' pj:rdv)" = amd64 ] || fail "inspect pj:rdv is not the host's image"
# BuildKit's labels: the stage's platform, and the target's arch when it differs
grep -q '^#[0-9]* \[linux/amd64 meet 2/2\] RUN --mount' "$tmp/rdv.err" || fail "amd64 label: $(cat "$tmp/rdv.err")"
grep -q '^#[0-9]* \[linux/amd64->arm64 meet 2/2\] RUN --mount' "$tmp/rdv.err" ||
	fail "arm64 label: $(cat "$tmp/rdv.err")"
grep -q '^#[0-9]* \[linux/arm64 stage-1 1/1\] COPY --from=meet' "$tmp/rdv.err" ||
	fail "arm64 COPY label: $(cat "$tmp/rdv.err")"

# ---- 5. images --tree: the index's platforms under it (docker's layout), "U" for the one a container uses ----
"$IB" run --name pj-user pj:rdv true
"$IB" images --tree >"$tmp/tree.out" || fail "images --tree"
"$IB" save --format oci -o "$tmp/rdv-oci" pj:rdv
idx=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' \
	"$tmp/rdv-oci/index.json")
read -r amd arm < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(*[m["digest"].split(":")[1][:12] for m in d["manifests"]])' "$tmp/rdv-oci/blobs/sha256/$idx")
[ "$idx" = "$(sed 's/^sha256://' "$tmp/rdv.iid")" ] || fail "saved index $idx, built $(cat "$tmp/rdv.iid")"
head -n 1 "$tmp/tree.out" | grep -Eq '^IMAGE +ID +DISK USAGE +CONTENT SIZE +EXTRA$' || fail "tree header: $(cat "$tmp/tree.out")"
grep -A3 '^pj:rdv ' "$tmp/tree.out" >"$tmp/tree.rdv" || fail "no pj:rdv in the tree: $(cat "$tmp/tree.out")"
grep -Eq "^pj:rdv +${idx:0:12} +[0-9.]+[kMG]?B +[0-9.]+[kMG]?B +U *$" "$tmp/tree.rdv" || fail "pj:rdv row: $(cat "$tmp/tree.rdv")"
grep -Eq "^├─ linux/amd64 +$amd +[0-9.]+[kMG]?B +[0-9.]+[kMG]?B +U *$" "$tmp/tree.rdv" || fail "amd64 row: $(cat "$tmp/tree.rdv")"
grep -Eq "^└─ linux/arm64 +$arm +[0-9.]+[kMG]?B +[0-9.]+[kMG]?B *$" "$tmp/tree.rdv" || fail "arm64 row: $(cat "$tmp/tree.rdv")"
[ "$(sed -n 4p "$tmp/tree.rdv")" = "" ] || fail "no blank line after pj:rdv's platforms: $(cat "$tmp/tree.rdv")"
"$IB" rm pj-user >/dev/null
[ "$("$IB" images --format '{{.Platforms}}' pj:rdv)" = linux/amd64,linux/arm64 ] ||
	fail "{{.Platforms}}: $("$IB" images --format '{{.Platforms}}' pj:rdv)"
"$IB" images --tree -q >/dev/null 2>"$tmp/tree.err" && fail "images --tree -q was accepted"
grep -q -- "--quiet is not (yet) supported with --tree" "$tmp/tree.err" || fail "images --tree -q: $(cat "$tmp/tree.err")"

# ---- 2. one platform after the other: the first never meets the second ----
rm -rf "$IMAGEBUILD_ROOT/cache-mounts"
if "$IB" build -q --no-cache --jobs 1 --platform linux/amd64,linux/arm64 "$tmp/rdv" >/dev/null 2>"$tmp/serial.err"; then
	fail "--jobs 1 built the platforms at once"
fi
grep -q "amd64: arm64 never came" "$tmp/serial.err" || fail "--jobs 1: $(cat "$tmp/serial.err")"
grep -q "\[linux/amd64\]" "$tmp/serial.err" || fail "--jobs 1: the error does not name the platform: $(cat "$tmp/serial.err")"

# ---- 3. the same index whatever --jobs is (cold builds) ----
mkdir -p "$tmp/same"
cat >"$tmp/same/Dockerfile" <<'EOF'
FROM --platform=$BUILDPLATFORM busybox-multi AS build
ARG TARGETPLATFORM
RUN echo "for $TARGETPLATFORM" > /out
FROM busybox-multi
COPY --from=build /out /out
LABEL x=y
EOF
epoch=(--build-arg SOURCE_DATE_EPOCH=1700000000)
id2=$("$IB" build -q --no-cache "${epoch[@]}" --jobs 2 --platform linux/amd64,linux/arm64 "$tmp/same")
id1=$("$IB" build -q --no-cache "${epoch[@]}" --jobs 1 --platform linux/amd64,linux/arm64 "$tmp/same")
[ -n "$id1" ] && [ "$id1" = "$id2" ] || fail "--jobs 2 built $id2, --jobs 1 $id1"

# ---- 4. a failing platform stops the other; nothing stays behind ----
mkdir -p "$tmp/fails"
cat >"$tmp/fails/Dockerfile" <<'EOF'
FROM --platform=$BUILDPLATFORM busybox-multi AS work
ARG TARGETARCH
RUN if [ "$TARGETARCH" = arm64 ]; then sleep 0.5; echo broken-platform; exit 7; fi; echo waiting; sleep 67
FROM busybox-multi
COPY --from=work / /w
EOF
before=$("$IB" images -q --no-trunc | sort | tr '\n' ' ')
if "$IB" build --progress=plain --jobs 2 --platform linux/amd64,linux/arm64 -t pj:fails "$tmp/fails" \
	>/dev/null 2>"$tmp/fails.err"; then
	fail "a failing platform did not fail the build"
fi
grep -q '\[linux/arm64\].*exit code 7' "$tmp/fails.err" || fail "the error is not the arm64 one: $(cat "$tmp/fails.err")"
grep -q '^#[0-9]* CANCELED$' "$tmp/fails.err" || fail "the amd64 RUN is not CANCELED: $(cat "$tmp/fails.err")"
! pgrep -f "sleep 67" >/dev/null || fail "the amd64 RUN still runs"
"$IB" fsck >/dev/null 2>"$tmp/fsck.err" || fail "left behind: $(cat "$tmp/fsck.err")"
if awk -v t="$tmp/" 'index($2, t) == 1' /proc/self/mounts | grep -q .; then
	fail "mounts left: $(awk -v t="$tmp/" 'index($2, t) == 1' /proc/self/mounts)"
fi
[ "$("$IB" images -q --no-trunc | sort | tr '\n' ' ')" = "$before" ] || fail "the failed build left images"
"$IB" inspect pj:fails >/dev/null 2>&1 && fail "the failed build was tagged"
# SIGINT while both platforms run: exit 130, both RUNs gone, nothing left
printf 'FROM --platform=$BUILDPLATFORM busybox-multi AS w\nARG TARGETARCH\nRUN echo "started $TARGETARCH"; sleep 68\nFROM busybox-multi\nCOPY --from=w / /w\n' \
	>"$tmp/fails/Dockerfile.int"
"$IB" build --progress=plain --jobs 2 --platform linux/amd64,linux/arm64 -f "$tmp/fails/Dockerfile.int" "$tmp/fails" \
	>/dev/null 2>"$tmp/int.err" &
bp=$!
for _ in $(seq 200); do
	[ "$(grep -c 'started a[mr][dm]64$' "$tmp/int.err")" = 2 ] && break
	sleep 0.1
done
[ "$(grep -c 'started a[mr][dm]64$' "$tmp/int.err")" = 2 ] || fail "the two RUNs did not start: $(cat "$tmp/int.err")"
kill -INT "$bp"
rc=0
wait "$bp" || rc=$?
[ "$rc" = 130 ] || fail "SIGINT: exit $rc: $(cat "$tmp/int.err")"
! pgrep -f "sleep 68" >/dev/null || fail "a RUN still runs after SIGINT"
"$IB" fsck >/dev/null 2>"$tmp/fsck.err" || fail "left behind after SIGINT: $(cat "$tmp/fsck.err")"

# ---- 7. a step both platforms share runs once ----
mkdir -p "$tmp/shared"
cat >"$tmp/shared/Dockerfile" <<'EOF'
FROM --platform=$BUILDPLATFORM busybox-multi AS tool
RUN --mount=type=cache,id=count,target=/c,sharing=shared echo ran >> /c/runs; sleep 1; echo tool > /tool
FROM busybox-multi
COPY --from=tool /tool /tool
EOF
"$IB" build --progress=plain --jobs 2 --platform linux/amd64,linux/arm64 "$tmp/shared" >/dev/null 2>"$tmp/shared.err" ||
	fail "shared step: $(cat "$tmp/shared.err")"
printf 'FROM busybox-multi\nRUN --mount=type=cache,id=count,target=/c wc -l < /c/runs > /n\n' >"$tmp/shared/Dockerfile.count"
"$IB" build -q --no-cache -t pj:count -f "$tmp/shared/Dockerfile.count" "$tmp/shared" >/dev/null
[ "$("$IB" run --rm pj:count cat /n)" = 1 ] || fail "the shared step ran $("$IB" run --rm pj:count cat /n) times: $(cat "$tmp/shared.err")"
[ "$(grep -c '^#[0-9]* CACHED$' "$tmp/shared.err")" = 1 ] || fail "the other platform did not take it from the cache: $(cat "$tmp/shared.err")"

# ---- 6. both platforms pull their base at once, into a fresh store ----
. "$IB_SOURCE_ROOT/tests/common/registry.sh"
port=$(free_port)
start_registry reg "$port"
"$IB" push busybox-multi "127.0.0.1:$port/busybox-multi:1" >/dev/null
mkdir -p "$tmp/pulls"
echo pulled >"$tmp/pulls/f"
printf 'FROM 127.0.0.1:%s/busybox-multi:1\nCOPY f /f\n' "$port" >"$tmp/pulls/Dockerfile"
IMAGEBUILD_ROOT=$tmp/store3 "$IB" build -q --jobs 2 --platform linux/amd64,linux/arm64 -t pj:pulls "$tmp/pulls" \
	>/dev/null 2>"$tmp/pulls.err" || fail "build pulling both platforms at once: $(cat "$tmp/pulls.err")"
for a in amd64 arm64; do
	[ "$(IMAGEBUILD_ROOT=$tmp/store3 "$IB" inspect --platform "linux/$a" --format '{{.Architecture}}' pj:pulls)" = "$a" ] ||
		fail "pj:pulls has no $a image"
	[ "$(IMAGEBUILD_ROOT=$tmp/store3 "$IB" inspect --platform "linux/$a" --format '{{.Architecture}}' \
		"127.0.0.1:$port/busybox-multi:1")" = "$a" ] || fail "the pulled base has no $a image"
done
IMAGEBUILD_ROOT=$tmp/store3 "$IB" fsck >/dev/null 2>"$tmp/fsck3.err" || fail "store3: $(cat "$tmp/fsck3.err")"
echo "platform-jobs: ok"
