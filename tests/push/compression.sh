#!/usr/bin/env bash
# push --compression-format zstd and the fast paths of push, against a real
# docker-registry (plain HTTP, its access log counting requests):
#   1. zstd push: the manifest names zstd layers; our pull reads them back
#      into a fresh store (same image id), skopeo copies them to an OCI
#      layout and umoci unpacks it (the files are there);
#   2. the zstd variant is remembered: a push to another repository makes
#      no new blob and no new variant record (no recompression);
#   3. an unchanged re-push is exactly one request (a HEAD of the manifest);
#   4. unknown compression names and levels out of range are refused;
#      a level makes a new variant at that level;
#   5. a layer bigger than a chunk is compressed and sent at once (PATCH
#      chunks), pulled back whole into a fresh store, and a push again is
#      one request (its variant remembered).
# podman pull needs root (privileged); its own suite, not re-run under ASan.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${1:-${IMAGEBUILD:?}}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
for tool in skopeo umoci podman python3 curl; do
	command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-compression-XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
export DOCKER_CONFIG=$tmp/docker HOME=$tmp/home
. "$IB_SOURCE_ROOT/tests/common/registry.sh"

rc=0
"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
[ "$rc" = 0 ] || fail "make-busybox-tar.sh exited $rc"

root=$tmp/store
ib() { "$IB" --root "$root" "$@"; }
ib import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null
mkdir -p "$tmp/ctx"
echo "hello from zstd" >"$tmp/ctx/hello.txt"
seq 1 20000 >"$tmp/ctx/numbers.txt"
printf 'FROM busybox\nCOPY hello.txt numbers.txt /\n' >"$tmp/ctx/Dockerfile"
ib build -q -t app "$tmp/ctx" >/dev/null
id=$(ib inspect app | json 'd[0]["Id"]')

port=$(free_port)
start_registry plain "$port"
reg=127.0.0.1:$port
log=$tmp/plain/log
accept='application/vnd.oci.image.manifest.v1+json'
layer_types() { curl -fsS -H "Accept: $accept" "http://$reg/v2/$1/manifests/$2" | json '" ".join(l["mediaType"] for l in d["layers"])'; }

echo "== 1. push --compression-format zstd"
ib push --compression-format zstd app "$reg/app:z" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "zstd push failed"; }
[ "$(layer_types app z)" = "application/vnd.oci.image.layer.v1.tar+zstd application/vnd.oci.image.layer.v1.tar+zstd" ] ||
	fail "the manifest does not name two zstd layers: $(layer_types app z)"
# our pull, into a fresh store: the same image
"$IB" --root "$tmp/fresh" pull "$reg/app:z" >/dev/null || fail "pull of the zstd image failed"
[ "$("$IB" --root "$tmp/fresh" inspect "$reg/app:z" | json 'd[0]["Id"]')" = "$id" ] || fail "the pulled image has another id"
# skopeo reads the zstd layers into an OCI layout (recompressed as gzip: Debian's umoci has no zstd), umoci unpacks it
skopeo copy -q --src-tls-verify=false --dest-compress --dest-compress-format gzip "docker://$reg/app:z" "oci:$tmp/oci:z" || fail "skopeo copy failed"
umoci unpack --rootless --image "$tmp/oci:z" "$tmp/bundle" >/dev/null || fail "umoci unpack failed"
[ "$(cat "$tmp/bundle/rootfs/hello.txt")" = "hello from zstd" ] || fail "umoci's rootfs has no hello.txt"
cmp -s "$tmp/bundle/rootfs/numbers.txt" "$tmp/ctx/numbers.txt" || fail "umoci's numbers.txt differs"
[ -x "$tmp/bundle/rootfs/bin/busybox" ] || fail "umoci's rootfs has no busybox"
# podman pulls it (containers/storage checks each layer against the config's diff_ids): the same id
if [ "$(id -u)" = 0 ] && command -v podman >/dev/null; then
	pm() { env -u DOCKER_CONFIG podman --root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver vfs "$@"; }
	pm pull -q --tls-verify=false "$reg/app:z" >/dev/null || fail "podman pull of the zstd image failed"
	[ "sha256:$(pm image inspect --format '{{.Id}}' "$reg/app:z")" = "$id" ] || fail "podman has another image id"
	pm rmi -a -f >/dev/null 2>&1 || true
else
	skip_or_fail "podman pull needs root and podman"
fi

echo "== 2. the zstd variant is reused"
blobs_before=$(find "$root" -path '*blobs/sha256/*' -type f | wc -l)
variants_before=$(cat "$root"/variants/*.json | sha256sum)
ib push --compression-format zstd --progress plain app "$reg/other:z" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "second zstd push failed"; }
grep -q Compressing "$tmp/out" && { cat "$tmp/out"; fail "the second zstd push compressed again"; }
[ "$(find "$root" -path '*blobs/sha256/*' -type f | wc -l)" = "$blobs_before" ] || fail "the second zstd push made new blobs"
[ "$(cat "$root"/variants/*.json | sha256sum)" = "$variants_before" ] || fail "the second zstd push changed the variant records"
[ "$(layer_types other z)" = "$(layer_types app z)" ] || fail "the second push named other layers"
grep -c '"application/vnd.oci.image.layer.v1.tar+zstd"' "$root"/variants/*.json >/dev/null || fail "no zstd variant recorded"

echo "== 3. an unchanged re-push is one request"
ib push app "$reg/app:1" >/dev/null 2>&1 || fail "gzip push failed"
sleep 0.2
before=$(grep -c '"[A-Z]* /v2/' "$log" || true)
ib push app "$reg/app:1" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "gzip re-push failed"; }
ib push --compression-format zstd app "$reg/app:z" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "zstd re-push failed"; }
sleep 0.2
grep '"[A-Z]* /v2/' "$log" | tail -n +$((before + 1)) >"$tmp/new"
cat "$tmp/new"
[ "$(wc -l <"$tmp/new")" = 2 ] || fail "two re-pushes made $(wc -l <"$tmp/new") requests, not 2"
[ "$(grep -c '"HEAD /v2/app/manifests/' "$tmp/new")" = 2 ] || fail "a re-push was not a HEAD of its manifest"
# the digest printed is the registry's
dz=$(curl -fsS -o /dev/null -w '%header{docker-content-digest}' -H "Accept: $accept" "http://$reg/v2/app/manifests/z" 2>/dev/null ||
	curl -fsSI -H "Accept: $accept" "http://$reg/v2/app/manifests/z" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
grep -qF "$dz" "$tmp/out" || fail "the re-push did not print the manifest digest $dz"

echo "== 4. refusals, levels"
! ib push --compression-format lz4 app "$reg/app:x" 2>"$tmp/err" || fail "an unknown compression was accepted"
grep -q "unknown compression format .lz4." "$tmp/err" || fail "no clear error for lz4: $(cat "$tmp/err")"
! ib push --compression-level 0 app "$reg/app:x" 2>"$tmp/err" || fail "level 0 was accepted"
! ib push --compression-format gzip --compression-level 12 app "$reg/app:x" 2>"$tmp/err" || fail "gzip level 12 was accepted"
grep -q "gzip compression level 12" "$tmp/err" || fail "no clear error for gzip level 12: $(cat "$tmp/err")"
ib push --compression-format zstd --compression-level 19 --progress plain app "$reg/app:z19" >"$tmp/out" 2>&1 ||
	{ cat "$tmp/out"; fail "zstd level 19 push failed"; }
grep -q Compressing "$tmp/out" || fail "a push with a level did not compress at that level"
"$IB" --root "$tmp/fresh" pull "$reg/app:z19" >/dev/null || fail "pull of the level-19 image failed"
[ "$("$IB" --root "$tmp/fresh" inspect "$reg/app:z19" | json 'd[0]["Id"]')" = "$id" ] || fail "the level-19 image has another id"

echo "== 5. a layer bigger than a chunk: compressed and sent at once (PATCH chunks), then pulled back whole"
mkdir -p "$tmp/big"
head -c $((40 << 20)) /dev/urandom >"$tmp/big/random.bin"
printf 'FROM busybox\nCOPY random.bin /\n' >"$tmp/big/Dockerfile"
ib build -q -t big "$tmp/big" >/dev/null
big_id=$(ib inspect big | json 'd[0]["Id"]')
sleep 0.2
before=$(grep -c '"[A-Z]* /v2/' "$log" || true)
ib push --progress plain big "$reg/big:1" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "push of the big layer failed"; }
sleep 0.2
grep '"[A-Z]* /v2/' "$log" | tail -n +$((before + 1)) >"$tmp/new"
# 40 MiB that gzip cannot shrink, chunks of 32 MiB: at least two PATCHes, no HEAD of that blob before them
[ "$(grep -c '"PATCH /v2/big/blobs/uploads/' "$tmp/new")" -ge 2 ] || { cat "$tmp/new"; fail "the big layer did not go in PATCH chunks"; }
grep -q Compressing "$tmp/out" || fail "the big layer was not compressed"
# sent while it was compressed: its digest was not known before, so it was never asked for (no HEAD)
big_blob=$(curl -fsS -H "Accept: $accept" "http://$reg/v2/big/manifests/1" | json 'd["layers"][1]["digest"]')
! grep -q "\"HEAD /v2/big/blobs/$big_blob" "$tmp/new" || fail "the big layer was compressed whole before its upload (HEAD of it)"
"$IB" --root "$tmp/fresh" pull "$reg/big:1" >/dev/null || fail "pull of the big image failed"
[ "$("$IB" --root "$tmp/fresh" inspect "$reg/big:1" | json 'd[0]["Id"]')" = "$big_id" ] || fail "the pulled big image has another id"
skopeo inspect --raw --tls-verify=false "docker://$reg/big:1" >/dev/null || fail "skopeo cannot read the big image"
# the variant is remembered: a push again is one request
before=$(grep -c '"[A-Z]* /v2/' "$log" || true)
ib push big "$reg/big:1" >/dev/null 2>&1 || fail "the big re-push failed"
sleep 0.2
[ "$(grep '"[A-Z]* /v2/' "$log" | tail -n +$((before + 1)) | wc -l)" = 1 ] || fail "the big re-push was not one request"
echo "PASS"
