#!/usr/bin/python3
"""
imagebuild pull / push against hostile fake registries on loopback: one
test per bullet of "nothing from a registry can poison the store, leak a
credential, or stay behind".

  hostile-registry.py IMAGEBUILD credentials|bounds|ambiguous

Every origin is a Python http.server on 127.0.0.1 (port 0) that logs every
request with its headers; "traps" are raw TCP listeners that record what
reaches them (for gopher:// and ftp://). Each case prints what it measured;
the script fails when any case does.

credentials: Authorization goes to the registry's origin (and Basic to the
  token realm for the token request) and nowhere else: not to a blob's CDN
  after a redirect, not to a CDN's own challenge realm, not to a foreign
  upload Location; realms and redirects are http/https only (file://,
  gopher://, ftp:// refused, nothing reaches the traps); an https registry
  sends nothing over http; no secret in any output or in the store.
bounds: an endless blob stops at its descriptor's size, an endless manifest
  at 4 MiB, an endless error body and endless headers at their caps, a
  trickling error body and /v2/ answer within the stall time, a stalled blob
  is retried; a size mismatch leaves nothing in blobs/; a config larger than
  the cap is not fetched; peak RSS of each run measured against a plain pull.
ambiguous: a manifest with both `manifests` and `layers`, a mediaType that
  disagrees with the Content-Type, a false Docker-Content-Digest (manifest
  and blob) are refused; a malformed descriptor's error names the manifest
  digest and the field.
"""
import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import platform
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

IB = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("IMAGEBUILD", "")
WHICH = sys.argv[2] if len(sys.argv) > 2 else "all"
STALL = 2  # IMAGEBUILD_REGISTRY_STALL_TIMEOUT for the runs (seconds)

USER, PASSWORD = "alice", "s3cret-pa55w0rd"
BASIC = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
TOKEN = "T0K3N-for-the-registry-only"
SECRETS = [PASSWORD, BASIC.split()[1], TOKEN]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MiB = 1 << 20


def skip_or_fail(why):
    if os.environ.get("IB_TEST_STRICT") == "1":
        print("FAIL (IB_TEST_STRICT=1 forbids skipping): " + why, file=sys.stderr)
        sys.exit(1)
    print("SKIP: " + why, file=sys.stderr)
    sys.exit(77)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def goarch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "i386": "386"}.get(m, m)


class Image:
    """A one-layer image: a gzip layer of `size` random bytes in one file."""

    def __init__(self, size=4096):
        data = os.urandom(size)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
            info = tarfile.TarInfo("hello.bin")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            t.addfile(info, io.BytesIO(data))
        tar = raw.getvalue()
        self.layer = gzip.compress(tar, mtime=0)
        self.config = json.dumps({
            "architecture": goarch(), "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha(tar)]},
            "history": [{"created_by": "hostile-registry.py"}]}).encode()
        self.manifest_doc = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(self.config), "size": len(self.config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha(self.layer), "size": len(self.layer)}]}
        self.manifest = json.dumps(self.manifest_doc).encode()
        self.blobs = {sha(self.layer): self.layer, sha(self.config): self.config}

    def doc(self, **changes):
        d = json.loads(self.manifest)
        d.update(changes)
        return json.dumps(d).encode()


# ---- servers -------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        self.server.origin.record(self)
        self.server.origin.route(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    # helpers for routes
    def reply(self, status, body=b"", headers=None, content_type=None):
        self.send_response(status)
        h = dict(headers or {})
        if content_type:
            h["Content-Type"] = content_type
        h.setdefault("Content-Length", str(len(body)))
        for k, v in h.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def stream(self, status, chunks, headers=None, content_type=None):
        """Send a body of unknown length (closes the connection); returns the bytes sent."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        try:
            for c in chunks:
                self.wfile.write(c)
                self.wfile.flush()
                sent += len(c)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        self.close_connection = True
        return sent


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class Origin:
    """One origin (scheme, 127.0.0.1, a port) with a route function and a log of every request."""

    def __init__(self, name, route=None, tls=None):
        self.name = name
        self.log = []
        self.lock = threading.Lock()
        self.route_fn = route
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.origin = self
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        self.url = "%s://%s" % (self.scheme, self.host)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def record(self, req):
        with self.lock:
            self.log.append((req.command, req.path, dict(req.headers.items())))

    def route(self, req):
        if self.route_fn:
            self.route_fn(req)
        else:
            req.reply(404)

    def requests(self, method=None, prefix=""):
        with self.lock:
            return [r for r in self.log if (method is None or r[0] == method) and r[1].startswith(prefix)]

    def with_auth(self):
        return [r for r in self.requests() if any(k.lower() == "authorization" for k in r[2])]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Trap:
    """A TCP listener that records connections and every byte sent to it (gopher://, ftp://)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections, self.data = 0, b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            c.settimeout(0.5)
            try:
                while True:
                    b = c.recv(4096)
                    if not b:
                        break
                    self.data += b
            except OSError:
                pass
            c.close()

    def close(self):
        self.sock.close()


class Registry:
    """
    A registry for repository `app` serving `image` (tag 1), Bearer auth from
    a realm (an auth origin of its own unless given); every behaviour can be
    replaced per test through the hooks.
    """

    def __init__(self, image, realm=None, auth=True, tls=None, hooks=None):
        self.image = image
        self.hooks = hooks or {}
        self.auth = auth
        self.uploads = {}
        self.pushed = {}
        self.auth_origin = None
        self.origin = Origin("registry", self.route, tls)
        if realm is None:
            self.auth_origin = Origin("auth", self.token)
            realm = self.auth_origin.url + "/token"
        elif realm == "self":  # the registry's own origin serves tokens
            realm = self.origin.url + "/token"
        self.realm = realm

    @property
    def host(self):
        return self.origin.host

    def token(self, req):
        if req.headers.get("Authorization") != BASIC:
            req.reply(401, b'{"details":"incorrect username or password"}', content_type="application/json")
        else:
            req.reply(200, json.dumps({"token": TOKEN}).encode(), content_type="application/json")

    def route(self, req):
        path = req.path.split("?")[0]
        if path == "/token":
            return self.token(req)
        if self.auth and req.headers.get("Authorization") != "Bearer " + TOKEN:
            return req.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                             {"WWW-Authenticate": 'Bearer realm="%s",service="fake"' % self.realm},
                             "application/json")
        if path == "/v2/":
            return self.hooks.get("v2", lambda r: r.reply(200, b"{}", content_type="application/json"))(req)
        if path.startswith("/v2/app/manifests/"):
            ref = path[len("/v2/app/manifests/"):]
            if req.command == "PUT":
                self.pushed[ref] = req.body
                return req.reply(201, headers={"Docker-Content-Digest": sha(req.body)})
            if "manifest" in self.hooks:
                return self.hooks["manifest"](req, ref)
            if ref in ("1", sha(self.image.manifest)):
                return req.reply(200, self.image.manifest, {"Docker-Content-Digest": sha(self.image.manifest)},
                                 OCI_MANIFEST)
            return req.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                             content_type="application/json")
        if path.startswith("/v2/app/blobs/uploads/"):
            if "upload" in self.hooks:
                return self.hooks["upload"](req)
            if req.command == "POST":
                return req.reply(202, headers={"Location": "/v2/app/blobs/uploads/u%d" % len(self.uploads)})
            if req.command == "PUT":
                d = req.path.split("digest=")[-1]
                self.uploads[d] = req.body
                return req.reply(201)
            return req.reply(405)
        if path.startswith("/v2/app/blobs/"):
            d = path[len("/v2/app/blobs/"):]
            if "blob" in self.hooks:
                return self.hooks["blob"](req, d)
            if req.command == "HEAD" and d not in self.image.blobs:
                return req.reply(404)
            if d in self.image.blobs:
                return req.reply(200, self.image.blobs[d], content_type="application/octet-stream")
            return req.reply(404)
        req.reply(404)

    def origins(self):
        return [self.origin] + ([self.auth_origin] if self.auth_origin else [])

    def close(self):
        for o in self.origins():
            o.close()


# ---- running imagebuild ---------------------------------------------------

class Run:
    def __init__(self, rc, out, err, seconds, maxrss_kib, timed_out):
        self.rc, self.out, self.err, self.seconds = rc, out, err, seconds
        self.maxrss = maxrss_kib
        self.timed_out = timed_out

    def __str__(self):
        return "rc=%s %.1fs rss=%d KiB%s\n  stdout: %s\n  stderr: %s" % (
            self.rc, self.seconds, self.maxrss, " TIMED OUT" if self.timed_out else "",
            self.out.strip()[-600:], self.err.strip()[-1200:])


class Env:
    """A temporary home: the store, Docker's config (with alice's credentials for the given registries)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ib-hostile-")
        self.root = os.path.join(self.dir, "store")
        self.docker = os.path.join(self.dir, "docker")
        os.makedirs(self.docker)
        self.outputs = []

    def login(self, *hosts):
        auths = {h: {"auth": BASIC.split()[1]} for h in hosts}
        with open(os.path.join(self.docker, "config.json"), "w") as f:
            json.dump({"auths": auths}, f)

    def ib(self, *args, timeout=30, stdin=None):
        env = dict(os.environ, DOCKER_CONFIG=self.docker, HOME=self.dir,
                   IMAGEBUILD_REGISTRY_STALL_TIMEOUT=str(STALL))
        out_path, err_path = os.path.join(self.dir, "out"), os.path.join(self.dir, "err")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            p = subprocess.Popen([IB, "--root", self.root] + list(args), stdout=out, stderr=err,
                                 stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env)
            if stdin:
                p.stdin.write(stdin.encode())
                p.stdin.close()
            # peak RSS: the child's own VmHWM, polled while it runs (a child's
            # ru_maxrss would include the RSS of this Python process it forked from)
            start, timed_out, hwm = time.monotonic(), False, 0
            while True:
                try:
                    with open("/proc/%d/status" % p.pid) as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                hwm = max(hwm, int(line.split()[1]))
                except OSError:
                    pass
                pid, status = os.waitpid(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() - start > timeout:
                    timed_out = True
                    p.kill()
                    pid, status = os.waitpid(p.pid, 0)
                    break
                time.sleep(0.005)
            p.returncode = os.waitstatus_to_exitcode(status)
        r = Run(p.returncode, open(out_path).read(), open(err_path).read(), time.monotonic() - start,
                hwm, timed_out)
        self.outputs.append(r.out + r.err)
        if os.environ.get("HOSTILE_VERBOSE"):
            print("     imagebuild %s: %s" % (" ".join(args), r.err.strip()[-400:]))
        # under ASan/UBSan (CI) a report fails the case even where a failure is expected
        if "Sanitizer" in r.err or "runtime error:" in r.err:
            check(False, "a sanitizer report from imagebuild %s" % " ".join(args), r)
        return r

    def pull(self, ref, fresh=True, **kw):
        """Pull into a new, empty store (unless not `fresh`)."""
        if fresh:
            shutil.rmtree(self.root, ignore_errors=True)
        return self.ib("pull", ref, **kw)

    def blob_stored(self, digest):
        return os.path.exists(os.path.join(self.root, "blobs", "sha256", digest.split(":")[1]))

    def tmp_files(self):
        t = os.path.join(self.root, "tmp")
        return os.listdir(t) if os.path.isdir(t) else []

    def secrets_found(self):
        """Where a secret shows: any output of imagebuild, any file of the store."""
        found = []
        for i, o in enumerate(self.outputs):
            found += ["output of run %d: %s" % (i, s) for s in SECRETS if s in o]
        for dirpath, _, files in os.walk(self.root):
            for fn in files:
                p = os.path.join(dirpath, fn)
                try:
                    data = open(p, "rb").read()
                except OSError:
                    continue
                found += ["%s: %s" % (p, s) for s in SECRETS if s.encode() in data]
        return found

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the cases --------------------------------------------------------------

failures = []


def check(cond, what, run=None):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
        if run is not None:
            print("     " + str(run).replace("\n", "\n     "))


def no_auth(origin, what):
    bad = origin.with_auth()
    check(not bad, "%s: no Authorization reaches %s (%d requests)%s" % (
        what, origin.name, len(origin.requests()), (": " + repr(bad[:2])) if bad else ""))


def make_cert(d):
    if not shutil.which("openssl"):
        skip_or_fail("openssl is not installed")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def redirect_to(url_fn, status=307):
    return lambda req, d: req.reply(status, headers={"Location": url_fn(d)})


def test_credentials(env):
    img = Image()
    closers = []

    # the usual dance, and a blob CDN: Basic only to the realm's /token, the token only to the registry
    cdn = Origin("cdn", lambda req: req.reply(200, img.blobs.get(req.path.split("/")[-1], b"")))
    reg = Registry(img, hooks={"blob": redirect_to(lambda d: cdn.url + "/b/" + d)})
    closers += [cdn, reg]
    env.login(reg.host)
    r = env.pull(reg.host + "/app:1")
    check(r.rc == 0, "pull through a blob CDN on another origin", r)
    no_auth(cdn, "blob redirected to another origin")
    tok = reg.auth_origin.requests()
    check(tok and all(h.get("Authorization") == BASIC and p.startswith("/token") for _, p, h in tok),
          "the credentials go to the realm, for the token request only (%d requests)" % len(tok))
    check(all(h.get("Authorization", "").startswith("Bearer ") or p == "/v2/" for _, p, h in reg.origin.requests()
              if h.get("Authorization")) and not any(h.get("Authorization") == BASIC for _, _, h in reg.origin.requests()),
          "the registry gets the token, never the password")

    # a foreign upload Location: the blob goes there, without credentials
    up = Origin("upload host")
    up.route_fn = lambda req: req.reply(201 if req.command == "PUT" else 202)
    reg3 = Registry(img, hooks={"upload": lambda req: req.reply(202, headers={"Location": up.url + "/upload/1?s=x"}),
                                "blob": lambda req, d: req.reply(404)})
    closers += [up, reg3]
    env.login(reg.host, reg3.host)
    r = env.ib("push", reg.host + "/app:1", reg3.host + "/app:2")
    check(r.rc == 0 and reg3.pushed.get("2"), "push with a foreign upload Location", r)
    check(len(up.requests("PUT")) == 2, "both blobs were PUT to the upload host (%d)" % len(up.requests("PUT")))
    no_auth(up, "foreign upload Location")

    # a CDN that challenges: its realm gets nothing (the challenge came from a redirect's target)
    cdn2 = Origin("challenging cdn")
    cdn2.route_fn = lambda req: (req.reply(200, b'{"token":"x"}') if req.path.startswith("/token") else
                                 req.reply(401, b"{}", {"WWW-Authenticate": 'Bearer realm="%s/token",service="cdn"' % cdn2.url}))
    reg2 = Registry(img, hooks={"blob": redirect_to(lambda d: cdn2.url + "/b/" + d)})
    closers += [cdn2, reg2]
    env.login(reg2.host)
    r = env.pull(reg2.host + "/app:1")
    check(r.rc != 0 and "401" in r.err, "a challenge from a redirect's target is not answered", r)
    no_auth(cdn2, "challenge from a redirected-to origin")

    # realms that are not http(s): file:// (a secret file's line must not show), gopher:// (nothing sent)
    secret_file = os.path.join(env.dir, "shadow")
    with open(secret_file, "w") as f:
        f.write("root:SECRET-FIRST-LINE:19000:0:99999:7:::\n")
    reg4 = Registry(img, realm="file://" + secret_file)
    trap = Trap()
    reg5 = Registry(img, realm="gopher://127.0.0.1:%d/_GET%%20/evil" % trap.port)
    closers += [reg4, reg5, trap]
    env.login(reg4.host, reg5.host)
    r = env.pull(reg4.host + "/app:1")
    check(r.rc != 0 and "SECRET-FIRST-LINE" not in r.err + r.out and "file" in r.err,
          "a file:// realm is refused, and nothing of the file shows", r)
    r = env.pull(reg5.host + "/app:1")
    time.sleep(0.3)
    check(r.rc != 0 and trap.connections == 0 and not trap.data,
          "a gopher:// realm is refused: nothing reaches its port (%d connections, %d bytes)" % (
              trap.connections, len(trap.data)), r)

    # redirects that are not http(s): ftp:// is not followed
    trap2 = Trap()
    reg6 = Registry(img, hooks={"blob": redirect_to(lambda d: "ftp://127.0.0.1:%d/%s" % (trap2.port, d), 302)})
    closers += [reg6, trap2]
    env.login(reg6.host)
    r = env.pull(reg6.host + "/app:1")
    time.sleep(0.3)
    check(r.rc != 0 and trap2.connections == 0 and "ftp" in r.err,
          "an ftp:// redirect is not followed (%d connections)" % trap2.connections, r)

    # an https registry sends nothing over http: not to an http realm, not after a redirect to http
    tls = make_cert(env.dir)
    plain_auth = Origin("plain-http realm")
    plain_auth.route_fn = lambda req: req.reply(200, json.dumps({"token": TOKEN}).encode())
    reg7 = Registry(img, realm=plain_auth.url + "/token", tls=tls)
    closers += [reg7, plain_auth]
    env.login(reg7.host)
    r = env.pull(reg7.host + "/app:1")
    check(r.rc != 0 and "plain HTTP" in r.err, "an https registry's http realm is refused", r)
    check(not plain_auth.requests(), "nothing reaches the http realm (%d requests)" % len(plain_auth.requests()))
    plain_cdn = Origin("plain-http cdn", lambda req: req.reply(200, img.blobs.get(req.path.split("/")[-1], b"")))
    reg8 = Registry(img, realm="self", tls=tls, hooks={"blob": redirect_to(lambda d: plain_cdn.url + "/b/" + d)})
    closers += [reg8, plain_cdn]
    env.login(reg8.host)
    r = env.pull(reg8.host + "/app:1")
    check(r.rc != 0 and "plain HTTP" in r.err, "an https registry's redirect to http is refused", r)
    check(not plain_cdn.requests(), "nothing reaches the http CDN (%d requests)" % len(plain_cdn.requests()))
    plain_up = Origin("plain-http upload host", lambda req: req.reply(201))
    reg9 = Registry(img, realm="self", tls=tls, hooks={"upload": lambda req: req.reply(202, headers={"Location": plain_up.url + "/u"}),
                                         "blob": lambda req, d: req.reply(404)})
    closers += [reg9, plain_up]
    env.login(reg.host, reg9.host)
    r = env.pull(reg.host + "/app:1")
    # to tag 2: reg9 has the image's manifest as tag 1, and a push finding it there (HEAD) sends nothing
    r = env.ib("push", reg.host + "/app:1", reg9.host + "/app:2")
    check(r.rc != 0 and "plain HTTP" in r.err and plain_up.url in r.err, "an https registry's upload Location on http is refused", r)
    check(not plain_up.requests(), "nothing reaches the http upload host (%d requests)" % len(plain_up.requests()))

    found = env.secrets_found()
    check(not found, "no password, credentials or token in any output or in the store" +
          (": " + "; ".join(found[:5]) if found else ""))
    for c in closers:
        c.close()


def endless(first=b"", chunk=b"\0" * 65536, limit=128 * MiB, every=0.0, seconds=None):
    """Chunks: `first`, then `chunk` until `limit` bytes or `seconds` (a trickle when `every`)."""
    def gen():
        sent, start = 0, time.monotonic()
        if first:
            yield first
            sent += len(first)
        while sent < limit and (seconds is None or time.monotonic() - start < seconds):
            if every:
                time.sleep(every)
            yield chunk
            sent += len(chunk)
    return gen()


def test_bounds(env):
    img = Image(1 * MiB)
    layer = sha(img.layer)
    closers = []

    base = Registry(img)
    closers.append(base)
    env.login(base.host)
    r = env.pull(base.host + "/app:1")
    check(r.rc == 0, "a plain pull of a 1 MiB layer (baseline: peak RSS %d KiB)" % r.maxrss, r)
    baseline = r.maxrss
    rss_bound = baseline + 64 * 1024
    shutil.rmtree(env.root)

    # an endless blob body: stops at the descriptor's size
    sent = {}

    def endless_blob(req, d):
        if d != layer:
            return req.reply(200, img.blobs[d])
        sent["blob"] = req.stream(200, endless(img.layer), content_type="application/octet-stream")
    reg = Registry(img, hooks={"blob": endless_blob})
    closers.append(reg)
    env.login(reg.host)
    r = env.pull(reg.host + "/app:1", timeout=60)
    time.sleep(0.2)
    check(r.rc != 0 and "more than the %d bytes its descriptor says" % len(img.layer) in r.err,
          "an endless blob stops at its descriptor's size (%.1fs, %d MiB sent, peak RSS %d KiB)" % (
              r.seconds, sent.get("blob", 0) >> 20, r.maxrss), r)
    check(sent.get("blob", 0) < len(img.layer) + 32 * MiB, "the registry could send at most the socket buffers more")
    check(not env.blob_stored(layer) and not env.tmp_files(), "nothing of it in blobs/ or tmp/")
    check(r.maxrss < rss_bound, "bounded memory: peak RSS %d KiB < %d KiB" % (r.maxrss, rss_bound))

    # an endless manifest: stops at 4 MiB
    def endless_manifest(req, ref):
        sent["manifest"] = req.stream(200, endless(b'{"schemaVersion":2,"x":"', b"x" * 65536), content_type=OCI_MANIFEST)
    reg = Registry(img, hooks={"manifest": endless_manifest})
    closers.append(reg)
    env.login(reg.host)
    r = env.pull(reg.host + "/app:1", timeout=60)
    check(r.rc != 0 and "larger than %d bytes" % (4 * MiB) in r.err,
          "an endless manifest stops at 4 MiB (%.1fs, %d MiB sent, peak RSS %d KiB)" % (
              r.seconds, sent.get("manifest", 0) >> 20, r.maxrss), r)
    check(r.maxrss < rss_bound, "bounded memory: peak RSS %d KiB < %d KiB" % (r.maxrss, rss_bound))

    # an endless error body, fast: the 404 comes back, the rest is not read
    def endless_404(req, ref):
        sent["404"] = req.stream(404, endless(b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"' + b"m" * 100),
                                 content_type="application/json")
    reg = Registry(img, hooks={"manifest": endless_404})
    closers.append(reg)
    env.login(reg.host)
    r = env.pull(reg.host + "/app:1", timeout=60)
    time.sleep(0.2)
    check(r.rc != 0 and "404" in r.err and sent.get("404", 0) < 32 * MiB,
          "an endless error body is capped (%.1fs, %d MiB sent, peak RSS %d KiB)" % (
              r.seconds, sent.get("404", 0) >> 20, r.maxrss), r)
    check(r.maxrss < rss_bound, "bounded memory: peak RSS %d KiB < %d KiB" % (r.maxrss, rss_bound))

    # endless response headers: capped
    def endless_headers(req, ref):
        sent["headers"] = 0
        try:
            req.wfile.write(b"HTTP/1.1 200 OK\r\n")
            line = b"X-Pad: " + b"h" * 1000 + b"\r\n"
            while sent["headers"] < 256 * MiB:
                req.wfile.write(line)
                sent["headers"] += len(line)
        except OSError:
            pass
        req.close_connection = True
    reg = Registry(img, hooks={"manifest": endless_headers})
    closers.append(reg)
    env.login(reg.host)
    r = env.pull(reg.host + "/app:1", timeout=60)
    time.sleep(0.2)
    check(r.rc != 0 and "response headers larger than" in r.err and sent.get("headers", 0) < 32 * MiB,
          "endless response headers are capped (%.1fs, %d MiB sent, peak RSS %d KiB)" % (
              r.seconds, sent.get("headers", 0) >> 20, r.maxrss), r)
    check(r.maxrss < rss_bound, "bounded memory: peak RSS %d KiB < %d KiB" % (r.maxrss, rss_bound))

    # a trickling error body (8 KiB/s, above the low-speed limit): read for the stall time at most
    reg = Registry(img, hooks={"manifest": lambda req, ref: req.stream(
        404, endless(b"not found ", b"." * 2048, every=0.25, seconds=60), content_type="text/plain")})
    closers.append(reg)
    env.login(reg.host)
    r = env.pull(reg.host + "/app:1", timeout=20)
    check(r.rc != 0 and "404" in r.err and r.seconds < 3 * STALL + 4,
          "a trickling error body is time-limited (%.1fs, stall time %ds)" % (r.seconds, STALL), r)

    # an endless /v2/ answer (a trickle): the pull goes on after the stall time
    reg = Registry(img, hooks={"v2": lambda req: req.stream(
        200, endless(b"{", b" " * 2048, every=0.25, seconds=60), content_type="application/json")})
    closers.append(reg)
    env.login(reg.host)
    shutil.rmtree(env.root, ignore_errors=True)
    r = env.pull(reg.host + "/app:1", timeout=20)
    check(r.rc == 0 and r.seconds < 3 * STALL + 6, "an endless /v2/ answer is time-limited (%.1fs)" % r.seconds, r)

    # a stalled blob: the transfer fails after the stall time and is retried
    hits = []

    def stalling_blob(req, d):
        if d != layer:
            return req.reply(200, img.blobs[d])
        hits.append(time.monotonic())
        if len(hits) > 1:
            return req.reply(200, img.layer)
        req.send_response(200)
        req.send_header("Content-Length", str(len(img.layer)))
        req.end_headers()
        try:
            req.wfile.write(img.layer[:len(img.layer) // 2])
            req.wfile.flush()
            req.connection.settimeout(40)
            req.connection.recv(1)  # until the client gives up (or 40 s)
        except OSError:
            pass
        req.close_connection = True
    reg = Registry(img, hooks={"blob": stalling_blob})
    closers.append(reg)
    env.login(reg.host)
    shutil.rmtree(env.root, ignore_errors=True)
    r = env.pull(reg.host + "/app:1", timeout=25)
    check(r.rc == 0 and len(hits) == 2,
          "a stalled blob fails after the stall time and is retried (%.1fs, %d GETs)" % (r.seconds, len(hits)), r)

    # a size mismatch (the right content, a descriptor one byte longer) leaves nothing in blobs/
    doc = json.loads(img.manifest)
    doc["layers"][0]["size"] += 1
    bad = json.dumps(doc).encode()
    reg = Registry(img, hooks={"manifest": lambda req, ref: req.reply(200, bad, content_type=OCI_MANIFEST)})
    closers.append(reg)
    env.login(reg.host)
    shutil.rmtree(env.root, ignore_errors=True)
    r = env.pull(reg.host + "/app:1")
    check(r.rc != 0 and "has %d bytes, its descriptor says %d" % (len(img.layer), len(img.layer) + 1) in r.err,
          "a blob shorter than its descriptor is refused", r)
    check(not env.blob_stored(layer) and not env.tmp_files(), "a size mismatch leaves nothing in blobs/ or tmp/")

    # a config larger than the cap is not even fetched
    doc = json.loads(img.manifest)
    doc["config"]["size"] = 9 * MiB
    big = json.dumps(doc).encode()
    reg = Registry(img, hooks={"manifest": lambda req, ref: req.reply(200, big, content_type=OCI_MANIFEST)})
    closers.append(reg)
    env.login(reg.host)
    r = env.pull(reg.host + "/app:1")
    cfg_gets = reg.origin.requests("GET", "/v2/app/blobs/" + sha(img.config))
    check(r.rc != 0 and "config.size" in r.err and not cfg_gets,
          "a config over the cap is refused before it is fetched (%d GETs)" % len(cfg_gets), r)
    for c in closers:
        c.close()


def test_ambiguous(env):
    img = Image()
    closers = []

    def serve(body, ct=OCI_MANIFEST, headers=None):
        reg = Registry(img, hooks={"manifest": lambda req, ref: req.reply(200, body, headers or {}, ct)})
        closers.append(reg)
        env.login(reg.host)
        shutil.rmtree(env.root, ignore_errors=True)
        return env.pull(reg.host + "/app:1")

    r = serve(img.manifest)
    check(r.rc == 0, "the image as it is pulls", r)

    both = img.doc(manifests=[{"mediaType": OCI_MANIFEST, "digest": sha(b"x"), "size": 1,
                               "platform": {"architecture": goarch(), "os": "linux"}}])
    r = serve(both)
    check(r.rc != 0 and "ambiguous" in r.err and sha(both) in r.err,
          "a manifest with both `manifests` and `layers` is refused", r)
    r = serve(both, OCI_INDEX)
    check(r.rc != 0 and "ambiguous" in r.err, "... also when served as an index", r)

    r = serve(img.manifest, OCI_INDEX)
    check(r.rc != 0 and "disagrees with the registry's Content-Type" in r.err,
          "a mediaType that disagrees with the Content-Type is refused", r)
    r = serve(img.manifest, "application/json")
    check(r.rc == 0, "a generic Content-Type (application/json) is no disagreement", r)

    r = serve(img.manifest, OCI_MANIFEST, {"Docker-Content-Digest": sha(b"something else")})
    check(r.rc != 0 and "Docker-Content-Digest" in r.err, "a false Docker-Content-Digest on a manifest is an error", r)

    reg = Registry(img, hooks={"blob": lambda req, d: req.reply(200, img.blobs[d], {"Docker-Content-Digest": sha(b"no")})})
    closers.append(reg)
    env.login(reg.host)
    shutil.rmtree(env.root, ignore_errors=True)
    r = env.pull(reg.host + "/app:1")
    check(r.rc != 0 and "Docker-Content-Digest" in r.err, "a false Docker-Content-Digest on a blob is an error", r)

    doc = json.loads(img.manifest)
    doc["layers"][0]["size"] = str(doc["layers"][0]["size"])
    bad = json.dumps(doc).encode()
    r = serve(bad)
    check(r.rc != 0 and "layers[0].size" in r.err and sha(bad) in r.err,
          "a malformed descriptor's error names the manifest digest and the field", r)
    doc = json.loads(img.manifest)
    doc["config"]["digest"] = "sha256:nothex"
    bad = json.dumps(doc).encode()
    r = serve(bad)
    check(r.rc != 0 and "config.digest" in r.err and sha(bad) in r.err, "... and for a config digest", r)
    for c in closers:
        c.close()


def main():
    if not IB or not os.access(IB, os.X_OK):
        skip_or_fail("no imagebuild executable (give its path)")
    tests = {"credentials": test_credentials, "bounds": test_bounds, "ambiguous": test_ambiguous}
    for name, fn in tests.items():
        if WHICH not in ("all", name):
            continue
        print("== " + name)
        env = Env()
        try:
            fn(env)
        finally:
            env.close()
    if failures:
        print("\n%d failed:\n  %s" % (len(failures), "\n  ".join(failures)))
        sys.exit(1)


if __name__ == "__main__":
    main()
