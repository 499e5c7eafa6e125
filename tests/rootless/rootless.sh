#!/usr/bin/env bash
# Rootless: imagebuild run by an ordinary user (made here, with a subuid range
# of its own, removed on exit) through runuser:
#   1. the seed workflows, with the same image ids as root: a multi-stage
#      build (owners 1000 and 1234, a FIFO, symlinks, an opaque directory)
#      on both snapshotters, rebuilt from the cache; run -> commit -> history
#      (namespaces and oci isolation); push to a real docker-registry;
#      the default store is $HOME/.local/share/imagebuild, 0700;
#   2. refused clearly: a layer holding a device node, a COPY --chown outside
#      the mapped ids, and (a second user without a range: one id mapped) a
#      --chown to any other id;
#   3. the builder image (examples/builder), built by the user, running a
#      build as uid 1000 inside an unprivileged container (unshare: its own
#      user, mount and PID namespaces, pivot_root).
set -euo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"

IB=$(readlink -f "${IMAGEBUILD:?}")
REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ "$(id -u)" = 0 ] || skip_or_fail "making a test user needs root"
for tool in useradd usermod userdel runuser newuidmap newgidmap unshare setpriv skopeo python3; do
	command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done
[ -x "$REGISTRY" ] || skip_or_fail "docker-registry is not installed"
[ -x /usr/sbin/pivot_root ] || skip_or_fail "pivot_root is not installed"
command -v busybox >/dev/null || skip_or_fail "busybox-static is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-rootless-XXXXXX")
chmod 755 "$tmp"
user=ibrl$$
single=ibrs$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	for u in "$user" "$single"; do
		if id "$u" >/dev/null 2>&1; then
			userdel "$u" 2>/dev/null || true
		fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# a subordinate range nobody has: above every range of /etc/subuid and /etc/subgid
start=$(cat /etc/subuid /etc/subgid 2>/dev/null |
	awk -F: 'BEGIN { m = 200000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }')
useradd -M -d "$tmp/home" -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
useradd -M -d "$tmp/home1" -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$single"
usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$user"
uid=$(id -u "$user")
mkdir -p "$tmp/home" "$tmp/home1" "$tmp/u"
chown "$user:" "$tmp/home" "$tmp/u"
chown "$single:" "$tmp/home1"
# as the user: its own HOME, no XDG_DATA_HOME, no IMAGEBUILD_ROOT (the default store)
as() { local u=$1 h=$2; shift 2; (cd "$h" && runuser -u "$u" -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$h" \
	SOURCE_DATE_EPOCH=1700000000 "$@"); }
ub() { as "$user" "$tmp/home" "$IB" "$@"; }

"${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar"
chmod 644 "$tmp/busybox.tar"
mkdir -p "$tmp/ctx"
echo "hello rootless" >"$tmp/ctx/hello.txt"
# a file big enough to go around the page cache (lib/util/bigio.h: O_DIRECT, two writers, an
# unaligned tail): the same layer bytes, so the same image id, on every snapshotter and mode
head -c $(((9 << 20) + 1)) /dev/urandom >"$tmp/ctx/big.bin"
cat >"$tmp/ctx/Dockerfile" <<'EOF'
FROM busybox AS base
RUN mkdir -p /app/old && echo base >/app/base && echo old >/app/old/f && chown -R 1000:1000 /app && mkfifo /app/fifo
FROM base AS build
COPY --chown=1000:1000 hello.txt /app/hello.txt
COPY big.bin /app/big.bin
RUN rm -rf /app/old && mkdir /app/old && echo new >/app/old/g && cat /app/hello.txt >/app/out && ln -s out /app/link
FROM busybox
COPY --from=build /app /app
RUN echo 'bob:x:1234:1234::/home/bob:/bin/sh' >>/etc/passwd && mkdir -p /home/bob && echo owned >/home/bob/f && chown bob /home/bob/f && rm /bin/vi
USER bob
CMD ["cat", "/app/out"]
EOF
chmod -R a+rX "$tmp/ctx"

echo "[${SECONDS}s] == as root"
SECONDS=0
export SOURCE_DATE_EPOCH=1700000000
rb() { "$IB" --root "$tmp/root" "$@"; }
rb import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null
# the same base for everyone (an import's history names its file and time)
rb save -o "$tmp/base.tar" busybox
chmod 644 "$tmp/base.tar"
t0=$(date +%s.%N)
rb build -q -t app "$tmp/ctx" >/dev/null
t1=$(date +%s.%N)
root_id=$(rb inspect app | json 'd[0]["Id"]')
rb build -q -t bb --snapshotter copy "$tmp/ctx" >/dev/null
[ "$(rb inspect bb | json 'd[0]["Id"]')" = "$root_id" ] || fail "root: the snapshotters disagree"

echo "[${SECONDS}s] == as $user (uid $uid, subuids $start+65536): overlay, the default store"
ub load -i "$tmp/base.tar" >/dev/null
store=$tmp/home/.local/share/imagebuild
[ -d "$store" ] || fail "the user's store is not at \$HOME/.local/share/imagebuild"
[ "$(stat -c '%a %u' "$store")" = "700 $uid" ] || fail "store: $(stat -c '%a %u' "$store")"
t2=$(date +%s.%N)
out=$(ub build -t app "$tmp/ctx" 2>&1) || fail "rootless build: $out"
t3=$(date +%s.%N)
id=$(ub inspect app | json 'd[0]["Id"]')
[ "$id" = "$root_id" ] || fail "rootless overlay image $id is not root's $root_id"
out=$(ub build -t app "$tmp/ctx" 2>&1) || fail "rebuild: $out"
[ "$(echo "$out" | grep -c ' CACHED$')" -ge 5 ] || fail "the rebuild was not cached: $out"
[ "$(ub inspect app | json 'd[0]["Id"]')" = "$id" ] || fail "the cached rebuild gave another image"
awk -v a="$t2" -v b="$t3" -v c="$t0" -v d="$t1" 'BEGIN { printf "rootless build %.2f s, root %.2f s\n", b - a, d - c }'

echo "[${SECONDS}s] == copy snapshotter"
cb() { as "$user" "$tmp/home" "$IB" --root "$tmp/u/copy" "$@"; }
cb load -i "$tmp/base.tar" >/dev/null
cb build --snapshotter copy -q -t app "$tmp/ctx" >/dev/null || fail "rootless copy build"
[ "$(cb run --snapshotter copy --rm app sh -c 'stat -c %u /app/hello.txt; ls /app/old')" = "$(printf '1000\ng')" ] ||
	fail "run on the copy snapshotter"
[ "$(cb inspect app | json 'd[0]["Id"]')" = "$root_id" ] || fail "rootless copy image is not root's"
# image owners through the mapping: 1000 inside is start+999 outside
[ "$(stat -c %u "$tmp/u/copy")" = "$uid" ] || fail "the --root store is not the user's"

echo "[${SECONDS}s] == run -> commit -> history (namespaces, then oci)"
[ "$(ub run --rm app)" = "hello rootless" ] || fail "run app"
[ "$(ub run --rm app sh -c 'id -u; stat -c %u /home/bob/f /app/hello.txt; ls /app/old')" = \
	"$(printf '1234\n1234\n1000\ng')" ] || fail "owners or the opaque directory inside: $(ub run --rm app sh -c 'id; ls -ln /app /app/old /home/bob')"
ub run --name c1 --user 0 app sh -c 'echo changed >/changed && chown 1234 /changed' >/dev/null
ub commit -c 'LABEL rootless=yes' c1 app2 >/dev/null
[ "$(ub run --rm app2 stat -c '%u %n' /changed)" = "1234 /changed" ] || fail "the commit lost /changed"
ub history app2 | grep -q 'echo changed' || fail "history of the commit: $(ub history app2)"
ub rm c1 >/dev/null
[ "$(ub run --rm --isolation oci --network none app sh -c 'id -u; cat /app/out')" = "$(printf '1234\nhello rootless')" ] ||
	fail "oci isolation (runc in the user namespace)"

echo "[${SECONDS}s] == push to a real registry"
. "$IB_SOURCE_ROOT/tests/common/registry.sh"
port=$(free_port)
start_registry reg "$port"
reg=127.0.0.1:$port
ub push app "$reg/rootless/app:1" >/dev/null || fail "rootless push"
[ "$(skopeo inspect --raw --tls-verify=false "docker://$reg/rootless/app:1" | json 'd["config"]["digest"]')" = "$root_id" ] ||
	fail "the pushed config is not root's image id"

echo "[${SECONDS}s] == refused clearly: a device node in a layer"
/usr/bin/python3 - "$tmp/dev.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    f = tarfile.TarInfo("hello.txt"); data = b"hi\n"; f.size = len(data); t.addfile(f, io.BytesIO(data))
    d = tarfile.TarInfo("sda"); d.type = tarfile.BLKTYPE; d.devmajor, d.devminor = 8, 0; d.mode = 0o660
    t.addfile(d)
EOF
chmod 644 "$tmp/dev.tar"
ub import "$tmp/dev.tar" devimg >/dev/null
if out=$(ub run --rm devimg true 2>&1); then fail "a block device unpacked rootless"; fi
echo "$out" | grep -q "block device node (8:0) cannot be created rootless" || fail "device node error: $out"

echo "[${SECONDS}s] == refused clearly: chown outside the mapped ids"
mkdir -p "$tmp/far"
printf 'FROM busybox\nCOPY --chown=70000:70000 Dockerfile /f\n' >"$tmp/far/Dockerfile"
chmod -R a+rX "$tmp/far"
if out=$(ub build "$tmp/far" 2>&1); then fail "chown to 70000 built rootless"; fi
echo "$out" | grep -q "uid 70000 is not mapped in this user namespace: rootless: only uids 0-65536 are mapped" ||
	fail "chown error: $out"

echo "[${SECONDS}s] == a user without a subordinate range: only its own id, mapped to 0"
sb() { as "$single" "$tmp/home1" "$IB" "$@"; }
sb import -c 'CMD ["sh"]' "$tmp/busybox.tar" busybox >/dev/null
[ "$(sb run --rm busybox sh -c 'cat /proc/self/uid_map' | awk '{print $1, $3}')" = "0 1" ] || fail "single id map"
printf 'FROM busybox\nCOPY --chown=1000 Dockerfile /f\n' >"$tmp/far/Dockerfile"
if out=$(sb build "$tmp/far" 2>&1); then fail "chown to 1000 built with one id"; fi
echo "$out" | grep -q "uid 1000 is not mapped in this user namespace: rootless with a single uid mapped" ||
	fail "single-id chown error: $out"
# an image with files of uid 1000 (root's app) does not unpack there
rb save -o "$tmp/app.tar" app
chmod 644 "$tmp/app.tar"
sb load -i "$tmp/app.tar" >/dev/null
if out=$(sb run --rm app true 2>&1); then fail "files of uid 1000 unpacked with one id"; fi
echo "$out" | grep -q "owner uid 1000 is not mapped in this user namespace: rootless with a single uid mapped" ||
	fail "single-id unpack error: $out"

echo "[${SECONDS}s] == the builder image, running a build as uid 1000 in an unprivileged container"
"$IB_SOURCE_ROOT/examples/builder/stage.sh" "$IB" "$tmp/bctx" >/dev/null
chmod -R a+rX "$tmp/bctx"
# built by the user, exported as a root file system for the container (the same build as -t builder)
ub build -q -o "type=local,dest=$tmp/u/broot" -f "$IB_SOURCE_ROOT/examples/builder/Dockerfile" "$tmp/bctx" >/dev/null ||
	fail "build the builder"
[ "$(stat -c %a "$tmp/u/broot/usr/bin/newuidmap")" = 4755 ] || fail "newuidmap is not setuid in the builder"
cp "$tmp/base.tar" "$tmp/u/base.tar"
cp -r "$tmp/ctx" "$tmp/u/ctx"
chown -R "$user:" "$tmp/u/base.tar" "$tmp/u/ctx"
# the container: new user (0 = the user, 1-65535 its range), mount and PID namespaces, pivot_root into the image
R=$tmp/u/broot
cat >"$tmp/u/container.sh" <<EOF
set -e
mount --rbind $R $R; mount --rbind /dev $R/dev; mount --rbind /sys $R/sys; mount -t tmpfs tmpfs $R/tmp
mount -t proc proc $R/proc
mkdir -p $R/tmp/.old; cp -r $tmp/u/ctx $tmp/u/base.tar $R/tmp/; cp /usr/bin/setpriv $R/tmp/; chmod -R a+rX $R/tmp
cd $R; /usr/sbin/pivot_root . tmp/.old; cd /
/bin/busybox umount -l /tmp/.old
export HOME=/home/builder PATH=/usr/local/bin:/usr/bin:/bin SOURCE_DATE_EPOCH=1700000000
exec /tmp/setpriv --reuid=1000 --regid=1000 --clear-groups /bin/sh -c \
	'cd; imagebuild load -i /tmp/base.tar >/dev/null && imagebuild build -q -t app /tmp/ctx && imagebuild run --rm app'
EOF
out=$(as "$user" "$tmp/home" unshare --map-root-user --map-auto --mount --pid --fork sh "$tmp/u/container.sh" 2>&1) ||
	fail "the build in the builder's container: $out"
[ "$(echo "$out" | head -n1)" = "$root_id" ] || fail "the builder's container built $out, root $root_id"
[ "$(echo "$out" | tail -n1)" = "hello rootless" ] || fail "the builder's container ran: $out"
echo "PASS (${SECONDS}s)"
