"""Builds the cffi extension imagebuild._native in API (out-of-line) mode.

Usage: /usr/bin/python3 _build.py --include DIR --libdir DIR --out DIR
The extension includes <imagebuild.h> and links libimagebuild; the compiler
checks cdef.h against the real headers.
"""
import argparse
import os
import shutil
import sys

import cffi


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--include", required=True)
    ap.add_argument("--libdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stamp", help="file to touch when done (for meson)")
    ap.add_argument("--rpath", action="store_true", help="embed --libdir as rpath (in-tree use)")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    ffi = cffi.FFI()
    with open(os.path.join(here, "cdef.h")) as f:
        ffi.cdef(f.read())
    extra = ["-Wl,-rpath," + os.path.abspath(args.libdir)] if args.rpath else []
    ffi.set_source(
        "imagebuild._native",
        "#include <imagebuild.h>",
        include_dirs=[args.include],
        library_dirs=[args.libdir],
        libraries=["imagebuild"],
        extra_link_args=extra,
    )
    os.makedirs(args.out, exist_ok=True)
    so = ffi.compile(tmpdir=args.out, verbose=False)
    # the pure-Python part goes next to the extension, so PYTHONPATH=out works
    pkg = os.path.join(args.out, "imagebuild")
    os.makedirs(pkg, exist_ok=True)
    if os.path.dirname(os.path.abspath(so)) != os.path.abspath(pkg):
        shutil.move(so, os.path.join(pkg, os.path.basename(so)))
    for name in os.listdir(os.path.join(here, "imagebuild")):
        if name.endswith(".py"):
            shutil.copyfile(os.path.join(here, "imagebuild", name), os.path.join(pkg, name))
    if args.stamp:
        open(args.stamp, "w").close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
