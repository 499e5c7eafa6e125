#!/usr/bin/env bash
# Nothing from a registry or an archive poisons the store (Debian's
# docker-registry on 127.0.0.1, a busybox base made offline):
#   1. a registry serves an image whose config claims the busybox layer's
#      diff_id but whose layer blob is the gzip of other bytes: pull fails,
#      and nothing is recorded as that layer's compressed variant;
#   2. the same image as an oci-archive: load fails the same way;
#   3. the user then pushes their own image on busybox to a fresh repository:
#      every blob the registry got decompresses to its diff_id (fetched back
#      with curl, gunzip | sha256sum);
#   4. a store an older version poisoned (an unchecked variant record):
#      fsck names the record, fsck --full decompresses it, push ignores it,
#      prune drops it;
#   5. save of an image with several names, by each name.
# Every check runs and the failures are listed at the end.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${IMAGEBUILD:?}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
for tool in python3 curl gzip sha256sum; do
	command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-store-trust-XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
failures=()
check() { echo "FAIL: $*" >&2; failures+=("$*"); }
json() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export DOCKER_CONFIG=$tmp/docker HOME=$tmp/home

rc=0
"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
[ "$rc" = 0 ] || { echo "make-busybox-tar.sh exited $rc" >&2; exit 1; }

root=$tmp/store
ib() { "$IB" --root "$root" "$@"; }
ib import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null
diff_id=$(ib inspect busybox | json 'd[0]["RootFS"]["Layers"][0]')
arch=$(ib inspect busybox | json 'd[0]["Architecture"]')
variant_record=$root/variants/${diff_id#sha256:}.json

port=$(free_port)
mkdir -p "$tmp/reg"
cat >"$tmp/reg/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/reg/data
http:
  addr: 127.0.0.1:$port
EOF
"$REGISTRY" serve "$tmp/reg/config.yml" >"$tmp/reg/log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$tmp/reg/log" >&2; echo "the registry did not start" >&2; exit 1; }
reg=127.0.0.1:$port

# The attacker's image: config diff_ids = [busybox's layer], layer = gzip of
# other tar bytes. Pushed to $reg/evil:1 as raw blobs and manifest, and
# written as an oci-archive ($tmp/evil-oci.tar). Prints the layer's digest.
evil=$(/usr/bin/python3 - "$reg" "$diff_id" "$arch" "$tmp" <<'PY'
import gzip, hashlib, io, json, sys, tarfile, urllib.request
reg, diff_id, arch, tmp = sys.argv[1:5]
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
    data = b"attacker bytes\n"
    ti = tarfile.TarInfo("bin/busybox"); ti.size = len(data); ti.mode = 0o755; ti.mtime = 946684800
    t.addfile(ti, io.BytesIO(data))
layer = gzip.compress(raw.getvalue(), mtime=0)
config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
def dg(b): return "sha256:" + hashlib.sha256(b).hexdigest()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dg(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg(layer), "size": len(layer)}]}).encode()
base = "http://%s/v2/evil" % reg
for blob in (layer, config):
    r = urllib.request.urlopen(urllib.request.Request(base + "/blobs/uploads/", method="POST", data=b""))
    loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = "http://" + reg + loc
    loc += ("&" if "?" in loc else "?") + "digest=" + dg(blob)
    urllib.request.urlopen(urllib.request.Request(loc, method="PUT", data=blob,
        headers={"Content-Type": "application/octet-stream"}))
urllib.request.urlopen(urllib.request.Request(base + "/manifests/1", method="PUT", data=manifest,
    headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": dg(manifest), "size": len(manifest),
    "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/evil:1"}}]}).encode()
with tarfile.open(tmp + "/evil-oci.tar", "w") as t:
    def add(name, b):
        ti = tarfile.TarInfo(name); ti.size = len(b); ti.mtime = 946684800
        t.addfile(ti, io.BytesIO(b))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", index)
    for b in (layer, config, manifest):
        add("blobs/sha256/" + dg(b)[7:], b)
open(tmp + "/evil.gz", "wb").write(layer)
print(dg(layer))
PY
)

# every layer of $reg/$1 decompresses to its config's diff_id (what a client gets)
check_pushed() {
	local ref=$1 m cfg n i digest want got
	m=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$reg/v2/${ref%:*}/manifests/${ref##*:}") ||
		{ check "$ref: no manifest in the registry"; return; }
	cfg=$(curl -fsS "http://$reg/v2/${ref%:*}/blobs/$(echo "$m" | json 'd["config"]["digest"]')")
	n=$(echo "$m" | json 'len(d["layers"])')
	for ((i = 0; i < n; i++)); do
		digest=$(echo "$m" | json "d['layers'][$i]['digest']")
		want=$(echo "$cfg" | json "d['rootfs']['diff_ids'][$i]")
		got=sha256:$(curl -fsS "http://$reg/v2/${ref%:*}/blobs/$digest" | gunzip | sha256sum | cut -d' ' -f1)
		[ "$got" = "$want" ] || check "$ref: layer $i ($digest) decompresses to $got, its diff_id is $want"
		[ "$digest" != "$evil" ] || check "$ref: layer $i is the attacker's blob"
	done
}

echo "== pull of an image whose layer blob is not its diff_id"
if ib pull "$reg/evil:1" >"$tmp/out" 2>&1; then
	check "the poisoned pull succeeded: $(cat "$tmp/out")"
elif ! grep -q "decompresses to" "$tmp/out"; then
	check "the poisoned pull failed for another reason: $(cat "$tmp/out")"
fi
[ ! -e "$variant_record" ] || check "the pull recorded a variant: $(cat "$variant_record")"
ib fsck >"$tmp/out" 2>&1 || check "fsck after the poisoned pull: $(cat "$tmp/out")"

echo "== load of the same image as an oci-archive"
if ib load -i "$tmp/evil-oci.tar" >"$tmp/out" 2>&1; then
	check "the poisoned load succeeded: $(cat "$tmp/out")"
elif ! grep -q "decompresses to" "$tmp/out"; then
	check "the poisoned load failed for another reason: $(cat "$tmp/out")"
fi
[ ! -e "$variant_record" ] || check "the load recorded a variant: $(cat "$variant_record")"
if ib inspect evil:1 >/dev/null 2>&1; then check "the poisoned load named an image"; fi

echo "== the user's own image on that base, pushed to a fresh repository"
ib tag busybox mine
ib push mine "$reg/mine:1" >"$tmp/out" 2>&1 || check "push: $(cat "$tmp/out")"
check_pushed mine:1
ib fsck >"$tmp/out" 2>&1 || check "fsck after the push: $(cat "$tmp/out")"

echo "== a store an older version poisoned: fsck, fsck --full, push, prune"
hex=${evil#sha256:}
cp "$tmp/evil.gz" "$root/blobs/sha256/$hex"
mkdir -p "$root/variants"
printf '{"variants":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
	"$evil" "$(stat -c %s "$tmp/evil.gz")" >"$variant_record"
if ib fsck >"$tmp/out" 2>&1; then check "fsck passed a store with an unchecked variant"; fi
grep -q "$evil" "$tmp/out" || check "fsck does not name the unchecked variant: $(cat "$tmp/out")"
if ib fsck --full >"$tmp/out" 2>&1; then check "fsck --full passed a poisoned variant"; fi
grep -q "decompresses to" "$tmp/out" || check "fsck --full does not say what the variant is: $(cat "$tmp/out")"
ib push mine "$reg/mine-again:1" >"$tmp/out" 2>&1 || check "push: $(cat "$tmp/out")"
check_pushed mine-again:1
# push replaced the record with a checked one; put the poisoned one back for prune
cp "$tmp/evil.gz" "$root/blobs/sha256/$hex"
printf '{"variants":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
	"$evil" "$(stat -c %s "$tmp/evil.gz")" >"$variant_record"
ib prune >"$tmp/out" 2>&1 || check "prune: $(cat "$tmp/out")"
if [ -e "$variant_record" ] && grep -q "$evil" "$variant_record"; then check "prune kept the poisoned record"; fi
[ ! -e "$root/blobs/sha256/$hex" ] || check "prune kept the poisoned blob"
ib fsck --full >"$tmp/out" 2>&1 || check "fsck --full after prune: $(cat "$tmp/out")"

echo "== save of an image with several names (busybox, mine, example.com/two:1)"
ib tag busybox example.com/two:1
for name in busybox mine example.com/two:1; do
	for fmt in docker-archive oci-archive; do
		rm -f "$tmp/saved.tar"
		ib save --format "$fmt" -o "$tmp/saved.tar" "$name" >"$tmp/out" 2>&1 ||
			check "save --format $fmt $name (exit $?): $(cat "$tmp/out")"
		[ -s "$tmp/saved.tar" ] || check "save --format $fmt $name wrote nothing"
	done
done

if [ ${#failures[@]} -gt 0 ]; then
	echo "${#failures[@]} check(s) failed" >&2
	exit 1
fi
echo ok
