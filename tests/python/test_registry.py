"""Push to and pull from a real registry (Debian's docker-registry) through the bindings."""
import warnings

with warnings.catch_warnings():  # deprecated, but what makes a bcrypt htpasswd line here
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

import pytest

import imagebuild
from conftest import start_registry


@pytest.fixture()
def registry(tmp_path):
    host, proc = start_registry(tmp_path)
    try:
        yield host
    finally:
        proc.kill()
        proc.wait()


def test_push_then_pull(tmp_path, registry, monkeypatch, busybox_tarball):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    src = imagebuild.Store(str(tmp_path / "src"))
    image = src.import_tarball(busybox_tarball, name="busybox")
    events = []
    digest = src.push("busybox", registry + "/py/busybox:1", on_progress=events.append)
    assert digest.startswith("sha256:")
    # typed BYTES events per blob, ending in "Pushed"
    assert events and all(isinstance(e, imagebuild.ProgressEvent) for e in events)
    assert {e.kind for e in events} == {imagebuild.ProgressKind.BYTES}
    assert "Pushed" in {e.text for e in events}
    assert all(isinstance(e.bytes, int) for e in events)
    # pushing again sends nothing new and gives the same manifest
    events.clear()
    assert src.push("busybox", registry + "/py/busybox:1", on_progress=events.append) == digest
    assert "Pushed" not in {e.text for e in events}
    dst = imagebuild.Store(str(tmp_path / "dst"))
    events.clear()
    assert dst.pull(registry + "/py/busybox:1", on_progress=events.append) == image
    assert "Pull complete" in {e.text for e in events}
    done = [e for e in events if e.text == "Pull complete"]
    assert all(e.total and e.bytes == e.total for e in done)
    assert dst.image(registry + "/py/busybox:1").id == image
    # a build pulls its base from the registry (pull="always": again, though the store has it)
    events.clear()
    built = dst.build(str(tmp_path), dockerfile_content="FROM %s/py/busybox:1\nENV PULLED=1\n" % registry,
                      pull="always", on_progress=events.append)
    assert dst.image(built.id).config["Env"][-1] == "PULLED=1"
    assert any(e.kind == "bytes" and e.text == "Already exists" for e in events), events
    with pytest.raises(imagebuild.NotFound):
        dst.build(str(tmp_path), dockerfile_content="FROM %s/py/nothing:1\n" % registry)
    with pytest.raises(imagebuild.NotFound) as e:
        dst.pull(registry + "/py/busybox:missing")
    assert "missing" in e.value.message
    assert isinstance(e.value, LookupError)


def test_push_zstd(tmp_path, registry, monkeypatch, busybox_tarball):
    """compression="zstd": the registry gets zstd layers, they pull back as the same image; bad names and levels are refused."""
    import json
    import urllib.request
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    src = imagebuild.Store(str(tmp_path / "src"))
    image = src.import_tarball(busybox_tarball, name="busybox")
    digest = src.push("busybox", registry + "/py/z:1", compression="zstd")
    req = urllib.request.Request("http://%s/v2/py/z/manifests/1" % registry,
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req) as r:
        m = json.load(r)
    assert [l["mediaType"] for l in m["layers"]] == ["application/vnd.oci.image.layer.v1.tar+zstd"]
    # made once: a push elsewhere names the same blob
    assert src.push("busybox", registry + "/py/z2:1", compression="zstd") == digest
    dst = imagebuild.Store(str(tmp_path / "dst"))
    assert dst.pull(registry + "/py/z:1") == image
    with pytest.raises(imagebuild.Invalid, match="lz4"):
        src.push("busybox", registry + "/py/z:2", compression="lz4")
    with pytest.raises(imagebuild.Invalid, match="level 30"):
        src.push("busybox", registry + "/py/z:2", compression="zstd", compression_level=30)
    # a level compresses again at that level: still the same image
    src.push("busybox", registry + "/py/z:19", compression="zstd", compression_level=19)
    assert dst.pull(registry + "/py/z:19") == image


def test_login_logout(tmp_path, busybox_tarball, monkeypatch):
    """login checks the password against an htpasswd registry and records it; push then needs no password."""
    hp = tmp_path / "htpasswd"
    # bcrypt with the fewest rounds: the registry checks it on every request
    hp.write_text("alice:" + crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)) + "\n")
    # no auth.json of this machine's user is searched (podman's order reads these)
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    host, proc = start_registry(tmp_path, "auth:\n  htpasswd:\n    realm: ib-test\n    path: %s\n" % hp)
    try:
        cfg = tmp_path / "docker" / "config.json"
        store = imagebuild.Store(str(tmp_path / "s"))
        store.import_tarball(busybox_tarball, name="busybox")
        with pytest.raises(imagebuild.ImageBuildError, match="401"):
            store.push("busybox", host + "/a/b:1", docker_config=str(cfg))
        with pytest.raises(imagebuild.Invalid):
            imagebuild.login(host, "alice", "wrong", docker_config=str(cfg))
        assert not cfg.exists()
        imagebuild.login(host, "alice", "s3cret", docker_config=str(cfg))
        assert host in cfg.read_text() and (cfg.stat().st_mode & 0o777) == 0o600
        assert store.push("busybox", host + "/a/b:1", docker_config=str(cfg)).startswith("sha256:")
        imagebuild.logout(host, docker_config=str(cfg))
        assert host not in cfg.read_text()
        with pytest.raises(imagebuild.NotFound):
            imagebuild.logout(host, docker_config=str(cfg))
        # explicit credentials work without the config file
        assert store.push("busybox", host + "/a/b:2", username="alice", password="s3cret",
                          docker_config=str(cfg)).startswith("sha256:")
        # --authfile: login writes a containers auth.json there, push and pull read it
        auth = tmp_path / "auth.json"
        imagebuild.login(host, "alice", "s3cret", authfile=str(auth), docker_config=str(cfg))
        assert host in auth.read_text() and host not in cfg.read_text()
        assert store.push("busybox", host + "/a/b:3", authfile=str(auth),
                          docker_config=str(cfg)).startswith("sha256:")
        other = imagebuild.Store(str(tmp_path / "s2"))
        assert other.pull(host + "/a/b:3", authfile=str(auth), docker_config=str(cfg)).startswith("sha256:")
        with pytest.raises(imagebuild.ImageBuildError, match="401"):
            other.pull(host + "/a/b:1", docker_config=str(cfg))
        imagebuild.logout(host, authfile=str(auth), docker_config=str(cfg))
        assert host not in auth.read_text()
    finally:
        proc.kill()
        proc.wait()


def test_build_cache_through_a_registry(tmp_path, registry, monkeypatch, busybox_tarball):
    """build(cache_to=...) in one store, build(cache_from=...) in a fresh one: every step cached, same image."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("cached through the registry\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY f /f\nENV A=1\nCOPY f /g\n")
    a = imagebuild.Store(str(tmp_path / "a"))
    a.import_tarball(busybox_tarball, name="busybox")
    a.save(["busybox"], str(tmp_path / "bb.tar"), format="oci-archive")
    ref = registry + "/py/cache:main"
    events = []
    built = a.build(str(ctx), ["app"], pull=False, cache_to="type=registry,ref=%s,mode=max" % ref,
                    on_progress=events.append)
    assert built.cached_steps == 0
    assert "Exported cache" in {e.text for e in events if e.kind == "bytes"}
    b = imagebuild.Store(str(tmp_path / "b"))
    b.load(str(tmp_path / "bb.tar"))
    events.clear()
    again = b.build(str(ctx), ["app"], pull=False, cache_from=[ref], on_progress=events.append)
    assert again.cached_steps == again.steps == 3
    assert again.id == built.id
    assert "Imported cache manifest" in {e.text for e in events if e.kind == "bytes"}
    # type=inline: the records in the image's config; a fresh store builds the same image from it
    inl = b.build(str(ctx), ["inl"], pull=False, cache_to="type=inline")
    assert inl.id != built.id  # the records are part of the config
    b.push("inl", registry + "/py/inl:1")
    c = imagebuild.Store(str(tmp_path / "c"))
    c.load(str(tmp_path / "bb.tar"))
    third = c.build(str(ctx), ["inl"], pull=False, cache_from=registry + "/py/inl:1", cache_to=["type=inline"])
    assert third.cached_steps == third.steps == 3
    assert third.id == inl.id
    with pytest.raises(imagebuild.ImageBuildError, match="`mode=` is not supported with type=inline"):
        b.build(str(ctx), pull=False, cache_to="type=inline,mode=max")
