"""Ctrl-C, callback exceptions and threads around the long calls (build)."""
import os
import signal
import subprocess
import threading
import time
import uuid

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


@pytest.fixture
def store(tmp_path, busybox_tar):
    need_root()
    s = imagebuild.Store(str(tmp_path / "store"))
    s.import_tarball(busybox_tar, name="busybox", changes=['CMD ["sh"]'])
    yield s
    s.close()


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if str(path) in l]


def processes_with(marker):
    """The processes whose environment holds marker (what a RUN started)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def silent_context(tmp_path, marker, seconds=30):
    ctx = tmp_path / ("ctx-" + marker)
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN IB_MARK=%s sleep %d\n" % (marker, seconds))
    return str(ctx)


def on_run_step(action):
    """A progress callback that starts action() 0.5 s after the RUN step begins."""
    started = []

    def cb(e):
        if e.kind == "step" and e.text.startswith("RUN") and not started:
            started.append(time.monotonic())
            threading.Timer(0.5, action).start()
    return cb, started


def test_sigint_cancels_build(tmp_path, store):
    marker = "ibpy-" + uuid.uuid4().hex
    ctx = silent_context(tmp_path, marker)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    cb, started = on_run_step(lambda: os.kill(os.getpid(), signal.SIGINT))
    caught = None
    t0 = time.monotonic()
    try:
        store.build(ctx, tags=["never"], no_cache=True, on_progress=cb)
    except KeyboardInterrupt as e:  # raised by the call, after the library cleaned up
        caught = e
    took = time.monotonic() - t0
    assert caught is not None, "SIGINT was swallowed: the build succeeded"
    assert started and time.monotonic() - started[0] < 0.5 + 3.0, "took %.1fs" % took
    assert processes_with(marker) == []
    assert mounts_under(tmp_path) == []
    assert store.fsck() == []
    with pytest.raises(imagebuild.NotFound):
        store.inspect("never")
    # Python's own handler is back: SIGINT raises KeyboardInterrupt again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    # and the next build runs normally
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "Dockerfile").write_text("FROM busybox\nRUN true\n")
    assert store.build(str(tmp_path / "ok")).id.startswith("sha256:")


def test_sigint_with_cancel_flag(tmp_path, store):
    """A caller's CancelFlag is the one SIGINT sets."""
    marker = "ibpy-" + uuid.uuid4().hex
    ctx = silent_context(tmp_path, marker)
    flag = imagebuild.CancelFlag()
    cb, started = on_run_step(lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        store.build(ctx, no_cache=True, on_progress=cb, cancel=flag)
    assert flag.is_set()
    assert time.monotonic() - started[0] < 0.5 + 3.0
    assert processes_with(marker) == []
    assert mounts_under(tmp_path) == []
    assert store.fsck() == []


def test_sigint_cancels_run(tmp_path, store):
    marker = "ibpy-" + uuid.uuid4().hex
    c = store.create_container("busybox")
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        c.run(["sleep", "30"], env=["IB_MARK=" + marker])
    assert time.monotonic() - t0 < 1.0 + 3.0
    assert processes_with(marker) == []
    store.remove_container(c.id)
    assert mounts_under(tmp_path) == []
    assert store.fsck() == []


class Boom(Exception):
    pass


def test_callback_exception_propagates(tmp_path, store):
    marker = "ibpy-" + uuid.uuid4().hex
    ctx = silent_context(tmp_path, marker)

    def cb(e):
        if e.kind == "step" and e.text.startswith("RUN"):
            raise Boom("from the callback")
    t0 = time.monotonic()
    with pytest.raises(Boom, match="from the callback"):
        store.build(ctx, no_cache=True, on_progress=cb)
    assert time.monotonic() - t0 < 10
    assert processes_with(marker) == []
    assert mounts_under(tmp_path) == []
    assert store.fsck() == []


def test_log_callback_exception_propagates(tmp_path, store):
    """on_log cannot return a verdict: its exception stops the call at the next report."""
    ctx = tmp_path / "ctx-log"
    ctx.mkdir()
    # FromAsCasing: a build check warning, logged before the steps
    (ctx / "Dockerfile").write_text("FROM busybox as base\nRUN sleep 30\n")
    lines = []

    def log(level, line):
        lines.append(line)
        raise Boom(line)
    t0 = time.monotonic()
    with pytest.raises(Boom, match="FromAsCasing"):
        store.build(str(ctx), tags=["logged"], no_cache=True, on_log=log)
    assert len(lines) == 1 and time.monotonic() - t0 < 10
    with pytest.raises(imagebuild.NotFound):
        store.inspect("logged")
    assert mounts_under(tmp_path) == []
    assert store.fsck() == []


def test_two_threads_build_at_once(tmp_path, store):
    spans = {}
    results = {}

    def build(name):
        ctx = tmp_path / name
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN sleep 3 && echo %s > /who\n" % name)
        t0 = time.monotonic()
        try:
            results[name] = store.build(str(ctx), tags=[name], no_cache=True).id
        except BaseException as e:  # reported below
            results[name] = e
        spans[name] = (t0, time.monotonic())
    threads = [threading.Thread(target=build, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(isinstance(r, str) and r.startswith("sha256:") for r in results.values()), results
    assert len(results) == 2 and results["one"] != results["two"]
    (a0, a1), (b0, b1) = spans["one"], spans["two"]
    # both ran their 3 s RUN at the same time: they overlap, and together took
    # well under the 6 s of one after the other
    assert a0 < b1 and b0 < a1
    assert max(a1, b1) - min(a0, b0) < 6.0, spans
    assert store.fsck() == []
