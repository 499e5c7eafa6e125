"""Python bindings for libimagebuild (cffi, API mode).

    import imagebuild

    with imagebuild.Store("/var/lib/imagebuild") as store:
        result = store.build("examples/hello", tags=["hello"])
        with store.create_container("hello", remove=True) as c:
            c.run(["sh", "-c", "echo hi > /greeting"])
            c.commit(tag="hello:2", message="ran once")
        for image in store.images():
            print(image.name, image.id, image.size)

Objects, not dicts: :class:`Image`, :class:`ImageSummary`, :class:`Layer`,
:class:`HistoryEntry`, :class:`BuildResult`, :class:`Container`,
:class:`ContainerInfo`. Errors raise :class:`ImageBuildError` or one of its
subclasses (:class:`NotFound` is also a :class:`LookupError`,
:class:`Invalid` and :class:`ParseError` are :class:`ValueError`, a failed
RUN raises :class:`StepFailed`), carrying the library's message.

Progress reaches ``on_progress`` as a :class:`ProgressEvent` (``kind``,
``step``, ``total``, ``cached``, ``bytes``, ``text``); returning False from
it cancels the call. Log lines reach ``on_log(level, line)``.

The long calls (build, pull, push, save, load, import_tarball,
Container.run) release the GIL, so other threads run (and build)
meanwhile. In the main thread, Ctrl-C (SIGINT) during one cancels it
through the library (a RUN is killed, mounts and temporary files are
cleaned up) and then raises KeyboardInterrupt (or runs your own SIGINT
handler). An exception raised by an on_progress/on_log callback stops the
call and is re-raised from it.
"""
from __future__ import annotations

import collections
import dataclasses
import enum
import json
import os
import re
import signal
import tarfile
import tempfile
import threading
from typing import (IO, Any, Callable, Dict, Iterable, Iterator, List, Literal, Mapping, Optional,
                    Sequence, Tuple, Union, cast, overload)

from ._native import ffi, lib

__all__ = [
    # rootless
    "rootless_enter",
    # errors
    "ImageBuildError", "NotFound", "AlreadyExists", "Invalid", "ParseError", "Unsupported",
    "Cancelled", "StepFailed",
    # progress
    "ProgressKind", "ProgressEvent", "LogLevel", "CancelFlag",
    # values
    "Digest", "Reference", "Layer", "HistoryEntry", "Image", "ImageSummary", "ImagePlatform", "BuildResult",
    "CheckWarning", "ContainerInfo", "PruneResult", "VolumeInfo", "ContainerMount", "Ulimit",
    # the store
    "Store", "Container", "login", "logout", "plan",
    # Dockerfiles
    "Dockerfile", "Node", "Heredoc", "ParseWarning", "parse_dockerfile", "dump_dockerfile", "Plan",
    "PlanStage",
    "Instructions", "Stage", "Instruction", "From", "Run", "Mount", "Cmd", "Entrypoint", "Shell",
    "Copy", "Add", "Env", "Label", "Arg", "ArgDeclaration", "Expose", "Volume", "User", "Workdir",
    "StopSignal", "Maintainer", "OnBuild", "Healthcheck", "parse_instruction", "parse_duration",
    "expand_word", "expand_words", "DockerIgnore", "read_dockerignore", "dockerignore_candidates",
    "version",
]

PathLike = Union[str, bytes, "os.PathLike[str]"]
ProgressCallback = Callable[["ProgressEvent"], Optional[bool]]
LogCallback = Callable[[int, str], None]


# ---------------------------------------------------------------- errors

class ImageBuildError(Exception):
    """A libimagebuild call failed.

    ``code`` is the library's ib_error_code (negative), ``layer`` the
    ib_error_layer it came from, ``message`` the library's message (which
    names the object and the reason).
    """

    def __init__(self, code: int, message: str, layer: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.layer = layer


class NotFound(ImageBuildError, LookupError):
    """The object (image, container, blob, stage, registry manifest...) does not exist (IB_ENOTFOUND)."""


class AlreadyExists(ImageBuildError):
    """The object already exists, e.g. a container name is taken (IB_EEXISTS)."""


class Invalid(ImageBuildError, ValueError):
    """An argument or input is invalid (IB_EINVALID)."""


class ParseError(ImageBuildError, ValueError):
    """A syntax error in a Dockerfile, a reference, a pattern... (IB_ESYNTAX)."""


class Unsupported(ImageBuildError, NotImplementedError):
    """Valid, but not supported by the library (IB_EUNSUPPORTED)."""


class Cancelled(ImageBuildError):
    """The call was cancelled: a CancelFlag, or on_progress returned False (IB_EUSER)."""


class StepFailed(ImageBuildError):
    """A build step's process failed (a RUN exited non-zero or was killed).

    ``step`` is the step's label ("[2/3]", "[builder 1/4]"), ``command``
    the instruction as written ("RUN make"), ``exit_code`` the process's
    exit code (None when it was killed; then ``signal`` is the signal
    number), ``output_tail`` the last lines of its output.
    """

    def __init__(self, code: int, message: str, layer: int = 0, step: Optional[str] = None,
                 command: Optional[str] = None, exit_code: Optional[int] = None,
                 signal: Optional[int] = None, output_tail: Sequence[str] = ()) -> None:
        super().__init__(code, message, layer)
        self.step = step
        self.command = command
        self.exit_code = exit_code
        self.signal = signal
        self.output_tail = list(output_tail)


_BY_CODE = {
    lib.IB_ENOTFOUND: NotFound,
    lib.IB_EEXISTS: AlreadyExists,
    lib.IB_EINVALID: Invalid,
    lib.IB_ESYNTAX: ParseError,
    lib.IB_EUNSUPPORTED: Unsupported,
    lib.IB_EUSER: Cancelled,
}

_STEP_FAILED = re.compile(r"` failed: (?:exit code (-?\d+)|killed by signal (\d+)); "
                          r"last lines of its output:((?:\n  .*)*)")


def _error(rc: int) -> ImageBuildError:
    err = lib.ib_error_last()
    message = ffi.string(err.message).decode("utf-8", "replace")
    return _BY_CODE.get(rc, ImageBuildError)(rc, message, int(err.layer))


def _check(rc: int) -> int:
    """Raise the library's last error when rc < 0; return rc otherwise."""
    if rc < 0:
        raise _error(rc)
    return rc


def _b(s: Any) -> Any:
    return ffi.NULL if s is None else os.fsencode(s)


def _s(p: Any) -> Optional[str]:
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else None


def _t(p: Any) -> str:
    """A C string the library documents as never NULL ("" if it were)."""
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""


def _buf_text(buf: Any) -> str:
    try:
        return ffi.string(buf.ptr, buf.size).decode("utf-8", "replace") if buf.ptr else ""
    finally:
        lib.ib_buf_dispose(buf)


def _strarray(arr: Any) -> List[str]:
    try:
        return [ffi.string(arr.strings[i]).decode("utf-8", "replace") for i in range(arr.count)]
    finally:
        lib.ib_strarray_dispose(arr)


class _Keep:
    """C strings and arrays kept alive for the duration of one call."""

    def __init__(self) -> None:
        self._items: List[Any] = []

    def str(self, value: Any) -> Any:
        if value is None:
            return ffi.NULL
        c = ffi.new("char[]", os.fsencode(value))
        self._items.append(c)
        return c

    def array(self, items: Optional[Iterable[Any]]) -> Any:
        """A NULL-terminated const char *const *; NULL for None."""
        if items is None:
            return ffi.NULL
        strs = [ffi.new("char[]", os.fsencode(x)) for x in items]
        arr = ffi.new("const char *[]", strs + [ffi.NULL])
        self._items.extend(strs)
        self._items.append(arr)
        return arr

    def obj(self, o: Any) -> Any:
        self._items.append(o)
        return o


def _set_epoch(o: Any, epoch: Optional[int]) -> None:
    """SOURCE_DATE_EPOCH through the options (None: unset)."""
    if epoch is None:
        return
    epoch = int(epoch)
    if epoch < 0:
        raise ValueError("source_date_epoch must be >= 0")
    o.use_source_date_epoch = 1
    o.source_date_epoch = epoch


def version() -> str:
    """The linked library's version string, e.g. '0.2.0'."""
    return ffi.string(lib.ib_version_string()).decode()


def rootless_enter() -> bool:
    """For a non-root caller: make this process root of its own user namespace
    (ib_rootless_enter; see docs/rootless.md). Call it before any thread starts;
    Store() does it itself otherwise. Returns whether the process is now in one
    that the library made (False for root)."""
    _check(lib.ib_rootless_enter())
    return bool(lib.ib_rootless_active())


# ---------------------------------------------------------------- digests and references

class Digest:
    """A sha256 digest: ``Digest.parse('sha256:...')`` or ``Digest.of(b'data')``; str() gives its text."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d = ffi.new("ib_digest *")

    @classmethod
    def parse(cls, text: str) -> "Digest":
        """Parse "sha256:<64 hex>"; raises Invalid or Unsupported."""
        d = cls()
        _check(lib.ib_digest_parse(d._d, text.encode()))
        return d

    @classmethod
    def of(cls, data: bytes) -> "Digest":
        """The sha256 digest of ``data``."""
        d = cls()
        _check(lib.ib_digest_of(d._d, data, len(data)))
        return d

    @classmethod
    def _from_c(cls, cd: Any) -> "Digest":
        d = cls()
        ffi.memmove(d._d, cd, ffi.sizeof("ib_digest"))
        return d

    def verify(self, data: bytes) -> None:
        """Raise Invalid unless ``data`` has this digest."""
        _check(lib.ib_digest_verify(self._d, data, len(data)))

    def __str__(self) -> str:
        out = ffi.new("char[]", lib.IB_DIGEST_STRLEN)
        lib.ib_digest_fmt(out, self._d)
        return ffi.string(out).decode()

    def __repr__(self) -> str:
        return "Digest(%r)" % str(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str(self) == other
        return isinstance(other, Digest) and bytes(self._d.bytes) == bytes(other._d.bytes)

    def __hash__(self) -> int:
        return hash(str(self))


def _digest_str(cd: Any) -> str:
    return str(Digest._from_c(cd))


@dataclasses.dataclass(frozen=True)
class Reference:
    """An image reference, normalised as Docker does (``Reference.parse("busybox")``)."""

    domain: str
    """The registry host with its port: "docker.io", "localhost:5000"."""
    path: str
    """The path in the registry: "library/busybox"."""
    repository: str
    """domain/path."""
    tag: Optional[str]
    """The tag ("latest" when none was given and no digest), or None."""
    tag_given: bool
    """True when the tag was written."""
    digest: Optional[str]
    """The "@sha256:..." digest, or None."""
    name: str
    """The whole normalised name: "docker.io/library/busybox:latest"."""
    familiar: str
    """Docker's short form: "busybox:latest"."""

    @classmethod
    def parse(cls, text: str) -> "Reference":
        """Parse ``text`` ([HOST[:PORT]/]PATH[:TAG][@DIGEST]); ParseError/Invalid when malformed."""
        p = ffi.new("ib_reference **")
        _check(lib.ib_reference_parse(p, text.encode()))
        try:
            r = p[0]
            d = lib.ib_reference_digest(r)
            return cls(_t(lib.ib_reference_domain(r)), _t(lib.ib_reference_path(r)),
                       _t(lib.ib_reference_repository(r)), _s(lib.ib_reference_tag(r)),
                       bool(lib.ib_reference_tag_given(r)), _digest_str(d) if d != ffi.NULL else None,
                       _t(lib.ib_reference_name(r)), _t(lib.ib_reference_familiar(r)))
        finally:
            lib.ib_reference_free(p[0])

    def __str__(self) -> str:
        return self.name


# ---------------------------------------------------------------- progress, logs, cancellation

class ProgressKind(str, enum.Enum):
    """What a ProgressEvent reports (a str, so ``event.kind == "step"`` works)."""

    STEP = "step"
    """A build step starts: ``step`` of ``total``, ``text`` the instruction, ``cached``."""
    STEP_DONE = "step_done"
    """The step ended (same fields as its STEP)."""
    BYTES = "bytes"
    """Bytes moved: ``bytes`` of ``total`` (None: unknown); ``id`` says what, ``text`` how."""
    OUTPUT = "output"
    """A line of a RUN's output: ``id`` the step's label, ``text`` the line."""


_KINDS = {lib.IB_PROGRESS_STEP: ProgressKind.STEP, lib.IB_PROGRESS_STEP_DONE: ProgressKind.STEP_DONE,
          lib.IB_PROGRESS_BYTES: ProgressKind.BYTES, lib.IB_PROGRESS_OUTPUT: ProgressKind.OUTPUT}


@dataclasses.dataclass(frozen=True)
class ProgressEvent:
    """One progress report, for a progress bar.

    For STEP/STEP_DONE: ``step`` is the 1-based step number and ``total``
    the build's step count; ``cached`` says the step came from the cache.
    For BYTES: ``bytes`` done of ``total`` (None when unknown); ``id`` is
    "context", "layer:<key>", a blob's first 12 hex digits (pull, push),
    "blob:<12 hex>" (save, load) or "import". For OUTPUT: ``text`` is the
    line. ``id`` is the step label ("[2/7]") for the step kinds and OUTPUT.
    """

    kind: ProgressKind
    id: Optional[str]
    text: Optional[str]
    step: Optional[int] = None
    total: Optional[int] = None
    cached: bool = False
    bytes: Optional[int] = None

    @classmethod
    def _from_c(cls, p: Any) -> "ProgressEvent":
        kind = _KINDS.get(p.kind)
        if kind is None:
            kind = ProgressKind.OUTPUT if p.kind == lib.IB_PROGRESS_OUTPUT else ProgressKind.BYTES
        id_ = _s(p.id) if p.id else None
        text = _s(p.text) if p.text else None
        if kind in (ProgressKind.STEP, ProgressKind.STEP_DONE):
            return cls(kind, id_, text, step=int(p.current), total=int(p.total), cached=bool(p.cached))
        if kind is ProgressKind.BYTES:
            return cls(kind, id_, text, bytes=int(p.current), total=int(p.total) or None)
        return cls(kind, id_, text)


class LogLevel(enum.IntEnum):
    """The level of an on_log line."""

    ERROR = 0
    WARNING = 1
    INFO = 2
    DEBUG = 3


class CancelFlag:
    """Cancels the call it is given to (``cancel=``): set() from any thread.

    The call then raises Cancelled; a running RUN is killed within 100 ms.
    """

    def __init__(self) -> None:
        self._p = ffi.new("int *")

    def set(self) -> None:
        """Ask the call to stop."""
        self._p[0] = 1

    def is_set(self) -> bool:
        """True once set() (or Ctrl-C) asked the call to stop."""
        return bool(self._p[0])


class _Reporter:
    TAIL = 10

    def __init__(self, on_progress: Optional[ProgressCallback], on_log: Optional[LogCallback]) -> None:
        self.on_progress = on_progress
        self.on_log = on_log
        self.error: Optional[BaseException] = None
        self.step: Optional[ProgressEvent] = None
        self.steps = 0
        self.cached = 0
        self.tail: "collections.deque[str]" = collections.deque(maxlen=self.TAIL)
        self.lock = threading.Lock()
        self.handle = ffi.new_handle(self)

    def note(self, ev: ProgressEvent) -> None:
        if ev.kind is ProgressKind.STEP:
            self.step = ev
            self.tail.clear()
        elif ev.kind is ProgressKind.STEP_DONE:
            self.steps += 1
            self.cached += 1 if ev.cached else 0
        elif ev.kind is ProgressKind.OUTPUT and ev.text is not None:
            self.tail.append(ev.text)


@ffi.def_extern()
def _ib_py_progress(p: Any, payload: Any) -> int:
    rep = ffi.from_handle(payload)
    with rep.lock:  # pull/push report from worker threads, one at a time
        if rep.error is not None:  # an on_log exception: stop at the next report
            return lib.IB_EUSER
        try:
            ev = ProgressEvent._from_c(p)
            rep.note(ev)
            if rep.on_progress is None:
                return 0
            # a non-zero return is what the call returns: make it a failure
            return lib.IB_EUSER if rep.on_progress(ev) is False else 0
        except BaseException as e:  # re-raised after the call
            rep.error = e
            return lib.IB_EUSER


@ffi.def_extern()
def _ib_py_log(level: int, line: Any, payload: Any) -> None:
    rep = ffi.from_handle(payload)
    with rep.lock:
        if rep.on_log is not None and rep.error is None:
            try:
                rep.on_log(int(level), ffi.string(line).decode("utf-8", "replace"))
            except BaseException as e:
                rep.error = e


class _Call:
    """One long library call: its ib_callbacks (progress, log, cancel) and Ctrl-C.

    run() calls fn with the GIL released (cffi API mode). In the main thread
    a C-level SIGINT handler (ibpy_sigint_begin, _build.py) sets the cancel
    flag the library polls; afterwards the previous handler is back and the
    signal is raised again through it, so Python's default handler raises
    KeyboardInterrupt once the library has cleaned up.
    """

    def __init__(self, on_progress: Optional[ProgressCallback] = None,
                 on_log: Optional[LogCallback] = None, cancel: Optional[CancelFlag] = None) -> None:
        self.rep = _Reporter(on_progress, on_log)
        self.cb = ffi.new("ib_callbacks *")
        _check(lib.ib_callbacks_init(self.cb, lib.IB_CALLBACKS_VERSION))
        self.cb.progress = lib._ib_py_progress
        self.cb.log = lib._ib_py_log
        self.cb.payload = self.rep.handle
        self.flag = cancel._p if cancel is not None else ffi.new("int *")
        self.cb.cancel = self.flag

    def run(self, fn: Callable[..., int], *args: Any) -> int:
        installed = (threading.current_thread() is threading.main_thread()
                     and lib.ibpy_sigint_begin(self.flag) == 1)
        sigint = False
        try:
            rc = fn(*args)
        finally:
            if installed:
                sigint = lib.ibpy_sigint_end() != 0
        if sigint:
            # the previous handler decides: KeyboardInterrupt by default
            signal.raise_signal(signal.SIGINT)
        if self.rep.error is not None:
            raise self.rep.error
        if rc < 0:
            err = _error(rc)
            m = _STEP_FAILED.search(err.message) if rc == lib.IB_ERROR else None
            if m:
                step = self.rep.step
                tail = [l[2:] for l in m.group(3).split("\n") if l] or list(self.rep.tail)
                raise StepFailed(rc, err.message, err.layer,
                                 step=step.id if step else None, command=step.text if step else None,
                                 exit_code=int(m.group(1)) if m.group(1) else None,
                                 signal=int(m.group(2)) if m.group(2) else None, output_tail=tail)
            raise err
        return rc


# ---------------------------------------------------------------- values

@dataclasses.dataclass(frozen=True)
class Layer:
    """A layer of an image, as its manifest names it."""

    digest: str
    """The blob's digest."""
    size: int
    """The blob's size in bytes."""
    media_type: str
    """The blob's media type."""
    diff_id: str
    """The uncompressed digest (the config's rootfs.diff_ids)."""


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    """A row of ``docker image history``."""

    created: Optional[str]
    """When (RFC 3339)."""
    created_by: Optional[str]
    """The command that made it ("RUN make")."""
    author: Optional[str]
    """Who made it."""
    comment: Optional[str]
    """A comment (commit -m)."""
    empty_layer: bool
    """True when the step added no layer."""
    size: int
    """The layer's content size (0 for an empty layer)."""
    layer: Optional[str]
    """The layer's diff_id, or None."""


@dataclasses.dataclass(frozen=True)
class ImageSummary:
    """A row of ``imagebuild images``: one per name, and one per untagged image."""

    name: Optional[str]
    """The normalised name, or None for an untagged image."""
    id: str
    """The image id (config digest)."""
    manifest: str
    """The digest of its manifest."""
    created: Optional[str]
    """From the config (RFC 3339), may be None."""
    size: int
    """Sum of its layer blob sizes."""


@dataclasses.dataclass(frozen=True)
class ImagePlatform:
    """A platform of an image (``Store.image_platforms``, ``imagebuild images --tree``): one
    manifest of a multi-platform image, or the one manifest of a single-platform image."""

    platform: str
    """``os/arch[/variant]`` as the index says (a single manifest: its config); "" when unknown."""
    manifest: str
    """The digest of its manifest."""
    available: bool
    """True when the store has its manifest, config and layers (a pull of one platform leaves
    the others out); the fields below are then filled, else None / 0."""
    id: Optional[str]
    """The image id (config digest)."""
    size: int
    """The sum of its layers' uncompressed sizes (docker's DISK USAGE)."""
    content_size: int
    """The bytes of its blobs as stored: manifest, config, layers (docker's CONTENT SIZE)."""
    containers: int
    """How many containers use it."""


@dataclasses.dataclass(frozen=True, repr=False)
class Image:
    """An image in the store (``Store.image(name)``)."""

    id: str
    """The image id (config digest)."""
    manifest: str
    """The digest of its (platform) manifest."""
    media_type: str
    """Its manifest's media type."""
    names: Tuple[str, ...]
    """Every name that points at it, sorted."""
    size: int
    """The sum of its layers' uncompressed sizes (the same in every store)."""
    layers: Tuple[Layer, ...]
    """Its layers, lowest first."""
    history: Tuple[HistoryEntry, ...]
    """Its history, newest first (docker history)."""
    details: Dict[str, Any] = dataclasses.field(compare=False)
    """``docker image inspect``'s object (Id, RepoTags, Config, RootFS...)."""

    @property
    def config(self) -> Dict[str, Any]:
        """The image's runtime config (Cmd, Env, Entrypoint, WorkingDir...)."""
        return self.details.get("Config") or {}

    @property
    def created(self) -> Optional[str]:
        """When it was created (RFC 3339)."""
        return self.details.get("Created")

    @property
    def repo_digests(self) -> List[str]:
        """docker inspect's RepoDigests: ``REPOSITORY@sha256:...`` per push and pull, familiar names, sorted."""
        return list(self.details.get("RepoDigests") or [])

    def __repr__(self) -> str:
        return "Image(id=%r, names=%r, layers=%d, size=%d)" % (self.id[:19], list(self.names),
                                                               len(self.layers), self.size)


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What Store.build() made; str() is the image id."""

    id: str
    """The image id (config digest)."""
    tags: Tuple[str, ...]
    """The names the build gave it."""
    steps: int
    """The steps the build ran or took from the cache."""
    cached_steps: int
    """How many of them came from the cache."""

    def __str__(self) -> str:
        return self.id


CheckWarning = collections.namedtuple("CheckWarning", "rule message url line")
CheckWarning.__doc__ = "A build check warning: rule name, message, documentation url, line."


@dataclasses.dataclass(frozen=True)
class ContainerInfo:
    """A row of ``imagebuild ps``: a container's record."""

    id: str
    """64 hex digits."""
    name: Optional[str]
    """Its name, or None."""
    image_id: str
    """The id of the image it was created from."""
    image: Optional[str]
    """What the user named as its image."""
    command: Optional[str]
    """Its command (informational)."""
    state: Optional[str]
    """"created", "running", "exited"..."""
    created: Optional[str]
    """RFC 3339."""

    @classmethod
    def _from_c(cls, r: Any) -> "ContainerInfo":
        return cls(_t(r.id), _s(r.name), _digest_str(ffi.addressof(r.image_id)), _s(r.image_name),
                   _s(r.command), _s(r.state), _s(r.created))


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """What Store.prune() freed."""

    images: int
    """Untagged images removed."""
    blobs: int
    """Blobs deleted."""
    snapshots: int
    """Snapshots and unpacked layers removed."""
    bytes: int
    """Bytes the deleted blobs held."""


@dataclasses.dataclass(frozen=True)
class VolumeInfo:
    """A named volume of the store (``imagebuild volume ls``)."""

    name: str
    """Its name, ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``."""
    mountpoint: str
    """Its directory on the host."""


@dataclasses.dataclass(frozen=True)
class ContainerMount:
    """An extra mount of a container run (``--mount``; docker-py's
    ``docker.types.Mount``). type: "bind" (source an absolute host path),
    "volume" (source a volume name, created when missing; an empty one
    first gets the image's files at target unless no_copy) or "tmpfs" (no
    source; tmpfs_size/tmpfs_mode, noexec unless tmpfs_options say exec)."""

    target: str
    """The absolute path inside the container."""
    source: Optional[str] = None
    """The host path (bind) or the volume name (volume); None for a tmpfs."""
    type: str = "volume"
    """"bind", "volume" or "tmpfs"."""
    read_only: bool = False
    """Mount it read-only."""
    no_copy: bool = False
    """volume: do not fill an empty volume with the image's files (``volume-nocopy``)."""
    tmpfs_size: Optional[Union[int, str]] = None
    """tmpfs: its size ("64m", or bytes)."""
    tmpfs_mode: Optional[int] = None
    """tmpfs: the mode of its root directory (e.g. 0o1777)."""
    tmpfs_options: Optional[str] = None
    """tmpfs: further mount options as ``--tmpfs`` takes them ("exec,uid=1000")."""

    @classmethod
    def parse(cls, spec: str) -> "ContainerMount":
        """A mount from the CLI's ``--mount`` syntax:
        ``type=bind|volume|tmpfs,source=...,target=...[,readonly][,volume-nocopy][,tmpfs-size=N][,tmpfs-mode=M]``."""
        kw: Dict[str, Any] = {"type": "volume"}
        target = None
        for kv in spec.split(","):
            k, eq, v = kv.partition("=")
            if k == "type" and eq:
                kw["type"] = v
            elif k in ("source", "src") and eq:
                kw["source"] = v
            elif k in ("target", "destination", "dst") and eq:
                target = v
            elif k in ("readonly", "ro", "volume-nocopy"):
                if eq and v not in ("1", "0", "true", "false"):
                    raise ValueError("--mount %s: invalid %s value %r" % (spec, k, v))
                kw["no_copy" if k == "volume-nocopy" else "read_only"] = (not eq) or v in ("1", "true")
            elif k == "tmpfs-size" and eq:
                kw["tmpfs_size"] = v
            elif k == "tmpfs-mode" and eq:
                kw["tmpfs_mode"] = int(v, 8)
            else:
                raise ValueError("--mount %s: %r is not supported" % (spec, k))
        if target is None:
            raise ValueError("--mount %s: an absolute target is required" % spec)
        return cls(target, **kw)

    def _to_c(self, keep: "_Keep", m: Any) -> None:
        if not self.target.startswith("/"):
            raise ValueError("mount %r: the target must be an absolute path" % (self,))
        m.target = keep.str(self.target)
        m.readonly = 1 if self.read_only else 0
        if self.type != "tmpfs" and (self.tmpfs_size is not None or self.tmpfs_mode is not None
                                     or self.tmpfs_options is not None):
            raise ValueError("mount %r: tmpfs options on a mount of type %r" % (self, self.type))
        if self.no_copy and self.type != "volume":
            raise ValueError("mount %r: no_copy on a mount of type %r" % (self, self.type))
        if self.type == "bind":
            if not self.source or not self.source.startswith("/"):
                raise ValueError("mount %r: a bind needs an absolute source" % (self,))
            m.type = lib.IB_MOUNT_BIND
            m.source = keep.str(self.source)
        elif self.type == "volume":
            if not self.source:
                raise ValueError("mount %r: anonymous volumes are not supported; give a source" % (self,))
            if not _is_volume_name(self.source):
                raise ValueError("mount %r: invalid volume name %r" % (self, self.source))
            m.type = lib.IB_MOUNT_VOLUME
            m.source = keep.str(self.source)
            m.options = keep.str("nocopy" if self.no_copy else None)
        elif self.type == "tmpfs":
            if self.source:
                raise ValueError("mount %r: a tmpfs takes no source" % (self,))
            m.type = lib.IB_MOUNT_TMPFS
            words = ["noexec"]  # docker's default; later words win
            if self.tmpfs_size is not None:
                words.append("size=%s" % (self.tmpfs_size,))
            if self.tmpfs_mode is not None:
                words.append("mode=%o" % (self.tmpfs_mode,))
            if self.tmpfs_options:
                words.append(self.tmpfs_options)
            m.options = keep.str(",".join(words))
        else:
            raise ValueError("mount type %r is not supported (bind, volume, tmpfs)" % (self.type,))


@dataclasses.dataclass(frozen=True)
class Ulimit:
    """A resource limit (``--ulimit NAME=SOFT[:HARD]``; docker-py's
    ``docker.types.Ulimit``). name: nofile, nproc, core, ... as docker
    names them; -1 (or None for hard: the soft limit) means unlimited."""

    name: str
    """The limit's name without "RLIMIT_": "nofile", "nproc"..."""
    soft: int
    """The soft limit; -1: unlimited."""
    hard: Optional[int] = None
    """The hard limit; None: the soft one; -1: unlimited."""

    @classmethod
    def parse(cls, spec: str) -> "Ulimit":
        """A limit from the CLI's ``NAME=SOFT[:HARD]`` syntax."""
        name, eq, value = spec.partition("=")
        if not eq or not name:
            raise ValueError("--ulimit %s: expected NAME=SOFT[:HARD]" % spec)
        soft, colon, hard = value.partition(":")
        try:
            return cls(name, int(soft), int(hard) if colon else None)
        except ValueError:
            raise ValueError("--ulimit %s: the limits must be numbers (-1: unlimited)" % spec) from None

    def _spec(self) -> str:
        """As ``--ulimit`` takes it (NAME=SOFT:HARD)."""
        hard = self.soft if self.hard is None else self.hard
        for v in (self.soft, hard):
            if v < -1:
                raise ValueError("ulimit %s: a limit is >= 0, or -1 for unlimited" % self.name)
        return "%s=%d:%d" % (self.name, self.soft, hard)

    def _to_c(self, keep: "_Keep", r: Any) -> None:
        inf = (1 << 64) - 1  # IB_RLIM_INFINITY

        def value(v: int) -> int:
            if v == -1:
                return inf
            if v < 0:
                raise ValueError("ulimit %s: a limit is >= 0, or -1 for unlimited" % self.name)
            return v
        soft = value(self.soft)
        hard = value(self.soft if self.hard is None else self.hard)
        if soft > hard:
            raise ValueError("ulimit %s: the soft limit is above the hard one" % self.name)
        r.name = keep.str(self.name)
        r.soft = soft
        r.hard = hard


# ---------------------------------------------------------------- registries

def _registry(keep: _Keep, username: Optional[str] = None, password: Optional[str] = None,
              insecure: bool = False, tls_ca: Optional[PathLike] = None,
              docker_config: Optional[PathLike] = None, attempts: int = 0,
              authfile: Optional[PathLike] = None,
              registries_conf: Optional[PathLike] = None) -> Any:
    r = keep.obj(ffi.new("ib_registry_options *"))
    _check(lib.ib_registry_options_init(r, lib.IB_REGISTRY_OPTIONS_VERSION))
    r.username = keep.str(username)
    r.password = keep.str(password)
    r.tls_ca_file = keep.str(tls_ca)
    r.docker_config = keep.str(docker_config)
    r.insecure = 1 if insecure else 0
    r.attempts = int(attempts)
    r.auth_file = keep.str(authfile)
    r.registries_conf = keep.str(registries_conf)
    return r


def login(host: str, username: str, password: str, *, insecure: bool = False,
          tls_ca: Optional[PathLike] = None, docker_config: Optional[PathLike] = None,
          authfile: Optional[PathLike] = None,
          registries_conf: Optional[PathLike] = None) -> None:
    """docker login: check the credentials against the registry ``host``
    ("localhost:5000", "docker.io"), then record them in Docker's config
    file (``docker_config``; default $DOCKER_CONFIG/config.json, else
    ~/.docker/config.json), or in ``authfile`` (``--authfile``: a
    containers auth.json; default $REGISTRY_AUTH_FILE). When the file names
    a credential helper (credHelpers, credsStore) the secret goes to the
    helper, never into the file. registries_conf: containers'
    registries.conf (insecure and blocked registries; "none" for no file).
    Raises Invalid when the registry refuses them.
    """
    keep = _Keep()
    r = _registry(keep, username, password, insecure, tls_ca, docker_config,
                  authfile=authfile, registries_conf=registries_conf)
    _check(lib.ib_registry_login(host.encode(), r))


def logout(host: str, *, docker_config: Optional[PathLike] = None,
           authfile: Optional[PathLike] = None) -> None:
    """docker logout: forget the credentials of ``host`` (through the
    credential helper when the file names one); NotFound when there were
    none. authfile: as login()."""
    keep = _Keep()
    r = _registry(keep, docker_config=docker_config, authfile=authfile)
    _check(lib.ib_registry_logout(host.encode(), r))


# ---------------------------------------------------------------- build options

_PULL = {None: lib.IB_PULL_MISSING, "missing": lib.IB_PULL_MISSING, False: lib.IB_PULL_NEVER,
         "never": lib.IB_PULL_NEVER, True: lib.IB_PULL_ALWAYS, "always": lib.IB_PULL_ALWAYS}
_NETWORK = {"host": lib.IB_NETWORK_HOST, "none": lib.IB_NETWORK_NONE}  # as the CLI's --network


def _network(network: str) -> int:
    try:
        return _NETWORK[network]
    except KeyError:
        raise ValueError("network must be 'host' or 'none', not %r" % (network,)) from None


def _secret_specs(secrets: Any) -> Optional[List[str]]:
    """{id: path} or {id: {"src": path} | {"env": VAR}}, or docker's "id=X,src=F" strings."""
    if not secrets:
        return None
    if isinstance(secrets, Mapping):
        out = []
        for k, v in secrets.items():
            if isinstance(v, Mapping):
                (what, value), = v.items()
                if what not in ("src", "env"):
                    raise ValueError("a secret is {'src': PATH} or {'env': VAR}, not %r" % (v,))
                out.append("id=%s,%s=%s" % (k, what, os.fsdecode(value)))
            else:
                out.append("id=%s,src=%s" % (k, os.fsdecode(v)))
        return out
    return list(secrets)


def _build_options(keep: _Keep, context: PathLike, dockerfile: Optional[PathLike] = None,
                   dockerfile_content: Union[str, bytes, None] = None,
                   tags: Iterable[str] = (), build_args: Optional[Mapping[str, str]] = None,
                   target: Optional[str] = None, platform: Optional[str] = None,
                   no_cache: bool = False, snapshotter: Optional[str] = None,
                   isolation: Optional[str] = None, network: str = "host",
                   pull: Union[bool, str, None] = None, secrets: Any = None,
                   allow: Union[str, Sequence[str], None] = None,
                   source_date_epoch: Optional[int] = None, registry: Any = None) -> Any:
    o = keep.obj(ffi.new("ib_build_options *"))
    _check(lib.ib_build_options_init(o, lib.IB_BUILD_OPTIONS_VERSION))
    _set_epoch(o, source_date_epoch)
    o.context = keep.str(context)
    o.dockerfile = keep.str(dockerfile)
    if dockerfile_content is not None:
        data = dockerfile_content.encode() if isinstance(dockerfile_content, str) else bytes(dockerfile_content)
        c = keep.obj(ffi.new("char[]", data))
        o.dockerfile_content = c
        o.dockerfile_len = len(data)
    tags = list(tags or ())
    if tags:
        o.tags = keep.array(tags)
    if build_args:
        # a None value comes from the environment, as `--build-arg NAME` does (unset: not given)
        args = [(k, os.environ.get(k) if v is None else v) for k, v in dict(build_args).items()]
        o.build_args = keep.array("%s=%s" % kv for kv in args if kv[1] is not None)
    o.target = keep.str(target)
    o.platform = keep.str(platform)
    o.no_cache = 1 if no_cache else 0
    o.snapshotter = keep.str(snapshotter)
    o.isolation = keep.str(isolation)
    o.network = _network(network)
    try:
        o.pull = _PULL[pull]
    except (KeyError, TypeError):
        raise ValueError("pull must be 'missing', 'always' or 'never', not %r" % (pull,)) from None
    specs = _secret_specs(secrets)
    if specs:
        o.secrets = keep.array(specs)
    if allow:
        o.allow = keep.array([allow] if isinstance(allow, str) else allow)
    if registry is not None:
        o.registry = registry
    return o


def plan(context: PathLike, *, dockerfile: Optional[PathLike] = None,
         dockerfile_content: Union[str, bytes, None] = None,
         build_args: Optional[Mapping[str, str]] = None, target: Optional[str] = None,
         platform: Optional[str] = None) -> str:
    """The build plan as text (``imagebuild build --dry-run``): parses and
    plans the Dockerfile without running anything or opening a store."""
    keep = _Keep()
    o = _build_options(keep, context, dockerfile, dockerfile_content, (), build_args, target, platform)
    buf = ffi.new("ib_buf *")
    _check(lib.ib_build_plan_print(buf, o))
    return _buf_text(buf)


def _fd(f: Any) -> int:
    if f is None:
        return -1
    return f if isinstance(f, int) else f.fileno()


def _is_volume_name(s: str) -> bool:
    """A named volume as docker takes it in -v and --mount: not a path."""
    return bool(s) and s[0] not in "/." and "/" not in s


VolumesArg = Union[Mapping[str, Union[str, Mapping[str, str]]], Sequence[str], None]
MountsArg = Optional[Sequence[Union["ContainerMount", str]]]
TmpfsArg = Union[Mapping[str, str], Sequence[str], None]
UlimitsArg = Union[Mapping[str, Union[int, Tuple[int, int]]], Sequence[Union["Ulimit", str]], None]


def _volume_mount(source: str, target: str, mode: str, spec: str) -> ContainerMount:
    """-v SOURCE:TARGET:MODE as the CLI takes it."""
    ro = False
    nocopy = False
    for o in [w for w in mode.split(",") if w]:
        if o in ("ro", "rw"):
            ro = o == "ro"
        elif o == "nocopy" and _is_volume_name(source):
            nocopy = True
        else:
            raise ValueError("volume %s: option %r is not supported (only ro, rw, and nocopy for a volume)"
                             % (spec, o))
    if source.startswith("/"):
        return ContainerMount(target, source, "bind", ro)
    if _is_volume_name(source):
        return ContainerMount(target, source, "volume", ro, nocopy)
    raise ValueError("volume %s: the source %r must be an absolute host path or a volume name" % (spec, source))


def _mounts(volumes: VolumesArg, mounts: MountsArg, tmpfs: TmpfsArg) -> List[ContainerMount]:
    """volumes=, mounts=, tmpfs= of Container.run() as ContainerMounts, in order."""
    out: List[ContainerMount] = []
    if isinstance(volumes, Mapping):
        # docker-py: {source: {"bind": target, "mode": "ro"}} or {source: target}
        for src, v in volumes.items():
            if isinstance(v, str):
                out.append(_volume_mount(src, v, "", "%s:%s" % (src, v)))
            else:
                target = v.get("bind")
                if not target:
                    raise ValueError("volume %r: {'bind': TARGET, 'mode': 'rw'} expected" % (src,))
                out.append(_volume_mount(src, target, v.get("mode", ""), "%s:%s" % (src, target)))
    elif volumes is not None:
        if isinstance(volumes, str):
            raise TypeError("volumes is a list of 'SOURCE:TARGET[:MODE]' strings or a dict, not a str")
        for spec in volumes:
            parts = spec.split(":", 2)
            if len(parts) < 2:
                raise ValueError("volume %s: anonymous volumes are not supported; give SOURCE:%s" % (spec, spec))
            out.append(_volume_mount(parts[0], parts[1], parts[2] if len(parts) > 2 else "", spec))
    if mounts is not None:
        if isinstance(mounts, str):
            raise TypeError("mounts is a list of ContainerMount or '--mount' strings, not a str")
        out.extend(ContainerMount.parse(m) if isinstance(m, str) else m for m in mounts)
    if isinstance(tmpfs, Mapping):
        # docker-py: {target: "size=64m,uid=1000"}
        out.extend(ContainerMount(t, None, "tmpfs", tmpfs_options=o or None) for t, o in tmpfs.items())
    elif tmpfs is not None:
        if isinstance(tmpfs, str):
            tmpfs = [tmpfs]
        for spec in tmpfs:
            t, _, o = spec.partition(":")
            out.append(ContainerMount(t, None, "tmpfs", tmpfs_options=o or None))
    return out


def _ulimits(ulimits: UlimitsArg) -> List[Ulimit]:
    if ulimits is None:
        return []
    if isinstance(ulimits, Mapping):
        return [Ulimit(n, v[0], v[1]) if isinstance(v, tuple) else Ulimit(n, v) for n, v in ulimits.items()]
    if isinstance(ulimits, str):
        raise TypeError("ulimits is a list of Ulimit or 'NAME=SOFT[:HARD]' strings, or a dict, not a str")
    return [Ulimit.parse(u) if isinstance(u, str) else u for u in ulimits]


def _caps(caps: Union[str, Sequence[str], None]) -> Optional[List[str]]:
    if caps is None:
        return None
    if isinstance(caps, str):
        caps = caps.split(",")
    return [c for c in caps if c]


def _strlist(v: Union[str, Sequence[str]]) -> List[str]:
    return [v] if isinstance(v, str) else list(v)


def _bytes(v: Union[int, str]) -> int:
    """docker's RAMInBytes: 1024, "64m", "1.5g", "2GiB"."""
    if isinstance(v, int):
        if v < 0:
            raise ValueError("a size is >= 0, not %d" % v)
        return v
    m = re.fullmatch(r"(\d+(?:\.\d*)?) ?(?:([kKmMgGtTpP])[iI]?)?[bB]?", v)
    if not m:
        raise ValueError("invalid size %r (e.g. 1024, 64m, 1g)" % (v,))
    mul = 1024 ** (" kmgtp".index(m.group(2).lower()) if m.group(2) else 0)
    return int(float(m.group(1)) * mul)


def _parse_output(output: Union[str, Mapping[str, str], None]) -> Optional[Tuple[str, str, bool]]:
    """buildx's --output as (type, dest, oci tar)."""
    if output is None:
        return None
    if isinstance(output, str):
        if "=" not in output:
            if output == "-":
                raise ValueError("output: writing to stdout is not supported; give a path")
            return ("local", output, True)
        fields: Dict[str, str] = {}
        for f in output.split(","):
            k, eq, v = f.partition("=")
            if not eq:
                raise ValueError("output: invalid field %r: expected KEY=VALUE" % f)
            fields[k] = v
    else:
        fields = dict(output)
    for k in fields:
        if k not in ("type", "dest", "tar"):
            raise ValueError("output: the attribute %r is not supported (type, dest, tar)" % k)
    kind = fields.get("type")
    if kind not in ("oci", "docker", "tar", "local", "image"):
        raise ValueError("output: type must be oci, docker, tar, local or image, not %r" % (kind,))
    tar = fields.get("tar", "true")
    if tar not in ("true", "false"):
        raise ValueError("output: tar=%s: expected true or false" % tar)
    if "tar" in fields and kind != "oci":
        raise ValueError("output: tar= is only for type=oci")
    dest = fields.get("dest")
    if kind != "image":
        if not dest:
            raise ValueError("output: dest= is required")
        if dest == "-":
            raise ValueError("output: writing to stdout is not supported; give a path")
    return (kind, dest or "", tar == "true")


def _signal_number(sig: Union[int, str, "signal.Signals"]) -> int:
    """9, "KILL", "SIGKILL" or signal.SIGKILL as a number (docker kill -s)."""
    if isinstance(sig, str):
        if sig.isdigit():
            return int(sig)
        name = sig.upper()
        try:
            return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
        except KeyError:
            raise ValueError("unknown signal %r" % (sig,)) from None
    return int(sig)


def _status(st: Any) -> int:
    """An ib_exit_status as a shell shows it: 128+N when killed by signal N."""
    return 128 + st.signal if st.signal else st.code


# ---------------------------------------------------------------- the store

class Store:
    """An image store (an OCI image layout directory): ``Store(root)``, a context manager.

    ``root`` None is the library's default (/var/lib/imagebuild, or
    $IMAGEBUILD_ROOT). Closing releases the store's leases.
    """

    def __init__(self, root: Optional[PathLike] = None) -> None:
        p = ffi.new("ib_store **")
        o = ffi.new("ib_store_options *")
        _check(lib.ib_store_options_init(o, lib.IB_STORE_OPTIONS_VERSION))
        _check(lib.ib_store_open(p, _b(root) if root else ffi.NULL, o))
        self._s: Any = ffi.gc(p[0], lib.ib_store_free)

    def close(self) -> None:
        """Close the store handle now (containers opened from it stay usable)."""
        if self._s is not None:
            ffi.release(self._s)  # runs ib_store_free now
            self._s = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Store(%r)" % (self.root if self._s is not None else "<closed>")

    @property
    def _h(self) -> Any:
        if self._s is None:
            raise ValueError("the store is closed")
        return self._s

    @property
    def root(self) -> str:
        """The store's root directory."""
        return os.fsdecode(ffi.string(lib.ib_store_root(self._h)))

    # ---- build

    def build(self, context: PathLike, tags: Iterable[str] = (), *,
              dockerfile: Optional[PathLike] = None,
              dockerfile_content: Union[str, bytes, None] = None,
              build_args: Optional[Mapping[str, str]] = None, target: Optional[str] = None,
              platform: Union[str, Sequence[str], None] = None, no_cache: bool = False,
              snapshotter: Optional[str] = None, isolation: Optional[str] = None,
              network: str = "host", pull: Union[bool, str, None] = None, secrets: Any = None,
              allow: Union[str, Sequence[str], None] = None,
              source_date_epoch: Optional[int] = None, username: Optional[str] = None,
              password: Optional[str] = None, insecure: bool = False,
              tls_ca: Optional[PathLike] = None, authfile: Optional[PathLike] = None,
              registries_conf: Optional[PathLike] = None,
              labels: Optional[Mapping[str, str]] = None,
              annotations: Union[Mapping[str, str], Sequence[str], None] = None,
              build_contexts: Optional[Mapping[str, str]] = None,
              extra_hosts: Union[Mapping[str, str], Sequence[str], None] = None,
              ulimits: UlimitsArg = None, shm_size: Union[int, str, None] = None,
              no_cache_filter: Union[str, Sequence[str], None] = None,
              jobs: Optional[int] = None,
              cache_from: Union[str, Sequence[str], None] = None,
              cache_to: Union[str, Sequence[str], None] = None,
              binfmt_misc: Optional[PathLike] = None,
              output: Union[str, Mapping[str, str], None] = None,
              on_progress: Optional[ProgressCallback] = None,
              on_log: Optional[LogCallback] = None, cancel: Optional[CancelFlag] = None) -> BuildResult:
        """Build a Dockerfile (``docker build``); returns a BuildResult.

        context: the build context directory. dockerfile: its path (default
        <context>/Dockerfile), or dockerfile_content: the Dockerfile itself
        (``-f -``). build_args: {name: value} (a None value takes it from
        the environment, as ``--build-arg NAME`` does). target: the stage to
        build. platform: "linux/amd64"... (default: this host's), or several
        ("linux/amd64,linux/arm64" or a list): each is built and the result
        is an OCI image index (the returned id is its digest); RUN of another
        platform runs under a binfmt_misc emulator (qemu-user-static,
        registered with the F flag; looked for in ``binfmt_misc``, default
        /proc/sys/fs/binfmt_misc) and fails naming a missing one. network:
        "host" or "none" for RUN. pull: "missing" (default, also None),
        "always" (also True) or "never" (also False). secrets: {id: path},
        {id: {"env": VAR}}, or docker's "id=X,src=FILE" strings. allow:
        BuildKit entitlements ("security.insecure", "network.host").
        source_date_epoch: seconds since 1970 for history, `created` and
        clamped file times (the environment is never read). username,
        password, insecure, tls_ca, authfile, registries_conf: for the
        registries base images come from (as pull()).

        As ``docker buildx build`` takes them: labels: {key: value} set on
        the image (``--label``, over the Dockerfile's LABELs). annotations:
        {key: value} or "[manifest:]KEY=VALUE" strings for the manifest
        (``--annotation``). build_contexts: {name: value} (``--build-context``):
        "docker-image://REF", "oci-layout://PATH[:TAG|@DIGEST]" or a local
        directory, used where the Dockerfile names the image or stage.
        extra_hosts: {host: ip} or "HOST:IP" strings, added to RUN's
        /etc/hosts (``--add-host``). ulimits: for RUN, as for
        Container.run(). shm_size: RUN's /dev/shm in bytes, or "64m"
        (``--shm-size``). no_cache_filter: stages built without the cache
        (``--no-cache-filter``). jobs: how many independent stages run at
        once (``--jobs``; None: the online CPUs, 1: one after the other; the
        image is the same). cache_from: where to look for cached
        steps, in order (``--cache-from``): "type=registry,ref=REF" or a
        bare REF (a cache artifact, or an image built with "type=inline"),
        or a list of them; cache_to: where to write the build's
        cache records (``--cache-to``): "type=registry,ref=REF[,mode=min|max]"
        (or "type=local,dest=DIR", or "type=inline": in the image's config), with ",cache-mounts=ID,...|all" the
        contents of those ``RUN --mount=type=cache`` mounts too, restored by
        a cache_from that has them; or a list (docs/cache.md; other types
        are refused). output: where the image goes besides the
        store (``--output``), "type=oci|docker|tar|local|image,dest=PATH"
        (``tar=false`` for an OCI layout directory), a bare PATH (local) or
        {"type": ..., "dest": ...}; writing to stdout ("-") is refused.

        on_progress(ProgressEvent) may return False to cancel; so may another
        thread through ``cancel``. Either raises Cancelled. Ctrl-C (SIGINT,
        main thread) cancels too and raises KeyboardInterrupt. A failing RUN
        raises StepFailed.
        """
        keep = _Keep()
        reg = None
        if (username is not None or password is not None or insecure or tls_ca is not None
                or authfile is not None or registries_conf is not None):
            reg = _registry(keep, username, password, insecure, tls_ca,
                            authfile=authfile, registries_conf=registries_conf)
        tags = list(tags)
        single: Optional[str] = platform if isinstance(platform, str) else None
        o = _build_options(keep, context, dockerfile, dockerfile_content, tags, build_args, target,
                           single, no_cache, snapshotter, isolation, network,
                           pull, secrets, allow, source_date_epoch, reg)
        if platform is not None and not isinstance(platform, str):
            o.platforms = keep.array(list(platform))
        if binfmt_misc is not None:
            o.binfmt_misc = keep.str(os.fsdecode(binfmt_misc))
        out = _parse_output(output)
        if labels:
            o.labels = keep.array(["%s=%s" % kv for kv in labels.items()])
        if annotations:
            o.annotations = keep.array(["%s=%s" % kv for kv in annotations.items()]
                                       if isinstance(annotations, Mapping) else _strlist(annotations))
        if build_contexts:
            o.build_contexts = keep.array(["%s=%s" % kv for kv in build_contexts.items()])
        if extra_hosts:
            o.extra_hosts = keep.array(["%s:%s" % kv for kv in extra_hosts.items()]
                                       if isinstance(extra_hosts, Mapping) else _strlist(extra_hosts))
        ls = _ulimits(ulimits)
        if ls:
            o.ulimits = keep.array([u._spec() for u in ls])
        if shm_size is not None:
            o.shm_size = _bytes(shm_size)
        if no_cache_filter:
            o.no_cache_filter = keep.array(_caps(no_cache_filter))
        if jobs is not None:
            if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
                raise ValueError("jobs must be a positive int, not %r" % (jobs,))
            o.jobs = jobs
        if cache_from:
            o.cache_from = keep.array(_strlist(cache_from))
        if cache_to:
            o.cache_to = keep.array(_strlist(cache_to))
        call = _Call(on_progress, on_log, cancel)
        o.callbacks = call.cb
        d = ffi.new("ib_digest *")
        call.run(lib.ib_build, d, self._h, o)
        if out is not None:
            self._write_output(out, _digest_str(d), tags, on_progress, cancel)
        return BuildResult(_digest_str(d), tuple(tags), call.rep.steps, call.rep.cached)

    def _write_output(self, out: Tuple[str, str, bool], image_id: str, tags: List[str],
                      on_progress: Optional[ProgressCallback], cancel: Optional[CancelFlag]) -> None:
        """build()'s output= (buildx's exporters), as the CLI writes them."""
        kind, dest, oci_tar = out
        if kind == "image":
            return
        if kind in ("oci", "docker"):
            fmt = "docker-archive" if kind == "docker" else "oci-archive" if oci_tar else "oci"
            self.save(tags or [image_id], dest, format=fmt, on_progress=on_progress, cancel=cancel)
            return
        if kind == "local":
            os.makedirs(dest, exist_ok=True)
            self._unpack_rootfs(image_id, dest)
            return
        with tempfile.TemporaryDirectory(prefix="imagebuild-rootfs-") as tmp:
            self._unpack_rootfs(image_id, tmp)
            with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as t:
                for entry in sorted(os.listdir(tmp)):
                    t.add(os.path.join(tmp, entry), arcname=entry)

    def _unpack_rootfs(self, image_id: str, dest: str) -> None:
        """The image's layers, in order, into ``dest`` (whiteouts applied)."""
        img = self._lookup(image_id)
        dfd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for i in range(lib.ib_image_layer_count(img)):
                layer = lib.ib_image_layer(img, i)
                fdp = ffi.new("int *", -1)
                _check(lib.ib_store_blob_open(fdp, self._h, ffi.addressof(layer.digest)))
                try:
                    _check(lib.ib_snapshot_apply_tar(dfd, fdp[0], lib.IB_WHITEOUT_DELETE,
                                                     _digest_str(ffi.addressof(layer.digest)).encode()))
                finally:
                    os.close(fdp[0])
        finally:
            os.close(dfd)

    def plan(self, context: PathLike, **kw: Any) -> str:
        """The build plan as text (``build --dry-run``); see the module's plan()."""
        return plan(context, **kw)

    def check(self, context: PathLike, *, dockerfile: Optional[PathLike] = None,
              dockerfile_content: Union[str, bytes, None] = None,
              build_args: Optional[Mapping[str, str]] = None,
              target: Optional[str] = None) -> List[CheckWarning]:
        """BuildKit's build checks only (``build --check``): CheckWarning(rule,
        message, url, line) in line order. A malformed ``# check=`` directive
        raises; ``error=true`` does not."""
        keep = _Keep()
        o = _build_options(keep, context, dockerfile, dockerfile_content, (), build_args, target)
        p = ffi.new("ib_checks **")
        _check(lib.ib_build_check(p, o))
        checks = ffi.gc(p[0], lib.ib_checks_free)
        out = []
        for i in range(lib.ib_checks_count(checks)):
            w = lib.ib_checks_warning(checks, i)
            out.append(CheckWarning(_s(w.rule), _s(w.message), _s(w.url) if w.url else None, int(w.line)))
        return out

    # ---- images

    def images(self) -> Iterator[ImageSummary]:
        """Every image (``imagebuild images``): one row per name, then the untagged ones."""
        p = ffi.new("ib_image_list **")
        _check(lib.ib_store_images(p, self._h))
        try:
            rows = []
            for i in range(lib.ib_image_list_count(p[0])):
                s = lib.ib_image_list_get(p[0], i)
                rows.append(ImageSummary(_s(s.name) if s.name else None, _digest_str(ffi.addressof(s.id)),
                                         _digest_str(ffi.addressof(s.manifest)),
                                         _s(s.created) if s.created else None, int(s.size)))
        finally:
            lib.ib_image_list_free(p[0])
        return iter(rows)

    def image_platforms(self, image: Union[ImageSummary, str]) -> List[ImagePlatform]:
        """The platforms of an image: an ``images()`` row (its ``manifest``: an index or a single
        manifest) or a name or id (the index it was found through, else its manifest). One entry per
        image manifest of an index, in its order, whether the store has it or not (``available``);
        one for a single-platform image. ``imagebuild images --tree`` shows them."""
        d = ffi.new("ib_digest *")
        if isinstance(image, ImageSummary):
            _check(lib.ib_digest_parse(d, image.manifest.encode()))
        else:
            img = self._lookup(image)
            try:
                top = lib.ib_image_index_digest(img)
                d[0] = top[0] if top != ffi.NULL else lib.ib_image_manifest_digest(img)[0]
            finally:
                ffi.release(img)
        p = ffi.new("ib_image_platform_list **")
        _check(lib.ib_store_image_platforms(p, self._h, d))
        try:
            out = []
            for i in range(lib.ib_image_platform_list_count(p[0])):
                r = lib.ib_image_platform_list_get(p[0], i)
                ok = bool(r.available)
                out.append(ImagePlatform(_t(r.platform), _digest_str(ffi.addressof(r.manifest)), ok,
                                         _digest_str(ffi.addressof(r.id)) if ok else None, int(r.size),
                                         int(r.content_size), int(r.containers)))
        finally:
            lib.ib_image_platform_list_free(p[0])
        return out

    def _lookup(self, name: str) -> Any:
        p = ffi.new("ib_image **")
        _check(lib.ib_store_image_lookup(p, self._h, str(name).encode()))
        return ffi.gc(p[0], lib.ib_image_free)

    def image(self, name: str) -> Image:
        """The image ``name`` (a name, name@digest, id or unambiguous id prefix); NotFound otherwise."""
        img = self._lookup(name)
        try:
            layers = []
            for i in range(lib.ib_image_layer_count(img)):
                l = lib.ib_image_layer(img, i)
                layers.append(Layer(_digest_str(ffi.addressof(l.digest)), int(l.size), _t(l.media_type),
                                    _digest_str(ffi.addressof(l.diff_id))))
            names = tuple(_t(lib.ib_image_name(img, i)) for i in range(lib.ib_image_name_count(img)))
            buf = ffi.new("ib_buf *")
            _check(lib.ib_image_inspect_json(buf, img))
            details = json.loads(_buf_text(buf))
            return Image(_digest_str(lib.ib_image_id(img)), _digest_str(lib.ib_image_manifest_digest(img)),
                         _t(lib.ib_image_manifest_media_type(img)), names, int(lib.ib_image_size(img)),
                         tuple(layers), tuple(self._history(img)), details)
        finally:
            ffi.release(img)

    def _history(self, img: Any) -> List[HistoryEntry]:
        out = []
        item = ffi.new("ib_image_history_item *")
        for i in range(lib.ib_image_history_count(img)):
            _check(lib.ib_image_history_item_init(item, lib.IB_IMAGE_HISTORY_ITEM_VERSION))
            _check(lib.ib_image_history_get(item, img, i))
            out.append(HistoryEntry(_s(item.created), _s(item.created_by), _s(item.author),
                                    _s(item.comment), bool(item.empty_layer), int(item.size),
                                    _digest_str(ffi.addressof(item.layer)) if item.has_layer else None))
        return out

    def history(self, name: str) -> List[HistoryEntry]:
        """``docker history``: the image's history, newest first."""
        img = self._lookup(name)
        try:
            return self._history(img)
        finally:
            ffi.release(img)

    def inspect(self, name: str) -> Dict[str, Any]:
        """``docker image inspect``'s object for the image ``name``."""
        return self.image(name).details

    def exists(self, name: str) -> bool:
        """True when the store has the image ``name``."""
        try:
            ffi.release(self._lookup(name))
            return True
        except NotFound:
            return False

    def tag(self, source: str, target: str) -> None:
        """Give the image ``source`` (name or id) the name ``target`` (docker tag)."""
        _check(lib.ib_store_tag(self._h, str(source).encode(), target.encode()))

    def untag(self, name: str) -> None:
        """Remove one name; the image goes when it was its last name."""
        _check(lib.ib_store_untag(self._h, name.encode()))

    def remove_image(self, name: str, *, force: bool = False) -> List[str]:
        """``docker rmi``: untag a name (deleting the image with its last name),
        or delete an id and all its names; returns the "Untagged: X" /
        "Deleted: ID" lines. force: also an id with several names or one a
        container uses."""
        buf = ffi.new("ib_buf *")
        rc = lib.ib_store_image_remove(self._h, name.encode(), lib.IB_STORE_REMOVE_FORCE if force else 0, buf)
        text = _buf_text(buf)
        _check(rc)
        return [l for l in text.splitlines() if l]

    # ---- import, save, load

    def import_tarball(self, source: Union[PathLike, IO[bytes], int], name: Optional[str] = None, *,
                       changes: Iterable[str] = (), comment: Optional[str] = None,
                       source_date_epoch: Optional[int] = None,
                       on_progress: Optional[ProgressCallback] = None,
                       cancel: Optional[CancelFlag] = None) -> str:
        """``docker import``: a root filesystem tarball (a path, a file object
        or a descriptor; plain, gzip, zstd, xz, bzip2) as a one-layer image;
        returns its id. changes: Dockerfile instructions (``-c``): CMD, ENV,
        ... source_date_epoch: seconds since 1970 for `created`."""
        keep = _Keep()
        cfg = ffi.NULL
        changes = list(changes)
        if changes:
            p = ffi.new("ib_image_config **")
            _check(lib.ib_image_config_new(p))
            cfg = keep.obj(ffi.gc(p[0], lib.ib_image_config_free))
            for ch in changes:
                _check(lib.ib_commit_apply_change(cfg, ch.encode()))
        opts = ffi.new("ib_import_options *")
        _check(lib.ib_import_options_init(opts, lib.IB_IMPORT_OPTIONS_VERSION))
        _set_epoch(opts, source_date_epoch)
        opts.name = keep.str(name)
        opts.comment = keep.str(comment)
        opts.config = cfg
        call = _Call(on_progress, None, cancel)
        opts.callbacks = call.cb
        d = ffi.new("ib_digest *")
        if isinstance(source, int) or hasattr(source, "fileno"):
            call.run(lib.ib_store_import_fd, d, self._h, _fd(source), opts)
        else:
            call.run(lib.ib_store_import, d, self._h, _b(source), opts)
        return _digest_str(d)

    _FORMATS = {"oci": lib.IB_ARCHIVE_OCI, "oci-archive": lib.IB_ARCHIVE_OCI_ARCHIVE,
                "docker-archive": lib.IB_ARCHIVE_DOCKER}

    def save(self, names: Union[str, Sequence[str]], path: PathLike, *, format: str = "oci",
             ref_name: Optional[str] = None, on_progress: Optional[ProgressCallback] = None,
             cancel: Optional[CancelFlag] = None) -> None:
        """``imagebuild save``: write images to ``path`` as format "oci" (an OCI
        layout directory, new or empty), "oci-archive" (that as a tar) or
        "docker-archive" (docker save's tar). ref_name: the OCI ref.name of a
        single image (default its tag). Never changes the store."""
        if format not in self._FORMATS:
            raise ValueError("format must be one of %s, not %r" % (", ".join(self._FORMATS), format))
        names = [names] if isinstance(names, str) else list(names)
        keep = _Keep()
        o = ffi.new("ib_save_options *")
        _check(lib.ib_save_options_init(o, lib.IB_SAVE_OPTIONS_VERSION))
        o.format = self._FORMATS[format]
        o.ref_name = keep.str(ref_name)
        call = _Call(on_progress, None, cancel)
        o.callbacks = call.cb
        call.run(lib.ib_store_save, self._h, keep.array(names), len(names), _b(path), o)

    def load(self, path: PathLike, *, repository: Optional[str] = None,
             on_progress: Optional[ProgressCallback] = None,
             cancel: Optional[CancelFlag] = None) -> List[str]:
        """``imagebuild load``: an OCI layout, OCI archive or docker-archive
        (detected; archives may be compressed), all verified before any name
        changes; returns the names loaded (ids of untagged images).
        repository: for OCI images whose ref.name is a bare tag."""
        keep = _Keep()
        o = ffi.new("ib_load_options *")
        _check(lib.ib_load_options_init(o, lib.IB_LOAD_OPTIONS_VERSION))
        o.repository = keep.str(repository)
        call = _Call(on_progress, None, cancel)
        o.callbacks = call.cb
        arr = ffi.new("ib_strarray *")
        try:
            call.run(lib.ib_store_load, arr, self._h, _b(path), o)
        finally:
            loaded = _strarray(arr)
        return loaded

    # ---- registries

    def pull(self, ref: str, *, username: Optional[str] = None, password: Optional[str] = None,
             insecure: bool = False, tls_ca: Optional[PathLike] = None,
             docker_config: Optional[PathLike] = None, jobs: int = 0,
             authfile: Optional[PathLike] = None, registries_conf: Optional[PathLike] = None,
             platform: Optional[str] = None,
             on_progress: Optional[ProgressCallback] = None, on_log: Optional[LogCallback] = None,
             cancel: Optional[CancelFlag] = None) -> str:
        """``docker pull``: returns the image id. ``platform`` ("linux/arm64";
        default this host's) chooses the image of an index. Credentials default to those
        the auth files have (``authfile``, else podman's auth.json search,
        then Docker's config; see login()); mirrors from ``registries_conf``
        (containers' registries.conf). Progress: BYTES per blob."""
        keep = _Keep()
        o = ffi.new("ib_pull_options *")
        _check(lib.ib_pull_options_init(o, lib.IB_PULL_OPTIONS_VERSION))
        o.registry = _registry(keep, username, password, insecure, tls_ca, docker_config,
                               authfile=authfile, registries_conf=registries_conf)
        o.jobs = int(jobs)
        if platform is not None:
            o.platform = keep.str(platform)
        call = _Call(on_progress, on_log, cancel)
        o.callbacks = call.cb
        d = ffi.new("ib_digest *")
        call.run(lib.ib_pull, d, ffi.NULL, self._h, ref.encode(), o)
        return _digest_str(d)

    def push(self, name: str, dest: Optional[str] = None, *, username: Optional[str] = None,
             password: Optional[str] = None, insecure: bool = False,
             tls_ca: Optional[PathLike] = None, docker_config: Optional[PathLike] = None,
             jobs: int = 0, authfile: Optional[PathLike] = None,
             registries_conf: Optional[PathLike] = None,
             compression: Optional[str] = None, compression_level: int = 0,
             on_progress: Optional[ProgressCallback] = None,
             on_log: Optional[LogCallback] = None, cancel: Optional[CancelFlag] = None) -> str:
        """``docker push``: send the image ``name`` to ``dest`` (default: the
        name itself); returns the pushed manifest's digest. authfile,
        registries_conf: as pull(). compression: "gzip" or "zstd" (podman's
        --compression-format: every layer leaves so; None: gzip, and layers
        that came compressed leave as they are); compression_level: gzip
        1-9, zstd 1-22 (0: the default, and remembered variants are reused).
        Progress: BYTES per blob."""
        keep = _Keep()
        o = ffi.new("ib_push_options *")
        _check(lib.ib_push_options_init(o, lib.IB_PUSH_OPTIONS_VERSION))
        o.registry = _registry(keep, username, password, insecure, tls_ca, docker_config,
                               authfile=authfile, registries_conf=registries_conf)
        o.jobs = int(jobs)
        o.compression = keep.str(compression)
        o.compression_level = int(compression_level)
        call = _Call(on_progress, on_log, cancel)
        o.callbacks = call.cb
        d = ffi.new("ib_digest *")
        call.run(lib.ib_push, d, self._h, name.encode(), keep.str(dest), o)
        return _digest_str(d)

    # ---- maintenance

    def fsck(self, *, full: bool = False) -> List[str]:
        """Verify the store (``imagebuild fsck``): [] when sound, else one line
        per problem. full: also decompress every compressed layer variant."""
        o = ffi.new("ib_store_fsck_options *")
        _check(lib.ib_store_fsck_options_init(o, lib.IB_STORE_FSCK_OPTIONS_VERSION))
        o.full = 1 if full else 0
        buf = ffi.new("ib_buf *")
        rc = lib.ib_store_fsck_ext(buf, self._h, o)
        lines = [l for l in _buf_text(buf).splitlines() if l]
        if rc == lib.IB_EINVALID:
            return lines or [_t(lib.ib_error_last().message)]
        _check(rc)
        return []

    def prune(self, *, blobs_only: bool = False) -> PruneResult:
        """``imagebuild prune``: remove untagged images, every blob nothing
        references, unpacked layers no image uses and what killed processes
        left; blobs_only: unreferenced blobs only."""
        o = ffi.new("ib_store_gc_options *")
        _check(lib.ib_store_gc_options_init(o, lib.IB_STORE_GC_OPTIONS_VERSION))
        o.prune_dangling = 0 if blobs_only else 1
        st = ffi.new("ib_store_gc_stats *")
        _check(lib.ib_store_gc_stats_init(st, lib.IB_STORE_GC_STATS_VERSION))
        _check(lib.ib_store_gc(st, self._h, o))
        b = ffi.new("size_t *")
        s = ffi.new("size_t *")
        if not blobs_only:
            _check(lib.ib_prune(b, s, self._h))
        return PruneResult(int(st.images_removed), int(st.blobs_removed) + int(b[0]), int(s[0]),
                           int(st.bytes_freed))

    # ---- containers

    def create_container(self, image: str, name: Optional[str] = None, *,
                         snapshotter: Optional[str] = None, command: Optional[str] = None,
                         remove: bool = False) -> "Container":
        """Create a container from ``image`` (``docker create``). name: unique
        (AlreadyExists when taken). command: shown by containers(). remove:
        leaving a ``with`` block removes the container (``--rm``)."""
        keep = _Keep()
        o = ffi.new("ib_container_options *")
        _check(lib.ib_container_options_init(o, lib.IB_CONTAINER_OPTIONS_VERSION))
        o.name = keep.str(name)
        o.snapshotter = keep.str(snapshotter)
        o.command = keep.str(command)
        p = ffi.new("ib_container **")
        _check(lib.ib_container_create(p, self._h, str(image).encode(), o))
        return Container(self, p[0], remove)

    def container(self, id_or_name: str) -> "Container":
        """Open an existing container by id, id prefix or name."""
        p = ffi.new("ib_container **")
        _check(lib.ib_container_open(p, self._h, id_or_name.encode()))
        return Container(self, p[0], False)

    def containers(self) -> Iterator[ContainerInfo]:
        """Every container (``imagebuild ps -a``), oldest first."""
        p = ffi.new("ib_container_list **")
        _check(lib.ib_store_container_list(p, self._h))
        try:
            rows = [ContainerInfo._from_c(lib.ib_container_list_get(p[0], i))
                    for i in range(lib.ib_container_list_count(p[0]))]
        finally:
            lib.ib_container_list_free(p[0])
        return iter(rows)

    def remove_container(self, id_or_name: str, *, force: bool = False) -> None:
        """``docker rm``: remove a container, its snapshot and its record.
        AlreadyExists when it is running, unless force (``rm -f``: a running
        detached container is killed first)."""
        if force:
            p = ffi.new("ib_container **")
            if lib.ib_container_open(p, self._h, id_or_name.encode()) == 0:
                c = ffi.gc(p[0], lib.ib_container_free)
                if _check(lib.ib_container_running(c)) == 1:
                    _check(lib.ib_container_stop(ffi.NULL, c, 0))
                ffi.release(c)
        _check(lib.ib_container_remove(self._h, id_or_name.encode()))

    # ---- named volumes

    def _volume(self, name: str) -> VolumeInfo:
        buf = ffi.new("ib_buf *")
        rc = lib.ib_volume_path(buf, self._h, name.encode())
        path = _buf_text(buf)
        _check(rc)
        return VolumeInfo(name, path)

    def volumes(self) -> Iterator[VolumeInfo]:
        """The named volumes (``imagebuild volume ls``), sorted by name."""
        buf = ffi.new("ib_buf *")
        rc = lib.ib_volume_list(buf, self._h)
        text = _buf_text(buf)
        _check(rc)
        return iter([self._volume(n) for n in text.splitlines() if n])

    def volume(self, name: str) -> VolumeInfo:
        """A named volume; NotFound when there is none."""
        return self._volume(name)

    def create_volume(self, name: str) -> VolumeInfo:
        """``docker volume create NAME``: an empty named volume,
        ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``. AlreadyExists when it exists."""
        _check(lib.ib_volume_create(self._h, name.encode()))
        return self._volume(name)

    def remove_volume(self, name: str) -> None:
        """``docker volume rm``: remove a named volume and its content.
        NotFound when there is none."""
        _check(lib.ib_volume_remove(self._h, name.encode()))

    @overload
    def run(self, image: str, argv: Optional[Sequence[str]] = None, *, name: Optional[str] = None,
            rm: bool = False, snapshotter: Optional[str] = None, detach: Literal[False] = False,
            **run_options: Any) -> int: ...

    @overload
    def run(self, image: str, argv: Optional[Sequence[str]] = None, *, name: Optional[str] = None,
            rm: bool = False, snapshotter: Optional[str] = None, detach: Literal[True],
            **run_options: Any) -> "Container": ...

    def run(self, image: str, argv: Optional[Sequence[str]] = None, *, name: Optional[str] = None,
            rm: bool = False, snapshotter: Optional[str] = None, detach: bool = False,
            **run_options: Any) -> Union[int, "Container"]:
        """``docker run``: create a container from ``image``, run ``argv`` (else
        its CMD) in it and return the exit status; the container stays (see
        containers()) unless rm (``--rm``). run_options: as for Container.run().
        detach (``-d``): start it detached (Container.start()) and return
        the Container at once, as docker-py does; not with rm."""
        if detach and rm:
            raise ValueError("detach with rm is not supported")
        c = self.create_container(image, name, snapshotter=snapshotter,
                                  command=" ".join(argv) if argv else None, remove=rm)
        if detach:
            return c.start(argv, **run_options)
        with c:
            return c.run(argv, **run_options)


class Container:
    """A container: a writable snapshot of an image, run (changes persist) and
    committed. A context manager: leaving the block closes the handle, and
    removes the container when it was created with ``remove=True``."""

    def __init__(self, store: Store, c: Any, remove: bool = False) -> None:
        self._store = store  # keeps the store alive
        self._c: Any = ffi.gc(c, lib.ib_container_free)
        self._remove = remove
        self._id = ffi.string(lib.ib_container_id(self._c)).decode()

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
        if self._remove:
            self._remove = False
            self._store.remove_container(self._id)

    def __repr__(self) -> str:
        return "Container(id=%r, name=%r)" % (self._id[:12], self.name if self._c is not None else None)

    def close(self) -> None:
        """Free the handle now (the container stays; see remove())."""
        if self._c is not None:
            ffi.release(self._c)
            self._c = None

    @property
    def _h(self) -> Any:
        if self._c is None:
            raise ValueError("the container handle is closed")
        return self._c

    @property
    def id(self) -> str:
        """64 hex digits."""
        return self._id

    @property
    def name(self) -> Optional[str]:
        """Its name, or None."""
        n = lib.ib_container_name(self._h)
        return _s(n) if n else None

    @property
    def image_id(self) -> str:
        """The id of the image it was created from."""
        return _digest_str(lib.ib_container_image_id(self._h))

    def _options(self, keep: _Keep, argv: Optional[Sequence[str]] = None, *,
                 env: Union[Mapping[str, str], Sequence[str]] = (),
                 entrypoint: Optional[Sequence[str]] = None, user: Optional[str] = None,
                 workdir: Optional[str] = None, hostname: Optional[str] = None,
                 isolation: Optional[str] = None, network: str = "host",
                 volumes: VolumesArg = None, mounts: MountsArg = None, tmpfs: TmpfsArg = None,
                 read_only: bool = False, cap_add: Union[str, Sequence[str], None] = None,
                 cap_drop: Union[str, Sequence[str], None] = None, ulimits: UlimitsArg = None,
                 init: bool = False, init_path: Optional[PathLike] = None) -> Any:
        o = ffi.new("ib_container_run_options *")
        _check(lib.ib_container_run_options_init(o, lib.IB_CONTAINER_RUN_OPTIONS_VERSION))
        if argv is not None:
            if isinstance(argv, str):
                raise TypeError("argv is a list of strings, not a str")
            o.argv = keep.array(argv)
        if entrypoint is not None:
            o.entrypoint = keep.array(entrypoint)
        if env:
            o.env = keep.array(["%s=%s" % kv for kv in env.items()] if isinstance(env, Mapping) else env)
        o.user = keep.str(user)
        o.workdir = keep.str(workdir)
        o.hostname = keep.str(hostname)
        o.isolation = keep.str(isolation)
        o.network = _network(network)
        ms = _mounts(volumes, mounts, tmpfs)
        if ms:
            cm = keep.obj(ffi.new("ib_mount[]", len(ms)))
            for i, m in enumerate(ms):
                m._to_c(keep, cm[i])
            o.mounts, o.nmounts = cm, len(ms)
        ls = _ulimits(ulimits)
        if ls:
            cl = keep.obj(ffi.new("ib_rlimit[]", len(ls)))
            for i, u in enumerate(ls):
                u._to_c(keep, cl[i])
            o.rlimits, o.nrlimits = cl, len(ls)
        o.readonly_rootfs = 1 if read_only else 0
        o.cap_add = keep.array(_caps(cap_add))
        o.cap_drop = keep.array(_caps(cap_drop))
        o.init = 1 if init else 0
        o.init_path = keep.str(init_path)
        return o

    def run(self, argv: Optional[Sequence[str]] = None, *, env: Union[Mapping[str, str], Sequence[str]] = (),
            entrypoint: Optional[Sequence[str]] = None, user: Optional[str] = None,
            workdir: Optional[str] = None, hostname: Optional[str] = None,
            isolation: Optional[str] = None, network: str = "host", tty: bool = False,
            stdin: Any = None, stdout: Any = None, stderr: Any = None,
            on_log: Optional[LogCallback] = None, cancel: Optional[CancelFlag] = None,
            volumes: VolumesArg = None, mounts: MountsArg = None, tmpfs: TmpfsArg = None,
            read_only: bool = False, cap_add: Union[str, Sequence[str], None] = None,
            cap_drop: Union[str, Sequence[str], None] = None, ulimits: UlimitsArg = None,
            init: bool = False, init_path: Optional[PathLike] = None) -> int:
        """Run a process (argv, else the image's CMD; after the ENTRYPOINT,
        which ``entrypoint`` replaces, [] for none); returns its exit status
        (128+N when killed by signal N). env: {name: value} or "K=V" strings,
        added to the image's. stdin/stdout/stderr: file objects or
        descriptors; None is /dev/null, except that without stdout/stderr
        the output lines go to on_log when given. Ctrl-C and cancel: as for
        Store.build().

        As ``docker run`` (and docker-py) takes them:
        volumes: ``-v``, "SOURCE:TARGET[:ro|rw|nocopy]" strings or
        {SOURCE: {"bind": TARGET, "mode": "ro"}}; SOURCE an absolute host
        path (a bind) or a volume name (created when missing, see
        Store.create_volume()). mounts: ``--mount``, ContainerMount objects
        or "type=...,source=...,target=..." strings. tmpfs: ``--tmpfs``,
        {TARGET: OPTIONS} or "TARGET[:OPTIONS]" strings (noexec unless
        "exec"). read_only: ``--read-only`` root filesystem. cap_add,
        cap_drop: capability names ("NET_ADMIN", "ALL"). ulimits:
        ``--ulimit``, Ulimit objects, "NAME=SOFT[:HARD]" strings or {NAME:
        SOFT or (SOFT, HARD)}; -1 is unlimited. init: ``--init``, a tiny
        init (catatonit, tini-static or docker-init; init_path names
        another) as PID 1 that reaps zombies and forwards signals."""
        keep = _Keep()
        o = self._options(keep, argv, env=env, entrypoint=entrypoint, user=user, workdir=workdir,
                          hostname=hostname, isolation=isolation, network=network, volumes=volumes,
                          mounts=mounts, tmpfs=tmpfs, read_only=read_only, cap_add=cap_add,
                          cap_drop=cap_drop, ulimits=ulimits, init=init, init_path=init_path)
        o.tty = 1 if tty else 0
        o.stdin_fd, o.stdout_fd, o.stderr_fd = _fd(stdin), _fd(stdout), _fd(stderr)
        call = _Call(None, on_log, cancel)
        o.callbacks = call.cb
        st = ffi.new("ib_exit_status *")
        call.run(lib.ib_container_run, st, self._h, o)
        return _status(st)

    def start(self, argv: Optional[Sequence[str]] = None, **options: Any) -> "Container":
        """``docker run -d`` / ``docker start``: start the process detached,
        under a small supervisor process of its own (as podman's conmon; no
        daemon) that outlives this process; returns self at once. Its
        output goes to logs(); see running, wait(), stop(), kill().
        options: as for run(), except tty, stdin, stdout, stderr, on_log
        and cancel (a detached process has none). AlreadyExists when a
        process runs in it already. Forks: call it from a single-threaded
        process."""
        for bad in ("tty", "stdin", "stdout", "stderr", "on_log", "cancel"):
            if options.get(bad) not in (None, False):
                raise ValueError("a detached container takes no %s" % bad)
            options.pop(bad, None)
        keep = _Keep()
        o = self._options(keep, argv, **options)
        _check(lib.ib_container_start(self._h, o))
        return self

    @property
    def running(self) -> bool:
        """Whether a process runs in it (run() or start())."""
        return _check(lib.ib_container_running(self._h)) == 1

    def wait(self) -> int:
        """``docker wait``: wait until its process ends and return the exit
        status (128+N when killed by signal N); at once when it has ended.
        NotFound when it never ran."""
        st = ffi.new("ib_exit_status *")
        _check(lib.ib_container_wait(st, self._h))
        return _status(st)

    def stop(self, timeout: Optional[int] = None) -> None:
        """``docker stop``: the image's STOPSIGNAL (else SIGTERM), then
        SIGKILL after ``timeout`` seconds (None: 10, as docker) if it still
        runs; returns once it has ended (see wait() for its status). Nothing
        when it is not running."""
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0")
        _check(lib.ib_container_stop(ffi.NULL, self._h, -1 if timeout is None else int(timeout)))

    def kill(self, signal: Union[int, str] = "SIGKILL") -> None:
        """``docker kill``: send ``signal`` (a number, signal.SIGTERM, "TERM"
        or "SIGTERM"; SIGKILL by default) to the process of a detached
        container (its PID 1 gets only the signals it handles, and SIGKILL
        kills every process). Invalid when it is not running detached."""
        _check(lib.ib_container_kill(self._h, _signal_number(signal)))

    def logs(self, follow: bool = False) -> bytes:
        """``docker logs``: the output (stdout and stderr, as written) of its
        detached runs; with follow, wait until the process ends and include
        everything it writes until then."""
        with tempfile.TemporaryFile() as f:
            _check(lib.ib_container_logs(self._h, f.fileno(), 1 if follow else 0))
            f.seek(0)
            return f.read()

    def exec(self, argv: Sequence[str], **options: Any) -> int:
        """``imagebuild exec``: run ``argv`` in this container (its changes
        persist); options as for run()."""
        if not argv:
            raise ValueError("exec needs a command")
        return self.run(argv, **options)

    def commit(self, tag: Optional[str] = None, *, message: Optional[str] = None,
               author: Optional[str] = None, changes: Iterable[str] = (),
               source_date_epoch: Optional[int] = None) -> str:
        """``docker commit``: a new image of the container's changes; returns
        its id. changes: Dockerfile instructions (CMD, ENV, ...).
        source_date_epoch: as for build()."""
        keep = _Keep()
        o = ffi.new("ib_commit_options *")
        _check(lib.ib_commit_options_init(o, lib.IB_COMMIT_OPTIONS_VERSION))
        _set_epoch(o, source_date_epoch)
        o.tag = keep.str(tag)
        o.message = keep.str(message)
        o.author = keep.str(author)
        changes = list(changes)
        if changes:
            o.changes = keep.array(changes)
        d = ffi.new("ib_digest *")
        _check(lib.ib_container_commit(d, self._h, o))
        return _digest_str(d)

    def remove(self, *, force: bool = False) -> None:
        """``docker rm``: remove this container (closing the handle first).
        AlreadyExists when it is running, unless force (``rm -f``: stop it
        at once with SIGKILL first)."""
        self.close()
        self._remove = False
        self._store.remove_container(self._id, force=force)


# ---------------------------------------------------------------- Dockerfiles

def _parse_options(keep: _Keep, filename: Optional[str]) -> Any:
    o = keep.obj(ffi.new("ib_parse_options *"))
    _check(lib.ib_parse_options_init(o, 1))
    o.filename = keep.str(filename)
    return o


def _strings(ss: Any) -> Tuple[str, ...]:
    return tuple(_t(ss.items[i]) for i in range(ss.count))


@dataclasses.dataclass(frozen=True)
class Heredoc:
    """A heredoc of RUN, COPY or ADD; ``content`` raw (TABs kept even when ``chomp``)."""

    name: str
    """The delimiter, unquoted."""
    content: str
    """The body, with its line endings."""
    fd: int
    """3 for ``3<<EOF``, else 0."""
    expand: bool
    """False when part of the delimiter was quoted."""
    chomp: bool
    """True for ``<<-``."""

    @classmethod
    def _from_c(cls, h: Any) -> "Heredoc":
        return cls(_t(h.name), ffi.string(h.content, h.content_len).decode("utf-8", "replace"),
                   int(h.fd), bool(h.expand), bool(h.chomp))


@dataclasses.dataclass(frozen=True)
class ParseWarning:
    """A parser warning (e.g. an empty continuation line)."""

    line: int
    """The last line of the instruction it is about."""
    message: str
    """What is wrong."""


@dataclasses.dataclass(frozen=True)
class Node:
    """One instruction of the syntax tree (BuildKit's parser node)."""

    keyword: str
    """Lower-cased: "run"."""
    flags: Tuple[str, ...]
    """As written without quotes: "--mount=type=cache,target=/x"."""
    args: Tuple[str, ...]
    """The arguments (see BuildKit's dump for what each instruction gets)."""
    json: bool
    """True when the arguments came from a JSON array."""
    original: str
    """The logical line."""
    start_line: int
    """First physical line (1-based)."""
    end_line: int
    """Last physical line, heredoc bodies included."""
    heredocs: Tuple[Heredoc, ...]
    """Its heredocs, in order."""
    comments: Tuple[str, ...]
    """The comment lines before it."""
    nested: Optional["Node"]
    """ONBUILD's instruction, else None."""
    dump: str
    """BuildKit's test dump of the node."""

    @classmethod
    def _from_c(cls, n: Any) -> "Node":
        args = []
        ln = ffi.new("size_t *")
        for i in range(lib.ib_node_arg_count(n)):
            a = lib.ib_node_arg(n, i, ln)
            args.append(ffi.string(a, ln[0]).decode("utf-8", "replace"))
        nested = lib.ib_node_nested(n)
        buf = ffi.new("ib_buf *")
        _check(lib.ib_node_dump(buf, n))
        return cls(_t(lib.ib_node_keyword(n)),
                   tuple(_t(lib.ib_node_flag(n, i)) for i in range(lib.ib_node_flag_count(n))),
                   tuple(args), bool(lib.ib_node_is_json(n)), _t(lib.ib_node_original(n)),
                   int(lib.ib_node_start_line(n)), int(lib.ib_node_end_line(n)),
                   tuple(Heredoc._from_c(lib.ib_node_heredoc(n, i)) for i in range(lib.ib_node_heredoc_count(n))),
                   tuple(_t(lib.ib_node_comment(n, i)) for i in range(lib.ib_node_comment_count(n))),
                   cls._from_c(nested) if nested != ffi.NULL else None, _buf_text(buf))


# ---- typed instructions

@dataclasses.dataclass(frozen=True)
class Instruction:
    """A typed instruction; a subclass per kind (Run, Copy, ...). Values are
    raw: not variable-expanded, quotes kept where the Dockerfile keeps them."""

    kind: str
    """The upper-case instruction: "RUN"."""
    line: int
    """First physical line."""
    end_line: int
    """Last physical line."""
    original: str
    """The logical line."""


@dataclasses.dataclass(frozen=True)
class From(Instruction):
    """FROM image [AS name] [--platform=...]."""

    image: str
    """The image, raw (may hold ${VARS})."""
    name: Optional[str]
    """The AS name, lower-cased."""
    platform: Optional[str]
    """--platform."""


@dataclasses.dataclass(frozen=True)
class Mount:
    """A RUN --mount (values raw; None when the key was absent)."""

    raw: str
    """The text after --mount=."""
    type: str
    """bind, cache, tmpfs, secret or ssh."""
    target: Optional[str]
    """target=/dst=."""
    source: Optional[str]
    """source=/src=."""
    from_: Optional[str]
    """from=."""
    id: Optional[str]
    """id=."""
    sharing: Optional[str]
    """sharing= (cache)."""
    mode: Optional[str]
    """mode= (octal, as written)."""
    uid: Optional[str]
    """uid=."""
    gid: Optional[str]
    """gid=."""
    size: Optional[str]
    """size= (tmpfs)."""
    env: Optional[str]
    """env= (secret)."""
    readonly: bool
    """ro/rw (default read-only for bind, secret, ssh)."""
    required: bool
    """required (secret, ssh)."""


_MOUNT_TYPES = ["bind", "cache", "tmpfs", "secret", "ssh"]


@dataclasses.dataclass(frozen=True)
class Run(Instruction):
    """RUN."""

    args: Tuple[str, ...]
    """Exec form: argv; shell form: one string, the command line."""
    json: bool
    """True for the exec (JSON) form."""
    network: Optional[str]
    """--network."""
    security: Optional[str]
    """--security."""
    mounts: Tuple[Mount, ...]
    """--mount flags."""
    heredocs: Tuple[Heredoc, ...]
    """Heredocs."""


@dataclasses.dataclass(frozen=True)
class Cmd(Instruction):
    """CMD (also the base of Entrypoint and Shell)."""

    args: Tuple[str, ...]
    """Exec form: argv; shell form: one string."""
    json: bool
    """True for the exec (JSON) form."""


@dataclasses.dataclass(frozen=True)
class Entrypoint(Cmd):
    """ENTRYPOINT."""


@dataclasses.dataclass(frozen=True)
class Shell(Cmd):
    """SHELL."""


@dataclasses.dataclass(frozen=True)
class Copy(Instruction):
    """COPY (also the base of Add)."""

    sources: Tuple[str, ...]
    """Paths/URLs, raw (heredoc sources are in ``heredocs``)."""
    dest: str
    """The destination, raw."""
    json: bool
    """True for the exec (JSON) form."""
    from_: Optional[str]
    """--from."""
    chown: Optional[str]
    """--chown."""
    chmod: Optional[str]
    """--chmod."""
    checksum: Optional[str]
    """ADD --checksum."""
    link: bool
    """--link."""
    parents: bool
    """COPY --parents."""
    keep_git_dir: bool
    """ADD --keep-git-dir."""
    excludes: Tuple[str, ...]
    """--exclude patterns."""
    heredocs: Tuple[Heredoc, ...]
    """Sources given as heredocs."""


@dataclasses.dataclass(frozen=True)
class Add(Copy):
    """ADD."""


@dataclasses.dataclass(frozen=True)
class Env(Instruction):
    """ENV (also the base of Label)."""

    pairs: Tuple[Tuple[str, str], ...]
    """(key, raw value) pairs."""


@dataclasses.dataclass(frozen=True)
class Label(Env):
    """LABEL."""


@dataclasses.dataclass(frozen=True)
class ArgDeclaration:
    """One ARG declaration: name, and its raw default (None when it has none)."""

    name: str
    """The name."""
    default: Optional[str]
    """The default, raw; None when absent."""


@dataclasses.dataclass(frozen=True)
class Arg(Instruction):
    """ARG."""

    args: Tuple[ArgDeclaration, ...]
    """The declarations."""


@dataclasses.dataclass(frozen=True)
class Expose(Instruction):
    """EXPOSE (also the base of Volume)."""

    items: Tuple[str, ...]
    """Ports (EXPOSE) or paths (VOLUME)."""


@dataclasses.dataclass(frozen=True)
class Volume(Expose):
    """VOLUME."""


@dataclasses.dataclass(frozen=True)
class User(Instruction):
    """USER (also the base of Workdir, StopSignal, Maintainer)."""

    value: str
    """The raw value."""


@dataclasses.dataclass(frozen=True)
class Workdir(User):
    """WORKDIR."""


@dataclasses.dataclass(frozen=True)
class StopSignal(User):
    """STOPSIGNAL."""


@dataclasses.dataclass(frozen=True)
class Maintainer(User):
    """MAINTAINER."""


@dataclasses.dataclass(frozen=True)
class OnBuild(Instruction):
    """ONBUILD."""

    trigger: str
    """The instruction text: "RUN make"."""
    keyword: str
    """Its keyword, upper-cased."""


@dataclasses.dataclass(frozen=True)
class Healthcheck(Instruction):
    """HEALTHCHECK; durations in nanoseconds (0: not set)."""

    none: bool
    """HEALTHCHECK NONE."""
    test: Tuple[str, ...]
    """("CMD", argv...) or ("CMD-SHELL", line)."""
    interval: int
    """--interval."""
    timeout: int
    """--timeout."""
    start_period: int
    """--start-period."""
    start_interval: int
    """--start-interval."""
    retries: int
    """--retries (0: not set)."""


def _instruction(i: Any) -> Instruction:
    kind = _t(lib.ib_instruction_kind_name(i.kind))
    base: Tuple[str, int, int, str] = (kind, int(i.line), int(i.end_line), _t(i.original))
    u = i.u
    k = i.kind
    heredocs = tuple(Heredoc._from_c(lib.ib_instruction_heredoc(i, n))
                     for n in range(lib.ib_instruction_heredoc_count(i)))
    if k == lib.IB_INSTR_FROM:
        f = getattr(u, "from")
        return From(*base, _t(f.image), _s(f.name), _s(f.platform))
    if k == lib.IB_INSTR_RUN:
        mounts = []
        for n in range(lib.ib_instruction_mount_count(i)):
            m = lib.ib_instruction_mount(i, n)
            mounts.append(Mount(_t(m.raw), _MOUNT_TYPES[m.type], _s(m.target), _s(m.source), _s(getattr(m, "from")),
                                _s(m.id), _s(m.sharing), _s(m.mode), _s(m.uid), _s(m.gid), _s(m.size),
                                _s(m.env), bool(m.readonly), bool(m.required)))
        return Run(*base, _strings(u.run.args), bool(u.run.json), _s(u.run.network), _s(u.run.security),
                   tuple(mounts), heredocs)
    if k in (lib.IB_INSTR_CMD, lib.IB_INSTR_ENTRYPOINT, lib.IB_INSTR_SHELL):
        cls = {lib.IB_INSTR_CMD: Cmd, lib.IB_INSTR_ENTRYPOINT: Entrypoint, lib.IB_INSTR_SHELL: Shell}[k]
        return cls(*base, _strings(u.cmd.args), bool(u.cmd.json))
    if k in (lib.IB_INSTR_COPY, lib.IB_INSTR_ADD):
        c = u.copy
        return (Copy if k == lib.IB_INSTR_COPY else Add)(
            *base, _strings(c.sources), _t(c.dest), bool(c.json), _s(getattr(c, "from")), _s(c.chown),
            _s(c.chmod), _s(c.checksum), bool(c.link), bool(c.parents), bool(c.keep_git_dir),
            _strings(c.excludes), heredocs)
    if k in (lib.IB_INSTR_ENV, lib.IB_INSTR_LABEL):
        pairs = []
        for n in range(lib.ib_instruction_kv_count(i)):
            kv = lib.ib_instruction_kv(i, n)
            pairs.append((_t(kv.key), _t(kv.value)))
        return (Env if k == lib.IB_INSTR_ENV else Label)(*base, tuple(pairs))
    if k == lib.IB_INSTR_ARG:
        decls = []
        for n in range(lib.ib_instruction_arg_count(i)):
            a = lib.ib_instruction_arg(i, n)
            decls.append(ArgDeclaration(_t(a.name), _s(a.default_value) if a.has_default else None))
        return Arg(*base, tuple(decls))
    if k in (lib.IB_INSTR_EXPOSE, lib.IB_INSTR_VOLUME):
        return (Expose if k == lib.IB_INSTR_EXPOSE else Volume)(*base, _strings(u.list))
    if k in (lib.IB_INSTR_USER, lib.IB_INSTR_WORKDIR, lib.IB_INSTR_STOPSIGNAL, lib.IB_INSTR_MAINTAINER):
        ucls = {lib.IB_INSTR_USER: User, lib.IB_INSTR_WORKDIR: Workdir, lib.IB_INSTR_STOPSIGNAL: StopSignal,
               lib.IB_INSTR_MAINTAINER: Maintainer}[k]
        return ucls(*base, _t(u.value))
    if k == lib.IB_INSTR_ONBUILD:
        return OnBuild(*base, _t(u.onbuild.trigger), _t(u.onbuild.keyword))
    if k == lib.IB_INSTR_HEALTHCHECK:
        h = u.healthcheck
        return Healthcheck(*base, bool(h.none), _strings(h.test), int(h.interval), int(h.timeout),
                           int(h.start_period), int(h.start_interval), int(h.retries))
    return Instruction(*base)


@dataclasses.dataclass(frozen=True)
class Stage:
    """A build stage: its FROM and the instructions after it."""

    index: int
    """Its index in the Dockerfile (0 first)."""
    base: str
    """The FROM image, raw."""
    name: Optional[str]
    """The AS name (lower-cased)."""
    platform: Optional[str]
    """FROM --platform."""
    line: int
    """The line of its FROM."""
    from_: From
    """Its FROM instruction."""
    instructions: Tuple[Instruction, ...]
    """The instructions after FROM, in order."""


@dataclasses.dataclass(frozen=True)
class Instructions:
    """A Dockerfile's typed instructions: the meta ARGs (before the first FROM) and the stages."""

    meta_args: Tuple[Arg, ...]
    """ARG instructions before the first FROM."""
    stages: Tuple[Stage, ...]
    """The stages, in file order."""

    def stage(self, name: str) -> Stage:
        """The stage named ``name`` (case-insensitive); NotFound (a LookupError) otherwise."""
        for s in self.stages:
            if s.name is not None and s.name == name.lower():
                return s
        raise NotFound(lib.IB_ENOTFOUND, "no stage named %r" % name)


class Dockerfile:
    """A parsed Dockerfile (parse_dockerfile()): its syntax tree ``nodes``,
    ``directives``, ``escape``, ``warnings``, and instructions() for the
    typed level."""

    def __init__(self, df: Any, filename: str) -> None:
        self._df = ffi.gc(df, lib.ib_dockerfile_free)
        self.filename = filename
        """The name used in error messages."""
        self.nodes: Tuple[Node, ...] = tuple(Node._from_c(lib.ib_dockerfile_node(df, i))
                                             for i in range(lib.ib_dockerfile_node_count(df)))
        """The top-level instructions."""
        self.escape: str = lib.ib_dockerfile_escape(df).decode()
        """The escape character in effect: "\\\\" or "`"."""
        self.directives: Dict[str, str] = {}
        """The parser directives given (syntax, escape, check)."""
        for name in ("syntax", "escape", "check"):
            v = lib.ib_dockerfile_directive(df, name.encode())
            if v != ffi.NULL:
                self.directives[name] = _t(v)
        self.warnings: Tuple[ParseWarning, ...] = tuple(
            ParseWarning(int(w.line), _t(w.message))
            for w in (lib.ib_dockerfile_warning(df, i) for i in range(lib.ib_dockerfile_warning_count(df))))
        """Parser warnings."""

    def __repr__(self) -> str:
        return "Dockerfile(%r, %d instructions)" % (self.filename, len(self.nodes))

    def dump(self) -> str:
        """BuildKit's test dump of the tree: one "(instruction ...)" line per instruction."""
        buf = ffi.new("ib_buf *")
        _check(lib.ib_dockerfile_dump(buf, self._df))
        return _buf_text(buf)

    def plan(self, *, build_args: Optional[Mapping[str, str]] = None, target: Optional[str] = None,
             platform: Optional[str] = None) -> Plan:
        """Plan a build of this Dockerfile: resolve the ARGs FROM lines see,
        the stages the target needs and their order. NotFound/Invalid name the
        line (an unknown target, a FROM that expands to nothing...)."""
        keep = _Keep()
        o = ffi.new("ib_plan_options *")
        _check(lib.ib_plan_options_init(o, lib.IB_PLAN_OPTIONS_VERSION))
        o.target = keep.str(target)
        o.platform = keep.str(platform)
        if build_args:
            o.build_args = keep.array("%s=%s" % kv for kv in build_args.items())
        p = ffi.new("ib_instructions **")
        _check(lib.ib_instructions_parse(p, self._df))
        ins = ffi.gc(p[0], lib.ib_instructions_free)
        pp = ffi.new("ib_plan **")
        _check(lib.ib_plan_new(pp, self._df, ins, o))
        try:
            pl = pp[0]
            stages = []
            for i in range(lib.ib_plan_stage_count(pl)):
                st = lib.ib_plan_stage_at(pl, i)
                kind = _BASE_KINDS.get(st.base_kind, "image")
                stages.append(PlanStage(int(st.index), _s(st.name), kind, _t(st.base),
                                        int(st.base_stage) if kind == "stage" else None,
                                        tuple(int(st.deps[n]) for n in range(st.dep_count)), int(st.level)))
            env = lib.ib_plan_meta_env(pl)
            meta = []
            n = 0
            while env != ffi.NULL and env[n] != ffi.NULL:
                meta.append(_t(env[n]))
                n += 1
            arr = ffi.new("ib_strarray *")
            _check(lib.ib_plan_unused_build_args(arr, pl))
            unused = _strarray(arr)
            buf = ffi.new("ib_buf *")
            _check(lib.ib_plan_print(buf, pl))
            return Plan(tuple(stages), tuple(meta), tuple(unused), _buf_text(buf))
        finally:
            lib.ib_plan_free(pp[0])
            ffi.release(ins)

    def instructions(self) -> Instructions:
        """The typed instructions; ParseError for an instruction without meaning
        (unknown instruction or flag, instruction before FROM...)."""
        p = ffi.new("ib_instructions **")
        _check(lib.ib_instructions_parse(p, self._df))
        ins = p[0]
        try:
            metas = tuple(_instruction(lib.ib_instructions_meta_arg(ins, i))
                          for i in range(lib.ib_instructions_meta_arg_count(ins)))
            stages = []
            for i in range(lib.ib_instructions_stage_count(ins)):
                st = lib.ib_instructions_stage(ins, i)
                stages.append(Stage(int(st.index), _t(st.base), _s(st.name), _s(st.platform), int(st.line),
                                    cast(From, _instruction(getattr(st, "from"))),
                                    tuple(_instruction(st.instructions[n]) for n in range(st.instruction_count))))
            return Instructions(metas, tuple(stages))  # type: ignore[arg-type]
        finally:
            lib.ib_instructions_free(ins)


@dataclasses.dataclass(frozen=True)
class PlanStage:
    """A stage the plan builds, in build order."""

    index: int
    """Its index in the Dockerfile."""
    name: Optional[str]
    """Its AS name."""
    base_kind: str
    """"scratch", "stage" (an earlier stage) or "image"."""
    base: str
    """FROM, expanded with the meta ARGs ("busybox:1.36")."""
    base_stage: Optional[int]
    """For base_kind "stage": the index of that stage."""
    deps: Tuple[int, ...]
    """The indexes of the stages it needs."""
    level: int
    """Stages of the same level do not depend on each other."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a build would do (Dockerfile.plan()): the stages in build order, nothing run."""

    stages: Tuple[PlanStage, ...]
    """The stages to build, each after what it needs (the target last)."""
    meta_env: Tuple[str, ...]
    """The meta ARGs after the build arguments: "NAME=VALUE"."""
    unused_build_args: Tuple[str, ...]
    """Build arguments nothing declares (Docker warns about them)."""
    text: str
    """The human-readable plan (``build --dry-run``)."""

    @property
    def target(self) -> PlanStage:
        """The target stage (built last)."""
        return self.stages[-1]

    def __str__(self) -> str:
        return self.text


_BASE_KINDS = {lib.IB_BASE_SCRATCH: "scratch", lib.IB_BASE_STAGE: "stage", lib.IB_BASE_IMAGE: "image"}


def parse_dockerfile(text: Union[str, bytes], filename: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile's text into its syntax tree; ParseError
    ("<filename>:<line>: <reason>") on a syntax error."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    keep = _Keep()
    df = ffi.new("ib_dockerfile **")
    _check(lib.ib_dockerfile_parse(df, data, len(data), _parse_options(keep, filename)))
    return Dockerfile(df[0], filename)


def dump_dockerfile(text: Union[str, bytes], filename: str = "Dockerfile") -> str:
    """Parse a Dockerfile and return BuildKit's test dump of its syntax tree."""
    return parse_dockerfile(text, filename).dump()


def parse_instruction(text: str) -> Instruction:
    """One instruction on its own, typed, e.g. ``CMD ["cat", "/x"]`` (as commit/import changes are)."""
    keep = _Keep()
    p = ffi.new("ib_instruction **")
    _check(lib.ib_instruction_parse_single(p, text.encode(), _parse_options(keep, None)))
    try:
        return _instruction(p[0])
    finally:
        lib.ib_instruction_free(p[0])


def parse_duration(text: str) -> int:
    """A Go duration ("1m30s", "300ms") in nanoseconds, as HEALTHCHECK flags take it; Invalid when malformed."""
    out = ffi.new("int64_t *")
    _check(lib.ib_parse_duration(out, text.encode()))
    return int(out[0])


# ---- word expansion

def _expand_options(keep: _Keep, env: Union[Mapping[str, str], Sequence[str], None], escape: str,
                    keep_unset: bool, raw_quotes: bool, raw_escapes: bool) -> Any:
    o = keep.obj(ffi.new("ib_expand_options *"))
    _check(lib.ib_expand_options_init(o, lib.IB_EXPAND_OPTIONS_VERSION))
    if env:
        o.env = keep.array(["%s=%s" % kv for kv in env.items()] if isinstance(env, Mapping) else env)
    if escape not in ("\\", "`"):
        raise ValueError("escape must be '\\\\' or '`'")
    o.escape = escape.encode()
    o.flags = ((lib.IB_EXPAND_KEEP_UNSET if keep_unset else 0) | (lib.IB_EXPAND_RAW_QUOTES if raw_quotes else 0)
               | (lib.IB_EXPAND_RAW_ESCAPES if raw_escapes else 0))
    return o


def expand_word(word: str, env: Union[Mapping[str, str], Sequence[str], None] = None, *,
                escape: str = "\\", keep_unset: bool = False, raw_quotes: bool = False,
                raw_escapes: bool = False) -> str:
    """Expand ``word`` as BuildKit does for a single-value instruction
    (``$v``, ``${v:-w}``, ``${v#p}``, quotes, escapes) with ``env``
    ({name: value} or "K=V" strings). ParseError for malformed input,
    Invalid for ``${v?msg}`` of an unset variable."""
    keep = _Keep()
    o = _expand_options(keep, env, escape, keep_unset, raw_quotes, raw_escapes)
    buf = ffi.new("ib_buf *")
    _check(lib.ib_expand_word(buf, word.encode(), o))
    return _buf_text(buf)


def expand_words(word: str, env: Union[Mapping[str, str], Sequence[str], None] = None, *,
                 escape: str = "\\", keep_unset: bool = False, raw_quotes: bool = False,
                 raw_escapes: bool = False) -> List[str]:
    """Expand ``word`` and split it into words (unquoted white space
    separates them), as for instructions that take a list."""
    keep = _Keep()
    o = _expand_options(keep, env, escape, keep_unset, raw_quotes, raw_escapes)
    arr = ffi.new("ib_strarray *")
    _check(lib.ib_expand_words(arr, word.encode(), o))
    return _strarray(arr)


# ---- .dockerignore

def read_dockerignore(text: Union[str, bytes]) -> List[str]:
    """A .dockerignore file's patterns, as Docker reads them (comments, blank
    lines and white space dropped, patterns cleaned)."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    arr = ffi.new("ib_strarray *")
    _check(lib.ib_ignore_read(arr, data, len(data)))
    return _strarray(arr)


def dockerignore_candidates(dockerfile_path: str) -> List[str]:
    """The ignore files that apply to a build with this Dockerfile path, best
    first ("<path>.dockerignore", then ".dockerignore")."""
    arr = ffi.new("ib_strarray *")
    _check(lib.ib_ignore_candidates(arr, dockerfile_path.encode()))
    return _strarray(arr)


class DockerIgnore:
    """Compiled .dockerignore patterns with Docker's rules:
    ``DockerIgnore(["*.o", "!keep.o"])`` or ``DockerIgnore.parse(text)``;
    ``path in ignore`` / matches(path) say whether a context path is excluded."""

    def __init__(self, patterns: Iterable[str]) -> None:
        keep = _Keep()
        patterns = list(patterns)
        p = ffi.new("ib_ignore **")
        _check(lib.ib_ignore_new(p, keep.array(patterns), len(patterns)))
        self._i = ffi.gc(p[0], lib.ib_ignore_free)

    @classmethod
    def parse(cls, text: Union[str, bytes], filename: Optional[str] = None) -> "DockerIgnore":
        """Read and compile a .dockerignore file's text; ParseError names a bad
        pattern (and ``filename``, when given)."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        keep = _Keep()
        p = ffi.new("ib_ignore **")
        _check(lib.ib_ignore_parse(p, data, len(data), keep.str(filename)))
        self = cls.__new__(cls)
        self._i = ffi.gc(p[0], lib.ib_ignore_free)
        return self

    @property
    def patterns(self) -> List[Tuple[str, bool]]:
        """The compiled patterns: (pattern without its "!", is_exception)."""
        out = []
        exc = ffi.new("int *")
        for i in range(lib.ib_ignore_count(self._i)):
            pat = lib.ib_ignore_pattern(self._i, i, exc)
            out.append((_t(pat), bool(exc[0])))
        return out

    def matches(self, path: str) -> bool:
        """True when ``path`` (relative to the context, slash-separated) is excluded."""
        return _check(lib.ib_ignore_matches(self._i, path.encode())) == 1

    __contains__ = matches

    def descend(self, directory: str) -> bool:
        """For an excluded directory: True when an exception could re-include something below it."""
        return _check(lib.ib_ignore_descend(self._i, directory.encode())) == 1

    def __repr__(self) -> str:
        return "DockerIgnore(%r)" % ["!" + p if e else p for p, e in self.patterns]
