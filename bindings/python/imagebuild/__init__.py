"""Python bindings for libimagebuild (cffi, API mode).

Errors from the library raise ImagebuildError (or a subclass named after the
code) carrying the library's message, which names the object and the reason.
"""
from ._native import ffi, lib

__all__ = ["ImagebuildError", "NotFound", "Exists", "Invalid", "SyntaxError_",
           "Unsupported", "Cancelled", "version", "Digest"]


class ImagebuildError(Exception):
    """A libimagebuild call failed; .code is the ib_error_code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(ImagebuildError):
    pass


class Exists(ImagebuildError):
    pass


class Invalid(ImagebuildError):
    pass


class SyntaxError_(ImagebuildError):
    pass


class Unsupported(ImagebuildError):
    pass


class Cancelled(ImagebuildError):
    pass


_BY_CODE = {
    lib.IB_ENOTFOUND: NotFound,
    lib.IB_EEXISTS: Exists,
    lib.IB_EINVALID: Invalid,
    lib.IB_ESYNTAX: SyntaxError_,
    lib.IB_EUNSUPPORTED: Unsupported,
    lib.IB_EUSER: Cancelled,
}


def _check(rc):
    """Raise the library's last error when rc < 0; return rc otherwise."""
    if rc < 0:
        err = lib.ib_error_last()
        message = ffi.string(err.message).decode("utf-8", "replace")
        raise _BY_CODE.get(rc, ImagebuildError)(rc, message)
    return rc


def version():
    """The linked library's version string, e.g. '0.1.0'."""
    return ffi.string(lib.ib_version_string()).decode()


class Digest:
    """A sha256 digest: Digest.parse('sha256:...') or Digest.of(b'data')."""

    __slots__ = ("_d",)

    def __init__(self):
        self._d = ffi.new("ib_digest *")

    @classmethod
    def parse(cls, text):
        d = cls()
        _check(lib.ib_digest_parse(d._d, text.encode()))
        return d

    @classmethod
    def of(cls, data):
        d = cls()
        _check(lib.ib_digest_of(d._d, data, len(data)))
        return d

    def verify(self, data):
        _check(lib.ib_digest_verify(self._d, data, len(data)))

    def __str__(self):
        out = ffi.new("char[]", lib.IB_DIGEST_STRLEN)
        lib.ib_digest_fmt(out, self._d)
        return ffi.string(out).decode()

    def __repr__(self):
        return "Digest(%r)" % str(self)

    def __eq__(self, other):
        return isinstance(other, Digest) and bytes(self._d.bytes) == bytes(other._d.bytes)

    def __hash__(self):
        return hash(bytes(self._d.bytes))
