#!/bin/sh
# make-multiplatform-busybox.sh OUT-DIR
#
# An OCI image layout, made offline, holding one two-platform image
# "busybox-multi:latest": an OCI index with a linux/amd64 manifest (Debian's
# busybox-static of this host, as make-busybox-tar.sh makes it) and a
# linux/arm64 one (the arm64 busybox-static .deb that scripts/setup
# downloads: apt-get download busybox-static:arm64, into
# $IB_ARM64_BUSYBOX_DIR, default /var/cache/imagebuild-tests). Each config
# says its architecture. Exit 77 when either busybox is missing.
set -eu
out=${1:?usage: make-multiplatform-busybox.sh OUT-DIR}
here=$(dirname "$0")
debdir=${IB_ARM64_BUSYBOX_DIR:-/var/cache/imagebuild-tests}
deb=$(ls "$debdir"/busybox-static*arm64.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
	echo "make-multiplatform-busybox.sh: no busybox-static arm64 .deb in $debdir (scripts/setup downloads it)" >&2
	exit 77
fi
[ -x /bin/busybox ] || { echo "make-multiplatform-busybox.sh: apt-get install busybox-static" >&2; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ib-multi-XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/arm64"
"$here/make-busybox-tar.sh" "$work/amd64.tar"
BUSYBOX="$work/arm64/bin/busybox" LIST_BUSYBOX=/bin/busybox "$here/make-busybox-tar.sh" "$work/arm64.tar"
python3 - "$out" "$work/amd64.tar" "$work/arm64.tar" <<'PY'
import hashlib, json, os, sys
out, tars = sys.argv[1], {"amd64": sys.argv[2], "arm64": sys.argv[3]}
os.makedirs(out + "/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(out + "/blobs/sha256/" + d, "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
children = []
for arch in ("amd64", "arm64"):
    layer, lsize = blob(open(tars[arch], "rb").read())
    cfg = {"architecture": arch, "os": "linux", "created": "2000-01-01T00:00:00Z",
           "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
           "rootfs": {"type": "layers", "diff_ids": [layer]},
           "history": [{"created": "2000-01-01T00:00:00Z", "created_by": "busybox-static " + arch}]}
    c, csize = blob(json.dumps(cfg, sort_keys=True).encode())
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": csize},
         "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": lsize}]}
    md, msize = blob(json.dumps(m, sort_keys=True).encode())
    children.append({"mediaType": m["mediaType"], "digest": md, "size": msize,
                     "platform": {"architecture": arch, "os": "linux"}})
idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}
d, size = blob(json.dumps(idx, sort_keys=True).encode())
top = {"schemaVersion": 2, "manifests": [{"mediaType": idx["mediaType"], "digest": d, "size": size,
       "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/busybox-multi:latest"}}]}
json.dump(top, open(out + "/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(out + "/oci-layout", "w"))
PY
