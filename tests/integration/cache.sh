#!/usr/bin/env bash
# build --cache-to / --cache-from type=registry against the real docker-registry
# (docs/cache.md), each builder with its own fresh store:
#   1. A builds a two-stage image and exports mode=min and mode=max;
#   2. B imports max: every step CACHED, A's image id, and B fetched from the
#      registry only the artifact: no layer (they are remote layers, the
#      COPY --from step found by its alias); B pushes the image to the cache's
#      repository: no blob uploaded; to another repository: mounted, no byte
#      sent; inspect/images fetch nothing; `run` fetches the image's layers
#      (not the other stage's), each once, and works; a RUN on top of the
#      cached steps fetches its chain and runs;
#   3. B2 imports min: the other stage runs, every step of the result is CACHED
#      (COPY --from is keyed by the content copied);
#   4. a late file changed: C rebuilds only from that step;
#   5. four builders export to one ref at once: a fifth finds all their records;
#   6. an artifact whose layer is not what its record says: refused when the
#      layer is fetched (a clear error, nothing stored); built again: refused,
#      nothing of it used;
#   7. type=local: an OCI layout directory, exported and imported; a damaged blob refused;
#   8. what is not implemented is refused, naming it (cache mounts: cache-mounts.sh; inline: cache-inline.sh).
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

CACHE_TEST=cache
. "$IB_SOURCE_ROOT/tests/common/cache-setup.sh"

port=$(free_port)
start_registry reg "$port"
reg=127.0.0.1:$port
log=$tmp/reg/log
mark() { wc -l <"$log"; }
since() { tail -n +"$(($1 + 1))" "$log" | grep '^127\.0\.0\.1 ' || true; }
artifact() { # the records of REF (repository:tag) as JSON
	local m
	m=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$reg/v2/${1%:*}/manifests/${1##*:}")
	curl -fsS "http://$reg/v2/${1%:*}/blobs/$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["config"]["digest"])' "$m")"
}
nrecords() { artifact "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["records"]))'; }

mkdir -p "$tmp/ctx"
echo a >"$tmp/ctx/a.txt"
echo late >"$tmp/ctx/late.txt"
cat >"$tmp/ctx/Dockerfile" <<'EOF'
FROM busybox AS tool
RUN echo tool >/tool.txt
FROM busybox
COPY a.txt /a.txt
RUN cat /a.txt >/b.txt
COPY --from=tool /tool.txt /tool.txt
ENV X=1
COPY late.txt /late.txt
RUN cat /late.txt >>/b.txt
EOF

echo "== A builds and exports (min and max)"
fresh A
build A -t app --cache-to "type=registry,ref=$reg/cache:min" --cache-to "type=registry,ref=$reg/cache:max,mode=max" "$tmp/ctx"
[ "$(cached A)" = 0 ] || fail "A found cached steps in a fresh store"
[ "$(steps A)" = 7 ] || fail "A: $(steps A) steps, not 7"
idA=$(image_id A app)
[ "$(nrecords cache:min)" = 6 ] || fail "mode=min exported $(nrecords cache:min) records, not the result stage's 6"
[ "$(nrecords cache:max)" = 7 ] || fail "mode=max exported $(nrecords cache:max) records, not 7"
# the artifact's layers are the image's own gzip blobs
manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$reg/v2/cache/manifests/max")
python3 - "$manifest" <<'EOF' || fail "the artifact manifest: $manifest"
import json, sys
m = json.loads(sys.argv[1])
assert m["config"]["mediaType"] == "application/vnd.imagebuild.cache.config.v1+json", m
assert m["artifactType"] == m["config"]["mediaType"]
types = [l["mediaType"] for l in m["layers"]]
# the 6 steps with a layer and the base's; the image's config
assert types.count("application/vnd.oci.image.layer.v1.tar+gzip") == 7, types
assert types.count("application/vnd.oci.image.config.v1+json") == 1, types
EOF

echo "== B: a fresh store imports max: every step CACHED, the same image, no layer downloaded"
fresh B
m0=$(mark)
build B -t app --cache-from "type=registry,ref=$reg/cache:max" "$tmp/ctx"
[ "$(cached B)" = 7 ] || { cat "$tmp/B.out"; fail "B: $(cached B) of 7 steps CACHED"; }
[ "$(image_id B app)" = "$idA" ] || fail "B built $(image_id B app), A $idA"
gets=$(since "$m0" | grep -o '"GET /v2/cache/blobs/sha256:[0-9a-f]*' | sed 's/.*blobs\///' | sort)
config=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["config"]["digest"])' "$manifest")
layers=$(artifact cache:max | python3 -c 'import json,sys; print("\n".join(r["layer"]["digest"] for r in json.load(sys.stdin)["records"].values() if "layer" in r))' | sort -u)
[ "$(wc -l <<<"$layers")" = 6 ] || fail "the records name $(wc -l <<<"$layers") layers, not 6"
# the artifact's config only: every layer is a remote layer (the base's B has)
[ "$gets" = "$config" ] || fail "B downloaded other blobs than the artifact's config: $gets"
nremote() { ls "$tmp/$1/remote" 2>/dev/null | grep -c '\.json$' || true; }
[ "$(nremote B)" = 6 ] || fail "B has $(nremote B) remote layers, not 6"
"$IB" --root "$tmp/B" fsck >/dev/null || fail "fsck of B (remote layers are not missing layers)"
m0=$(mark)
"$IB" --root "$tmp/B" inspect app >/dev/null || fail "inspect of B's image"
"$IB" --root "$tmp/B" images >/dev/null || fail "images of B"
[ -z "$(since "$m0")" ] || fail "inspect/images went to the registry: $(since "$m0")"

echo "== B pushes the image to the cache's repository: no blob upload"
m0=$(mark)
out=$("$IB" --root "$tmp/B" push app "$reg/cache:app" 2>&1) || fail "push: $out"
! grep -q 'Pushed$' <<<"$out" || fail "push uploaded layers: $out"
uploads=$(since "$m0" | grep -c '"\(POST\|PUT\|PATCH\) /v2/cache/blobs/' || true)
[ "$uploads" = 0 ] || fail "push made $uploads blob upload requests: $(since "$m0")"
! since "$m0" | grep -q '"GET /v2/[^ ]*/blobs/' || fail "push downloaded blobs: $(since "$m0")"

echo "== B pushes to another repository of the registry: layers mounted, none fetched nor sent"
m0=$(mark)
out=$("$IB" --root "$tmp/B" push app "$reg/other:app" 2>&1) || fail "push to other: $out"
[ "$(since "$m0" | grep -c '"POST /v2/other/blobs/uploads/?mount=sha256:[0-9a-f]*&from=cache ')" = 5 ] ||
	fail "push to other did not mount the 5 remote layers: $(since "$m0")"
# bytes sent: only B's own blobs (the config, the base's layer), no remote layer's
sent=$(since "$m0" | grep -o '"\(PUT\|PATCH\) /v2/other/blobs/uploads/[^ ]*' | grep -o 'digest=sha256:[0-9a-f]*' |
	sed 's/digest=//' | sort || true)
[ -n "$sent" ] && [ -z "$(comm -12 <(echo "$sent") <(echo "$layers"))" ] ||
	fail "push to other sent remote layers: $sent"
! since "$m0" | grep -q '"GET /v2/[^ ]*/blobs/' || fail "push to other downloaded blobs: $(since "$m0")"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$reg/v2/other/manifests/app")" = 200 ] || fail "other:app is not in the registry"

echo "== run of B's image fetches its remote layers, once each, and works"
m0=$(mark)
[ "$("$IB" --root "$tmp/B" run --rm app cat /b.txt /tool.txt)" = "$(printf 'a\nlate\ntool')" ] ||
	fail "B's image does not run"
fetched=$(since "$m0" | grep -o '"GET /v2/cache/blobs/sha256:[0-9a-f]*' | sed 's/.*blobs\///' | sort)
[ -z "$(uniq -d <<<"$fetched")" ] || fail "run fetched a blob twice: $fetched"
[ "$(grep -c . <<<"$fetched")" = 5 ] || fail "run fetched not the image's 5 remote layers: $fetched"
[ "$(nremote B)" = 1 ] || fail "B has $(nremote B) remote layers left, not the other stage's"
"$IB" --root "$tmp/B" history app >/dev/null || fail "history of B's image"
"$IB" --root "$tmp/B" fsck >/dev/null || fail "fsck of B after run"
"$IB" --root "$tmp/B" rmi app >/dev/null && "$IB" --root "$tmp/B" prune >/dev/null || fail "rmi, prune of B"
[ "$(nremote B)" = 1 ] || fail "prune dropped the remote layer the build cache still uses"
"$IB" --root "$tmp/B" fsck >/dev/null || fail "fsck of B after prune"

echo "== a RUN on top of the cached steps fetches their chain and runs"
cp -r "$tmp/ctx" "$tmp/ctx3"
echo 'RUN cat /b.txt /tool.txt >/c.txt' >>"$tmp/ctx3/Dockerfile"
fresh B3
m0=$(mark)
build B3 -t app3 --cache-from "$reg/cache:max" "$tmp/ctx3"
[ "$(cached B3)" = 7 ] || fail "B3: $(cached B3) of 7 steps CACHED"
fetched=$(since "$m0" | grep -o '"GET /v2/cache/blobs/sha256:[0-9a-f]*' | sed 's/.*blobs\///' | sort)
[ "$(grep -vxc "$config" <<<"$fetched")" = 5 ] || fail "B3 fetched not the RUN's 5 remote layers: $fetched"
"$IB" --root "$tmp/B3" save app3 -o "$tmp/B3.tar" || fail "save of B3's image"
[ "$("$IB" --root "$tmp/B3" run --rm app3 cat /c.txt)" = "$(printf 'a\nlate\ntool')" ] || fail "B3's RUN on top"

echo "== B2 imports min: the other stage runs, the result's steps are CACHED"
fresh B2
build B2 -t app --cache-from "$reg/cache:min" "$tmp/ctx"
[ "$(cached B2)" = 6 ] || fail "B2: $(cached B2) of the 6 result steps CACHED"
[ "$(image_id B2 app)" = "$idA" ] || fail "B2 built another image"

echo "== C: a late file changed: only the steps from it run"
cp -r "$tmp/ctx" "$tmp/ctx2"
echo changed >"$tmp/ctx2/late.txt"
fresh C
build C -t app --cache-from "$reg/cache:max" "$tmp/ctx2"
grep -q '^#[0-9]* \[[a-z0-9 -]*5/6\] COPY late.txt' "$tmp/C.out" || fail "no COPY late.txt step: $(cat "$tmp/C.out")"
[ "$(cached C)" = 5 ] || fail "C: $(cached C) steps CACHED, not the 5 before late.txt"
python3 - "$tmp/C.out" <<'EOF' || fail "C: a step after late.txt was CACHED: $(cat "$tmp/C.out")"
import re, sys
out = open(sys.argv[1]).read().splitlines()
vert = {}
for l in out:
    m = re.match(r"#(\d+) (\[.*)", l)
    if m: vert[m.group(1)] = m.group(2)
cached = {vert.get(re.match(r"#(\d+)", l).group(1), "") for l in out if re.match(r"#\d+ CACHED$", l)}
assert not any("late" in v for v in cached), cached
EOF

echo "== four builders export to one ref at once: no record is lost"
for i in 1 2 3 4; do
	mkdir -p "$tmp/p$i"
	echo "$i" >"$tmp/p$i/f"
	printf 'FROM busybox\nCOPY f /f\nENV I=%s\n' "$i" >"$tmp/p$i/Dockerfile"
	fresh "P$i"
done
bpids=()
for i in 1 2 3 4; do
	build "P$i" -t "p$i" --cache-to "type=registry,ref=$reg/cache:shared,mode=max" "$tmp/p$i" &
	bpids+=($!)
done
for p in "${bpids[@]}"; do wait "$p" || fail "a concurrent builder failed"; done
[ "$(nrecords cache:shared)" = 8 ] || fail "the shared tag holds $(nrecords cache:shared) records, not 4 x 2"
fresh E
for i in 1 2 3 4; do
	build E -t "p$i" --cache-from "$reg/cache:shared" "$tmp/p$i"
	[ "$(cached E)" = 2 ] || fail "E: builder $i's steps were not all CACHED: $(cat "$tmp/E.out")"
	[ "$(image_id E "p$i")" = "$(image_id "P$i" "p$i")" ] || fail "E built another image than P$i"
done

echo "== an artifact whose layer is not its record's is refused, none of it used"
python3 - "$reg" <<'EOF' || fail "could not write the tampered artifact"
import hashlib, json, sys, urllib.request
reg = sys.argv[1]
def req(method, url, data=None, headers={}):
    r = urllib.request.Request(url, data=data, method=method, headers=headers)
    return urllib.request.urlopen(r)
mt = "application/vnd.oci.image.manifest.v1+json"
m = json.load(req("GET", f"http://{reg}/v2/cache/manifests/max", headers={"Accept": mt}))
doc = json.load(req("GET", f"http://{reg}/v2/cache/blobs/{m['config']['digest']}"))
recs = [r for r in doc["records"].values() if "layer" in r]
# every record keeps its diff_id but names the next record's blob
blobs = [(r["layer"]["digest"], r["layer"]["size"]) for r in recs]
for r, (d, s) in zip(recs, blobs[1:] + blobs[:1]):
    r["layer"]["digest"], r["layer"]["size"] = d, s
body = json.dumps(doc).encode()
digest = "sha256:" + hashlib.sha256(body).hexdigest()
loc = req("POST", f"http://{reg}/v2/cache/blobs/uploads/").headers["Location"]
if loc.startswith("/"): loc = f"http://{reg}{loc}"
req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + digest, body, {"Content-Type": "application/octet-stream"})
m["config"]["digest"], m["config"]["size"] = digest, len(body)
req("PUT", f"http://{reg}/v2/cache/manifests/bad", json.dumps(m).encode(), {"Content-Type": mt})
EOF
fresh F
# the layers are remote: nothing is fetched, so nothing refused yet
build F -t app --cache-from "$reg/cache:bad" "$tmp/ctx"
[ "$(cached F)" = 7 ] || fail "F: $(cached F) steps of 7 taken lazily"
# the first layer fetched (for run) is refused: a clear error, nothing of it stored
if "$IB" --root "$tmp/F" run --rm app true >"$tmp/F.run" 2>&1; then fail "F ran layers that are not their records'"; fi
grep -q "fetch layer sha256:[0-9a-f]* (blob sha256:[0-9a-f]* from $reg/cache; nothing stored" "$tmp/F.run" ||
	fail "the error does not name the layer, the blob and the registry: $(cat "$tmp/F.run")"
for d in $layers; do
	[ ! -e "$tmp/F/blobs/sha256/${d#sha256:}" ] || fail "F stored blob $d of a refused fetch"
done
[ "$(nremote F)" = 0 ] || fail "F kept remote layers of a repository whose blob failed its check"
# built again: the records' layers are fetched and checked at once: the artifact refused, nothing used
build F -t app --cache-from "$reg/cache:bad" "$tmp/ctx"
grep -q 'cache import .*cache:bad: refused: .*not\|cache import .*cache:bad: refused' "$tmp/F.out" ||
	fail "F did not refuse the artifact: $(cat "$tmp/F.out")"
[ "$(cached F)" = 0 ] || fail "F used $(cached F) steps of a refused artifact"
"$IB" --root "$tmp/F" run --rm app cat /b.txt >"$tmp/F.b" || fail "F's image does not run"
[ "$(cat "$tmp/F.b")" = "$(printf 'a\nlate')" ] || fail "F's image: $(cat "$tmp/F.b")"

echo "== type=local: an OCI layout directory"
mkdir -p "$tmp/lctx"
cp "$tmp/ctx/a.txt" "$tmp/ctx/late.txt" "$tmp/lctx/"
printf 'FROM busybox AS one\nCOPY a.txt /\nFROM busybox\nCOPY late.txt /\nCOPY --from=one /a.txt /b.txt\nENV X=1\n' \
	>"$tmp/lctx/Dockerfile"
fresh L
build L -t app --cache-to "type=local,dest=$tmp/lc,mode=max" "$tmp/lctx"
[ -f "$tmp/lc/oci-layout" ] || fail "no oci-layout in the local cache"
python3 - "$tmp/lc" <<'EOF2' || fail "the local cache's layout"
import json, os, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
m = json.load(open(os.path.join(d, "blobs", *idx["manifests"][0]["digest"].split(":"))))
assert m["config"]["mediaType"] == "application/vnd.imagebuild.cache.config.v1+json"
for l in m["layers"]:
    assert os.path.getsize(os.path.join(d, "blobs", *l["digest"].split(":"))) == l["size"], l
recs = json.load(open(os.path.join(d, "blobs", *m["config"]["digest"].split(":"))))["records"]
assert len(recs) == 4, len(recs)
EOF2
fresh L2
build L2 -t app --cache-from "type=local,src=$tmp/lc" "$tmp/lctx"
[ "$(cached L2)" = 4 ] || fail "L2: $(cached L2) of 4 steps CACHED from the directory"
[ "$(image_id L2 app)" = "$(image_id L app)" ] || fail "L2 built another image than L"
# a layer blob of the directory changed: refused, nothing used
victim=$(python3 - "$tmp/lc" <<'EOF2'
import json, os, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
m = json.load(open(os.path.join(d, "blobs", *idx["manifests"][0]["digest"].split(":"))))
recs = json.load(open(os.path.join(d, "blobs", *m["config"]["digest"].split(":"))))["records"]
print(os.path.join(d, "blobs", *sorted(r["layer"]["digest"] for r in recs.values() if "layer" in r)[0].split(":")))
EOF2
)
printf 'X' | dd of="$victim" bs=1 seek=600 conv=notrunc 2>/dev/null
fresh L3
build L3 -t app --cache-from "type=local,src=$tmp/lc" "$tmp/lctx"
grep -q "cache import $tmp/lc: refused" "$tmp/L3.out" || fail "L3 did not refuse a damaged directory: $(cat "$tmp/L3.out")"
[ "$(cached L3)" -lt 4 ] || fail "L3 took every step from a damaged directory"

echo "== what is not implemented is refused, naming it"
refused() {
	local want=$1
	shift
	if "$IB" --root "$tmp/A" build -q "$@" "$tmp/ctx" >"$tmp/r.out" 2>&1; then fail "accepted: $*"; fi
	grep -q -- "$want" "$tmp/r.out" || fail "refusal of $* does not say '$want': $(cat "$tmp/r.out")"
}
refused 'type=local takes dest=, not ref=' --cache-to "type=local,ref=$tmp/x"
refused 'type=registry takes ref=, not src=' --cache-from "type=registry,src=$tmp/x"
refused 'type=azblob is not supported' --cache-to type=azblob
refused 'type=gha is not supported' --cache-from type=gha
refused '`compression=` is not supported' --cache-to "type=registry,ref=$reg/c:x,compression=zstd"
refused 'cache-mounts= needs ids' --cache-to "type=registry,ref=$reg/c:x,cache-mounts="
refused 'mode=all: min or max' --cache-to "type=registry,ref=$reg/c:x,mode=all"
refused 'a tag, not a digest' --cache-from "type=registry,ref=$reg/c@sha256:$(printf %064d 0)"
# a missing cache is a warning, as BuildKit's
build A -t app --cache-from "$reg/cache:nothing" "$tmp/ctx"
grep -q 'cache import .*cache:nothing' "$tmp/A.out" || fail "no warning for a missing cache"
echo OK
