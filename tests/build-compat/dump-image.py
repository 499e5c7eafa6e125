#!/usr/bin/python3
"""dump-image.py: print an image in a canonical JSON form, or compare two dumps.

  dump-image.py [--base-layers N] IMAGE.tar      print the dump of a docker-archive
  dump-image.py --compare EXPECTED.json ACTUAL.json
                                                 print the differences; exit 1 if any
                                                 (lines starting "note:" do not count)

IMAGE.tar is the `docker save` format: manifest.json names the config JSON and
the layer tars (`<id>/layer.tar` from dockerd, `blobs/sha256/<hex>` from other
tools; the layers may be compressed). The dump holds:

  config   the runtime config fields a Dockerfile sets (Env, Cmd, Entrypoint,
           WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal,
           Healthcheck, Shell, OnBuild) plus author, os, architecture, variant,
           and any other field either side writes (but created, the history
           and rootfs). A field that is null is left out, like a missing one.
  history  one {"empty_layer": bool} per history entry, plus created_by and
           comment after the first N entries (the base image's). Only
           empty_layer decides; created_by and comment differences are notes.
  layers   for each layer after the first N (the base image's layers; default
           1), its entries sorted by path: path, type, mode (octal string),
           uid, gid, and as they apply size, sha256, linkname, devmajor,
           devminor, xattrs, and "links" (every path of a hardlink group, so the
           result does not depend on which member the tar stored first).
           Deletions are compared by their effect, not by how the layer
           encodes them (a whiteout for each removed entry, or an opaque
           directory): {"path": P, "type": "deleted"} for each topmost path of
           the lower layers that the layer removes (its children implied).

Not compared: mtimes, uname/gname, compression, tar order, and a directory
entry whose type, mode, owner and xattrs equal the directory already in the
lower layers (a layer format artefact: only its mtime changed, e.g. /etc in
every BuildKit RUN layer, where the runtime mounted /etc/hosts).

Only the standard library is used, so the tests need nothing installed.
"""
import hashlib
import json
import posixpath
import sys
import tarfile

CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts",
                 "Volumes", "Labels", "StopSignal", "Healthcheck", "Shell", "OnBuild")
TOP_FIELDS = ("author", "os", "architecture", "variant")
TOP_IGNORED = ("created", "history", "rootfs")
WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo",
}


def die(msg):
    sys.stderr.write("dump-image.py: %s\n" % msg)
    sys.exit(2)


def clean(path):
    """A tar entry name as a relative path without ./, leading or trailing /."""
    p = posixpath.normpath("/" + path).lstrip("/")
    return p


def member_bytes(archive, name):
    try:
        f = archive.extractfile(clean(name)) or archive.extractfile(name)
    except KeyError:
        f = None
    if f is None:
        die("%s: no file `%s` in the archive" % (archive.name, name))
    return f.read()


def xattrs_of(ti):
    x = {}
    for k, v in (ti.pax_headers or {}).items():
        if k.startswith("SCHILY.xattr."):
            x[k[len("SCHILY.xattr."):]] = hashlib.sha256(
                v.encode("utf-8", "surrogateescape")).hexdigest()
    return x


def read_layer(data, where):
    """The entries of one layer tar (bytes), as dicts keyed by path."""
    import io
    entries = {}
    hardlinks = []  # (path, target)
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except tarfile.TarError as e:
        die("%s: not a tar: %s" % (where, e))
    with tar:
        for ti in tar:
            path = clean(ti.name)
            if path == "":
                continue
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base == WH_OPAQUE:
                entries[parent + "/" + WH_OPAQUE] = {"path": parent, "type": "opaque"}
                continue
            if base.startswith(WH_PREFIX):
                target = posixpath.join(parent, base[len(WH_PREFIX):])
                entries[target + "/" + WH_PREFIX] = {"path": target, "type": "whiteout"}
                continue
            kind = TYPES.get(ti.type)
            if kind is None:
                die("%s: `%s` has an unknown tar type %r" % (where, path, ti.type))
            e = {"path": path, "type": kind, "mode": "%04o" % (ti.mode & 0o7777),
                 "uid": ti.uid, "gid": ti.gid}
            if kind == "file":
                content = tar.extractfile(ti).read()
                e["size"] = len(content)
                e["sha256"] = hashlib.sha256(content).hexdigest()
            elif kind == "symlink":
                e["linkname"] = ti.linkname
            elif kind == "hardlink":
                hardlinks.append((path, clean(ti.linkname)))
            elif kind in ("char", "block"):
                e["devmajor"] = ti.devmajor
                e["devminor"] = ti.devminor
            x = xattrs_of(ti)
            if x:
                e["xattrs"] = x
            entries[path] = e
    # A hardlink is shown as the file it links to, and every member of a
    # group lists the whole group.
    groups = {}
    for path, target in hardlinks:
        t = entries.get(target)
        if t is None or t["type"] != "file":
            die("%s: hardlink `%s` to `%s`, which is not a file of this layer"
                % (where, path, target))
        groups.setdefault(target, [target]).append(path)
    for target, members in groups.items():
        t = entries[target]
        for m in members:
            e = dict(entries[m])
            for k in ("size", "sha256"):
                e[k] = t[k]
            e["type"] = "file"
            e["links"] = sorted(members)
            entries[m] = e
    return entries


def subtree(tree, p):
    if p == "":
        return list(tree)
    return [q for q in tree if q.startswith(p + "/")]


def apply(tree, entries):
    """Apply a layer's entries to tree (path -> entry): whiteouts and opaque
    directories first (they hide what the lower layers hold), then the rest."""
    for e in entries.values():
        p = e["path"]
        if e["type"] in ("whiteout", "opaque"):
            for q in subtree(tree, p):
                del tree[q]
            if e["type"] == "whiteout":
                tree.pop(p, None)
    for e in entries.values():
        p = e["path"]
        if e["type"] in ("whiteout", "opaque"):
            continue
        old = tree.get(p)
        if old is not None and old["type"] == "dir" and e["type"] != "dir":
            for q in subtree(tree, p):
                del tree[q]
        tree[p] = e


def deleted(before, tree):
    """What a layer removed from the lower layers, as the topmost paths: a
    path is left out when its parent went too or became a non-directory."""
    gone = set(p for p in before if p not in tree)
    top = []
    for p in sorted(gone):
        parent = posixpath.dirname(p)
        if parent in gone:
            continue
        if parent and tree.get(parent, {}).get("type") != "dir":
            continue
        top.append({"path": p, "type": "deleted"})
    return top


def same_dir(a, b):
    keys = ("type", "mode", "uid", "gid", "xattrs")
    return all(a.get(k) == b.get(k) for k in keys)


def dump(path, base_layers):
    try:
        archive = tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError) as e:
        die("%s: %s" % (path, e))
    with archive:
        manifest = json.loads(member_bytes(archive, "manifest.json"))
        if not isinstance(manifest, list) or len(manifest) != 1:
            die("%s: manifest.json must list exactly one image" % path)
        m = manifest[0]
        config = json.loads(member_bytes(archive, m["Config"]))
        layers = [member_bytes(archive, name) for name in m["Layers"]]
    if base_layers > len(layers):
        die("%s: %d layers, fewer than the %d base layers" % (path, len(layers), base_layers))
    out = {"config": {}, "history": [], "layers": []}
    cfg = config.get("config") or {}
    for k in sorted(set(CONFIG_FIELDS) | set(cfg)):
        if cfg.get(k) is not None:
            out["config"][k] = cfg[k]
    for k in sorted(set(TOP_FIELDS) | set(config)):
        if k not in TOP_IGNORED and k != "config" and config.get(k) is not None:
            out["config"][k] = config[k]
    for i, h in enumerate(config.get("history") or []):
        entry = {"empty_layer": bool(h.get("empty_layer", False))}
        if i >= base_layers:
            for k in ("created_by", "comment"):
                if h.get(k) is not None:
                    entry[k] = h[k]
        out["history"].append(entry)
    tree = {}
    for i, data in enumerate(layers):
        entries = read_layer(data, "%s: layer %d" % (path, i))
        shown = []
        for e in entries.values():
            if e["type"] in ("whiteout", "opaque"):
                continue
            old = tree.get(e["path"])
            if e["type"] == "dir" and old is not None and same_dir(old, e):
                continue
            shown.append(e)
        before = set(tree)
        apply(tree, entries)
        shown.extend(deleted(before, tree))
        if i >= base_layers:
            shown.sort(key=lambda e: (e["path"], e["type"]))
            out["layers"].append(shown)
    return out


def write(out, f):
    """JSON with one layer entry a line, so that diffs read well."""
    config = json.dumps(out["config"], indent=1, sort_keys=True).replace("\n", "\n ")
    f.write("{\n \"config\": %s,\n" % config)
    f.write(" \"history\": [\n%s\n ],\n" % ",\n".join(
        "  " + json.dumps(h, sort_keys=True) for h in out["history"]))
    layers = []
    for layer in out["layers"]:
        if layer:
            layers.append("  [\n%s\n  ]" % ",\n".join(
                "   " + json.dumps(e, sort_keys=True) for e in layer))
        else:
            layers.append("  []")
    f.write(" \"layers\": [\n%s\n ]\n}\n" % ",\n".join(layers) if layers
            else " \"layers\": []\n}\n")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        die("%s: %s" % (path, e))


def compare(exp, act):
    """The differences between two dumps, one line each, and the notes:
    differences in the history's created_by and comment, which are shown but
    are not failures (the issue compares the empty_layer pattern only)."""
    diffs, notes = [], []
    ec, ac = exp.get("config", {}), act.get("config", {})
    for k in sorted(set(ec) | set(ac)):
        if ec.get(k) != ac.get(k):
            diffs.append("config.%s: expected %s, got %s" % (
                k, json.dumps(ec.get(k)), json.dumps(ac.get(k))))
    eh, ah = exp.get("history", []), act.get("history", [])
    fmt = lambda h: "".join("E" if x.get("empty_layer") else "L" for x in h)
    if fmt(eh) != fmt(ah):
        diffs.append("history (L = layer, E = empty_layer): expected %s, got %s"
                     % (fmt(eh), fmt(ah)))
    else:
        for i, (a, b) in enumerate(zip(eh, ah)):
            for k in ("created_by", "comment"):
                if a.get(k) != b.get(k):
                    notes.append("note: history %d: %s expected %s, got %s" % (
                        i, k, json.dumps(a.get(k)), json.dumps(b.get(k))))
    el, al = exp.get("layers", []), act.get("layers", [])
    if len(el) != len(al):
        diffs.append("layers: expected %d, got %d; comparing the non-empty ones by position"
                     % (len(el), len(al)))
        el = [layer for layer in el if layer]
        al = [layer for layer in al if layer]
    for i in range(min(len(el), len(al))):
        ee = {(e["path"], e["type"] if e["type"] == "deleted" else ""): e
              for e in el[i]}
        ae = {(e["path"], e["type"] if e["type"] == "deleted" else ""): e
              for e in al[i]}
        for key in sorted(set(ee) | set(ae)):
            a, b = ee.get(key), ae.get(key)
            name = key[0] + (" (%s)" % key[1] if key[1] else "")
            if b is None:
                diffs.append("layer %d: missing %s" % (i, json.dumps(a, sort_keys=True)))
            elif a is None:
                diffs.append("layer %d: extra %s" % (i, json.dumps(b, sort_keys=True)))
            elif a != b:
                fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                diffs.append("layer %d: %s: %s" % (i, name, ", ".join(
                    "%s expected %s, got %s" % (k, json.dumps(a.get(k)), json.dumps(b.get(k)))
                    for k in fields)))
    return diffs, notes


def main(argv):
    if len(argv) == 3 and argv[0] == "--compare":
        diffs, notes = compare(load(argv[1]), load(argv[2]))
        for d in diffs + notes:
            print(d)
        return 1 if diffs else 0
    base = 1
    if len(argv) == 3 and argv[0] == "--base-layers":
        try:
            base = int(argv[1])
        except ValueError:
            die("--base-layers wants a number, not `%s`" % argv[1])
        argv = argv[2:]
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write(__doc__)
        return 2
    write(dump(argv[0], base), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
