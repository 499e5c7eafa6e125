#!/bin/bash
# bench/rootless.sh [BUILD_DIR]: the small workload of ../shared/bench/peers
# (workload/gen.sh, no big context) built cold and then again (no-op) by
#   root       imagebuild as root (overlay, namespaces)
#   rootless   imagebuild as an ordinary user (overlay in its user namespace)
#   buildah    `buildah bud --layers` as the same user (rootless, overlay
#              storage, runc, --network host as imagebuild's default)
# interleaved, RUNS times (default 3); prints medians and the ratios
# rootless/root and rootless/buildah. Needs root (it makes the user, with a
# subuid range, and removes it), buildah, runc, uidmap, busybox-static.
# The base image (busybox, offline) is loaded into each store before each
# cold build, outside the timed part.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
IB=$(cd "$build" && pwd)/examples/imagebuild/imagebuild
RUNS=${RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "bench/rootless.sh: run as root (it makes a user)" >&2; exit 1; }
for t in buildah runc newuidmap useradd; do command -v "$t" >/dev/null || { echo "no $t" >&2; exit 1; }; done

tmp=$(mktemp -d /var/tmp/ib-rootless-bench-XXXXXX)
chmod 755 "$tmp"
user=ibrb$$
cleanup() {
	id "$user" >/dev/null 2>&1 && userdel "$user" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
start=$(cat /etc/subuid /etc/subgid 2>/dev/null |
	awk -F: 'BEGIN { m = 200000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }')
useradd -M -d "$tmp/home" -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$user"
mkdir -p "$tmp/home"
chown "$user:" "$tmp/home"
as() { (cd "$tmp/home" && runuser -u "$user" -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$tmp/home" "$@"); }

ref=127.0.0.1:5000/busybox:latest
SKIP_BIG=1 BASE_REF=$ref bash "$root/../shared/bench/peers/workload/gen.sh" "$tmp/ctx" "$tmp/ctx-big" >/dev/null
chmod -R a+rX "$tmp/ctx"
"$root/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
"$IB" --root "$tmp/seed" import -c 'CMD ["sh"]' "$tmp/busybox.tar" "$ref" >/dev/null
"$IB" --root "$tmp/seed" save -o "$tmp/base.tar" "$ref"
chmod 644 "$tmp/base.tar"

bah() { as buildah --storage-driver overlay "$@"; }
prep() { # a cold store with only the base image
	case $1 in
	root) rm -rf "$tmp/root" && "$IB" --root "$tmp/root" load -i "$tmp/base.tar" >/dev/null ;;
	rootless) as unshare --map-root-user --map-auto rm -rf "$tmp/home/ib"
		as "$IB" --root "$tmp/home/ib" load -i "$tmp/base.tar" >/dev/null ;;
	buildah) bah rm -a >/dev/null 2>&1 || true; bah rmi -a -f >/dev/null 2>&1 || true
		bah pull -q "docker-archive:$tmp/base.tar" >/dev/null
		bah tag "$(bah images -q | head -n1)" "$ref" ;;
	esac
}
run() {
	case $1 in
	root) "$IB" --root "$tmp/root" build -q -t w "$tmp/ctx" >/dev/null ;;
	rootless) as "$IB" --root "$tmp/home/ib" build -q -t w "$tmp/ctx" >/dev/null ;;
	buildah) bah bud -q --layers --pull=never --isolation oci --runtime "$(command -v runc)" --network host \
		-t w "$tmp/ctx" >/dev/null ;;
	esac
}
now() { date +%s.%N; }
: >"$tmp/times"
for i in $(seq "$RUNS"); do
	for tool in root rootless buildah; do
		prep "$tool"
		a=$(now); run "$tool"; b=$(now); run "$tool"; c=$(now)
		echo "$tool cold $(echo "$a $b" | awk '{print $2 - $1}')" >>"$tmp/times"
		echo "$tool noop $(echo "$b $c" | awk '{print $2 - $1}')" >>"$tmp/times"
	done
done
python3 - "$tmp/times" "$RUNS" <<'EOF'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    tool, kind, s = line.split()
    t.setdefault((tool, kind), []).append(float(s))
m = {k: statistics.median(v) for k, v in t.items()}
print(f"small workload, {sys.argv[2]} interleaved runs, median seconds")
print("| scenario | root | rootless | buildah (same user) | rootless/root | rootless/buildah |")
print("|---|---|---|---|---|---|")
for kind in ("cold", "noop"):
    r, u, b = m[("root", kind)], m[("rootless", kind)], m[("buildah", kind)]
    print(f"| {kind} | {r:.2f} | {u:.2f} | {b:.2f} | {u / r:.2f} | {u / b:.2f} |")
EOF
