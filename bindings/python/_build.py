"""Builds the cffi extension imagebuild._native in API (out-of-line) mode.

Usage: /usr/bin/python3 _build.py --include DIR --libdir DIR --out DIR
The extension includes <imagebuild.h> and links libimagebuild; the compiler
checks cdef.h against the real headers.

Or: _build.py --emit-c FILE.c writes the extension's C source only, for
meson's py.extension_module (the installed package, pyproject.toml).
"""
import argparse
import os
import shutil
import sys

import cffi


# Beside <imagebuild.h>: Ctrl-C during a long call. ibpy_sigint_begin(flag)
# makes SIGINT set *flag (the call's ib_callbacks.cancel, polled by the
# library while the GIL is released) instead of Python's own handler, which
# could only run once the call returns; ibpy_sigint_end() puts the previous
# handler back and says whether SIGINT came, so the caller re-raises it
# after the library has cleaned up. Main thread only (one call at a time).
PREAMBLE = r"""
#include <imagebuild.h>
#include <signal.h>
#include <string.h>

static volatile int *ibpy_flag;
static volatile sig_atomic_t ibpy_seen;
static struct sigaction ibpy_old;
static int ibpy_installed;

static void ibpy_on_sigint(int sig)
{
	(void)sig;
	ibpy_seen = 1;
	if (ibpy_flag)
		*ibpy_flag = 1;
}

/* 1: installed; 0: SIGINT is ignored, or a call already holds it; -1: failed */
static int ibpy_sigint_begin(int *flag)
{
	struct sigaction sa;

	if (ibpy_installed)
		return 0;
	if (sigaction(SIGINT, NULL, &ibpy_old) != 0)
		return -1;
	if (!(ibpy_old.sa_flags & SA_SIGINFO) && ibpy_old.sa_handler == SIG_IGN)
		return 0;
	ibpy_seen = 0;
	ibpy_flag = flag;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ibpy_on_sigint;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_ONSTACK;
	if (sigaction(SIGINT, &sa, NULL) != 0) {
		ibpy_flag = NULL;
		return -1;
	}
	ibpy_installed = 1;
	return 1;
}

/* the previous handler back; 1 when SIGINT came meanwhile */
static int ibpy_sigint_end(void)
{
	if (!ibpy_installed)
		return 0;
	sigaction(SIGINT, &ibpy_old, NULL);
	ibpy_installed = 0;
	ibpy_flag = NULL;
	return ibpy_seen != 0;
}
"""


def make_ffi(**kw):
    here = os.path.dirname(os.path.abspath(__file__))
    ffi = cffi.FFI()
    with open(os.path.join(here, "cdef.h")) as f:
        ffi.cdef(f.read())
    ffi.set_source("imagebuild._native", PREAMBLE, **kw)
    return ffi


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emit-c", metavar="FILE", help="write the C source only (meson extension_module)")
    ap.add_argument("--include")
    ap.add_argument("--libdir")
    ap.add_argument("--out")
    ap.add_argument("--stamp", help="file to touch when done (for meson)")
    ap.add_argument("--rpath", action="store_true", help="embed --libdir as rpath (in-tree use)")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    if args.emit_c:
        make_ffi().emit_c_code(args.emit_c)
        return 0
    if not (args.include and args.libdir and args.out):
        ap.error("--include, --libdir and --out are required (without --emit-c)")
    extra = ["-Wl,-rpath," + os.path.abspath(args.libdir)] if args.rpath else []
    ffi = make_ffi(
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
        if name.endswith(".py") or name == "py.typed":
            shutil.copyfile(os.path.join(here, "imagebuild", name), os.path.join(pkg, name))
    if args.stamp:
        open(args.stamp, "w").close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
