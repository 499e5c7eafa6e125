#!/usr/bin/python3
# A token server for docker-registry's token auth (docker/distribution's
# token spec), for tests: GET /token with Basic alice:s3cret, or the OAuth2
# POST with grant_type=refresh_token and refresh_token=R3FR3SH (or
# grant_type=password), answers a JWT (RS256, signed with `openssl dgst`,
# the certificate in x5c) granting what the scope asks. Every request is
# logged to LOG as "METHOD grant=... auth=basic|none scope=..." (never a
# secret).
# Usage: token-server.py PORT KEY CERT SERVICE LOG
import base64, http.server, json, subprocess, sys, time, urllib.parse

port, key, cert, service, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True, capture_output=True).stdout


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(scope):
    access = []
    for s in scope.split(" "):
        parts = s.split(":")
        if len(parts) == 3 and parts[0] == "repository":
            access.append({"type": "repository", "name": parts[1], "actions": parts[2].split(",")})
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    claims = {"iss": "ib-token", "sub": "alice", "aud": service, "exp": now + 600, "nbf": now - 10, "iat": now,
              "jti": str(now), "access": access}
    signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing.encode(), check=True,
                         capture_output=True).stdout
    return signing + "." + b64(sig)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, grant, auth, scope):
        with open(log_path, "a") as f:
            f.write("%s grant=%s auth=%s scope=%s\n" % (self.command, grant, auth, scope))

    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        scope = " ".join(q.get("scope", []))
        auth = self.headers.get("Authorization", "")
        ok = auth == "Basic " + base64.b64encode(b"alice:s3cret").decode()
        self.record("-", "basic" if auth.startswith("Basic ") else "none", scope)
        if auth and not ok:
            return self.answer(401, {"details": "incorrect username or password"})
        # anonymous: a token with no access (as Docker Hub for a private repository)
        self.answer(200, {"token": token(scope if ok else ""), "expires_in": 600})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        grant = form.get("grant_type", [""])[0]
        scope = " ".join(form.get("scope", []))
        self.record(grant, "basic" if self.headers.get("Authorization") else "none", scope)
        if form.get("service", [""])[0] != service or not form.get("client_id"):
            return self.answer(400, {"error": "invalid_request"})
        if grant == "refresh_token" and form.get("refresh_token", [""])[0] == "R3FR3SH":
            return self.answer(200, {"access_token": token(scope), "refresh_token": "R3FR3SH", "expires_in": 600})
        if grant == "password" and form.get("username") == ["alice"] and form.get("password") == ["s3cret"]:
            return self.answer(200, {"access_token": token(scope), "expires_in": 600})
        self.answer(401, {"error": "invalid_grant"})


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
