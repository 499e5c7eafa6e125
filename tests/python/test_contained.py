"""RUN is contained for a Python embedder too: /proc/self/exe inside the build
container (directly, through a link, as a `#!` interpreter) never starts this
python3; the seccomp profile is in force. For each isolation backend."""
import os
import subprocess
import sys

import pytest

import imagebuild

SOURCE = os.environ.get("IB_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


def need_root():
    if os.geteuid() != 0:
        if os.environ.get("IB_TEST_STRICT") == "1":
            pytest.fail("IB_TEST_STRICT=1 forbids skipping: containers need root")
        pytest.skip("containers need root")


@pytest.fixture(scope="module")
def store_with_base(tmp_path_factory):
    need_root()
    tmp = tmp_path_factory.mktemp("contained")
    tar = tmp / "busybox.tar"
    subprocess.run([os.path.join(SOURCE, "tests/resources/make-busybox-tar.sh"), str(tar)], check=True)
    store = imagebuild.Store(str(tmp / "store"))
    store.import_tarball(str(tar), name="busybox")
    # what this python3 needs to start inside the container, so that starting it would show
    ctx = tmp / "ctx"
    (ctx / "libs").mkdir(parents=True)
    ldd = subprocess.run(["ldd", sys.executable], capture_output=True, text=True, check=True).stdout
    for word in ldd.split():
        if word.startswith("/"):
            dest = ctx / "libs" / word.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(open(os.path.realpath(word), "rb").read())
    yield store, ctx
    store.close()


def build(store, ctx, iso, body):
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY libs/ /\n" + body)
    lines = []
    try:
        store.build(str(ctx), no_cache=True, isolation=iso,
                    on_log=lambda lvl, line: lines.append(line),
                    on_progress=lambda ev: lines.append(ev.text or "") if ev.kind == "output" else None)
        return None, "\n".join(lines)
    except imagebuild.ImageBuildError as e:
        return e, "\n".join(lines) + "\n" + e.message


@pytest.mark.parametrize("iso", ["namespaces", "oci", "chroot"])
def test_proc_self_exe_never_python(store_with_base, iso):
    store, ctx = store_with_base
    probe = "import sys; print('EMBEDDER-' + 'STARTED')"
    cases = [
        'RUN ["/proc/self/exe", "-c", "%s"]\n' % probe,
        'RUN ln -s /proc/self/exe /bin/selfexe\nRUN ["selfexe", "-c", "%s"]\n' % probe,
        "RUN printf '#!/proc/self/exe\\nimport sys\\n' > /bin/selfscript && chmod 755 /bin/selfscript\n"
        'RUN ["/bin/selfscript"]\n',
    ]
    for i, body in enumerate(cases):
        err, out = build(store, ctx, iso, body)
        assert err is not None, out
        assert "EMBEDDER-STARTED" not in out
        # python3 did not even begin: no interpreter start-up message of its own
        assert "Python" not in out and "python" not in out.replace("python3", ""), out
        if i < 2:
            assert "magic link" in err.message, err.message


@pytest.mark.parametrize("iso", ["namespaces", "oci", "chroot"])
def test_seccomp_in_run(store_with_base, iso):
    store, ctx = store_with_base
    err, out = build(store, ctx, iso,
                     "RUN grep '^Seccomp:' /proc/self/status && "
                     "! unshare -U true && echo userns-refused\n")
    assert err is None, out
    assert "Seccomp:\t2" in out
    assert "userns-refused" in out
