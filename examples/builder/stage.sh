#!/bin/sh
# stage.sh IMAGEBUILD CONTEXT: make the build context of examples/builder/Dockerfile
# from this machine's files: the imagebuild program and every library it loads
# (as ldd lists them, at the same paths; libimagebuild in the loader's default
# directory, wherever the program's RUNPATH pointed; and libcurl, libgit2, libarchive, which
# are opened when first needed, with theirs), newuidmap/newgidmap (Debian's uidmap) and their libraries,
# a static busybox as /bin/sh, and the builder user's /etc files. Then:
#   imagebuild build -t imagebuild-builder -f examples/builder/Dockerfile CONTEXT
set -eu
ib=${1:?usage: stage.sh IMAGEBUILD CONTEXT}
ctx=${2:?usage: stage.sh IMAGEBUILD CONTEXT}
ib=$(readlink -f "$ib")
mkdir -p "$ctx/rootfs/proc" "$ctx/rootfs/dev" "$ctx/rootfs/sys" "$ctx/rootfs/tmp" "$ctx/rootfs/etc" "$ctx/rootfs/bin" "$ctx/rootfs/usr/local/bin" "$ctx/uidmap" "$ctx/home"
# one file at its own absolute path under rootfs/ (symlinks resolved: the name the loader asks for)
put() { mkdir -p "$ctx/rootfs$(dirname "$1")"; cp -L "$1" "$ctx/rootfs$1"; }
libs() { ldd "$1" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'; }
libdir=$(dirname "$(libs /usr/bin/newuidmap | grep '/libc\.so' | head -n1)")
# libcurl, libgit2 and libarchive are opened at run time, when first needed (lib/util/lazylib.h):
# ldd does not list them; take this machine's (in the loader's directory) and what they load
lazy=$(ldconfig -p | sed -n 's/^[[:space:]]*\(libcurl\.so\.[0-9.]*\|libgit2\.so\.[0-9.]*\|libarchive\.so\.[0-9.]*\) (.*) => \(.*\)$/\2/p' |
	grep "^$libdir/" || true)
[ -n "$lazy" ] || { echo "stage.sh: libcurl, libgit2, libarchive not found in $libdir (ldconfig -p)" >&2; exit 1; }
for l in $lazy; do put "$l"; done
for bin in "$ib" /usr/bin/newuidmap /usr/bin/newgidmap $lazy; do
	for l in $(libs "$bin"); do
		case $l in
		*/libimagebuild.so*) mkdir -p "$ctx/rootfs$libdir"; cp -L "$l" "$ctx/rootfs$libdir/$(basename "$l")" ;;
		*) put "$l" ;;
		esac
	done
done
cp -L "$ib" "$ctx/rootfs/usr/local/bin/imagebuild"
chmod 1777 "$ctx/rootfs/tmp"
cp -L /usr/bin/newuidmap /usr/bin/newgidmap "$ctx/uidmap/"
busybox=$(command -v busybox)
file_type=$(ldd "$busybox" 2>&1 || true)
case $file_type in *"not a dynamic"*) ;; *) echo "stage.sh: $busybox is not static (install busybox-static)" >&2; exit 1 ;; esac
cp -L "$busybox" "$ctx/rootfs/bin/busybox"
ln -sf busybox "$ctx/rootfs/bin/sh"
cat >"$ctx/rootfs/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
builder:x:1000:1000:builder:/home/builder:/bin/sh
P
cat >"$ctx/rootfs/etc/group" <<'G'
root:x:0:
builder:x:1000:
G
# the builder's subordinate ids: what the container's own user namespace maps
# besides root and the builder itself (podman and Kubernetes user namespaces map
# 65536 ids), so the builds inside keep their images' owners 1..64535
echo "builder:1001:64535" >"$ctx/rootfs/etc/subuid"
echo "builder:1001:64535" >"$ctx/rootfs/etc/subgid"
