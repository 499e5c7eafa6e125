#!/usr/bin/env python3
"""Fill an imagebuild store (an OCI layout) with IMAGES images of LPI layers each
(IMAGES*LPI distinct layers) and CACHE build-cache records, written as the store
writes them (blobs/sha256/<hex>, index.json entries named
org.opencontainers.image.ref.name, cache/<key>.json). Synthetic but valid: every
blob is what its digest says, every image is whole (`imagebuild fsck` passes).

usage: store-scale-gen.py ROOT [IMAGES=1000] [LPI=5] [CACHE=10000]
"""
import hashlib, io, json, os, sys, tarfile

root = sys.argv[1]
images = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
lpi = int(sys.argv[3]) if len(sys.argv) > 3 else 5
ncache = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
os.makedirs(os.path.join(root, "cache"), exist_ok=True)


def put(data):
    h = hashlib.sha256(data).hexdigest()
    p = os.path.join(blobs, h)
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
    return "sha256:" + h, len(data)


def layer(n):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        data = ("layer %d\n" % n).encode()
        ti = tarfile.TarInfo("scale/f%d" % n)
        ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
        t.addfile(ti, io.BytesIO(data))
    return put(b.getvalue())


def canon(o):
    return json.dumps(o, separators=(",", ":"), sort_keys=True).encode()


index_path = os.path.join(root, "index.json")
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
if os.path.exists(index_path):
    with open(index_path) as f:
        index = json.load(f)
configs, layers_all = [], []
for i in range(images):
    ls = [layer(i * lpi + k) for k in range(lpi)]
    layers_all += ls
    cfg = {"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
           "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"scale": str(i)}},
           "rootfs": {"type": "layers", "diff_ids": [d for d, _ in ls]},
           "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "scale %d/%d" % (i, k)} for k in range(lpi)]}
    cd, cs = put(canon(cfg))
    configs.append(cd)
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s} for d, s in ls]}
    md, ms = put(canon(man))
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                               "annotations": {"org.opencontainers.image.ref.name":
                                               "docker.io/library/scale-%d:latest" % i}})
for i in range(ncache):
    key = hashlib.sha256(b"scale cache %d" % i).hexdigest()
    rec = {"layer": layers_all[i % len(layers_all)][0], "config": configs[i % len(configs)]}
    with open(os.path.join(root, "cache", key + ".json"), "w") as f:
        f.write(json.dumps(rec, separators=(",", ":")))
tmp = index_path + ".tmp-scale"
with open(tmp, "w") as f:
    f.write(json.dumps(index, separators=(",", ":")))
os.rename(tmp, index_path)
print("%d images, %d layers, %d cache records" % (images, len(layers_all), ncache))
