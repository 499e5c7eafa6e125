#!/usr/bin/python3
"""Push an image to a registry with per-blob progress, then pull it back into another store.

    push.py [--root STORE] [--username U --password P] [--insecure] NAME DEST [PULL_ROOT]
"""
import argparse
import sys

import imagebuild


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="the store (default: the library's)")
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--insecure", action="store_true")
    ap.add_argument("name")
    ap.add_argument("dest")
    ap.add_argument("pull_root", nargs="?")
    args = ap.parse_args()
    creds = dict(username=args.username, password=args.password, insecure=args.insecure)

    def show(ev: imagebuild.ProgressEvent) -> None:
        if ev.kind is imagebuild.ProgressKind.BYTES:
            total = "/%d" % ev.total if ev.total else ""
            print("  %s: %s %d%s bytes" % (ev.id, ev.text, ev.bytes or 0, total))

    with imagebuild.Store(args.root) as store:
        try:
            digest = store.push(args.name, args.dest, on_progress=show, **creds)
        except imagebuild.NotFound as e:
            print(e, file=sys.stderr)
            return 1
        print("pushed", args.dest, digest)
    if args.pull_root:
        with imagebuild.Store(args.pull_root) as other:
            image_id = other.pull(args.dest, on_progress=show, **creds)
            print("pulled", image_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
