# Make the archives: one tar (with a "./" entry of another owner and mode)
# compressed four ways, and a gzip that holds no tar.
/usr/bin/python3 - <<'PY'
import bz2, gzip, io, lzma, struct, tarfile
buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
def add(name, kind, data=b"", m=0o644, uid=0, gid=0):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, m, uid, gid, 946684800
    if kind == tarfile.REGTYPE:
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    else:
        t.addfile(ti)
add(".", tarfile.DIRTYPE, m=0o700, uid=1000, gid=1000)
add("./app", tarfile.DIRTYPE, m=0o750, uid=1000, gid=1000)
add("./app/run.sh", tarfile.REGTYPE, b"#!/bin/sh\necho app\n", m=0o755, uid=1000, gid=1000)
t.close()
tar = buf.getvalue()
open("app.tar.gz", "wb").write(gzip.compress(tar, mtime=0))
open("app.tar.bz2", "wb").write(bz2.compress(tar))
open("app.tar.xz", "wb").write(lzma.compress(tar, format=lzma.FORMAT_XZ))
# zstd without a zstd module: one frame of raw (stored) blocks
assert 256 <= len(tar) < 65792
blocks = b""
for off in range(0, len(tar), 1 << 17):
    chunk = tar[off:off + (1 << 17)]
    last = 1 if off + (1 << 17) >= len(tar) else 0
    blocks += struct.pack("<I", last | (len(chunk) << 3))[:3] + chunk
open("app.tar.zst", "wb").write(b"\x28\xb5\x2f\xfd\x60" + struct.pack("<H", len(tar) - 256) + blocks)
open("data.json.gz", "wb").write(gzip.compress(b'{"not": "a tar"}\n', mtime=0))
PY
