"""Fixtures shared by the Python tests: the busybox base tarball, root, a registry."""
import os
import shutil
import socket
import subprocess
import time

import pytest

SOURCE = os.environ.get("IB_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def require(ok, why):
    if not ok:
        if os.environ.get("IB_TEST_STRICT") == "1":
            pytest.fail("IB_TEST_STRICT=1 forbids skipping: " + why)
        pytest.skip(why)


@pytest.fixture(scope="session")
def busybox_tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    subprocess.run([os.path.join(SOURCE, "tests/resources/make-busybox-tar.sh"), str(out)], check=True)
    return str(out)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_registry(tmp_path, extra=""):
    """docker-registry on 127.0.0.1 (a free port): returns (host:port, process)."""
    require(os.path.exists(REGISTRY), "docker-registry is not installed")
    port = free_port()
    cfg = tmp_path / ("registry-%d.yml" % port)
    cfg.write_text("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                   "    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%d\n%s"
                   % (tmp_path / ("data-%d" % port), port, extra))
    proc = subprocess.Popen([REGISTRY, "serve", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return "127.0.0.1:%d" % port, proc
