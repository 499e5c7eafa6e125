"""The Pythonic API: objects, the exception hierarchy, typed progress,
iterators, context managers, and every store/container operation the CLI
has (against a real store)."""
import collections.abc
import json
import os
import platform
import tarfile

import pytest

import imagebuild
from conftest import require


def test_exception_hierarchy():
    assert issubclass(imagebuild.NotFound, imagebuild.ImageBuildError)
    assert issubclass(imagebuild.NotFound, LookupError)
    assert issubclass(imagebuild.Invalid, ValueError)
    assert issubclass(imagebuild.ParseError, ValueError)
    assert issubclass(imagebuild.Unsupported, NotImplementedError)
    assert issubclass(imagebuild.StepFailed, imagebuild.ImageBuildError)
    assert not hasattr(imagebuild, "SyntaxError_")
    with pytest.raises(LookupError):
        with imagebuild.Store("/tmp/ib-py-empty-store") as s:
            s.image("nothing:here")
    with pytest.raises(imagebuild.ParseError) as e:
        imagebuild.parse_dockerfile("FROM a\nRUN <<EOF\nnever ends\n", filename="X.Dockerfile")
    assert e.value.code == imagebuild.lib.IB_ESYNTAX and "X.Dockerfile" in e.value.message
    assert isinstance(e.value, ValueError)


def test_every_public_name_is_documented():
    for name in imagebuild.__all__:
        obj = getattr(imagebuild, name)
        assert callable(obj) or isinstance(obj, type), name
        assert (obj.__doc__ or "").strip(), name
        if isinstance(obj, type):
            for attr, val in vars(obj).items():
                if not attr.startswith("_") and callable(val):
                    assert (val.__doc__ or "").strip(), "%s.%s" % (name, attr)


def test_parse_typed_instructions():
    df = imagebuild.parse_dockerfile(
        "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS build\n"
        "RUN --mount=type=secret,id=t,required --network=none make\n"
        "COPY --from=build --chmod=644 a b /dst/\nENV A=1 B=\"two words\"\nLABEL x=y\n"
        "EXPOSE 80/tcp 53/udp\nUSER nobody\nWORKDIR /w\nCMD [\"run\", \"it\"]\n"
        "HEALTHCHECK --interval=1m30s --retries=3 CMD [\"true\"]\nONBUILD RUN echo later\n"
        "FROM scratch\nCOPY <<EOF /f\nhello\nEOF\n")
    assert df.directives["syntax"] == "docker/dockerfile:1"
    assert [n.keyword for n in df.nodes][:3] == ["arg", "from", "run"]
    assert df.nodes[2].flags == ("--mount=type=secret,id=t,required", "--network=none")
    assert df.dump().startswith('(arg "BASE=busybox")\n(from "$BASE" "AS" "build")\n')
    ins = df.instructions()
    assert [a.name for a in ins.meta_args[0].args] == ["BASE"]
    assert ins.meta_args[0].args[0].default == "busybox"
    build, last = ins.stages
    assert (build.index, build.base, build.name, build.line) == (0, "$BASE", "build", 3)
    assert isinstance(build.from_, imagebuild.From) and build.from_.image == "$BASE"
    assert ins.stage("BUILD") is build
    with pytest.raises(LookupError):
        ins.stage("nope")
    run, copy, env, label, expose, user, workdir, cmd, hc, onbuild = build.instructions
    assert isinstance(run, imagebuild.Run) and run.kind == "RUN" and run.args == ("make",)
    assert run.network == "none" and not run.json
    (m,) = run.mounts
    assert (m.type, m.id, m.required, m.readonly) == ("secret", "t", True, True)
    assert isinstance(copy, imagebuild.Copy) and not isinstance(copy, imagebuild.Add)
    assert (copy.sources, copy.dest, copy.from_, copy.chmod) == (("a", "b"), "/dst/", "build", "644")
    assert env.pairs == (("A", "1"), ("B", '"two words"'))
    assert isinstance(label, imagebuild.Label) and label.pairs == (("x", "y"),)
    assert expose.items == ("80/tcp", "53/udp")
    assert (user.value, workdir.value) == ("nobody", "/w")
    assert isinstance(workdir, imagebuild.Workdir)
    assert cmd.args == ("run", "it") and cmd.json
    assert hc.interval == 90 * 10**9 and hc.retries == 3 and hc.test == ("CMD", "true")
    assert (onbuild.trigger, onbuild.keyword) == ("RUN echo later", "RUN")
    (heredoc_copy,) = last.instructions
    assert heredoc_copy.heredocs[0].name == "EOF" and heredoc_copy.heredocs[0].content == "hello\n"
    assert "line=4" in repr(run) and "Run(" in repr(run)
    with pytest.raises(imagebuild.ParseError, match="unknown instruction"):
        imagebuild.parse_dockerfile("FROM a\nFROB x\n").instructions()
    single = imagebuild.parse_instruction('ENTRYPOINT ["sh", "-c"]')
    assert isinstance(single, imagebuild.Entrypoint) and single.args == ("sh", "-c")
    assert imagebuild.parse_duration("1m30s") == 90 * 10**9
    with pytest.raises(imagebuild.Invalid):
        imagebuild.parse_duration("soon")


def test_expand_words():
    env = {"A": "one", "B": "x y", "P": "file.tar.gz"}
    assert imagebuild.expand_word("${A}-${NOPE:-dflt}-${P%%.*}", env) == "one-dflt-file"
    assert imagebuild.expand_word("'$A' \"$B\"", env) == "$A x y"
    assert imagebuild.expand_words("$B 'c d' e", env) == ["x", "y", "c d", "e"]
    assert imagebuild.expand_word("$A `$A", ["A=1"], escape="`") == "1 $A"
    assert imagebuild.expand_word("$NOPE ${A}", env, keep_unset=True) == "$NOPE one"
    with pytest.raises(imagebuild.Invalid, match="NOPE: needed"):
        imagebuild.expand_word("${NOPE:?needed}", env)
    with pytest.raises(imagebuild.ParseError):
        imagebuild.expand_word("${A", env)


def test_dockerignore():
    text = "# comment\n*.o\n!keep.o\nbuild/\n/./docs//x/\n"
    assert imagebuild.read_dockerignore(text) == ["*.o", "!keep.o", "build", "docs/x"]
    ig = imagebuild.DockerIgnore.parse(text)
    assert ig.patterns == [("*.o", False), ("keep.o", True), ("build", False), ("docs/x", False)]
    assert ig.matches("a.o") and "build/deep/file" in ig
    assert not ig.matches("keep.o") and not ig.matches("src/a.o")
    assert not ig.descend("build")
    assert imagebuild.DockerIgnore(["x", "!x/y"]).descend("x")
    with pytest.raises(imagebuild.ParseError):
        imagebuild.DockerIgnore(["["])
    with pytest.raises(imagebuild.ParseError, match="ctx/.dockerignore"):
        imagebuild.DockerIgnore.parse("ok\n[\n", filename="ctx/.dockerignore")
    assert imagebuild.dockerignore_candidates("d/app.Dockerfile") == ["d/app.Dockerfile.dockerignore",
                                                                     ".dockerignore"]


def test_reference():
    r = imagebuild.Reference.parse("localhost:5000/a/b:1")
    assert (r.domain, r.path, r.tag, r.tag_given) == ("localhost:5000", "a/b", "1", True)
    assert imagebuild.Reference.parse("busybox").name == "docker.io/library/busybox:latest"
    with pytest.raises(imagebuild.ImageBuildError):
        imagebuild.Reference.parse("no spaces/here")


def test_typed_plan():
    df = imagebuild.parse_dockerfile("ARG V=1\nFROM busybox:$V AS a\nFROM scratch AS b\nFROM a AS c\n"
                                     "COPY --from=b / /\nFROM a AS unused\n")
    plan = df.plan(build_args={"V": "2", "NOBODY": "x"}, target="c")
    assert [(s.index, s.name, s.base_kind) for s in plan.stages] == [(0, "a", "image"), (1, "b", "scratch"),
                                                                     (2, "c", "stage")]
    assert plan.stages[0].base == "busybox:2" and plan.target.base_stage == 0
    assert plan.target.deps == (0, 1) and plan.target.level == 1
    assert "V=2" in plan.meta_env and "V=1" not in plan.meta_env and plan.unused_build_args == ("NOBODY",)
    assert 'stage 2 "c"' in str(plan) and "unused" not in plan.text
    with pytest.raises(imagebuild.NotFound):
        df.plan(target="nope")


def test_plan_without_a_store(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox AS a\nRUN a\nFROM busybox AS b\nRUN b\nFROM a\nRUN c\n")
    text = imagebuild.plan(str(tmp_path), target="b")
    assert 'stage 1 "b"' in text and "RUN b" in text and "RUN a" not in text
    text = imagebuild.plan(str(tmp_path), dockerfile_content="FROM busybox\nRUN from-content\n")
    assert "RUN from-content" in text
    with pytest.raises(imagebuild.NotFound):
        imagebuild.plan(str(tmp_path), target="nope")


# ---- against a store (root: containers and RUN)

@pytest.fixture
def store(tmp_path, busybox_tarball):
    require(os.geteuid() == 0, "containers need root")
    with imagebuild.Store(str(tmp_path / "store")) as s:
        s.import_tarball(busybox_tarball, name="busybox", changes=['CMD ["sh"]'])
        yield s


def test_store_is_a_context_manager(tmp_path):
    with imagebuild.Store(str(tmp_path / "s")) as s:
        assert s.root == str(tmp_path / "s") and "Store(" in repr(s)
    with pytest.raises(ValueError, match="closed"):
        s.images()


def test_step_failed(tmp_path, store):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN true\nRUN echo one; echo two; exit 3\nRUN never\n")
    with pytest.raises(imagebuild.StepFailed) as e:
        store.build(str(ctx), tags=["failed"])
    err = e.value
    assert err.step == "[2/3]" and err.command == "RUN echo one; echo two; exit 3"
    assert err.exit_code == 3 and err.signal is None
    assert err.output_tail[-2:] == ["one", "two"]
    assert "exit code 3" in str(err)
    assert not store.exists("failed")
    # a failure that is not a RUN's exit is no StepFailed
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY missing /\n")
    with pytest.raises(imagebuild.ImageBuildError) as e:
        store.build(str(ctx))
    assert not isinstance(e.value, imagebuild.StepFailed)


def test_build_options_and_typed_progress(tmp_path, store, monkeypatch):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "data").write_text("x" * 1000)
    (tmp_path / "tok").write_text("file-secret")
    monkeypatch.setenv("PY_SECRET", "env-secret")
    monkeypatch.setenv("ENVARG", "from-the-environment")
    content = ("FROM busybox AS first\nRUN echo first > /stage\n"
               "FROM busybox AS second\nARG WHO\nARG ENVARG\nCOPY data /data\n"
               "RUN --mount=type=secret,id=f cat /run/secrets/f > /f && "
               "--mount=type=secret,id=e true\n"
               "RUN --mount=type=secret,id=e cat /run/secrets/e > /e\n"
               "RUN echo \"$WHO $ENVARG\" > /who; ls /sys/class/net > /nets\n"
               "FROM busybox AS third\nRUN echo third\n")
    content = content.replace("&& --mount=type=secret,id=e true", "&& true")
    events = []
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    result = store.build(str(ctx), ["opts:1", "opts:2"], dockerfile_content=content, target="second",
                         build_args={"WHO": "args", "ENVARG": None}, network="none", pull="never",
                         platform="linux/" + arch,
                         secrets={"f": str(tmp_path / "tok"), "e": {"env": "PY_SECRET"}},
                         on_progress=events.append)
    assert isinstance(result, imagebuild.BuildResult) and str(result) == result.id
    assert result.tags == ("opts:1", "opts:2") and result.steps == 6 and result.cached_steps == 0
    assert all(isinstance(e, imagebuild.ProgressEvent) for e in events)
    steps = [e for e in events if e.kind is imagebuild.ProgressKind.STEP]
    assert [(e.id, e.step, e.total) for e in steps] == [("[second %d/6]" % i, i, 6) for i in range(1, 7)]
    assert not any("first" in (e.text or "") or "third" in (e.text or "") for e in steps)
    ctx_bytes = [e for e in events if e.kind == "bytes" and e.id == "context"]
    assert ctx_bytes and ctx_bytes[-1].bytes >= 1000
    assert any(e.kind == "bytes" and e.id.startswith("layer:") for e in events)
    with store.create_container(result, remove=True) as c:
        out = tmp_path / "out"
        with open(out, "wb") as f:
            assert c.run(["sh", "-c", "cat /f /e /who /nets"], stdout=f) == 0
        assert out.read_text() == "file-secretenv-secretargs from-the-environment\nlo\n"
    # cached the second time
    again = store.build(str(ctx), dockerfile_content=content, target="second",
                        build_args={"WHO": "args", "ENVARG": None}, network="none", pull="never",
                        secrets={"f": str(tmp_path / "tok"), "e": {"env": "PY_SECRET"}})
    assert again.id == result.id and again.cached_steps == again.steps == 6
    with pytest.raises(ValueError, match="network"):
        store.build(str(ctx), network="bridge")
    with pytest.raises(ValueError, match="pull"):
        store.build(str(ctx), pull="sometimes")
    # the platform reaches the build: TARGETARCH is the one given
    plat = store.build(str(ctx), dockerfile_content="FROM busybox\nARG TARGETARCH\nRUN echo $TARGETARCH > /a\n",
                       platform="linux/" + arch, pull="never")
    with store.create_container(plat, remove=True) as c, open(tmp_path / "arch", "wb") as f:
        c.run(["cat", "/a"], stdout=f)
    assert (tmp_path / "arch").read_text() == arch + "\n"


def test_images_history_tag_rmi(tmp_path, store):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /hi\nENV X=1\n")
    built = store.build(str(ctx), ["app:1"])
    rows = store.images()
    assert isinstance(rows, collections.abc.Iterator)
    rows = list(rows)
    assert all(isinstance(r, imagebuild.ImageSummary) for r in rows)
    assert {r.name for r in rows} == {"docker.io/library/busybox:latest", "docker.io/library/app:1"}
    img = store.image("app:1")
    assert isinstance(img, imagebuild.Image) and img.id == built.id
    assert img.names == ("docker.io/library/app:1",) and img.config["Env"][-1] == "X=1"
    assert len(img.layers) == 2 and all(isinstance(l, imagebuild.Layer) for l in img.layers)
    assert img.size == sum(l.size for l in img.layers)
    assert img.repo_digests == []  # nothing pushed or pulled
    assert "Image(id='sha256:" in repr(img)
    hist = store.history("app:1")
    assert all(isinstance(h, imagebuild.HistoryEntry) for h in hist)
    assert [h.created_by for h in hist[:2]] == ["ENV X=1", "RUN /bin/sh -c echo hi > /hi # buildkit"]
    assert hist[0].empty_layer and hist[0].layer is None
    assert hist[1].layer == img.layers[1].diff_id and hist[1].size > 0
    assert img.history == tuple(hist)
    store.tag("app:1", "app:2")
    assert store.image("app:2").names == ("docker.io/library/app:1", "docker.io/library/app:2")  # sorted
    assert store.remove_image("app:2") == ["Untagged: app:2"]
    with pytest.raises(imagebuild.ImageBuildError):
        store.tag("app:1", "app:3") or store.remove_image(built.id)  # an id with two names needs force
    lines = store.remove_image(built.id, force=True)
    assert "Deleted: " + built.id in lines and "Untagged: app:3" in lines
    assert not store.exists("app:1")
    # prune: an untagged image goes, and the blobs only it used
    store.build(str(ctx), ["dangling"], no_cache=True)
    store.build(str(ctx), ["dangling"], dockerfile_content="FROM busybox\nRUN echo other > /o\n")
    pr = store.prune()
    assert isinstance(pr, imagebuild.PruneResult) and pr.images == 1 and pr.blobs >= 1  # its manifest at least (cache entries keep layers)
    assert store.prune().images == 0
    assert store.fsck(full=True) == []


def test_image_platforms(tmp_path, store):
    # two platforms from scratch: no base image, no emulator; built at once (jobs=2)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("x")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    built = store.build(str(ctx), ["multi:1"], platform=["linux/amd64", "linux/arm64"], jobs=2)
    row = next(r for r in store.images() if r.name == "docker.io/library/multi:1")
    assert row.manifest == built.id  # the index
    plats = store.image_platforms(row)
    assert [p.platform for p in plats] == ["linux/amd64", "linux/arm64"]
    assert all(isinstance(p, imagebuild.ImagePlatform) and p.available and p.id and p.size > 0 for p in plats)
    assert all(p.content_size > p.size and p.containers == 0 for p in plats)
    assert plats[0].manifest != plats[1].manifest and plats[0].id != plats[1].id
    assert store.image_platforms("multi:1") == plats
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    host = [p for p in plats if p.platform == "linux/" + arch]
    if host:  # the host's when no platform is asked
        assert store.image("multi:1").id == host[0].id
    # a single-platform image: its one manifest
    bb = next(r for r in store.images() if r.name == "docker.io/library/busybox:latest")
    one = store.image_platforms(bb)
    assert len(one) == 1 and one[0].manifest == bb.manifest and one[0].id == bb.id and one[0].available


def test_save_load_three_formats(tmp_path, store):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo saved > /s\n")
    built = store.build(str(ctx), ["saved:1"])
    for fmt, path in (("oci", tmp_path / "layout"), ("oci-archive", tmp_path / "oci.tar"),
                      ("docker-archive", tmp_path / "docker.tar")):
        events = []
        store.save(["saved:1"], str(path), format=fmt, on_progress=events.append)
        assert events and {e.text for e in events} == {"Saving"} and events[0].id.startswith("blob:")
        if fmt == "docker-archive":
            with tarfile.open(path) as t:
                assert json.load(t.extractfile("manifest.json"))[0]["RepoTags"] == ["saved:1"]  # familiar, as docker save
        with imagebuild.Store(str(tmp_path / ("load-" + fmt))) as other:
            loaded = other.load(str(path), repository="saved" if fmt != "docker-archive" else None)
            assert loaded == ["docker.io/library/saved:1"], loaded
            assert other.image("saved:1").id == built.id
            assert other.fsck() == []
    with pytest.raises(ValueError):
        store.save("saved:1", str(tmp_path / "x"), format="zip")
    with pytest.raises(imagebuild.NotFound):
        store.save("nope", str(tmp_path / "y.tar"), format="oci-archive")
    with pytest.raises(imagebuild.ImageBuildError):
        store.load(str(tmp_path / "nothing-here"))


def test_import_from_a_file_object(tmp_path, store, busybox_tarball):
    events = []
    with open(busybox_tarball, "rb") as f:
        image = store.import_tarball(f, "imported:fd", changes=["ENV A=b"], comment="from python",
                                     source_date_epoch=0, on_progress=events.append)
    img = store.image("imported:fd")
    assert img.id == image and img.created == "1970-01-01T00:00:00Z"
    assert "A=b" in img.config["Env"] and img.history[0].comment == "from python"
    assert events and events[-1].id == "import" and events[-1].text == "Importing"


def test_containers(tmp_path, store):
    c = store.create_container("busybox", "box", command="sh")
    assert isinstance(c, imagebuild.Container) and "Container(id=" in repr(c)
    assert c.name == "box" and c.image_id == store.image("busybox").id
    with pytest.raises(imagebuild.AlreadyExists):
        store.create_container("busybox", "box")
    rows = store.containers()
    assert isinstance(rows, collections.abc.Iterator)
    (row,) = list(rows)
    assert isinstance(row, imagebuild.ContainerInfo) and (row.id, row.name, row.command) == (c.id, "box", "sh")
    with c:
        assert c.exec(["sh", "-c", "echo $GREETING > /changed"], env={"GREETING": "hi"}) == 0
    with pytest.raises(ValueError, match="closed"):
        c.run(["true"])
    # still there; exec in a reopened handle sees the change
    lines = []
    with store.container("box") as again:
        assert again.exec(["cat", "/changed"], on_log=lambda lvl, l: lines.append(l)) == 0
        assert again.run(["sh", "-c", "exit 5"]) == 5
        assert again.run(["pwd"], workdir="/tmp", user="nobody", hostname="h",
                         on_log=lambda lvl, l: lines.append(l)) == 0
        new = again.commit("committed:1", message="py commit", author="me", changes=["CMD [\"cat\", \"/changed\"]"])
    assert lines == ["hi", "/tmp"]
    img = store.image("committed:1")
    assert img.id == new and img.config["Cmd"] == ["cat", "/changed"]
    assert img.history[0].comment == "py commit" and img.history[0].author == "me"
    store.remove_container("box")
    assert list(store.containers()) == []
    # run: create, run, remove (docker run --rm); remove=True containers go at the end of `with`
    out = tmp_path / "out"
    with open(out, "wb") as f:
        assert store.run("committed:1", stdout=f, rm=True) == 0
    assert out.read_text() == "hi\n"
    assert list(store.containers()) == []
    assert store.run("committed:1", ["true"], name="kept") == 0  # docker run keeps it without --rm
    assert [c.name for c in store.containers()] == ["kept"]
    store.remove_container("kept")
    with store.create_container("busybox", remove=True) as tmp:
        assert len(list(store.containers())) == 1
        assert tmp.run(["true"], entrypoint=[]) == 0
    assert list(store.containers()) == []
    with pytest.raises(imagebuild.NotFound):
        store.container("box")
