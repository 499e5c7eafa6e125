"""Python bindings for libimagebuild (cffi, API mode).

    import imagebuild
    store = imagebuild.Store("/var/lib/imagebuild")
    image_id = store.build("examples/hello", tags=["hello"])
    c = store.create_container("hello")
    c.run()                      # the image's CMD; returns the exit code
    c.commit(tag="hello:2", message="ran once")

Errors from the library raise ImagebuildError (or a subclass named after the
code) carrying the library's message, which names the object and the reason.

The long calls (build, pull, push, import_tarball, Container.run) release
the GIL, so other threads run (and build) meanwhile. In the main thread,
Ctrl-C (SIGINT) during one cancels it through the library (a RUN is killed,
mounts and temporary files are cleaned up) and then raises
KeyboardInterrupt (or runs your own SIGINT handler). An exception raised by
an on_progress/on_log callback stops the call and is re-raised from it.
"""
import collections
import json
import os
import signal
import threading

from ._native import ffi, lib

__all__ = ["ImagebuildError", "NotFound", "Exists", "Invalid", "SyntaxError_",
           "Unsupported", "Cancelled", "version", "Digest", "dump_dockerfile",
           "Store", "Container"]



def _set_epoch(o, epoch):
    """SOURCE_DATE_EPOCH through the options (None: unset)."""
    if epoch is None:
        return
    epoch = int(epoch)
    if epoch < 0:
        raise ValueError("source_date_epoch must be >= 0")
    o.use_source_date_epoch = 1
    o.source_date_epoch = epoch

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


def _b(s):
    return None if s is None else os.fsencode(s)


def _buf_text(buf):
    try:
        return ffi.string(buf.ptr, buf.size).decode("utf-8", "replace") if buf.ptr else ""
    finally:
        lib.ib_buf_dispose(buf)


class _StrArray:
    """A NULL-terminated const char *const * kept alive with its strings."""

    def __init__(self, items):
        self._keep = [ffi.new("char[]", _b(x)) for x in items]
        self.ptr = ffi.new("const char *[]", self._keep + [ffi.NULL])


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

    @classmethod
    def _from_c(cls, cd):
        d = cls()
        ffi.memmove(d._d, cd, ffi.sizeof("ib_digest"))
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


def dump_dockerfile(text, filename="Dockerfile"):
    """Parse a Dockerfile and return BuildKit's test dump of its syntax tree."""
    data = text.encode() if isinstance(text, str) else text
    df = ffi.new("ib_dockerfile **")
    opts = ffi.new("ib_parse_options *")
    _check(lib.ib_parse_options_init(opts, 1))
    name = ffi.new("char[]", filename.encode())
    opts.filename = name
    _check(lib.ib_dockerfile_parse(df, data, len(data), opts))
    try:
        buf = ffi.new("ib_buf *")
        _check(lib.ib_dockerfile_dump(buf, df[0]))
        return _buf_text(buf)
    finally:
        lib.ib_dockerfile_free(df[0])


# ---- callbacks: the payload is a handle to a _Reporter ----

class CancelFlag:
    """Cancels the call it is given to (ib_callbacks.cancel): set() from any thread.

    The call then raises Cancelled; a running RUN is killed within 100 ms.
    """

    def __init__(self):
        self._p = ffi.new("int *")

    def set(self):
        self._p[0] = 1

    def is_set(self):
        return bool(self._p[0])


class _Reporter:
    def __init__(self, on_progress, on_log):
        self.on_progress = on_progress
        self.on_log = on_log
        self.error = None
        self.handle = ffi.new_handle(self)


@ffi.def_extern()
def _ib_py_progress(p, payload):
    rep = ffi.from_handle(payload)
    if rep.error is not None:  # an on_log exception: stop at the next report
        return lib.IB_EUSER
    if rep.on_progress is None:
        return 0
    try:
        event = {
            "kind": {lib.IB_PROGRESS_STEP: "step", lib.IB_PROGRESS_STEP_DONE: "done",
                     lib.IB_PROGRESS_BYTES: "bytes", lib.IB_PROGRESS_OUTPUT: "output"}.get(p.kind, "?"),
            "id": ffi.string(p.id).decode("utf-8", "replace") if p.id else None,
            "text": ffi.string(p.text).decode("utf-8", "replace") if p.text else None,
            "cached": bool(p.cached),
            "current": int(p.current),
            "total": int(p.total),
        }
        # a non-zero return is what the call returns: make it a failure
        return lib.IB_EUSER if rep.on_progress(event) is False else 0
    except BaseException as e:  # re-raised after the call
        rep.error = e
        return lib.IB_EUSER


@ffi.def_extern()
def _ib_py_log(level, line, payload):
    rep = ffi.from_handle(payload)
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

    def __init__(self, on_progress=None, on_log=None, cancel=None):
        self.rep = _Reporter(on_progress, on_log)
        self.cb = ffi.new("ib_callbacks *")
        _check(lib.ib_callbacks_init(self.cb, lib.IB_CALLBACKS_VERSION))
        self.cb.progress = lib._ib_py_progress
        self.cb.log = lib._ib_py_log
        self.cb.payload = self.rep.handle
        self.flag = cancel._p if cancel is not None else ffi.new("int *")
        self.cb.cancel = self.flag

    def run(self, fn, *args):
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
        return _check(rc)


CheckWarning = collections.namedtuple("CheckWarning", "rule message url line")


class Store:
    """An image store (an OCI image layout directory)."""

    def __init__(self, root=None):
        p = ffi.new("ib_store **")
        o = ffi.new("ib_store_options *")
        _check(lib.ib_store_options_init(o, lib.IB_STORE_OPTIONS_VERSION))
        _check(lib.ib_store_open(p, _b(root) if root else ffi.NULL, o))
        self._s = ffi.gc(p[0], lib.ib_store_free)

    def close(self):
        if self._s is not None:
            ffi.release(self._s)  # runs ib_store_free now
            self._s = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def root(self):
        return os.fsdecode(ffi.string(lib.ib_store_root(self._s)))

    def import_tarball(self, path, name=None, changes=(), comment=None, source_date_epoch=None):
        """docker import: a root filesystem tarball as a one-layer image; returns its id.

        source_date_epoch: seconds since 1970 for `created` (the environment is not read).
        """
        cfg = ffi.NULL
        if changes:
            p = ffi.new("ib_image_config **")
            _check(lib.ib_image_config_new(p))
            cfg = ffi.gc(p[0], lib.ib_image_config_free)
            for ch in changes:
                _check(lib.ib_commit_apply_change(cfg, ch.encode()))
        opts = ffi.new("ib_import_options *")
        _check(lib.ib_import_options_init(opts, lib.IB_IMPORT_OPTIONS_VERSION))
        _set_epoch(opts, source_date_epoch)
        keep = [ffi.new("char[]", name.encode()) if name else ffi.NULL,
                ffi.new("char[]", comment.encode()) if comment else ffi.NULL]
        opts.name = keep[0]
        opts.comment = keep[1]
        opts.config = cfg
        call = _Call()
        opts.callbacks = call.cb
        d = ffi.new("ib_digest *")
        call.run(lib.ib_store_import, d, self._s, _b(path), opts)
        return str(Digest._from_c(d))

    def _registry(self, opts, username, password, insecure, tls_ca, keep):
        r = ffi.new("ib_registry_options *")
        _check(lib.ib_registry_options_init(r, lib.IB_REGISTRY_OPTIONS_VERSION))
        keep.append(r)
        opts.registry = r
        for field, value in (("username", username), ("password", password), ("tls_ca_file", tls_ca)):
            if value is not None:
                c = ffi.new("char[]", value.encode())
                keep.append(c)
                setattr(r, field, c)
        r.insecure = 1 if insecure else 0

    def pull(self, ref, username=None, password=None, insecure=False, tls_ca=None,
             on_progress=None, on_log=None, cancel=None):
        """docker pull: returns the image id. on_progress/on_log/cancel: as for build()."""
        keep = []
        o = ffi.new("ib_pull_options *")
        _check(lib.ib_pull_options_init(o, lib.IB_PULL_OPTIONS_VERSION))
        self._registry(o, username, password, insecure, tls_ca, keep)
        call = _Call(on_progress, on_log, cancel)
        o.callbacks = call.cb
        d = ffi.new("ib_digest *")
        call.run(lib.ib_pull, d, ffi.NULL, self._s, ref.encode(), o)
        return str(Digest._from_c(d))

    def push(self, name, dest=None, username=None, password=None, insecure=False, tls_ca=None,
             on_progress=None, on_log=None, cancel=None):
        """docker push: returns the digest of the pushed manifest.

        on_progress/on_log/cancel: as for build().
        """
        keep = []
        o = ffi.new("ib_push_options *")
        _check(lib.ib_push_options_init(o, lib.IB_PUSH_OPTIONS_VERSION))
        self._registry(o, username, password, insecure, tls_ca, keep)
        call = _Call(on_progress, on_log, cancel)
        o.callbacks = call.cb
        d = ffi.new("ib_digest *")
        call.run(lib.ib_push, d, self._s, name.encode(), dest.encode() if dest else ffi.NULL, o)
        return str(Digest._from_c(d))

    def tag(self, source, target):
        _check(lib.ib_store_tag(self._s, source.encode(), target.encode()))

    def untag(self, name):
        _check(lib.ib_store_untag(self._s, name.encode()))

    def images(self):
        """Every image: dicts with name (None when untagged), id, created, size."""
        p = ffi.new("ib_image_list **")
        _check(lib.ib_store_images(p, self._s))
        try:
            out = []
            for i in range(lib.ib_image_list_count(p[0])):
                s = lib.ib_image_list_get(p[0], i)
                out.append({
                    "name": ffi.string(s.name).decode() if s.name else None,
                    "id": str(Digest._from_c(ffi.addressof(s.id))),
                    "created": ffi.string(s.created).decode() if s.created else None,
                    "size": int(s.size),
                })
            return out
        finally:
            lib.ib_image_list_free(p[0])

    def inspect(self, name):
        """An image's details (docker image inspect), as a dict."""
        p = ffi.new("ib_image **")
        _check(lib.ib_store_image_lookup(p, self._s, name.encode()))
        try:
            buf = ffi.new("ib_buf *")
            _check(lib.ib_image_inspect_json(buf, p[0]))
            return json.loads(_buf_text(buf))
        finally:
            lib.ib_image_free(p[0])

    def _build_options(self, context, dockerfile, tags, build_args, target, no_cache,
                       snapshotter, isolation, network_none, keep, pull=None, secrets=None,
                       allow=None, source_date_epoch=None):
        o = ffi.new("ib_build_options *")
        _check(lib.ib_build_options_init(o, lib.IB_BUILD_OPTIONS_VERSION))
        _set_epoch(o, source_date_epoch)

        def s(x):
            if x is None:
                return ffi.NULL
            c = ffi.new("char[]", _b(x))
            keep.append(c)
            return c
        o.context = s(context)
        o.dockerfile = s(dockerfile)
        if tags:
            a = _StrArray(tags)
            keep.append(a)
            o.tags = a.ptr
        if build_args:
            a = _StrArray("%s=%s" % kv for kv in dict(build_args).items())
            keep.append(a)
            o.build_args = a.ptr
        o.target = s(target)
        o.no_cache = 1 if no_cache else 0
        o.snapshotter = s(snapshotter)
        o.isolation = s(isolation)
        o.network = lib.IB_NETWORK_NONE if network_none else lib.IB_NETWORK_HOST
        if pull is not None:
            o.pull = lib.IB_PULL_ALWAYS if pull else lib.IB_PULL_NEVER
        if secrets:
            a = _StrArray("id=%s,src=%s" % kv for kv in dict(secrets).items())
            keep.append(a)
            o.secrets = a.ptr
        if allow:
            if isinstance(allow, str):
                allow = [allow]
            a = _StrArray(allow)
            keep.append(a)
            o.allow = a.ptr
        return o

    def build(self, context, tags=(), dockerfile=None, build_args=None, target=None,
              no_cache=False, snapshotter=None, isolation=None, network_none=False,
              on_progress=None, on_log=None, pull=None, secrets=None, allow=None, cancel=None,
              source_date_epoch=None):
        """Build a Dockerfile; returns the image id.

        on_progress(event) may return False to cancel; so may another thread
        through `cancel` (a CancelFlag). Either raises Cancelled. Ctrl-C
        (SIGINT, main thread) cancels too and raises KeyboardInterrupt. pull: None
        (pull missing base images), True (always), False (never). secrets:
        {id: file path}. allow: BuildKit's entitlements to grant (docker
        buildx build --allow), e.g. ["security.insecure"] for RUN
        --security=insecure, or ["network.host"] for RUN --network=host; an
        unknown name raises.
        source_date_epoch: seconds since 1970; history and image `created` take
        it and layer file times are clamped to it (the environment is not read).
        """
        keep = []
        o = self._build_options(context, dockerfile, tags, build_args, target, no_cache,
                                snapshotter, isolation, network_none, keep, pull, secrets,
                                allow, source_date_epoch)
        call = _Call(on_progress, on_log, cancel)
        o.callbacks = call.cb
        d = ffi.new("ib_digest *")
        call.run(lib.ib_build, d, self._s, o)
        return str(Digest._from_c(d))

    def plan(self, context, dockerfile=None, build_args=None, target=None):
        """The build plan as text (imagebuild build --dry-run)."""
        keep = []
        o = self._build_options(context, dockerfile, (), build_args, target, False,
                                None, None, False, keep)
        buf = ffi.new("ib_buf *")
        _check(lib.ib_build_plan_print(buf, o))
        return _buf_text(buf)

    def check(self, context, dockerfile=None, build_args=None, target=None):
        """BuildKit's build checks only (imagebuild build --check): a list of
        CheckWarning(rule, message, url, line), in line order. A malformed
        `# check=` directive raises; `error=true` does not (see build()).
        """
        keep = []
        o = self._build_options(context, dockerfile, (), build_args, target, False,
                                None, None, False, keep)
        p = ffi.new("ib_checks **")
        _check(lib.ib_build_check(p, o))
        checks = ffi.gc(p[0], lib.ib_checks_free)
        out = []
        for i in range(lib.ib_checks_count(checks)):
            w = lib.ib_checks_warning(checks, i)
            out.append(CheckWarning(ffi.string(w.rule).decode(), ffi.string(w.message).decode(),
                                    ffi.string(w.url).decode() if w.url else None, int(w.line)))
        return out

    def fsck(self):
        """Verify the store (imagebuild fsck): [] when sound, else one line per problem."""
        buf = ffi.new("ib_buf *")
        rc = lib.ib_store_fsck(buf, self._s)
        lines = [l for l in _buf_text(buf).splitlines() if l]
        if rc == lib.IB_EINVALID:
            return lines or [ffi.string(lib.ib_error_last().message).decode("utf-8", "replace")]
        _check(rc)
        return []

    def prune(self):
        """Free unreferenced blobs and unpacked layers; returns (blobs, snapshots) freed."""
        b = ffi.new("size_t *")
        s = ffi.new("size_t *")
        _check(lib.ib_prune(b, s, self._s))
        return int(b[0]), int(s[0])

    def create_container(self, image, name=None, snapshotter=None):
        o = ffi.new("ib_container_options *")
        _check(lib.ib_container_options_init(o, lib.IB_CONTAINER_OPTIONS_VERSION))
        keep = [ffi.new("char[]", name.encode()) if name else ffi.NULL,
                ffi.new("char[]", snapshotter.encode()) if snapshotter else ffi.NULL]
        o.name, o.snapshotter = keep
        p = ffi.new("ib_container **")
        _check(lib.ib_container_create(p, self._s, image.encode(), o))
        return Container(self, p[0])

    def container(self, id_or_name):
        p = ffi.new("ib_container **")
        _check(lib.ib_container_open(p, self._s, id_or_name.encode()))
        return Container(self, p[0])

    def remove_container(self, id_or_name):
        _check(lib.ib_container_remove(self._s, id_or_name.encode()))


class Container:
    """A container: a writable snapshot of an image, run and committed."""

    def __init__(self, store, c):
        self._store = store  # keeps the store alive
        self._c = ffi.gc(c, lib.ib_container_free)

    @property
    def id(self):
        return ffi.string(lib.ib_container_id(self._c)).decode()

    @property
    def name(self):
        n = lib.ib_container_name(self._c)
        return ffi.string(n).decode() if n else None

    def run(self, argv=None, env=(), user=None, workdir=None, isolation=None,
            network_none=False, stdin=-1, stdout=-1, stderr=-1, on_progress=None, on_log=None,
            cancel=None):
        """Run a process (argv, else the image's CMD); returns its exit status (128+N for signal N).

        stdin/stdout/stderr are file descriptors (or objects with fileno()); -1 is /dev/null.
        on_progress/on_log/cancel and Ctrl-C: as for Store.build().
        """
        o = ffi.new("ib_container_run_options *")
        _check(lib.ib_container_run_options_init(o, lib.IB_CONTAINER_RUN_OPTIONS_VERSION))
        keep = []
        if argv is not None:
            a = _StrArray(argv)
            keep.append(a)
            o.argv = a.ptr
        if env:
            a = _StrArray(env)
            keep.append(a)
            o.env = a.ptr
        for field, value in (("user", user), ("workdir", workdir), ("isolation", isolation)):
            if value is not None:
                c = ffi.new("char[]", value.encode())
                keep.append(c)
                setattr(o, field, c)
        o.network = lib.IB_NETWORK_NONE if network_none else lib.IB_NETWORK_HOST
        fd = lambda f: f if isinstance(f, int) else f.fileno()
        o.stdin_fd, o.stdout_fd, o.stderr_fd = fd(stdin), fd(stdout), fd(stderr)
        call = _Call(on_progress, on_log, cancel)
        o.callbacks = call.cb
        st = ffi.new("ib_exit_status *")
        call.run(lib.ib_container_run, st, self._c, o)
        return 128 + st.signal if st.signal else st.code

    def commit(self, tag=None, message=None, author=None, changes=(), source_date_epoch=None):
        """A new image of the container's changes; returns its id.

        source_date_epoch: as for build() (the environment is not read).
        """
        o = ffi.new("ib_commit_options *")
        _check(lib.ib_commit_options_init(o, lib.IB_COMMIT_OPTIONS_VERSION))
        _set_epoch(o, source_date_epoch)
        keep = []
        for field, value in (("tag", tag), ("message", message), ("author", author)):
            if value is not None:
                c = ffi.new("char[]", value.encode())
                keep.append(c)
                setattr(o, field, c)
        if changes:
            a = _StrArray(changes)
            keep.append(a)
            o.changes = a.ptr
        d = ffi.new("ib_digest *")
        _check(lib.ib_container_commit(d, self._c, o))
        return str(Digest._from_c(d))
