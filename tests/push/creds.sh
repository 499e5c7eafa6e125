#!/usr/bin/env bash
# Credentials and registries.conf end to end, against Debian's
# docker-registry on 127.0.0.1 (htpasswd, bcrypt):
#   1. a credential helper (tests/push/fake-helper, its calls logged):
#      login stores through it and leaves no secret in config.json; push
#      and pull call `get` once per registry; logout erases; credHelpers
#      and credsStore; the helper's stderr (it prints the secret) never shows;
#   2. auth.json in podman's order: REGISTRY_AUTH_FILE > XDG_RUNTIME_DIR >
#      ~/.config > Docker's config, and --authfile;
#   4. a token server (tests/push/token-server.py): a token for Basic
#      credentials, and an `identitytoken` (in config.json or from a helper)
#      traded by POST grant_type=refresh_token;
#   3. registries.conf: an unqualified name (and a build's FROM) pulled
#      through a mirror of docker.io; podman pulls through the same file
#      and resolves the same image; a blocked registry is refused.
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=${1:?usage: creds.sh IMAGEBUILD}
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
for tool in htpasswd podman python3 openssl; do
	command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-creds-XXXXXX")
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
count() { grep -cx "$1" "$2" || true; }

export HOME=$tmp/home DOCKER_CONFIG=$tmp/home/.docker XDG_RUNTIME_DIR=$tmp/run
unset REGISTRY_AUTH_FILE XDG_CONFIG_HOME
mkdir -p "$HOME" "$DOCKER_CONFIG" "$XDG_RUNTIME_DIR"
export CONTAINERS_REGISTRIES_CONF=$tmp/empty.conf
: >"$CONTAINERS_REGISTRIES_CONF"
export PATH=$IB_SOURCE_ROOT/tests/push/fake-helper:$PATH
export FAKE_HELPER_LOG=$tmp/helper.log FAKE_HELPER_DB=$tmp/helper.db
. "$IB_SOURCE_ROOT/tests/common/registry.sh"

rc=0
"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" || rc=$?
[ "$rc" = 77 ] && skip_or_fail "busybox-static is not installed"
[ "$rc" = 0 ] || fail "make-busybox-tar.sh exited $rc"
root=$tmp/store
ib() { "$IB" --root "$root" "$@"; }
ib import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null
id=$(ib inspect busybox | json 'd[0]["Id"]')

htpasswd -Bbn alice s3cret >"$tmp/htpasswd" 2>/dev/null
port=$(free_port)
start_registry auth "$port" "$(printf 'auth:\n  htpasswd:\n    realm: ib-test\n    path: %s' "$tmp/htpasswd")"
reg=127.0.0.1:$port
if ib push busybox "$reg/bb:1" >/dev/null 2>"$tmp/err"; then fail "anonymous push worked"; fi

echo "== 1. credsStore: login stores through the helper, no secret in config.json"
echo '{"credsStore": "fake"}' >"$DOCKER_CONFIG/config.json"
out=$(echo s3cret | ib login -u alice --password-stdin "$reg")
grep -q 'Login Succeeded' <<<"$out" || fail "login: $out"
[ "$(count "store $reg" "$FAKE_HELPER_LOG")" = 1 ] || fail "login did not store once: $(cat "$FAKE_HELPER_LOG")"
! grep -q s3cret "$DOCKER_CONFIG/config.json" || fail "the secret is in config.json: $(cat "$DOCKER_CONFIG/config.json")"
[ "$(json "d['auths']['$reg']" <"$DOCKER_CONFIG/config.json")" = "{}" ] ||
	fail "config.json has no empty entry for $reg: $(cat "$DOCKER_CONFIG/config.json")"
[ "$(json "d['credsStore']" <"$DOCKER_CONFIG/config.json")" = fake ] || fail "login lost credsStore"
grep -q s3cret "$FAKE_HELPER_DB" || fail "the helper does not hold the secret"

echo "== push and pull: one get per registry per operation; the helper's stderr never shows"
: >"$FAKE_HELPER_LOG"
ib push busybox "$reg/bb:1" >"$tmp/out" 2>"$tmp/err" || fail "push with the helper's credentials: $(cat "$tmp/err")"
[ "$(count "get $reg" "$FAKE_HELPER_LOG")" = 1 ] || fail "push: helper calls: $(cat "$FAKE_HELPER_LOG")"
[ "$(wc -l <"$FAKE_HELPER_LOG")" = 1 ] || fail "push: other helper calls: $(cat "$FAKE_HELPER_LOG")"
! grep -q s3cret "$tmp/out" "$tmp/err" || fail "the secret was printed"
: >"$FAKE_HELPER_LOG"
"$IB" --root "$tmp/store-pull" pull "$reg/bb:1" >/dev/null 2>"$tmp/err" || fail "pull with the helper: $(cat "$tmp/err")"
[ "$(count "get $reg" "$FAKE_HELPER_LOG")" = 1 ] || fail "pull: helper calls: $(cat "$FAKE_HELPER_LOG")"
[ "$("$IB" --root "$tmp/store-pull" inspect "$reg/bb:1" | json 'd[0]["Id"]')" = "$id" ] || fail "pulled another image"

echo "== logout erases through the helper"
: >"$FAKE_HELPER_LOG"
out=$(ib logout "$reg")
grep -q 'Removing login credentials' <<<"$out" || fail "logout: $out"
[ "$(count "erase $reg" "$FAKE_HELPER_LOG")" = 1 ] || fail "logout: helper calls: $(cat "$FAKE_HELPER_LOG")"
! grep -q s3cret "$FAKE_HELPER_DB" || fail "the helper still holds the secret"
! grep -q "$reg" "$DOCKER_CONFIG/config.json" || fail "logout left the entry: $(cat "$DOCKER_CONFIG/config.json")"
if "$IB" --root "$tmp/store-pull2" pull "$reg/bb:1" >/dev/null 2>"$tmp/err"; then fail "pull after logout worked"; fi
grep -q "401" "$tmp/err" || fail "pull after logout: $(cat "$tmp/err")"

echo "== credHelpers: that registry through the helper"
printf '{"credHelpers": {"%s": "fake"}}\n' "$reg" >"$DOCKER_CONFIG/config.json"
: >"$FAKE_HELPER_LOG"
echo s3cret | ib login -u alice --password-stdin "$reg" >/dev/null || fail "login with credHelpers"
! grep -q s3cret "$DOCKER_CONFIG/config.json" || fail "credHelpers: the secret is in config.json"
ib push busybox "$reg/bb:2" >/dev/null 2>"$tmp/err" || fail "push with credHelpers: $(cat "$tmp/err")"
[ "$(count "get $reg" "$FAKE_HELPER_LOG")" = 1 ] && [ "$(count "store $reg" "$FAKE_HELPER_LOG")" = 1 ] ||
	fail "credHelpers: helper calls: $(cat "$FAKE_HELPER_LOG")"
ib logout "$reg" >/dev/null
rm -f "$DOCKER_CONFIG/config.json" "$FAKE_HELPER_DB"

echo "== 2. auth.json in podman's order"
good=$(printf alice:s3cret | base64) bad=$(printf alice:wrong | base64)
auth() { mkdir -p "$(dirname "$1")"; printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$reg" "$2" >"$1"; }
pull_ok() { "$IB" --root "$tmp/store-order" pull "$@" "$reg/bb:1" >/dev/null 2>"$tmp/err"; }
auth "$DOCKER_CONFIG/config.json" "$bad"
if pull_ok; then fail "a wrong password in config.json worked"; fi
auth "$HOME/.config/containers/auth.json" "$good"
pull_ok || fail "~/.config/containers/auth.json before config.json: $(cat "$tmp/err")"
auth "$XDG_RUNTIME_DIR/containers/auth.json" "$bad"
if pull_ok; then fail "XDG_RUNTIME_DIR's auth.json did not come first"; fi
auth "$XDG_RUNTIME_DIR/containers/auth.json" "$good"
auth "$HOME/.config/containers/auth.json" "$bad"
pull_ok || fail "XDG_RUNTIME_DIR's auth.json: $(cat "$tmp/err")"
auth "$tmp/raf.json" "$bad"
if REGISTRY_AUTH_FILE=$tmp/raf.json pull_ok; then fail "REGISTRY_AUTH_FILE did not come first"; fi
auth "$tmp/raf.json" "$good"
auth "$XDG_RUNTIME_DIR/containers/auth.json" "$bad"
REGISTRY_AUTH_FILE=$tmp/raf.json pull_ok || fail "REGISTRY_AUTH_FILE: $(cat "$tmp/err")"
auth "$tmp/raf.json" "$bad"
auth "$tmp/given.json" "$good"
REGISTRY_AUTH_FILE=$tmp/raf.json pull_ok --authfile "$tmp/given.json" || fail "--authfile: $(cat "$tmp/err")"
echo "== login --authfile writes that file only"
rm -f "$tmp/login.json"
cp "$DOCKER_CONFIG/config.json" "$tmp/docker-before.json"
echo s3cret | ib login --authfile "$tmp/login.json" -u alice --password-stdin "$reg" >/dev/null || fail "login --authfile"
[ "$(json "d['auths']['$reg']['auth']" <"$tmp/login.json")" = "$good" ] || fail "login --authfile: $(cat "$tmp/login.json")"
cmp -s "$DOCKER_CONFIG/config.json" "$tmp/docker-before.json" || fail "login --authfile changed config.json"
ib logout --authfile "$tmp/login.json" "$reg" >/dev/null
! grep -q "$reg" "$tmp/login.json" || fail "logout --authfile left the entry"
rm -f "$XDG_RUNTIME_DIR/containers/auth.json" "$HOME/.config/containers/auth.json" "$DOCKER_CONFIG/config.json"

echo "== 4. a token server: Basic for a token, and an identitytoken by grant_type=refresh_token"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/tok.key" -out "$tmp/tok.crt" -days 1 -subj "/CN=ib token" 2>/dev/null
tokport=$(free_port) tport=$(free_port)
/usr/bin/python3 "$IB_SOURCE_ROOT/tests/push/token-server.py" "$tokport" "$tmp/tok.key" "$tmp/tok.crt" ib-test "$tmp/token.log" \
	2>"$tmp/token.err" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$tokport") 2>/dev/null && break; sleep 0.05; done
start_registry token "$tport" "$(printf 'auth:\n  token:\n    realm: http://127.0.0.1:%s/token\n    service: ib-test\n    issuer: ib-token\n    rootcertbundle: %s' "$tokport" "$tmp/tok.crt")"
treg=127.0.0.1:$tport
if ib push busybox "$treg/bb:1" >/dev/null 2>"$tmp/err"; then fail "anonymous push to the token registry worked"; fi
echo s3cret | ib login -u alice --password-stdin "$treg" >/dev/null || fail "login to the token registry"
ib push busybox "$treg/bb:1" >/dev/null 2>"$tmp/err" || fail "push with a token from Basic: $(cat "$tmp/err")"
grep -q "^GET grant=- auth=basic scope=repository:bb:pull,push" "$tmp/token.log" || fail "token log: $(cat "$tmp/token.log")"
ib logout "$treg" >/dev/null
printf '{"auths": {"%s": {"identitytoken": "R3FR3SH"}}}\n' "$treg" >"$DOCKER_CONFIG/config.json"
: >"$tmp/token.log"
"$IB" --root "$tmp/store-token" pull "$treg/bb:1" >/dev/null 2>"$tmp/err" || fail "pull with an identity token: $(cat "$tmp/err")"
grep -q "^POST grant=refresh_token auth=none scope=repository:bb:pull$" "$tmp/token.log" ||
	fail "the identity token was not traded by refresh_token: $(cat "$tmp/token.log")"
! grep -q "^GET" "$tmp/token.log" || fail "a GET went to the token server: $(cat "$tmp/token.log")"
# through a helper: Username <token>
echo '{"credsStore": "fake"}' >"$DOCKER_CONFIG/config.json"
printf '{"%s": ["<token>", "R3FR3SH"]}' "$treg" >"$FAKE_HELPER_DB"
: >"$tmp/token.log"
"$IB" --root "$tmp/store-token2" pull "$treg/bb:1" >/dev/null 2>"$tmp/err" || fail "pull with a helper's identity token: $(cat "$tmp/err")"
grep -q "^POST grant=refresh_token" "$tmp/token.log" || fail "helper identity token: $(cat "$tmp/token.log")"
rm -f "$DOCKER_CONFIG/config.json" "$FAKE_HELPER_DB"

echo "== 3. registries.conf: an unqualified name through a mirror of docker.io"
mport=$(free_port)
start_registry mirror "$mport"
mirror=127.0.0.1:$mport
ib push busybox "$mirror/library/app:1" >/dev/null
cat >"$tmp/registries.conf" <<EOF
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "docker.io"

[[registry.mirror]]
location = "$mirror"
insecure = true
EOF
export CONTAINERS_REGISTRIES_CONF=$tmp/registries.conf
root2=$tmp/store-mirror
"$IB" --root "$root2" pull app:1 >"$tmp/out" 2>"$tmp/err" || fail "pull through the mirror: $(cat "$tmp/err")"
[ "$("$IB" --root "$root2" inspect docker.io/library/app:1 | json 'd[0]["Id"]')" = "$id" ] ||
	fail "the mirror's image is not docker.io/library/app:1"
mkdir -p "$tmp/ctx"
printf 'FROM app:1\nCMD ["echo", "built on the mirror"]\n' >"$tmp/ctx/Dockerfile"
root3=$tmp/store-build
"$IB" --root "$root3" build -t onmirror "$tmp/ctx" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build FROM app:1 through the mirror"; }
grep -q "pulling app:1" "$tmp/build.log" || fail "the build did not pull its base: $(cat "$tmp/build.log")"
[ "$("$IB" --root "$root3" inspect docker.io/library/app:1 | json 'd[0]["Id"]')" = "$id" ] || fail "build pulled another base"

echo "== podman pulls through the same registries.conf and gets the same image"
pod=(env -u DOCKER_CONFIG podman --root "$tmp/podman/root" --runroot "$tmp/podman/run" --storage-driver vfs)
"${pod[@]}" pull -q app:1 >"$tmp/podman.out" 2>"$tmp/podman.err" || fail "podman pull app:1: $(cat "$tmp/podman.err")"
[ "$("${pod[@]}" image inspect docker.io/library/app:1 --format '{{.ID}}')" = "${id#sha256:}" ] ||
	fail "podman resolved app:1 to another image"

echo "== a blocked registry is refused; a broken registries.conf is an error naming it"
printf '[[registry]]\nlocation = "%s"\nblocked = true\n' "$mirror" >"$tmp/blocked.conf"
if CONTAINERS_REGISTRIES_CONF=$tmp/blocked.conf "$IB" --root "$tmp/store-blocked" pull "$mirror/library/app:1" 2>"$tmp/err"; then
	fail "pull from a blocked registry worked"
fi
grep -q "blocked in registries.conf" "$tmp/err" || fail "blocked: $(cat "$tmp/err")"
printf '[[registry]\n' >"$tmp/broken.conf"
if CONTAINERS_REGISTRIES_CONF=$tmp/broken.conf "$IB" --root "$tmp/store-blocked" pull "$mirror/library/app:1" 2>"$tmp/err"; then
	fail "pull with a broken registries.conf worked"
fi
grep -q "broken.conf\`: line 1" "$tmp/err" || fail "broken registries.conf: $(cat "$tmp/err")"
echo "OK"
