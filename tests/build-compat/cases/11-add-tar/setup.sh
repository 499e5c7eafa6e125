# Make the archives: owners, modes, a symlink, a hardlink and a directory with an odd mode.
/usr/bin/python3 - <<'PY'
import gzip, io, tarfile
def make(path, mode):
    t = tarfile.open(path, mode, format=tarfile.PAX_FORMAT)
    def add(name, kind, data=b"", m=0o644, uid=0, gid=0, link=""):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, m, uid, gid, 946684800
        ti.linkname = link
        if kind == tarfile.REGTYPE:
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        else:
            t.addfile(ti)
    add("top", tarfile.DIRTYPE, m=0o750, uid=1000, gid=1000)
    add("top/file", tarfile.REGTYPE, b"in a tar\n", m=0o640, uid=1000, gid=100)
    add("top/exec", tarfile.REGTYPE, b"#!/bin/sh\n", m=0o755)
    add("top/link", tarfile.SYMTYPE, link="file", m=0o777)
    add("top/hard", tarfile.LNKTYPE, link="top/file", m=0o640, uid=1000, gid=100)
    add("./dotted", tarfile.REGTYPE, b"dot\n", m=0o600, uid=3, gid=4)
    add("implicit/parent/f", tarfile.REGTYPE, b"p\n")
    t.close()
make("plain.tar", "w")
with open("plain.tar", "rb") as f, open("gz.tar.gz", "wb") as out:
    out.write(gzip.compress(f.read(), mtime=0))
PY
mkdir tars && cp plain.tar tars/inner.tar
