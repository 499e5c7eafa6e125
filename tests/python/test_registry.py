"""Push to and pull from a real registry (Debian's docker-registry) through the bindings."""
import os
import shutil
import socket
import subprocess
import time

import pytest

import imagebuild

SOURCE = os.environ.get("IB_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


@pytest.fixture()
def registry(tmp_path):
    if not os.path.exists(REGISTRY):
        if os.environ.get("IB_TEST_STRICT") == "1":
            pytest.fail("IB_TEST_STRICT=1 forbids skipping: docker-registry is not installed")
        pytest.skip("docker-registry is not installed")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cfg = tmp_path / "registry.yml"
    cfg.write_text("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                   "    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%d\n" % (tmp_path / "data", port))
    proc = subprocess.Popen([REGISTRY, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield "127.0.0.1:%d" % port
    finally:
        proc.kill()
        proc.wait()


def test_push_then_pull(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    tar = tmp_path / "busybox.tar"
    subprocess.run([os.path.join(SOURCE, "tests/resources/make-busybox-tar.sh"), str(tar)], check=True)
    src = imagebuild.Store(str(tmp_path / "src"))
    image = src.import_tarball(str(tar), name="busybox")
    digest = src.push("busybox", registry + "/py/busybox:1")
    assert digest.startswith("sha256:")
    # pushing again sends nothing new and gives the same manifest
    assert src.push("busybox", registry + "/py/busybox:1") == digest
    dst = imagebuild.Store(str(tmp_path / "dst"))
    assert dst.pull(registry + "/py/busybox:1") == image
    assert dst.inspect(registry + "/py/busybox:1")["Id"] == image
    with pytest.raises(imagebuild.NotFound) as e:
        dst.pull(registry + "/py/busybox:missing")
    assert "missing" in e.value.message
