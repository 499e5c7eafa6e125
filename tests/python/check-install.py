#!/usr/bin/python3
"""The installable Python package, checked from outside the source tree.

check-install.py wheel SOURCE
    python3 -m build --wheel --no-isolation (meson-python, pyproject.toml)
    into a temporary directory, a fresh venv (--system-site-packages, for
    Debian's python3-cffi), pip install --no-index of that wheel, then a
    smoke test and the pytest suite run from a directory outside the source
    tree against the INSTALLED package (its __file__ is inside the venv).
check-install.py destdir BUILDDIR
    meson install --destdir D: imagebuild/__init__.py and the extension land
    in a directory on /usr/bin/python3's sys.path (below D), and import from
    there without libimagebuild.so on the loader's path.
"""
import os
import re
import subprocess
import sys
import tempfile
import zipfile

PY = "/usr/bin/python3"

SMOKE = r"""
import os, sys
import imagebuild
f = os.path.realpath(imagebuild.__file__)
assert f.startswith(os.path.realpath(sys.prefix) + os.sep), (f, sys.prefix)
assert sys.prefix != sys.base_prefix, "not in the venv"
assert imagebuild.dump_dockerfile("FROM busybox\nRUN echo hi\n") == '(from "busybox")\n(run "echo hi")\n'
print("installed", imagebuild.version(), "at", f)
"""


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, **kw)
    if r.returncode != 0:
        fail("%s exited %d" % (cmd[0], r.returncode))
    return r


def clean_env():
    env = dict(os.environ)
    for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(k, None)
    env["PIP_NO_INDEX"] = "1"          # never the network
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_wheel(source):
    source = os.path.abspath(source)
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="ib-wheel-") as tmp:
        dist = os.path.join(tmp, "dist")
        run([PY, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, source], env=env,
            stdout=sys.stdout, stderr=sys.stderr)
        wheels = [w for w in os.listdir(dist) if w.endswith(".whl")]
        if len(wheels) != 1:
            fail("expected one wheel, got %r" % wheels)
        wheel = os.path.join(dist, wheels[0])
        # pyproject.toml's version is meson.build's
        with open(os.path.join(source, "meson.build")) as f:
            version = re.search(r"^\s*version:\s*'([^']+)'", f.read(), re.M).group(1)
        if not wheels[0].startswith("imagebuild-%s-" % version):
            fail("the wheel %s is not version %s (meson.build): update pyproject.toml" % (wheels[0], version))
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
        print("\n".join(names))
        pkg = sorted(n for n in names if ".dist-info/" not in n)
        if len(pkg) != 3 or pkg[0] != "imagebuild/__init__.py" or \
                not (pkg[1].startswith("imagebuild/_native.") and pkg[1].endswith(".so")) or \
                pkg[2] != "imagebuild/py.typed":
            fail("the wheel should hold imagebuild/__init__.py, py.typed and the extension only, not %r" % pkg)

        venv = os.path.join(tmp, "venv")
        run([PY, "-m", "venv", "--system-site-packages", venv], env=env)
        vpy = os.path.join(venv, "bin", "python")
        run([vpy, "-m", "pip", "install", "--no-index", "--no-build-isolation", wheel], env=env)
        away = os.path.join(tmp, "elsewhere")
        os.mkdir(away)
        run([vpy, "-c", SMOKE], env=env, cwd=away)
        # the extension carries the library: no libimagebuild.so needed
        so = subprocess.run([vpy, "-c", "import imagebuild._native as n; print(n.__file__)"],
                            env=env, cwd=away, capture_output=True, text=True, check=True).stdout.strip()
        ldd = subprocess.run(["ldd", so], capture_output=True, text=True).stdout
        if "libimagebuild" in ldd:
            fail("the wheel's extension needs libimagebuild.so:\n" + ldd)
        # the suite, against the installed package (the tests dir has no imagebuild/)
        tests = os.path.join(source, "tests", "python")
        tenv = dict(env, IB_SOURCE_ROOT=source, IB_PY_INSTALLED=venv)
        run([vpy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", away, tests,
             ], env=tenv, cwd=away)


def check_destdir(builddir):
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="ib-destdir-") as d:
        run(["meson", "install", "--no-rebuild", "--quiet", "-C", builddir, "--destdir", d], env=env,
            stdout=subprocess.DEVNULL)
        path = subprocess.run([PY, "-I", "-c", "import sys; print('\\n'.join(sys.path))"],
                              capture_output=True, text=True, check=True).stdout.split()
        found = [p for p in path if p.startswith("/") and
                 os.path.isfile(os.path.join(d + p, "imagebuild", "__init__.py"))]
        if not found:
            fail("imagebuild/__init__.py is not below %s in any of %s's sys.path %r" % (d, PY, path))
        pkg = os.path.join(d + found[0], "imagebuild")
        if not [n for n in os.listdir(pkg) if n.startswith("_native.") and n.endswith(".so")]:
            fail("no extension in " + pkg)
        if not os.path.isfile(os.path.join(pkg, "py.typed")):
            fail("no py.typed in " + pkg + " (PEP 561: the package is typed)")
        print("installed to", found[0])
        away = tempfile.mkdtemp(dir=d)
        r = subprocess.run([PY, "-c", "import imagebuild, os; print(imagebuild.version(), imagebuild.__file__)"],
                           env=dict(env, PYTHONPATH=d + found[0]), cwd=away,
                           capture_output=True, text=True)
        print(r.stdout, r.stderr)
        if r.returncode != 0 or not r.stdout.strip().split()[-1].startswith(pkg):
            fail("the installed package does not import from " + pkg)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("wheel", "destdir"):
        print(__doc__, file=sys.stderr)
        return 2
    (check_wheel if sys.argv[1] == "wheel" else check_destdir)(sys.argv[2])
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
