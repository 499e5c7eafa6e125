#!/usr/bin/env bash
# Built layers kept only unpacked (lib/store/README.md, "Layers regenerated on
# demand"): a build step's layer is not written as a tar blob; push, save and
# fsck make the tar again from the unpacked layer, and it must be exactly the
# recorded digest:
#   1. the built layers have a layers/<hex>.json record and no blob file;
#   2. save (oci layout, docker-archive): every layer blob hashes to its name,
#      umoci unpacks the layout and finds the files;
#   3. push to the real docker-registry, pull into a fresh store: same image id
#      and diff_ids, and the registry's blobs hash to their digests;
#   4. a file of an unpacked layer modified under the store: push and save fail
#      naming the layer (nothing pushed: no manifest, no blob of it, no variant
#      recorded; no archive left), fsck reports it;
#   5. rmi + prune (the build cache cleared) drop the record and the unpacked layer;
#   6. a layer recorded on one base and used on another keeps the base it was diffed against;
#   7. a container whose image went with rmi -f: prune works and keeps its layers.
# Needs root (overlay snapshotter).
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${IMAGEBUILD:?}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
for tool in umoci python3 curl; do
	command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done
[ "$(id -u)" = 0 ] || skip_or_fail "the overlay snapshotter needs root"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-regen-XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
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
ib import "$tmp/busybox.tar" busybox >/dev/null

# a context with a big file (9 MB: past IB_BIGIO_MIN, so the commit reads it from
# the context, copy.h, and fsck's tar made from the layer's files must agree), a
# subdirectory, a symlink and a hard link; a RUN that deletes one of them (a
# whiteout in the next layer, a diff against a chain)
mkdir -p "$tmp/ctx/files/sub"
head -c 9000000 /dev/urandom >"$tmp/ctx/files/big.bin"
sleep 1.2 # settled (copy.h: a source changed in the last second is not read by the commit)
echo one >"$tmp/ctx/files/sub/one.txt"
echo two >"$tmp/ctx/files/two.txt"
ln -s sub/one.txt "$tmp/ctx/files/link"
ln "$tmp/ctx/files/two.txt" "$tmp/ctx/files/two-again.txt"
cat >"$tmp/ctx/Dockerfile" <<'DF'
FROM busybox
COPY files /files
RUN rm /files/two.txt && echo three > /files/sub/three.txt && rm /bin/true
DF
ib build -q -t app "$tmp/ctx" >/dev/null
id=$(ib inspect app | json 'd[0]["Id"]')
layers=$(ib inspect app | json '" ".join(d[0]["RootFS"]["Layers"])')
set -- $layers
[ $# = 3 ] || fail "app has $# layers, not 3"
built="$2 $3"

echo "== 1. the built layers are records, not blobs"
for l in $built; do
	hex=${l#sha256:}
	[ -f "$root/layers/$hex.json" ] || fail "no record layers/$hex.json"
	[ ! -e "$root/blobs/sha256/$hex" ] || fail "layer $l was written as a blob too"
	[ -f "$root/snapshots/overlay/layers/$hex/ready" ] || fail "layer $l is not unpacked"
done
ib fsck >/dev/null || fail "fsck of a sound store"

echo "== 2. save: the regenerated layers are the recorded digests"
ib save --format oci --ref-name app -o "$tmp/oci" app
for l in $layers; do
	hex=${l#sha256:}
	got=$(sha256sum "$tmp/oci/blobs/sha256/$hex" | cut -d' ' -f1)
	[ "$got" = "$hex" ] || fail "saved layer $l hashes to $got"
done
umoci unpack --image "$tmp/oci:app" "$tmp/bundle" >/dev/null
cmp "$tmp/bundle/rootfs/files/big.bin" "$tmp/ctx/files/big.bin" || fail "umoci: big.bin differs"
[ "$(readlink "$tmp/bundle/rootfs/files/link")" = sub/one.txt ] || fail "umoci: the symlink"
[ ! -e "$tmp/bundle/rootfs/files/two.txt" ] || fail "umoci: the whiteout of two.txt"
[ "$(cat "$tmp/bundle/rootfs/files/sub/three.txt")" = three ] || fail "umoci: three.txt"
ib save -o "$tmp/app.docker.tar" app
/usr/bin/python3 - "$tmp/app.docker.tar" $layers <<'PY' || fail "docker-archive layers do not hash to their diff_ids"
import hashlib, json, sys, tarfile
t = tarfile.open(sys.argv[1])
m = json.load(t.extractfile("manifest.json"))[0]
got = ["sha256:" + hashlib.sha256(t.extractfile(p).read()).hexdigest() for p in m["Layers"]]
sys.exit(0 if got == sys.argv[2:] else 1)
PY

echo "== 3. push to a real registry, pull into a fresh store"
port=$(free_port)
start_registry plain "$port"
reg=127.0.0.1:$port
ib push app "$reg/app:1" >/dev/null
"$IB" --root "$tmp/fresh" pull "$reg/app:1" >/dev/null
[ "$("$IB" --root "$tmp/fresh" inspect "$reg/app:1" | json 'd[0]["Id"]')" = "$id" ] || fail "pulled image id differs"
[ "$("$IB" --root "$tmp/fresh" inspect "$reg/app:1" | json '" ".join(d[0]["RootFS"]["Layers"])')" = "$layers" ] ||
	fail "pulled diff_ids differ"
for f in "$tmp"/plain/data/docker/registry/v2/blobs/sha256/*/*/data; do
	want=$(basename "$(dirname "$f")")
	[ "$(sha256sum "$f" | cut -d' ' -f1)" = "$want" ] || fail "registry blob $want is not its digest"
done
"$IB" --root "$tmp/fresh" fsck >/dev/null || fail "fsck of the pulled store"

echo "== 4. a damaged unpacked layer is never shipped"
echo "other content" >"$tmp/ctx/files/two.txt"
ib build -q -t app2 "$tmp/ctx" >/dev/null
l2=$(ib inspect app2 | json 'd[0]["RootFS"]["Layers"][1]')
[ -f "$root/layers/${l2#sha256:}.json" ] || fail "app2's COPY layer is no record"
f=$root/snapshots/overlay/layers/${l2#sha256:}/fs/files/big.bin
printf 'X' | dd of="$f" bs=1 seek=1000 conv=notrunc 2>/dev/null
if out=$(ib push app2 "$reg/app2:1" 2>&1); then fail "push of a damaged layer succeeded: $out"; fi
echo "$out" | grep -q "layer $l2.*modified or damaged" || fail "push error does not name the layer: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$reg/v2/app2/manifests/1")
[ "$code" = 404 ] || fail "the registry has a manifest app2:1 (HTTP $code)"
# the tar is regenerated straight into the compression and checked after its last byte: nothing of it stays
[ ! -e "$root/variants/${l2#sha256:}.json" ] || fail "a variant of the damaged layer was recorded"
known="$layers $(ib inspect app2 | json '" ".join(d[0]["RootFS"]["Layers"])')"
python3 - "$tmp/plain/data/docker/registry/v2/blobs" "$l2" $known <<'PY' || fail "the registry holds a blob of the damaged layer"
import gzip, hashlib, os, sys
root, damaged, known = sys.argv[1], sys.argv[2], set(sys.argv[3:]) - {sys.argv[2]}
for d, _, files in os.walk(root):
    if "data" in files:
        b = open(os.path.join(d, "data"), "rb").read()
        if b[:2] == b"\x1f\x8b" and "sha256:" + hashlib.sha256(gzip.decompress(b)).hexdigest() not in known:
            sys.exit(1)
PY
if out=$(ib save -o "$tmp/app2.tar" app2 2>&1); then fail "save of a damaged layer succeeded"; fi
echo "$out" | grep -q "layer $l2" || fail "save error does not name the layer: $out"
[ ! -e "$tmp/app2.tar" ] || fail "save left $tmp/app2.tar"
if out=$(ib fsck 2>&1); then fail "fsck does not see the damaged layer"; fi
echo "$out" | grep -q "layer $l2" || fail "fsck does not name the layer: $out"

echo "== 4b. a record that understates its layer's size: the push fails naming it, nothing overflows"
# (the compression sizes a one-chunk layer's buffers by the record: the regeneration must stop
# at the recorded size, not run past it; under ASan this checks the buffers too)
l3=$(ib inspect app | json 'd[0]["RootFS"]["Layers"][2]')
rec=$root/layers/${l3#sha256:}.json
[ -f "$rec" ] || fail "app's RUN layer is no record"
cp "$rec" "$tmp/rec.saved"
/usr/bin/python3 - "$rec" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["size"] > 5000, r["size"]
r["size"] = 100
json.dump(r, open(sys.argv[1], "w"))
PY
rm -f "$root/variants/${l3#sha256:}.json"
if out=$(ib push app "$reg/app3:1" 2>&1); then fail "push of a layer bigger than its record succeeded: $out"; fi
echo "$out" | grep -q "layer $l3" || fail "push error does not name the layer: $out"
[ ! -e "$root/variants/${l3#sha256:}.json" ] || fail "a variant of the misrecorded layer was recorded"
cp "$tmp/rec.saved" "$rec"
ib push app "$reg/app3:1" >/dev/null || fail "push after the record was mended"
[ -e "$root/variants/${l3#sha256:}.json" ] || fail "no variant recorded for the mended layer"

echo "== 5. GC drops the record with the image and the build cache that use it"
ib rmi app2 >/dev/null
rm -f "$root"/cache/*.json # what ib_store_cache_clear() does (the CLI has no command for it)
ib prune >/dev/null
[ ! -e "$root/layers/${l2#sha256:}.json" ] || fail "the record of a removed image stays"
[ ! -e "$root/snapshots/overlay/layers/${l2#sha256:}" ] || fail "the unpacked layer of a removed image stays"
for l in $built; do
	[ -f "$root/layers/${l#sha256:}.json" ] || fail "prune dropped the record of app's layer $l"
done
ib fsck >/dev/null || fail "fsck after prune"

echo "== 6. a layer recorded on one base and used on another keeps the base it was diffed against"
# the same COPY onto two bases is one diff_id, recorded once with the chain it was made on (y's);
# removing y and the image made on it must leave x pushable and savable (prune used to drop y's layer)
mkdir -p "$tmp/c-y" "$tmp/c-on"
printf 'FROM busybox\nRUN echo a > /a\n' >"$tmp/c-y/Dockerfile"
echo same >"$tmp/c-on/f"
ib build -q -t y "$tmp/c-y" >/dev/null
printf 'FROM y\nCOPY f /f\n' >"$tmp/c-on/Dockerfile"
ib build -q -t on-y "$tmp/c-on" >/dev/null
printf 'FROM busybox\nCOPY f /f\n' >"$tmp/c-on/Dockerfile"
ib build -q -t on-busybox "$tmp/c-on" >/dev/null
top=$(ib inspect on-busybox | json 'd[0]["RootFS"]["Layers"][-1]')
[ "$(ib inspect on-y | json 'd[0]["RootFS"]["Layers"][-1]')" = "$top" ] || fail "the COPY is not one layer on both bases"
[ -f "$root/layers/${top#sha256:}.json" ] || fail "the COPY layer is no record"
ib rmi on-y y >/dev/null
rm -f "$root"/cache/*.json
ib prune >/dev/null
ib fsck >/dev/null || fail "fsck after y was pruned: $(ib fsck 2>&1)"
ib save -o "$tmp/on-busybox.tar" on-busybox || fail "save of the image on busybox after y was pruned"
ib rmi on-busybox >/dev/null
ib prune >/dev/null
[ ! -e "$root/layers/${top#sha256:}.json" ] || fail "the record stays after its last image"
ib fsck >/dev/null || fail "fsck after the last prune"

echo "== 7. a container whose image went with rmi -f keeps its layers; prune, exec and commit still work"
# (as docker's rmi -f, the image goes while a stopped container uses it; prune used to fail
# "No such image" from then on, and exec and commit of the container too)
mkdir -p "$tmp/c-ctr"
printf 'FROM busybox\nRUN echo one > /one\n' >"$tmp/c-ctr/Dockerfile"
ib build -q -t ctr-img "$tmp/c-ctr" >/dev/null
one=$(ib inspect ctr-img | json 'd[0]["RootFS"]["Layers"][-1]')
[ -f "$root/layers/${one#sha256:}.json" ] || fail "the RUN layer is no record"
ib run --name ctr ctr-img sh -c 'echo box > /box' >/dev/null
ib rmi -f ctr-img >/dev/null
rm -f "$root"/cache/*.json
ib prune >/dev/null || fail "prune with a container whose image was removed: $(ib prune 2>&1)"
[ -f "$root/layers/${one#sha256:}.json" ] || fail "prune dropped the record of the container's image layer"
ib fsck >/dev/null || fail "fsck after prune with a container whose image was removed: $(ib fsck 2>&1)"
[ "$(ib exec ctr cat /one /box | tr '\n' ' ')" = "one box " ] ||
	fail "exec of the container whose image was removed: $(ib exec ctr cat /one /box 2>&1)"
ib commit ctr ctr-saved >/dev/null || fail "commit of the container whose image was removed"
ib rm ctr >/dev/null
ib prune >/dev/null
ib fsck >/dev/null || fail "fsck after the container went: $(ib fsck 2>&1)"
ib save -o "$tmp/ctr-saved.tar" ctr-saved || fail "save of the container's commit"
echo ok
