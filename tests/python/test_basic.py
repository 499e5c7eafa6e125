"""The bindings reach the library, and its errors become Python exceptions."""
import hashlib

import pytest

import imagebuild


def test_version_matches_library():
    v = imagebuild.version()
    assert v.count(".") == 2 and all(p.isdigit() for p in v.split("."))


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
