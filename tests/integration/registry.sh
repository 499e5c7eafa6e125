#!/usr/bin/env bash
# imagebuild push/pull/login against real registries (Debian's docker-registry):
#   1. plain HTTP, anonymous: push (layers leave gzip, the image id stays),
#      skopeo and podman read what we pushed, push again (layers exist),
#      pull into a fresh store (same id) and run it, pull what skopeo pushed;
#   2. TLS (a CA made here) + htpasswd: no credentials and a wrong password
#      fail with the registry's 401, login writes ~/.docker/config.json
#      (0600), push and pull with it, a wrong CA fails, logout.
# Running the pulled image needs root (privileged suite).
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${IMAGEBUILD:?}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
for tool in skopeo podman openssl python3 curl; do
	command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done
[ "$(id -u)" = 0 ] || skip_or_fail "running the pulled image needs root"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-registry-XXXXXX")
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
export DOCKER_CONFIG=$tmp/docker
export HOME=$tmp/home
# free_port; start_registry NAME PORT [EXTRA YAML]: run a registry and wait until it answers
. "$IB_SOURCE_ROOT/tests/common/registry.sh"

rc=0
"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
[ "$rc" = 0 ] || fail "make-busybox-tar.sh exited $rc"

root=$tmp/store
ib() { "$IB" --root "$root" "$@"; }
ib import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null
# a second layer, uncompressed in the store like every built layer
mkdir -p "$tmp/ctx"
echo "hello from the registry" >"$tmp/ctx/hello.txt"
printf 'FROM busybox\nCOPY hello.txt /hello.txt\nCMD ["cat", "/hello.txt"]\n' >"$tmp/ctx/Dockerfile"
ib build -q -t app "$tmp/ctx" >/dev/null
id=$(ib inspect app | json 'd[0]["Id"]')
[ "$(ib inspect app | json 'len(d[0]["RootFS"]["Layers"])')" = 2 ] || fail "app does not have two layers"

port=$(free_port)
start_registry plain "$port"
reg=127.0.0.1:$port

echo "== push to $reg (plain HTTP, anonymous)"
out=$(ib push app "$reg/app:1" 2>&1)
echo "$out"
[ "$(echo "$out" | grep -c ': Pushed$')" = 2 ] || fail "push did not report two pushed layers"
digest=$(echo "$out" | sed -n 's/^1: digest: //p')
[[ $digest == sha256:* ]] || fail "push printed no digest"

echo "== skopeo sees gzip layers and the same config"
raw=$(skopeo inspect --raw --tls-verify=false "docker://$reg/app:1")
[ "$(echo "$raw" | json 'd["config"]["digest"]')" = "$id" ] || fail "the pushed config is not the image id"
[ "$(echo "$raw" | json 'sorted(set(l["mediaType"] for l in d["layers"]))')" = \
	"['application/vnd.oci.image.layer.v1.tar+gzip']" ] || fail "pushed layers are not gzip: $raw"
[ "$(skopeo inspect --tls-verify=false "docker://$reg/app:1" | json 'd["Digest"]')" = "$digest" ] ||
	fail "skopeo sees another manifest digest"

echo "== RepoDigests after push: REPOSITORY@the registry's manifest digest"
regdigest=$(curl -fsSI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$reg/v2/app/manifests/1" |
	tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
[ "$regdigest" = "$digest" ] || fail "the registry's digest $regdigest is not the pushed $digest"
[ "$(ib inspect app | json 'd[0]["RepoDigests"]')" = "['$reg/app@$digest']" ] ||
	fail "RepoDigests after push: $(ib inspect app | json 'd[0]["RepoDigests"]')"
[ "$(ib inspect --format '{{.RepoDigests}}' app)" = "[$reg/app@$digest]" ] || fail "{{.RepoDigests}}"
size=$(ib inspect app | json 'd[0]["Size"]')

echo "== push again: every layer exists, same digest"
out=$(ib push app "$reg/app:1" 2>&1)
[ "$(echo "$out" | grep -c 'Layer already exists$')" = 2 ] || fail "second push: $out"
[ "$(echo "$out" | sed -n 's/^1: digest: //p')" = "$digest" ] || fail "second push gave another digest"
[ "$(ib inspect app | json 'len(d[0]["RepoDigests"])')" = 1 ] || fail "the second push added a RepoDigests entry"

echo "== pull into a fresh store, run it"
root2=$tmp/store2
"$IB" --root "$root2" pull "$reg/app:1"
[ "$("$IB" --root "$root2" inspect "$reg/app:1" | json 'd[0]["Id"]')" = "$id" ] || fail "pulled another image id"
"$IB" --root "$root2" fsck >/dev/null || fail "fsck after pull"
[ "$("$IB" --root "$root2" inspect "$reg/app:1" | json 'd[0]["RepoDigests"]')" = "['$reg/app@$digest']" ] ||
	fail "RepoDigests after pull: $("$IB" --root "$root2" inspect "$reg/app:1")"
[ "$("$IB" --root "$root2" images --digests --format '{{.Repository}}:{{.Tag}} {{.Digest}}')" = "$reg/app:1 $digest" ] ||
	fail "images --digests: $("$IB" --root "$root2" images --digests)"
"$IB" --root "$root2" images --digests | grep -q "^$reg/app  *1  *$digest " || fail "images --digests: no DIGEST column"
[ "$("$IB" --root "$root2" images --format '{{.Tag}} {{.Digest}}')" = "1 $digest" ] || fail "{{.Digest}} without --digests"
# one image, one Size: built here (uncompressed layers) and pulled (gzip layers)
[ "$("$IB" --root "$root2" inspect "$reg/app:1" | json 'd[0]["Size"]')" = "$size" ] || fail "Size differs after pull"
[ "$("$IB" --root "$root2" run --rm "$reg/app:1")" = "hello from the registry" ] || fail "the pulled image does not run"
out=$("$IB" --root "$root2" pull "$reg/app:1" 2>&1)
grep -q 'Already exists' <<<"$out" || fail "second pull fetched layers again: $out"
"$IB" --root "$root2" pull "$reg/app@$digest" >/dev/null || fail "pull by digest"
[ "$("$IB" --root "$root2" inspect "$reg/app@$digest" | json 'd[0]["RepoDigests"]')" = "['$reg/app@$digest']" ] ||
	fail "RepoDigests after pull by digest"
# a pulled image goes back as it came: same manifest digest
out=$("$IB" --root "$root2" push "$reg/app:1" "$reg/again:1" 2>&1)
grep -q "digest: $digest" <<<"$out" || fail "re-push changed the digest: $out"
# ... its layers mounted from the repository it came from
[ "$(grep -c 'Mounted from app$' <<<"$out")" = 2 ] || fail "re-push did not mount the layers: $out"
[ "$("$IB" --root "$root2" inspect "$reg/app:1" | json 'd[0]["RepoDigests"]')" = "['$reg/again@$digest', '$reg/app@$digest']" ] ||
	fail "RepoDigests after a second push: $("$IB" --root "$root2" inspect "$reg/app:1" | json 'd[0]["RepoDigests"]')"
if "$IB" --root "$root2" pull "$reg/app:nope" 2>"$tmp/err"; then fail "pull of a missing tag worked"; fi
grep -q "pull from $reg/app: manifest nope: 404 MANIFEST_UNKNOWN" "$tmp/err" || fail "missing tag: $(cat "$tmp/err")"

echo "== an index: pull takes this host's platform"
ib push busybox "$reg/app:bb" >/dev/null
bbdigest=$(skopeo inspect --tls-verify=false "docker://$reg/app:bb" | json 'd["Digest"]')
arch=$(ib inspect app | json 'd[0]["Architecture"]')
other=arm64; [ "$arch" != arm64 ] || other=amd64
size() { skopeo inspect --raw --tls-verify=false "docker://$reg/app@$1" | wc -c; }
index=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' \
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$bbdigest\",\"size\":$(size "$bbdigest"),\"platform\":{\"os\":\"linux\",\"architecture\":\"$other\"}}" \
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$digest\",\"size\":$(size "$digest"),\"platform\":{\"os\":\"linux\",\"architecture\":\"$arch\"}}")
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary "$index" \
	"http://$reg/v2/app/manifests/multi" >/dev/null || fail "could not put an index"
root6=$tmp/store6
"$IB" --root "$root6" pull "$reg/app:multi" >/dev/null || fail "pull of an index"
[ "$("$IB" --root "$root6" inspect "$reg/app:multi" | json 'd[0]["Id"]')" = "$id" ] ||
	fail "pull of an index did not take the linux/$arch image"
"$IB" --root "$root6" fsck >/dev/null || fail "fsck after pulling an index"
# docker records the digest the tag gave: the index's
[ "$("$IB" --root "$root6" inspect "$reg/app:multi" | json 'd[0]["RepoDigests"]')" = \
	"['$reg/app@sha256:$(printf %s "$index" | sha256sum | cut -d' ' -f1)']" ] || fail "RepoDigests of a pulled index"

echo "== podman pulls what we pushed"
pod=(env -u DOCKER_CONFIG podman --root "$tmp/podman/root" --runroot "$tmp/podman/run" --storage-driver vfs)
"${pod[@]}" pull -q --tls-verify=false "$reg/app:1" >/dev/null || fail "podman pull"
[ "$("${pod[@]}" image inspect "$reg/app:1" --format '{{.ID}}')" = "${id#sha256:}" ] || fail "podman sees another id"

echo "== pull what skopeo pushed"
ib save --format oci --ref-name bb -o "$tmp/oci" busybox
skopeo copy -q --dest-tls-verify=false "oci:$tmp/oci:bb" "docker://$reg/copied:1"
root3=$tmp/store3
"$IB" --root "$root3" pull "$reg/copied:1" >/dev/null || fail "pull of the skopeo copy"
[ "$("$IB" --root "$root3" inspect "$reg/copied:1" | json 'd[0]["Id"]')" = "$(ib inspect busybox | json 'd[0]["Id"]')" ] ||
	fail "the skopeo copy pulled as another image"
[ "$("$IB" --root "$root3" run --rm "$reg/copied:1" echo ok)" = ok ] || fail "the skopeo copy does not run"

echo "== build pulls the base it starts from, run pulls what it lacks"
root4=$tmp/store4
mkdir -p "$tmp/ctx2"
printf 'FROM %s/app:1\nRUN cat /hello.txt > /copy.txt\nCMD ["cat", "/copy.txt"]\n' "$reg" >"$tmp/ctx2/Dockerfile"
"$IB" --root "$root4" build -t onpulled "$tmp/ctx2" >"$tmp/b4.log" 2>&1 || { cat "$tmp/b4.log"; fail "build FROM a registry image"; }
grep -q "pulling $reg/app:1" "$tmp/b4.log" || fail "build did not pull its base: $(cat "$tmp/b4.log")"
[ "$("$IB" --root "$root4" run --rm onpulled)" = "hello from the registry" ] || fail "the build on a pulled base does not run"
root5=$tmp/store5
[ "$("$IB" --root "$root5" run --rm "$reg/app:1" 2>/dev/null)" = "hello from the registry" ] || fail "run did not pull a missing image"

echo "== an insecure registry that spoke plain HTTP is asked in HTTP first next time (no TLS attempt)"
[ -f "$root/hosts/$reg.http" ] || fail "no memo of $reg speaking plain HTTP: $(ls "$root/hosts" 2>&1)"
# a relay in front of the registry notes whether each connection opens with a TLS handshake
rport=$(free_port)
/usr/bin/python3 - "$rport" "$port" "$tmp/relay.log" <<'PY' &
import socket, sys, threading
lport, dport, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", lport))
srv.listen(16)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def serve(c):
    first = c.recv(1, socket.MSG_PEEK)
    with open(log, "a") as f:
        f.write("tls\n" if first == b"\x16" else "plain\n")
    u = socket.create_connection(("127.0.0.1", dport))
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    pipe(c, u)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && break; sleep 0.05; done
: >"$tmp/relay.log"
rreg=127.0.0.1:$rport
ib push app "$rreg/app:relay" >/dev/null
[ "$(grep -c '^tls$' "$tmp/relay.log")" = 1 ] || fail "the first push did not try TLS once: $(cat "$tmp/relay.log")"
[ -f "$root/hosts/$rreg.http" ] || fail "no memo of $rreg"
: >"$tmp/relay.log"
ib push app "$rreg/app:relay" >/dev/null
! grep -q '^tls$' "$tmp/relay.log" || fail "the second push tried TLS: $(cat "$tmp/relay.log")"
grep -q '^plain$' "$tmp/relay.log" || fail "the second push went nowhere: $(cat "$tmp/relay.log")"
: >"$tmp/relay.log"
"$IB" --root "$root" pull "$rreg/app:relay" >/dev/null
! grep -q '^tls$' "$tmp/relay.log" || fail "the pull tried TLS: $(cat "$tmp/relay.log")"

echo "== TLS + htpasswd"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.crt" -days 1 -subj "/CN=ib test CA" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/other.key" -out "$tmp/other.crt" -days 1 -subj "/CN=other CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$tmp/srv.key" -out "$tmp/srv.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tmp/ext.cnf"
openssl x509 -req -in "$tmp/srv.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial -out "$tmp/srv.crt" \
	-days 1 -extfile "$tmp/ext.cnf" 2>/dev/null
/usr/bin/python3 -W ignore -c 'import crypt; print("alice:" + crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
	>"$tmp/htpasswd"
tport=$(free_port)
tls_yaml=$(printf '  tls:\n    certificate: %s\n    key: %s\nauth:\n  htpasswd:\n    realm: ib-test\n    path: %s' \
	"$tmp/srv.crt" "$tmp/srv.key" "$tmp/htpasswd")
start_registry tls "$tport" "$tls_yaml"
treg=127.0.0.1:$tport
if ib push --tls-ca "$tmp/ca.crt" app "$treg/app:1" 2>"$tmp/err"; then fail "anonymous push worked"; fi
grep -q "push to $treg/app: /v2/: 401 UNAUTHORIZED: authentication required (no credentials" "$tmp/err" ||
	fail "anonymous push: $(cat "$tmp/err")"
if echo wrong | ib login --tls-ca "$tmp/ca.crt" -u alice --password-stdin "$treg" 2>"$tmp/err"; then
	fail "login with a wrong password worked"
fi
grep -q "401 UNAUTHORIZED" "$tmp/err" || fail "wrong password: $(cat "$tmp/err")"
[ ! -e "$DOCKER_CONFIG/config.json" ] || fail "a failed login wrote config.json"
out=$(echo s3cret | ib login --tls-ca "$tmp/ca.crt" -u alice --password-stdin "$treg")
grep -q 'Login Succeeded' <<<"$out" || fail "login: $out"
[ "$(stat -c %a "$DOCKER_CONFIG/config.json")" = 600 ] || fail "config.json is not 0600"
[ "$(json "d['auths']['$treg']['auth']" <"$DOCKER_CONFIG/config.json")" = "$(printf alice:s3cret | base64)" ] ||
	fail "config.json: $(cat "$DOCKER_CONFIG/config.json")"
tdigest=$(ib push --tls-ca "$tmp/ca.crt" app "$treg/app:1" | sed -n 's/^1: digest: //p')
[ "$tdigest" = "$digest" ] || fail "TLS push gave digest '$tdigest', not $digest"
if ib push --tls-ca "$tmp/other.crt" app "$treg/app:1" 2>"$tmp/err"; then fail "push with the wrong CA worked"; fi
grep -qi "certificate" "$tmp/err" || fail "wrong CA: $(cat "$tmp/err")"
[ "$(skopeo inspect --creds alice:s3cret --cert-dir /nonexistent --tls-verify=false "docker://$treg/app:1" | json 'd["Digest"]')" = "$digest" ] ||
	fail "skopeo does not see the TLS push"
# a memo that says plain HTTP for a registry that now speaks TLS: HTTPS is tried, and the memo forgotten
touch "$root/hosts/$treg.http"
tdigest=$(ib push --tls-ca "$tmp/ca.crt" app "$treg/app:1" | sed -n 's/^1: digest: //p')
[ "$tdigest" = "$digest" ] || fail "TLS push with a stale memo gave digest '$tdigest', not $digest"
[ ! -e "$root/hosts/$treg.http" ] || fail "the stale memo of $treg stays"
root4=$tmp/store4
"$IB" --root "$root4" pull --tls-ca "$tmp/ca.crt" "$treg/app:1" >/dev/null
[ "$("$IB" --root "$root4" inspect "$treg/app:1" | json 'd[0]["Id"]')" = "$id" ] || fail "TLS pull: another image id"
out=$(ib logout "$treg")
grep -q 'Removing login credentials' <<<"$out" || fail "logout: $out"
if "$IB" --root "$tmp/store5" pull --tls-ca "$tmp/ca.crt" "$treg/app:1" 2>"$tmp/err"; then fail "pull after logout worked"; fi
grep -q "401 UNAUTHORIZED" "$tmp/err" || fail "pull after logout: $(cat "$tmp/err")"
echo "OK"
