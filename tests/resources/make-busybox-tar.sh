#!/bin/sh
# make-busybox-tar.sh OUT.tar
#
# Make a small busybox root filesystem tarball, offline, from Debian's
# busybox-static (/bin/busybox): the binary, one symlink to /bin/busybox for
# every applet `busybox --list` prints (at the place `--list-full` gives),
# /etc/passwd and /etc/group with root and nobody, /tmp (1777), /root, /etc,
# /var. The output is deterministic (fixed owners and mtimes) so tests can
# compare digests. Exit 77 when busybox-static is not installed.
# BUSYBOX=PATH takes another binary (another architecture's: then
# LIST_BUSYBOX=/bin/busybox, of the same version, lists the applets).
set -eu
out=${1:?usage: make-busybox-tar.sh OUT.tar}
busybox=${BUSYBOX:-/bin/busybox}
lister=${LIST_BUSYBOX:-$busybox}
if [ ! -x "$busybox" ] || ! "$lister" --list >/dev/null 2>&1; then
	echo "make-busybox-tar.sh: $busybox missing (apt-get install busybox-static)" >&2
	exit 77
fi
python=/usr/bin/python3
[ -x "$python" ] || python=python3
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
"$lister" --list >"$tmp.list"
"$lister" --list-full >"$tmp.full" 2>/dev/null || : >"$tmp.full"
"$python" - "$busybox" "$tmp.list" "$tmp.full" "$tmp" <<'PY'
import io, os, sys, tarfile
busybox, list_path, full_path, out = sys.argv[1:5]
applets = [l.strip() for l in open(list_path) if l.strip()]
where = {}
for l in open(full_path):
    l = l.strip()
    if l:
        where[os.path.basename(l)] = l
MTIME = 946684800  # 2000-01-01, fixed so the tarball is reproducible
tar = tarfile.open(out, "w", format=tarfile.PAX_FORMAT)
seen = set()
def add_dir(name, mode=0o755):
    if not name or name in seen:
        return
    parent = os.path.dirname(name)
    if parent:
        add_dir(parent)
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = mode
    ti.mtime = MTIME
    tar.addfile(ti)
    seen.add(name)
def add_file(name, data, mode=0o644):
    add_dir(os.path.dirname(name))
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = MTIME
    tar.addfile(ti, io.BytesIO(data))
    seen.add(name)
for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "var", "root", "home", "dev", "proc", "sys"):
    add_dir(d, 0o700 if d == "root" else 0o755)
add_dir("tmp", 0o1777)
add_dir("var/tmp", 0o1777)
with open(busybox, "rb") as f:
    add_file("bin/busybox", f.read(), 0o755)
add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
add_file("etc/group", b"root:x:0:\nnobody:x:65534:\n")
for a in applets:
    if a == "busybox" or "/" in a or a in (".", ".."):
        continue
    path = where.get(a, "bin/" + a).lstrip("/")
    if path in seen:
        continue
    add_dir(os.path.dirname(path))
    ti = tarfile.TarInfo(path)
    ti.type = tarfile.SYMTYPE
    ti.linkname = "/bin/busybox"
    ti.mode = 0o777
    ti.mtime = MTIME
    tar.addfile(ti)
    seen.add(path)
tar.close()
PY
rm -f "$tmp.list" "$tmp.full"
mv "$tmp" "$out"
trap - EXIT
