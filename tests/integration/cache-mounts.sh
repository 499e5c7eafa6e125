#!/usr/bin/env bash
# build --cache-to ...,cache-mounts= / --cache-from: RUN --mount=type=cache
# contents shared through the cache artifact (docs/cache.md), each builder
# with its own fresh store, against the real docker-registry:
#   1. A fills two cache mounts and exports them (registry: all; directory: by id);
#   2. B, a fresh store, runs a RUN that reads them: A's contents, owner, mode;
#   3. a store that has the cache keeps its own (a restored mount never overwrites);
#   4. a mount layer that is not what its record says is refused, nothing of it used;
#      one whose digests are right but whose tar climbs out (symlink, ..) too, nothing written outside;
#   5. an id no RUN of the build has is an error naming it.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

CACHE_TEST=cachem
. "$IB_SOURCE_ROOT/tests/common/cache-setup.sh"
port=$(free_port)
start_registry reg "$port"
reg=127.0.0.1:$port

# A: two caches filled, `pip` (owned 1000:1000, 0750) and the one with the default id `/other`
mkdir -p "$tmp/fill" "$tmp/read"
cat >"$tmp/fill/Dockerfile" <<'EOF'
FROM busybox
RUN --mount=type=cache,id=pip,target=/root/.cache/pip,uid=1000,gid=1000,mode=0750 \
    mkdir -p /root/.cache/pip/wheels && echo wheel-a >/root/.cache/pip/wheels/a.whl && \
    ln -s wheels/a.whl /root/.cache/pip/link && echo filled >/filled
RUN --mount=type=cache,target=/other echo other >/other/o
EOF
# B: another RUN on the same caches, so it runs (a miss) and shows what it finds
cat >"$tmp/read/Dockerfile" <<'EOF'
FROM busybox
RUN --mount=type=cache,id=pip,target=/c,uid=1000,gid=1000,mode=0750 \
    { cat /c/wheels/a.whl /c/link /c/mine 2>/dev/null; stat -c '%u:%g %a' /c; } >/seen
RUN --mount=type=cache,target=/other cat /other/o >/other.seen 2>/dev/null || echo none >/other.seen
EOF

echo "== A fills two cache mounts and exports them"
fresh A
build A -t fill --cache-to "type=registry,ref=$reg/cache:m,cache-mounts=all" \
	--cache-to "type=local,dest=$tmp/lc,\"cache-mounts=pip,/other\"" "$tmp/fill"
manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$reg/v2/cache/manifests/m")
config=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["config"]["digest"])' "$manifest")
curl -fsS "http://$reg/v2/cache/blobs/$config" >"$tmp/records.json"
python3 - "$manifest" "$tmp/records.json" <<'EOF' || fail "the artifact's cache mounts: $(cat "$tmp/records.json")"
import hashlib, json, sys
m, doc = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
mounts = doc["mounts"]
assert sorted(v["id"] for v in mounts.values()) == ["/other", "pip"], mounts
listed = {l["digest"] for l in m["layers"]}
for k, v in mounts.items():
    assert k == hashlib.sha256(v["ident"].encode()).hexdigest(), v
    assert v["layer"]["digest"] in listed, v
pip = [v for v in mounts.values() if v["id"] == "pip"][0]
assert (pip["uid"], pip["gid"], pip["mode"]) == (1000, 1000, 0o750), pip
EOF

echo "== B: a fresh store's RUN finds A's cache mounts"
fresh B
build B -t read --cache-from "type=registry,ref=$reg/cache:m" "$tmp/read"
grep -q "cache mount \`pip\` restored" "$tmp/B.out" || fail "B restored no cache mount: $(cat "$tmp/B.out")"
"$IB" --root "$tmp/B" run --rm read cat /seen /other.seen >"$tmp/B.seen"
[ "$(cat "$tmp/B.seen")" = "$(printf 'wheel-a\nwheel-a\n1000:1000 750\nother')" ] ||
	fail "B's RUN saw: $(cat "$tmp/B.seen")"
# from the directory too (only pip: /other is its own RUN's, restored as well)
fresh B2
build B2 -t read --cache-from "type=local,src=$tmp/lc" "$tmp/read"
"$IB" --root "$tmp/B2" run --rm read cat /seen /other.seen >"$tmp/B2.seen"
[ "$(cat "$tmp/B2.seen")" = "$(cat "$tmp/B.seen")" ] || fail "B2's RUN (from the directory) saw: $(cat "$tmp/B2.seen")"

echo "== a store that has the cache keeps its own"
fresh K
printf 'FROM busybox\nRUN --mount=type=cache,id=pip,target=/c,uid=1000,gid=1000,mode=0750 echo mine >/c/mine\n' \
	>"$tmp/Dockerfile.mine"
build K -t mine -f "$tmp/Dockerfile.mine" "$tmp/read"
build K -t read --cache-from "type=registry,ref=$reg/cache:m" "$tmp/read"
! grep -q "cache mount \`pip\` restored" "$tmp/K.out" || fail "K's own cache was replaced: $(cat "$tmp/K.out")"
[ "$("$IB" --root "$tmp/K" run --rm read cat /seen)" = "$(printf 'mine\n1000:1000 750')" ] ||
	fail "K's RUN saw: $("$IB" --root "$tmp/K" run --rm read cat /seen)"

echo "== a mount layer that is not its record's is refused, nothing of it used"
victim=$(python3 - "$tmp/lc" <<'EOF'
import json, os, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
m = json.load(open(os.path.join(d, "blobs", *idx["manifests"][0]["digest"].split(":"))))
doc = json.load(open(os.path.join(d, "blobs", *m["config"]["digest"].split(":"))))
pip = [v for v in doc["mounts"].values() if v["id"] == "pip"][0]
print(os.path.join(d, "blobs", *pip["layer"]["digest"].split(":")))
EOF
)
# the file's content changed in place: same size, another digest
python3 - "$victim" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b"wheel-a")
assert i > 0
b[i:i + 7] = b"wheel-X"
open(p, "wb").write(bytes(b))
EOF
fresh T
build T -t read --cache-from "type=local,src=$tmp/lc" "$tmp/read"
grep -q "cache import $tmp/lc: refused: cache mount \`pip\`" "$tmp/T.out" ||
	fail "T did not refuse the damaged mount layer: $(cat "$tmp/T.out")"
[ "$("$IB" --root "$tmp/T" run --rm read cat /seen)" = "1000:1000 750" ] ||
	fail "T's RUN saw something of the refused layer: $("$IB" --root "$tmp/T" run --rm read cat /seen)"
# the refused artifact's other mount is not used either
[ "$("$IB" --root "$tmp/T" run --rm read cat /other.seen)" = "none" ] ||
	fail "T used another mount of the refused artifact"

echo "== a self-consistent artifact whose mount layer climbs out: refused, nothing written outside"
# every digest right (an attacker computes them), the tar hostile: a symlink out, a file through it, `..`
python3 - "$tmp/lc" "$tmp/evil" <<'EOF'
import hashlib, io, json, os, shutil, sys, tarfile
src, d = sys.argv[1], sys.argv[2]
shutil.copytree(src, d)
def blob(b):
    h = hashlib.sha256(b).hexdigest()
    open(os.path.join(d, "blobs", "sha256", h), "wb").write(b)
    return "sha256:" + h, len(b)
def read(dg):
    return open(os.path.join(d, "blobs", *dg.split(":")), "rb").read()
out = io.BytesIO()
with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
    ln = tarfile.TarInfo("out"); ln.type = tarfile.SYMTYPE; ln.linkname = "/"
    t.addfile(ln)
    for name in ("out/tmp/ib-escaped-through-link", "../ib-escaped-dotdot"):
        f = tarfile.TarInfo(name); data = b"pwned\n"; f.size = len(data)
        t.addfile(f, io.BytesIO(data))
ldg, lsz = blob(out.getvalue())
idx = json.load(open(os.path.join(d, "index.json")))
m = json.loads(read(idx["manifests"][0]["digest"]))
doc = json.loads(read(m["config"]["digest"]))
pip = [v for v in doc["mounts"].values() if v["id"] == "pip"][0]
old = pip["layer"]["digest"]
pip["layer"].update(diff_id=ldg, digest=ldg, size=lsz, mediaType="application/vnd.oci.image.layer.v1.tar")
for l in m["layers"]:
    if l["digest"] == old:
        l.update(digest=ldg, size=lsz)
cdg, csz = blob(json.dumps(doc).encode())
m["config"].update(digest=cdg, size=csz)
mdg, msz = blob(json.dumps(m).encode())
idx["manifests"][0].update(digest=mdg, size=msz)
json.dump(idx, open(os.path.join(d, "index.json"), "w"))
EOF
rm -f /tmp/ib-escaped-through-link "$tmp/ib-escaped-dotdot"
fresh V
build V -t read --cache-from "type=local,src=$tmp/evil" "$tmp/read"
grep -q "cache import $tmp/evil: refused: cache mount \`pip\`" "$tmp/V.out" ||
	fail "V did not refuse the hostile mount layer: $(cat "$tmp/V.out")"
[ ! -e /tmp/ib-escaped-through-link ] && [ ! -e "$tmp/ib-escaped-dotdot" ] &&
	[ -z "$(find "$tmp/V" -name 'ib-escaped-*' 2>/dev/null)" ] || fail "the hostile layer wrote outside the cache"
[ "$("$IB" --root "$tmp/V" run --rm read cat /seen)" = "1000:1000 750" ] ||
	fail "V's RUN saw something of the hostile layer: $("$IB" --root "$tmp/V" run --rm read cat /seen)"

echo "== an id that no RUN of the build has: an error naming it"
if "$IB" --root "$tmp/A" build -q -t fill --cache-to "type=local,dest=$tmp/lc2,cache-mounts=pip,nope" "$tmp/fill" \
	>"$tmp/r.out" 2>&1; then fail "accepted cache-mounts=nope"; fi
grep -q 'cache-mounts=nope: no RUN --mount=type=cache of this build has the id `nope`' "$tmp/r.out" ||
	fail "the refusal does not name nope: $(cat "$tmp/r.out")"
echo OK
