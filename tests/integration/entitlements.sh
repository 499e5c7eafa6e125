#!/bin/bash
# BuildKit's entitlements (util/entitlements/entitlements.go,
# solver/llbsolver/vertex.go ValidateEntitlements) through `imagebuild build
# --allow`: an unknown name is an error; a step that needs one not granted
# is refused before anything runs, cached or not, and in an ONBUILD
# trigger too; --network host grants network.host as buildx does; the
# same RUN with and without --security=insecure are different steps.
# (tests/build-compat case 60 and refusals/ check what runs and the errors.)
set -euo pipefail
IB=$IMAGEBUILD
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
. "$IB_SOURCE_ROOT/tests/common/progress.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"
tmp=$(mktemp -d /tmp/ibtest-entitlements-XXXXXX)
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
sh "$IB_MAKE_BUSYBOX" "$tmp/busybox.tar" || skip_or_fail "busybox-static is not installed"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null
ctx=$tmp/ctx
mkdir -p "$ctx"
df() { { echo 'FROM busybox'; printf '%s\n' "$@"; } > "$ctx/Dockerfile"; }
# refused: builds that must fail with `$1` in their output
refused() {
	local want=$1; shift
	if "$IB" build "$@" "$ctx" > "$tmp/out" 2>&1; then
		cat "$tmp/out"; fail "build $* succeeded (wanted: $want)"
	fi
	grep -qF -- "$want" "$tmp/out" || { cat "$tmp/out"; fail "build $*: no \`$want\`"; }
}

df 'RUN true'
# shellcheck disable=SC2016  # backticks are the error's quotes
refused 'unknown entitlement `nope`' --allow nope
# shellcheck disable=SC2016
refused 'entitlement `device` is not supported' --allow device

# refused before any step runs
df 'RUN echo STEP-ONE-RAN' 'RUN --security=insecure true'
refused 'Dockerfile:3: RUN --security=insecure: security.insecure is not allowed'
grep -q 'STEP-ONE-RAN' "$tmp/out" && { cat "$tmp/out"; fail "a step ran before the refusal"; }

# allowed, then cached: still refused without the entitlement
df 'RUN --security=insecure grep CapEff /proc/self/status > /caps'
"$IB" build -t ins --allow security.insecure "$ctx" > "$tmp/o1" 2>&1 || { cat "$tmp/o1"; fail "allowed build failed"; }
"$IB" build --allow security.insecure "$ctx" > "$tmp/o2" 2>&1
grep -q '^=> CACHED \[1/1\]' <(steps "$tmp/o2") || { cat "$tmp/o2"; fail "the allowed rebuild was not cached"; }
refused 'security.insecure is not allowed'
# the same RUN in the sandbox is another step, with Docker's capabilities
df 'RUN grep CapEff /proc/self/status > /caps'
"$IB" build -t sandbox --allow security.insecure "$ctx" > "$tmp/o3" 2>&1
grep -q '^=> CACHED' <(steps "$tmp/o3") && { cat "$tmp/o3"; fail "dropping --security=insecure hit the cache"; }
[ "$("$IB" run --rm sandbox cat /caps)" = "CapEff:	00000000a80425fb" ] || fail "sandbox caps: $("$IB" run --rm sandbox cat /caps)"
[ "$("$IB" run --rm ins cat /caps)" != "CapEff:	00000000a80425fb" ] || fail "insecure step had Docker's default caps"

# an ONBUILD trigger is checked when it runs
df 'ONBUILD RUN --security=insecure true'
"$IB" build -t onbuild-base "$ctx" > "$tmp/o4" 2>&1 || { cat "$tmp/o4"; fail "ONBUILD base failed"; }
printf 'FROM onbuild-base\nRUN true\n' > "$ctx/Dockerfile"
refused 'security.insecure is not allowed'
"$IB" build --allow security.insecure "$ctx" > "$tmp/o5" 2>&1 || { cat "$tmp/o5"; fail "allowed ONBUILD failed"; }

# network.host: --allow, a comma list, or --network host (as buildx)
df 'RUN --network=host true'
refused 'RUN --network=host: network.host is not allowed'
refused 'network.host is not allowed' --network default
"$IB" build --allow network.host "$ctx" > "$tmp/o6" 2>&1 || { cat "$tmp/o6"; fail "--allow network.host"; }
"$IB" build --no-cache --network host "$ctx" > "$tmp/o7" 2>&1 || { cat "$tmp/o7"; fail "--network host"; }
df 'RUN --network=host --security=insecure true'
"$IB" build --allow network.host,security.insecure "$ctx" > "$tmp/o8" 2>&1 || { cat "$tmp/o8"; fail "comma list"; }
echo "entitlements: ok"
