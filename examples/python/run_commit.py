#!/usr/bin/python3
"""Run a command in a container, then commit its changes as a new image.

    run_commit.py [--root STORE] IMAGE NEW_NAME
"""
import argparse
import sys
import tempfile

import imagebuild


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="the store (default: the library's)")
    ap.add_argument("image")
    ap.add_argument("new_name")
    args = ap.parse_args()
    with imagebuild.Store(args.root) as store:
        # remove=True: the container goes when the block ends (docker run --rm)
        with store.create_container(args.image, remove=True) as c:
            status = c.run(["sh", "-c", "date -u > /stamp && echo changed >> /motd"])
            if status != 0:
                print("the command failed with status", status, file=sys.stderr)
                return 1
            image_id = c.commit(args.new_name, message="stamped", changes=['CMD ["cat", "/stamp"]'])
        image = store.image(image_id)
        print(image)
        for entry in image.history[:2]:
            print(" ", entry.created_by, "-", entry.comment)
        # and run the new image's CMD once, its output captured
        with tempfile.TemporaryFile() as out:
            store.run(args.new_name, stdout=out, rm=True)
            out.seek(0)
            print("new image says:", out.read().decode().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
