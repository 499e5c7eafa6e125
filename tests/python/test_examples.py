"""examples/python/ run as a user would run them (with this interpreter and package)."""
import os
import subprocess
import sys

import pytest

import imagebuild
from conftest import SOURCE, require, start_registry

EXAMPLES = os.path.join(SOURCE, "examples", "python")


def example(name, *args):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name)] + list(args),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def root(tmp_path, busybox_tarball):
    require(os.geteuid() == 0, "containers need root")
    root = str(tmp_path / "store")
    with imagebuild.Store(root) as s:
        s.import_tarball(busybox_tarball, name="busybox", changes=['CMD ["sh"]'])
    return root


def test_build_with_a_progress_bar(tmp_path, root):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo visible-output\nENV A=1\n")
    r = example("build_progress.py", "--root", root, "-t", "ex:1", str(ctx))
    assert r.returncode == 0, r.stderr
    assert "[1/2] RUN echo visible-output" in r.stderr and "  visible-output" in r.stderr
    assert "2/2" in r.stderr
    image_id = r.stdout.split()[0]
    with imagebuild.Store(root) as s:
        assert s.image("ex:1").id == image_id
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 7\n")
    r = example("build_progress.py", "--root", root, str(ctx))
    assert r.returncode == 1 and "[1/1] `RUN exit 7` failed with exit code 7" in r.stderr, r.stderr


def test_run_change_commit(root):
    r = example("run_commit.py", "--root", root, "busybox", "stamped:1")
    assert r.returncode == 0, r.stderr
    assert "stamped" in r.stdout and "new image says: " in r.stdout
    with imagebuild.Store(root) as s:
        img = s.image("stamped:1")
        assert img.config["Cmd"] == ["cat", "/stamp"] and img.history[0].comment == "stamped"
        assert list(s.containers()) == []


def test_push(tmp_path, busybox_tarball, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    root = str(tmp_path / "src")
    with imagebuild.Store(root) as s:
        image_id = s.import_tarball(busybox_tarball, name="busybox")
    host, proc = start_registry(tmp_path)
    try:
        r = example("push.py", "--root", root, "busybox", host + "/ex/busybox:1", str(tmp_path / "dst"))
    finally:
        proc.kill()
        proc.wait()
    assert r.returncode == 0, r.stderr
    assert "Pushed" in r.stdout and "Pull complete" in r.stdout
    assert "pulled " + image_id in r.stdout


def test_readme_python_example(tmp_path, root, busybox_tarball):
    """The README's Python block, word for word, against a store of ours (examples/hello builds FROM busybox)."""
    with open(os.path.join(SOURCE, "README.md")) as f:
        text = f.read()
    start = text.index("<!-- python example: run by tests/python/test_examples.py -->")
    block = text[start:].split("```python\n", 1)[1].split("\n```\n", 1)[0]
    env = dict(os.environ, IMAGEBUILD_ROOT=root)
    r = subprocess.run([sys.executable, "-c", block], cwd=SOURCE, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[builder 1/3] WORKDIR /build" in r.stdout
    assert "said hi" in r.stdout
    with imagebuild.Store(root) as s:
        assert s.image("hello:greeted").history[0].comment == "said hi"
        assert list(s.containers()) == []
