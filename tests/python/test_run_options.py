"""Container run options v3 through the Python bindings: volumes, mounts,
tmpfs, read_only, cap_drop, ulimits, detached containers, named volumes."""
import os
import tempfile

import pytest

import imagebuild

from conftest import require


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tarball):
    require(os.geteuid() == 0, "containers need root")
    base = tmp_path_factory.mktemp("runopts")
    with imagebuild.Store(str(base / "store")) as s:
        s.import_tarball(busybox_tarball, name="busybox", changes=['CMD ["sh"]'])
        yield s


def output(store, argv, **kw):
    """Exit status and stdout+stderr of a --rm run."""
    with tempfile.TemporaryFile() as out:
        rc = store.run("busybox", argv, rm=True, stdout=out, stderr=out, **kw)
        out.seek(0)
        return rc, out.read().decode()


def test_bind_volume_and_tmpfs(store, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    rc, _ = output(store, ["sh", "-c", "echo hi > /data/f"], volumes=["%s:/data" % host])
    assert rc == 0 and (host / "f").read_text() == "hi\n"
    # docker-py's dict form, read-only
    rc, out = output(store, ["sh", "-c", "cat /data/f && ! touch /data/g"],
                     volumes={str(host): {"bind": "/data", "mode": "ro"}})
    assert rc == 0 and out.startswith("hi\n") and not (host / "g").exists()
    rc, out = output(store, ["sh", "-c", "grep ' /t ' /proc/mounts"], tmpfs={"/t": "size=1m"})
    assert rc == 0 and "tmpfs" in out and "noexec" in out
    rc, out = output(store, ["sh", "-c", "grep ' /m ' /proc/mounts"],
                     mounts=[imagebuild.ContainerMount("/m", str(host), "bind", read_only=True)])
    assert rc == 0 and " ro," in out
    with pytest.raises(ValueError, match="absolute host path or a volume name"):
        output(store, ["true"], volumes=["./rel:/x"])
    with pytest.raises(ValueError, match="not supported"):
        imagebuild.ContainerMount.parse("type=bind,source=/x,target=/y,bogus=1")


def test_named_volume_persists(store):
    rc, _ = output(store, ["sh", "-c", "echo kept > /v/f"], mounts=["type=volume,source=pyvol,target=/v"])
    assert rc == 0
    rc, out = output(store, ["cat", "/v/f"], volumes=["pyvol:/v"])
    assert rc == 0 and out == "kept\n"
    names = [v.name for v in store.volumes()]
    assert "pyvol" in names
    vol = store.volume("pyvol")
    assert open(os.path.join(vol.mountpoint, "f")).read() == "kept\n"
    assert "pyvol" in repr(vol)
    store.create_volume("pyvol2")
    with pytest.raises(imagebuild.AlreadyExists):
        store.create_volume("pyvol2")
    assert [v.name for v in store.volumes()] == sorted(names + ["pyvol2"])
    store.remove_volume("pyvol2")
    store.remove_volume("pyvol")
    with pytest.raises(imagebuild.NotFound):
        store.volume("pyvol")
    assert list(store.volumes()) == []


def test_read_only_caps_ulimits(store):
    assert output(store, ["touch", "/x"])[0] == 0
    rc, out = output(store, ["touch", "/x"], read_only=True)
    assert rc != 0 and "Read-only file system" in out
    assert output(store, ["chown", "1", "/bin"])[0] == 0
    rc, out = output(store, ["chown", "1", "/bin"], cap_drop=["CHOWN"])
    assert rc != 0 and "not permitted" in out
    rc, out = output(store, ["sh", "-c", "ulimit -n; ulimit -Hn"],
                     ulimits=[imagebuild.Ulimit("nofile", 100, 200)])
    assert rc == 0 and out.split() == ["100", "200"]
    rc, out = output(store, ["sh", "-c", "ulimit -n"], ulimits={"nofile": 123})
    assert rc == 0 and out.split() == ["123"]
    with pytest.raises(ValueError, match="soft limit is above"):
        output(store, ["true"], ulimits=["nofile=10:5"])


def test_detached(store):
    c = store.run("busybox", ["sh", "-c", "echo started; trap 'echo bye; exit 3' TERM; "
                              "while :; do sleep 0.1; done"], detach=True, name="pydetached")
    assert isinstance(c, imagebuild.Container) and c.running
    with pytest.raises(imagebuild.AlreadyExists):
        store.remove_container("pydetached")
    c.stop(timeout=30)
    assert not c.running
    assert c.wait() == 3
    assert c.logs() == b"started\nbye\n"
    # start again: detached, then removed by force while running
    c.start(["sleep", "1000"])
    assert c.running
    c.remove(force=True)
    with pytest.raises(imagebuild.NotFound):
        store.container("pydetached")

    d = store.run("busybox", ["sh", "-c", "echo out; echo err >&2; exit 5"], detach=True)
    assert d.wait() == 5
    assert sorted(d.logs(follow=True).split()) == [b"err", b"out"]
    d.remove()
    with pytest.raises(ValueError, match="no tty"):
        store.create_container("busybox").start(["true"], tty=True)


def test_kill(store):
    with store.create_container("busybox", remove=True) as c:
        c.start(["sleep", "1000"])
        c.kill("KILL")
        assert c.wait() == 128 + 9
        with pytest.raises(imagebuild.Invalid):
            c.kill()


def test_init(store):
    rc, out = output(store, ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"])
    assert rc == 0 and out.startswith("sh ")
    rc, out = output(store, ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"], init=True,
                     init_path="/usr/bin/tini-static")
    assert rc == 0 and out.startswith("/sbin/docker-init -- sh "), out
    with pytest.raises(imagebuild.NotFound):
        output(store, ["true"], init=True, init_path="/nonexistent/init")
