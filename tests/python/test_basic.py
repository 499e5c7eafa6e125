"""The bindings reach the library, and its errors become Python exceptions."""
import hashlib
import os
import sys

import pytest

import imagebuild


def test_the_package_under_test():
    """Under check-install.py the suite runs against the venv's installed package, never the tree."""
    venv = os.environ.get("IB_PY_INSTALLED")
    if venv:
        f = os.path.realpath(imagebuild.__file__)
        assert f.startswith(os.path.realpath(venv) + os.sep), (f, venv)
        assert os.path.realpath(sys.prefix) == os.path.realpath(venv)
    assert os.path.isfile(os.path.join(os.path.dirname(imagebuild.__file__), "py.typed"))


def test_version_matches_library():
    v = imagebuild.version()
    assert v.count(".") == 2 and all(p.isdigit() for p in v.split("."))


def test_rootless_enter_leaves_root_alone():
    # root (the test runs as root) stays in its namespace: nothing entered, nothing changed
    if os.geteuid() != 0:
        pytest.skip("the rootless entry itself is tested by tests/rootless as a made-up user")
    uid_map = open("/proc/self/uid_map").read()
    assert imagebuild.rootless_enter() is False
    assert os.geteuid() == 0 and open("/proc/self/uid_map").read() == uid_map


def test_digest_of_matches_hashlib():
    data = b"hello, layers"
    d = imagebuild.Digest.of(data)
    assert str(d) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert imagebuild.Digest.parse(str(d)) == d
    d.verify(data)


def test_errors_carry_the_message():
    with pytest.raises(imagebuild.Invalid) as e:
        imagebuild.Digest.parse("sha256:abc")
    assert "sha256:abc" in e.value.message
    assert e.value.code == imagebuild.lib.IB_EINVALID
    with pytest.raises(imagebuild.Unsupported):
        imagebuild.Digest.parse("md5:" + "0" * 32)
    with pytest.raises(imagebuild.Invalid) as e:
        imagebuild.Digest.of(b"a").verify(b"b")
    assert "mismatch" in str(e.value)


def test_build_checks(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch AS Bad\nMAINTAINER me\nCMD [\"/x\"]\n")
    with imagebuild.Store(str(tmp_path / "s")) as store:
        ws = store.check(str(ctx))
        assert [(w.rule, w.line) for w in ws] == [("StageNameCasing", 1), ("MaintainerDeprecated", 2)]
        assert ws[0].message == "Stage name 'Bad' should be lowercase"
        assert ws[1].url == "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/"
        (ctx / "Dockerfile").write_text("# check=skip=all\nFROM scratch AS Bad\n")
        assert store.check(str(ctx)) == []
        (ctx / "Dockerfile").write_text("# check=skip\nFROM scratch\n")
        with pytest.raises(imagebuild.ParseError) as e:
            store.check(str(ctx))
        assert "invalid check option" in e.value.message


def test_source_date_epoch_is_an_option(tmp_path, monkeypatch):
    """The library never reads $SOURCE_DATE_EPOCH: only the option sets created."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    # owned by us, so that the copy needs no privilege
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY --chown=%d:%d f /f\n" % (os.getuid(), os.getgid()))
    (ctx / "f").write_text("x\n")
    with imagebuild.Store(str(tmp_path / "s")) as store:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
        plain = store.build(str(ctx), snapshotter="copy")
        assert store.image(plain).created != "1970-01-02T00:00:00Z"
        monkeypatch.delenv("SOURCE_DATE_EPOCH")
        fixed = store.build(str(ctx), snapshotter="copy", source_date_epoch=86400)
        assert store.image(fixed).created == "1970-01-02T00:00:00Z"
        with pytest.raises(ValueError):
            store.build(str(ctx), snapshotter="copy", source_date_epoch=-1)


def test_every_options_struct_has_an_init():
    """cffi cannot use the IB_*_INIT macros: each struct has its _init()."""
    lib, ffi = imagebuild.lib, imagebuild.ffi
    for name in ("store_options", "registry_options", "pull_options", "push_options",
                 "import_options", "build_options", "commit_options"):
        o = ffi.new("ib_%s *" % name)
        version = getattr(lib, "IB_%s_VERSION" % name.upper())
        assert getattr(lib, "ib_%s_init" % name)(o, version) == 0
        assert o.version == version
        assert getattr(lib, "ib_%s_init" % name)(o, 999) == lib.IB_EINVALID
