"""build() keyword arguments for BuildKit's options: labels, annotations,
named build contexts, extra hosts, ulimits, shm size, no-cache filter, output."""
import json
import os
import tarfile

import pytest

import imagebuild

from conftest import require


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tarball):
    require(os.geteuid() == 0, "builds with RUN need root")
    base = tmp_path_factory.mktemp("buildopts")
    with imagebuild.Store(str(base / "store")) as s:
        s.import_tarball(busybox_tarball, name="busybox", changes=['CMD ["sh"]'])
        yield s


def blob(layout, digest):
    return json.load(open(os.path.join(layout, "blobs", *digest.split(":"))))


def test_build_options(store, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "f").write_text("from a named context\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS one\nLABEL from.dockerfile=D over=dockerfile\n"
        "RUN grep myhost /etc/hosts > /hosts && ulimit -Sn > /nofile && ulimit -Hn >> /nofile "
        "&& df -k /dev/shm | awk 'NR == 2 { print $2 }' > /shm && cat /proc/sys/kernel/random/uuid > /stamp\n"
        "COPY --from=extra /f /f\n")
    store.build(str(ctx), ["pyopts"], pull=False, labels={"over": "kwarg", "org.example": "L"},
                annotations={"org.example.note": "N"}, build_contexts={"extra": str(extra)},
                extra_hosts={"myhost": "10.1.2.3"}, ulimits=["nofile=1024:2048"], shm_size="32m",
                output={"type": "oci", "dest": str(tmp_path / "layout"), "tar": "false"})
    labels = store.inspect("pyopts")["Config"]["Labels"]
    assert labels == {"from.dockerfile": "D", "over": "kwarg", "org.example": "L"}
    index = json.load(open(tmp_path / "layout" / "index.json"))
    manifest = blob(str(tmp_path / "layout"), index["manifests"][0]["digest"])
    assert manifest["annotations"] == {"org.example.note": "N"}

    store.build(str(ctx), ["pyopts"], pull=False, labels={"over": "kwarg", "org.example": "L"},
                build_contexts={"extra": str(extra)}, extra_hosts={"myhost": "10.1.2.3"},
                ulimits=[imagebuild.Ulimit("nofile", 1024, 2048)], shm_size=32 << 20,
                output=str(tmp_path / "rootfs"))
    root = tmp_path / "rootfs"
    assert (root / "hosts").read_text().split() == ["10.1.2.3", "myhost"]
    assert (root / "nofile").read_text().split() == ["1024", "2048"]
    assert (root / "shm").read_text().strip() == str(32 * 1024)
    assert (root / "f").read_text() == "from a named context\n"
    assert (root / "bin" / "busybox").exists()

    # the same options: cached; no_cache_filter: that stage runs again
    args = dict(pull=False, labels={"over": "kwarg", "org.example": "L"},
                build_contexts={"extra": str(extra)}, extra_hosts={"myhost": "10.1.2.3"},
                ulimits={"nofile": (1024, 2048)}, shm_size="32m")
    again = store.build(str(ctx), ["pyopts2"], output="type=tar,dest=%s" % (tmp_path / "a.tar"), **args)
    assert again.cached_steps == again.steps
    with tarfile.open(tmp_path / "a.tar") as t:
        names = t.getnames()
        stamp = t.extractfile("stamp").read()
    assert "stamp" in names and "bin/busybox" in names and not any(n.startswith(("./", "/")) for n in names)
    fresh = store.build(str(ctx), ["pyopts3"], no_cache_filter=["ONE"], output=str(tmp_path / "r3"), **args)
    assert fresh.cached_steps < fresh.steps
    assert (tmp_path / "r3" / "stamp").read_bytes() != stamp


def test_build_options_refused(store, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\n")
    for bad, match in [("-", "stdout"), ("type=oci,dest=-", "stdout"), ("type=oci", "dest= is required"),
                       ("type=registry,dest=x", "type must be"), ("type=oci,dest=x,push=true", "push"),
                       ("type=tar,dest=x,tar=false", "only for type=oci")]:
        with pytest.raises(ValueError, match=match):
            store.build(str(ctx), pull=False, output=bad)
    with pytest.raises(ValueError, match="invalid size"):
        store.build(str(ctx), pull=False, shm_size="lots")
    with pytest.raises(imagebuild.ImageBuildError, match="index"):
        store.build(str(ctx), pull=False, annotations=["index:k=v"])


def test_build_jobs(store, tmp_path):
    """jobs=: two independent stages meet through a shared cache mount only when they run at once."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    wait = ('echo {me} > /meet/{me}; i=0; while [ ! -f /meet/{other} ]; do i=$((i+1)); '
            '[ $i -gt 60 ] && {{ echo "{me}: {other} never came"; exit 1; }}; sleep 0.1; done; echo {me} > /{me}')
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS left\nARG MEET\nRUN --mount=type=cache,id=$MEET,target=/meet " + wait.format(me="l", other="r") + "\n"
        "FROM busybox AS right\nARG MEET\nRUN --mount=type=cache,id=$MEET,target=/meet " + wait.format(me="r", other="l") + "\n"
        "FROM busybox\nCOPY --from=left /l /\nCOPY --from=right /r /\n")
    events = []
    r = store.build(str(ctx), pull=False, jobs=2, build_args={"MEET": "py-at-once"}, on_progress=events.append)
    assert r.steps == 6
    steps = [e.step for e in events if e.kind == "step"]
    assert steps == [1, 2, 3, 4, 5, 6], steps
    labels = [e.id for e in events if e.kind == "step"]
    assert labels.index("[left 1/2]") < labels.index("[left 2/2]") < labels.index("[stage-2 1/2]"), labels
    assert labels.index("[right 1/2]") < labels.index("[right 2/2]") < labels.index("[stage-2 1/2]"), labels
    # one after the other (a fresh cache): the first never meets the second
    with pytest.raises(imagebuild.ImageBuildError, match="never came"):
        store.build(str(ctx), pull=False, no_cache=True, jobs=1, build_args={"MEET": "py-serial"})
    for bad in (0, -1, True, "2"):
        with pytest.raises(ValueError, match="jobs"):
            store.build(str(ctx), pull=False, jobs=bad)
