#!/usr/bin/env bash
# build --cache-to type=inline / --cache-from IMAGE (docs/cache.md): the cache
# records in the image's own config, against the real docker-registry:
#   1. A builds with --cache-to type=inline and pushes: the config holds the records;
#   2. B, a fresh store, builds with --cache-from that image (and type=inline):
#      every step CACHED, the same image id; without type=inline: no records in it;
#   3. an image FROM A's does not inherit A's records;
#   4. an image whose layers are not its records' is refused, none of it used;
#   5. type=inline with options BuildKit's inline cache does not have is refused.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

CACHE_TEST=cachei
. "$IB_SOURCE_ROOT/tests/common/cache-setup.sh"
port=$(free_port)
start_registry reg "$port"
reg=127.0.0.1:$port
# the config of REPO:TAG in the registry
config() {
	local m
	m=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$reg/v2/${1%:*}/manifests/${1##*:}")
	curl -fsS "http://$reg/v2/${1%:*}/blobs/$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["config"]["digest"])' "$m")"
}
nrecords() { config "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("imagebuild.cache.v1", {}).get("records", {})))'; }

mkdir -p "$tmp/ctx"
echo a >"$tmp/ctx/a.txt"
cat >"$tmp/ctx/Dockerfile" <<'EOF'
FROM busybox AS tool
RUN echo tool >/tool.txt
FROM busybox
COPY a.txt /a.txt
RUN cat /a.txt >/b.txt
COPY --from=tool /tool.txt /tool.txt
ENV X=1
EOF

echo "== A builds with --cache-to type=inline and pushes"
fresh A
build A -t app --cache-to type=inline "$tmp/ctx"
"$IB" --root "$tmp/A" push app "$reg/app:1" >/dev/null 2>&1 || fail "push of A's image"
# the result stage's 4 steps (min): not the other stage's RUN
[ "$(nrecords app:1)" = 4 ] || fail "the image config holds $(nrecords app:1) records, not 4: $(config app:1)"
idA=$(image_id A app)

echo "== B: a fresh store, --cache-from the image: every step of the final stage CACHED, the same image"
fresh B
build B -t app --cache-from "$reg/app:1" --cache-to type=inline "$tmp/ctx"
grep -q "cache import $reg/app:1: 4 records" "$tmp/B.out" || fail "B did not read 4 records: $(cat "$tmp/B.out")"
python3 - "$tmp/B.out" <<'EOF' || fail "B: a step of the final stage was not CACHED: $(cat "$tmp/B.out")"
import re, sys
out = open(sys.argv[1]).read().splitlines()
vert = {}
for l in out:
    m = re.match(r"#(\d+) (\[stage-1 .*)", l)
    if m: vert[m.group(1)] = m.group(2)
cached = {re.match(r"#(\d+)", l).group(1) for l in out if re.match(r"#\d+ CACHED$", l)}
steps = [v for k, v in vert.items() if "FROM" not in v]
assert len(steps) == 4, vert
assert all(k in cached for k, v in vert.items() if "FROM" not in v), (vert, cached)
EOF
[ "$(image_id B app)" = "$idA" ] || fail "B built $(image_id B app), A $idA"
"$IB" --root "$tmp/B" run --rm app cat /b.txt /tool.txt >"$tmp/B.run"
[ "$(cat "$tmp/B.run")" = "$(printf 'a\ntool')" ] || fail "B's image: $(cat "$tmp/B.run")"
# as type=registry,ref= too, and without type=inline the image has no records
fresh B0
build B0 -t app --cache-from "type=registry,ref=$reg/app:1" "$tmp/ctx"
[ "$(cached B0)" -ge 4 ] || fail "B0: $(cached B0) steps CACHED"
"$IB" --root "$tmp/B0" push app "$reg/app:b0" >/dev/null 2>&1
[ "$(nrecords app:b0)" = 0 ] || fail "B0's image has inline records without --cache-to type=inline"

# BUILDKIT_INLINE_CACHE=1 is BuildKit's older way to say type=inline: the same image
fresh B1
build B1 -t app --cache-from "$reg/app:1" --build-arg BUILDKIT_INLINE_CACHE=1 "$tmp/ctx"
[ "$(image_id B1 app)" = "$idA" ] || fail "BUILDKIT_INLINE_CACHE=1 built $(image_id B1 app), A $idA"

echo "== an image FROM A's does not inherit its records"
mkdir -p "$tmp/child"
printf 'FROM %s\nENV Y=2\n' "$reg/app:1" >"$tmp/child/Dockerfile"
fresh CH
build CH -t child "$tmp/child"
"$IB" --root "$tmp/CH" push child "$reg/child:1" >/dev/null 2>&1
config child:1 | grep -q imagebuild.cache && fail "the child image carries its base's records: $(config child:1)"

echo "== an image whose layers are not its records' is refused, none of it used"
python3 - "$reg" <<'EOF' || fail "could not write the tampered image"
import json, sys, urllib.request
reg = sys.argv[1]
def req(method, url, data=None, headers={}):
    return urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers))
mt = "application/vnd.oci.image.manifest.v1+json"
m = json.load(req("GET", f"http://{reg}/v2/app/manifests/1", headers={"Accept": mt}))
# the two top layers swapped: each record's diff_id now names the other's blob
m["layers"][-1], m["layers"][-2] = m["layers"][-2], m["layers"][-1]
req("PUT", f"http://{reg}/v2/app/manifests/bad", json.dumps(m).encode(), {"Content-Type": mt})
EOF
fresh F
build F -t app --cache-from "$reg/app:bad" "$tmp/ctx"
grep -q "cache import $reg/app:bad: refused" "$tmp/F.out" || fail "F did not refuse the image: $(cat "$tmp/F.out")"
[ "$(cached F)" -le 1 ] || fail "F used $(cached F) steps of a refused image"
"$IB" --root "$tmp/F" run --rm app cat /b.txt /tool.txt >"$tmp/F.run"
[ "$(cat "$tmp/F.run")" = "$(printf 'a\ntool')" ] || fail "F's image: $(cat "$tmp/F.run")"

echo "== refused: what BuildKit's inline cache does not have"
refused() {
	local want=$1
	shift
	if "$IB" --root "$tmp/A" build -q "$@" "$tmp/ctx" >"$tmp/r.out" 2>&1; then fail "accepted: $*"; fi
	grep -q -- "$want" "$tmp/r.out" || fail "refusal of $* does not say '$want': $(cat "$tmp/r.out")"
}
refused '`mode=` is not supported with type=inline' --cache-to type=inline,mode=max
refused '`ref=` is not supported with type=inline' --cache-to "type=inline,ref=$reg/x:y"
refused '`cache-mounts=` is not supported with type=inline' --cache-to type=inline,cache-mounts=all
refused 'an inline cache is read from its image' --cache-from type=inline
# an image without records: a warning, the build goes on
build A -t app2 --cache-from "$reg/child:1" "$tmp/ctx"
grep -q "cache import $reg/child:1: an image without inline cache records" "$tmp/A.out" ||
	fail "no warning for an image without records: $(cat "$tmp/A.out")"
echo OK
