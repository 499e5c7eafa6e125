# What the build-cache tests (tests/integration/cache*.sh) share; sourced
# after tests/common/skip.sh with CACHE_TEST set to the test's short name.
# Gives: $IB, $tmp (removed at exit, with the registries started), fail,
# the docker-registry helpers (tests/common/registry.sh), and
#   fresh NAME          a store holding only the busybox base image (the
#                       same image id in every store)
#   build NAME ARGS...  a build in store NAME, plain progress in $tmp/NAME.out
#   cached NAME         how many steps of that build were CACHED
#   steps NAME          how many steps it reported
#   image_id NAME REF   the id of REF in store NAME
IB=${IMAGEBUILD:?}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
for tool in python3 curl; do
	command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done
[ "$(id -u)" = 0 ] || skip_or_fail "RUN needs root"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-${CACHE_TEST:?}-XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export DOCKER_CONFIG=$tmp/docker HOME=$tmp/home
. "$IB_SOURCE_ROOT/tests/common/registry.sh"

rc=0
"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
[ "$rc" = 0 ] || fail "make-busybox-tar.sh exited $rc"
"$IB" --root "$tmp/seed" import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null
"$IB" --root "$tmp/seed" save busybox -o "$tmp/bb-image.tar"
fresh() { "$IB" --root "$tmp/$1" load -i "$tmp/bb-image.tar" >/dev/null; }
build() {
	local s=$1
	shift
	"$IB" --root "$tmp/$s" build --progress=plain "$@" >"$tmp/$s.out" 2>&1 || { cat "$tmp/$s.out" >&2; return 1; }
}
cached() { grep -c '^#[0-9]* CACHED$' "$tmp/$1.out" || true; }
steps() { grep -c '^#[0-9]* \[[a-z0-9 -]*[0-9]*/[0-9]*\]' "$tmp/$1.out" || true; }
image_id() { "$IB" --root "$tmp/$1" inspect --format '{{.Id}}' "$2"; }
