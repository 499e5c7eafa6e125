#!/usr/bin/env bash
# Real clients read what the store writes: a busybox image made from Debian's
# busybox-static is imported, then
#   skopeo inspect oci:<root>:<normalised name>   reads the store as it is,
#   save --format oci + umoci unpack              gives the files back,
#   podman load of the docker-archive             keeps the image id,
#   save + load into a fresh store                keeps image id and manifest digest.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${IMAGEBUILD:?}
for tool in skopeo umoci podman python3; do
	command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-interop-XXXXXX")
cleanup() {
	# podman's vfs storage may hold read-only files
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
root=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

rc=0
"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
[ "$rc" = 0 ] || fail "make-busybox-tar.sh exited $rc"

id=$("$IB" --root "$root" import "$tmp/busybox.tar" busybox)
[[ $id == sha256:* ]] || fail "import printed '$id'"
"$IB" --root "$root" images | grep -q '^busybox  *latest' || fail "images does not list busybox:latest"
manifest=$("$IB" --root "$root" inspect busybox | json 'd[0]["Descriptor"]["digest"]')
diffid=$("$IB" --root "$root" inspect busybox | json 'd[0]["RootFS"]["Layers"][0]')
size=$("$IB" --root "$root" inspect busybox | json 'd[0]["Size"]')

echo "== skopeo inspect oci:<root>:docker.io/library/busybox:latest"
out=$(skopeo inspect "oci:$root:docker.io/library/busybox:latest")
[ "$(echo "$out" | json 'd["Digest"]')" = "$manifest" ] || fail "skopeo sees another manifest digest"
[ "$(echo "$out" | json 'd["Layers"][0]')" = "$diffid" ] || fail "skopeo sees other layers"
[ "$(skopeo inspect --config "oci:$root:docker.io/library/busybox:latest" | json 'd["os"]')" = linux ] ||
	fail "skopeo cannot read the config"

echo "== save --format oci, umoci unpack"
"$IB" --root "$root" save --format oci --ref-name bb -o "$tmp/oci" busybox
umoci_args=()
[ "$(id -u)" = 0 ] || umoci_args=(--rootless)
umoci unpack "${umoci_args[@]}" --image "$tmp/oci:bb" "$tmp/bundle" >/dev/null
[ -x "$tmp/bundle/rootfs/bin/busybox" ] || fail "umoci: no bin/busybox"
[ "$(readlink "$tmp/bundle/rootfs/bin/sh")" = /bin/busybox ] || fail "umoci: bin/sh is not a link to busybox"
[ -f "$tmp/bundle/rootfs/etc/passwd" ] || fail "umoci: no etc/passwd"
[ "$(stat -c %a "$tmp/bundle/rootfs/tmp")" = 1777 ] || fail "umoci: /tmp is not 1777"
# skopeo reads the exported layout and the OCI archive too
[ "$(skopeo inspect "oci:$tmp/oci:bb" | json 'd["Digest"]')" = "$manifest" ] || fail "exported layout digest differs"
"$IB" --root "$root" save --format oci-archive -o "$tmp/image.oci.tar" busybox
[ "$(skopeo inspect "oci-archive:$tmp/image.oci.tar" | json 'd["Digest"]')" = "$manifest" ] ||
	fail "exported OCI archive digest differs"

echo "== podman load of the docker-archive"
"$IB" --root "$root" save --format docker-archive -o "$tmp/image.docker.tar" busybox
# RepoTags in the familiar form, as docker save writes them
[ "$(tar -xOf "$tmp/image.docker.tar" manifest.json | json 'd[0]["RepoTags"]')" = "['busybox:latest']" ] ||
	fail "docker-archive RepoTags: $(tar -xOf "$tmp/image.docker.tar" manifest.json)"
podman=(podman --root "$tmp/podman/storage" --runroot "$tmp/podman/run" --storage-driver vfs)
"${podman[@]}" load -i "$tmp/image.docker.tar"
# podman names an archive's short RepoTags "localhost/..." (also those of docker save)
pname=localhost/busybox:latest
pid=$("${podman[@]}" image inspect --format '{{.Id}}' "$pname")
[ "sha256:$pid" = "$id" ] || [ "$pid" = "$id" ] || fail "podman's image id $pid is not $id"

echo "== what podman and skopeo write loads back with the same image id"
"${podman[@]}" save --format oci-archive -o "$tmp/podman.oci.tar" "$pname"
"${podman[@]}" save --format docker-archive -o "$tmp/podman.docker.tar" "$pname"
skopeo copy -q "oci:$root:docker.io/library/busybox:latest" "docker-archive:$tmp/skopeo.docker.tar:busybox:skopeo"
skopeo copy -q --dest-compress "oci:$root:docker.io/library/busybox:latest" "oci:$tmp/skopeo-gz:gz"
# podman re-serialises the config when it writes OCI (another id, same layers);
# the others keep the config bytes, so the id.
for f in "$tmp/podman.oci.tar" "$tmp/podman.docker.tar" "$tmp/skopeo.docker.tar" "$tmp/skopeo-gz"; do
	fresh=$tmp/from-$(basename "$f")
	"$IB" --root "$fresh" load --repository busybox -i "$f"
	[ "$("$IB" --root "$fresh" images -q | sort -u | wc -l)" = 1 ] || fail "$f: not one image"
	got=$("$IB" --root "$fresh" inspect "$("$IB" --root "$fresh" images -q | head -1)")
	[ "$(echo "$got" | json 'd[0]["RootFS"]["Layers"][0]')" = "$diffid" ] || fail "$f: other layers"
	# one image, one Size in every store (also when its layers came gzip)
	[ "$(echo "$got" | json 'd[0]["Size"]')" = "$size" ] || fail "$f: Size $(echo "$got" | json 'd[0]["Size"]'), not $size"
	if [ "$f" != "$tmp/podman.oci.tar" ]; then
		[ "$(echo "$got" | json 'd[0]["Id"]')" = "$id" ] || fail "$f: loaded id is not $id"
	fi
	"$IB" --root "$fresh" fsck >/dev/null || fail "$f: fsck"
	# the layers can be used: a compressed one got its uncompressed local copy
	if [ "$(id -u)" = 0 ]; then
		[ "$("$IB" --root "$fresh" run --rm "$("$IB" --root "$fresh" images -q | head -1)" /bin/busybox echo runs)" = runs ] ||
			fail "$f: the loaded image does not run"
	fi
done

echo "== round trips keep the image id and the manifest digest"
for f in "$tmp/oci" "$tmp/image.oci.tar" "$tmp/image.docker.tar"; do
	fresh=$tmp/fresh-$(basename "$f")
	"$IB" --root "$fresh" load -i "$f"
	got=$("$IB" --root "$fresh" inspect busybox)
	[ "$(echo "$got" | json 'd[0]["Id"]')" = "$id" ] || fail "$f: id changed"
	[ "$(echo "$got" | json 'd[0]["Descriptor"]["digest"]')" = "$manifest" ] || fail "$f: manifest digest changed"
	"$IB" --root "$fresh" fsck >/dev/null || fail "$f: fsck of the loaded store"
done

echo "== the store stays sound"
"$IB" --root "$root" fsck
"$IB" --root "$root" prune
"$IB" --root "$root" history busybox | grep -q 'Imported from' || fail "history lost the import"
echo "ok"
