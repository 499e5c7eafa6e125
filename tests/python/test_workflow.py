"""The seed workflow through the Python bindings: import, build, run, commit."""
import os
import subprocess
import tempfile
import threading
import time

import pytest

import imagebuild

SOURCE = os.environ.get("IB_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


def need_root():
    if os.geteuid() != 0:
        if os.environ.get("IB_TEST_STRICT") == "1":
            pytest.fail("IB_TEST_STRICT=1 forbids skipping: containers need root")
        pytest.skip("containers need root")


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "busybox.tar"
    subprocess.run([os.path.join(SOURCE, "tests/resources/make-busybox-tar.sh"), str(out)], check=True)
    return str(out)


def test_dump_dockerfile():
    assert imagebuild.dump_dockerfile("FROM busybox AS b\nRUN echo hi\n") == \
        '(from "busybox" "AS" "b")\n(run "echo hi")\n'
    with pytest.raises(imagebuild.ParseError) as e:
        imagebuild.dump_dockerfile("# only a comment\n", filename="Bad.Dockerfile")
    assert "Bad.Dockerfile" in e.value.message


def test_store_errors(tmp_path):
    with imagebuild.Store(str(tmp_path / "s")) as store:
        with pytest.raises(imagebuild.NotFound):
            store.inspect("nothing:here")
        with pytest.raises(imagebuild.NotFound):
            store.tag("nothing", "other")
        with pytest.raises(imagebuild.NotFound) as e:
            store.build(str(tmp_path / "no-such-context"))
        assert "no-such-context" in e.value.message or "Dockerfile" in e.value.message


@pytest.mark.parametrize("snapshotter", ["overlay", "copy"])
def test_build_run_commit(tmp_path, busybox_tar, snapshotter):
    need_root()
    store = imagebuild.Store(str(tmp_path / "store"))
    base = store.import_tarball(busybox_tar, name="busybox", changes=['CMD ["sh"]'])
    assert store.image("busybox").id == base

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nARG WHO=world\nCOPY msg /msg\nRUN echo \"hello $WHO\" >> /msg\nCMD [\"cat\", \"/msg\"]\n")
    (ctx / "msg").write_text("from python\n")
    events = []
    image = store.build(str(ctx), tags=["pyapp"], build_args={"WHO": "bindings"},
                        snapshotter=snapshotter, on_progress=events.append)
    assert image.id.startswith("sha256:") and image.tags == ("pyapp",)
    assert image.steps == 4 and image.cached_steps == 0
    assert [e.id for e in events if e.kind == "step"] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert "pyapp" in {i.name.split("/")[-1].split(":")[0] for i in store.images() if i.name}

    # a cancelled build raises and tags nothing new
    with pytest.raises(imagebuild.Cancelled):
        store.build(str(ctx), tags=["cancelled"], no_cache=True, snapshotter=snapshotter,
                    on_progress=lambda e: False)
    with pytest.raises(imagebuild.NotFound):
        store.inspect("cancelled")

    # cancelling while a RUN runs kills it (else this would sleep past the test's timeout)
    (ctx / "Dockerfile.slow").write_text("FROM busybox\nRUN echo started; sleep 1000\n")
    with pytest.raises(imagebuild.Cancelled):
        store.build(str(ctx), dockerfile=str(ctx / "Dockerfile.slow"), snapshotter=snapshotter,
                    on_progress=lambda e: e.kind != "output")

    # cancelled from another thread while a RUN prints nothing: killed at once
    (ctx / "Dockerfile.silent").write_text("FROM busybox\nRUN sleep 1000\n")
    flag = imagebuild.CancelFlag()
    started = []

    def on_step(e):
        if e.kind == "step" and e.text.startswith("RUN"):
            started.append(time.monotonic())
            threading.Timer(0.5, flag.set).start()
    with pytest.raises(imagebuild.Cancelled) as err:
        store.build(str(ctx), dockerfile=str(ctx / "Dockerfile.silent"), snapshotter=snapshotter,
                    no_cache=True, on_progress=on_step, cancel=flag)
    assert "cancelled" in err.value.message
    assert started and time.monotonic() - started[0] < 0.5 + 1.0

    # a secret reaches the RUN and nothing else; pull=False forbids pulling
    (tmp_path / "token").write_text("tok")
    (ctx / "Dockerfile.secret").write_text(
        "FROM busybox\nRUN --mount=type=secret,id=t,required wc -c < /run/secrets/t > /len\n")
    store.build(str(ctx), dockerfile=str(ctx / "Dockerfile.secret"), tags=["pysecret"],
                snapshotter=snapshotter, pull=False, secrets={"t": str(tmp_path / "token")})
    s = store.create_container("pysecret", snapshotter=snapshotter)
    with tempfile.TemporaryFile() as out:
        assert s.run(["cat", "/len"], stdout=out) == 0
        out.seek(0)
        assert out.read().strip() == b"3"
    store.remove_container(s.id)
    # RUN --security=insecure only with the security.insecure entitlement (allow=)
    (ctx / "Dockerfile.insecure").write_text(
        "FROM busybox\nRUN --security=insecure mkdir /m && mount -t tmpfs none /m && umount /m\n")
    with pytest.raises(imagebuild.Invalid, match="security.insecure is not allowed"):
        store.build(str(ctx), dockerfile=str(ctx / "Dockerfile.insecure"), snapshotter=snapshotter,
                    pull=False)
    with pytest.raises(imagebuild.Invalid, match="unknown entitlement `nope`"):
        store.build(str(ctx), dockerfile=str(ctx / "Dockerfile.insecure"), snapshotter=snapshotter,
                    pull=False, allow=["nope"])
    store.build(str(ctx), dockerfile=str(ctx / "Dockerfile.insecure"), snapshotter=snapshotter,
                pull=False, allow=["security.insecure"])
    (ctx / "Dockerfile.nopull").write_text("FROM example.invalid/nothing\n")
    with pytest.raises(imagebuild.NotFound):
        store.build(str(ctx), dockerfile=str(ctx / "Dockerfile.nopull"), pull=False)

    c = store.create_container("pyapp", name="py1", snapshotter=snapshotter)
    with tempfile.TemporaryFile() as out:
        assert c.run(stdout=out) == 0
        out.seek(0)
        assert out.read() == b"from python\nhello bindings\n"
    assert c.run(["sh", "-c", "echo changed > /changed; exit 4"]) == 4
    new = c.commit(tag="pyapp:committed", message="via python", changes=['CMD ["cat", "/changed"]'])
    info = store.inspect("pyapp:committed")
    assert info["Id"] == new
    assert info["Config"]["Cmd"] == ["cat", "/changed"]
    store.remove_container("py1")
    with pytest.raises(imagebuild.NotFound):
        store.container("py1")
