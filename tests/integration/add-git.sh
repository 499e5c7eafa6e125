#!/bin/bash
# ADD <git ref>, against BuildKit's behaviour (frontend/dockerfile/dfgitutil,
# util/gitutil/git_url.go, source/git/source.go): a bare repository made with
# git, served over smart HTTP (git http-backend as CGI behind python3's
# http.server) and over git:// (git daemon), both on loopback.
# Usage: add-git.sh IMAGEBUILD
set -euo pipefail
IB=$1
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
. "$IB_SOURCE_ROOT/tests/common/progress.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"
command -v git >/dev/null || skip_or_fail "git is not installed"
[ -x /usr/lib/git-core/git-http-backend ] || skip_or_fail "git http-backend is not installed"
tmp=$(mktemp -d /tmp/ibtest-addgit-XXXXXX)
pids=()
cleanup() {
	for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
	umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
build() { "$IB" build "$@"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; fail "nothing listens on $1"; }

"$IB_MAKE_BUSYBOX" "$tmp/busybox.tar"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null

# ---- the fixture repository ----
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
export GIT_AUTHOR_DATE='2001-02-03T04:05:06Z' GIT_COMMITTER_DATE='2001-02-03T04:05:06Z'
work=$tmp/work
git init -q -b main "$work"
(
	cd "$work"
	echo hello > hello.txt
	printf '#!/bin/sh\necho run\n' > run.sh && chmod 755 run.sh
	mkdir -p sub/deep && echo in-sub > sub/deep/f.txt && echo top-of-sub > sub/s.txt
	ln -s / rootlink
	ln -s sub sublink
	ln -s ../../etc/passwd sub/escape
	git add -A && git commit -q -m one
	git tag v1
	git tag -a v1-annotated -m annotated
	git checkout -q -b other && echo other > other.txt && git add other.txt && git commit -q -m other
	git checkout -q main
)
first=$(git -C "$work" rev-parse main)
mkdir -p "$tmp/srv"
git clone -q --bare "$work" "$tmp/srv/repo.git"
# a dash ref exists on the server too: it must still be refused, never read as an option
git -C "$tmp/srv/repo.git" update-ref refs/heads/-x "$first"

# ---- smart HTTP: git http-backend as CGI behind python3's http.server ----
# (a small handler rather than CGIHTTPRequestHandler, whose close-delimited
# HTTP/1.0 replies libgit2 1.5 does not read: each reply gets a Content-Length)
cat > "$tmp/serve.py" <<'EOF'
import http.server, os, subprocess, sys
root = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def cgi(self):
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                   QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_ADDR="127.0.0.1",
                   CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)),
                   GIT_PROTOCOL=self.headers.get("Git-Protocol", ""))
        out = subprocess.run(["/usr/lib/git-core/git-http-backend"], input=body, env=env,
                             stdout=subprocess.PIPE, timeout=60).stdout
        head, _, data = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = cgi
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
hport=$(free_port)
/usr/bin/python3 "$tmp/serve.py" "$hport" "$tmp/srv" >"$tmp/http.log" 2>&1 &
pids+=($!)
wait_port "$hport"
url=http://127.0.0.1:$hport/repo.git
git ls-remote "$url" >/dev/null || fail "the fixture server does not serve $url: $(tail "$tmp/http.log")"

ctx=$tmp/ctx
mkdir -p "$ctx"
# probe: stat each entry (type, mode, owner, symlink target, content)
probe='cd "$0" && find . | sort | while read -r p; do if [ -L "$p" ]; then echo "$p l $(readlink "$p")"; elif [ -d "$p" ]; then echo "$p d $(stat -c %a:%u:%g "$p")"; else echo "$p f $(stat -c %a:%u:%g "$p") $(cat "$p")"; fi; done'
show() { "$IB" run --rm "$1" sh -c "$probe" "$2"; }

# 1. the default branch, into a directory that does not exist yet: the tree's
# contents (not a folder named after the repo), 0:0, 0644/0755 whatever the
# umask, symlinks kept as they are, no .git; mtimes are the checkout's time
# (BuildKit's default, mtime=checkout), not the commit's (2001)
printf 'FROM busybox\nADD %s /src\n' "$url" > "$ctx/Dockerfile"
started=$(date +%s)
(umask 077 && build -t g1 "$ctx") > "$tmp/out1" 2>&1 || { cat "$tmp/out1"; fail "ADD of a git URL failed"; }
mtime=$("$IB" run --rm g1 stat -c %Y /src/sub/deep/f.txt)
[ "$mtime" -ge $((started - 2)) ] || fail "the checkout's mtime is $mtime, not the time of the build ($started)"
show g1 /src > "$tmp/g1"
cat > "$tmp/g1.want" <<'EOF'
. d 755:0:0
./hello.txt f 644:0:0 hello
./rootlink l /
./run.sh f 755:0:0 #!/bin/sh
echo run
./sub d 755:0:0
./sub/deep d 755:0:0
./sub/deep/f.txt f 644:0:0 in-sub
./sub/escape l ../../etc/passwd
./sub/s.txt f 644:0:0 top-of-sub
./sublink l sub
EOF
diff -u "$tmp/g1.want" "$tmp/g1" || fail "ADD <git> gave another tree"

# 2. #ref:subdir: a branch, only the subdir's contents; --chown and --chmod apply to every entry.
# The destination "/s/" is made as fsutil's MkdirAll makes it (--chown's owner,
# 0755: fsutil before BuildKit 0.21 and Docker 20.10 give created destination
# directories 0755 whatever --chmod says, as build-compat's 09-copy-chmod shows for COPY)
printf 'FROM busybox\nADD --chown=7:8 --chmod=750 %s#other:sub /s/\nADD %s#other /o/\n' "$url" "$url" > "$ctx/Dockerfile"
build -t g2 "$ctx" > "$tmp/out2" 2>&1 || { cat "$tmp/out2"; fail "ADD <git>#other:sub failed"; }
show g2 /s > "$tmp/g2"
cat > "$tmp/g2.want" <<'EOF'
. d 755:7:8
./deep d 750:7:8
./deep/f.txt f 750:7:8 in-sub
./escape l ../../etc/passwd
./s.txt f 750:7:8 top-of-sub
EOF
diff -u "$tmp/g2.want" "$tmp/g2" || fail "ADD --chown --chmod <git>#other:sub gave another tree"
[ "$("$IB" run --rm g2 cat /o/other.txt)" = other ] || fail "#other did not check out the branch"

# 3. tags (lightweight and annotated), a full commit sha, refs/heads/..., a
# subdir with ../ (BuildKit cleans it as path.Join("/", subdir): it stays
# inside), "#:subdir" (the default branch) and a %-escaped fragment (Go's
# url.Parse unescapes it)
printf 'FROM busybox\nADD %s#v1 /t1/\nADD %s#v1-annotated /t2/\nADD %s#%s /t3/\nADD %s#refs/heads/other:../../sub/deep /t4/\nADD %s#:sub /t5/\nADD %s#oth%%65r:sub%%2Fdeep /t6/\n' \
	"$url" "$url" "$url" "$first" "$url" "$url" "$url" > "$ctx/Dockerfile"
build -t g3 "$ctx" > "$tmp/out3" 2>&1 || { cat "$tmp/out3"; fail "ADD <git> of tags/sha failed"; }
got=$("$IB" run --rm g3 sh -c 'cat /t1/hello.txt /t2/hello.txt /t3/hello.txt /t4/f.txt /t5/s.txt /t6/f.txt; ls /t1 /t3 | grep -c other.txt || true' | tr '\n' '|')
[ "$got" = "hello|hello|hello|in-sub|top-of-sub|in-sub|0|" ] || fail "tags, sha, ../ subdir, #:subdir, %-escapes gave: $got"

# 3b. the query form (Dockerfile frontend 1.18, dfgitutil loadQuery): ref,
# tag, branch, subdir (cleaned), commit; mtime=commit puts the committer's
# time on every entry (BuildKit's resetSnapshotMtimes), checkout leaves the
# time of the checkout
printf 'FROM busybox\nADD %s?ref=other&subdir=../sub /q1/\nADD %s?tag=v1 /q2/\nADD %s?branch=other&subdir=sub%%2Fdeep /q3/\nADD %s?commit=%s /q4/\nADD %s?subdir=sub#other /q5/\nADD %s?mtime=commit&subdir=sub /q6/\nADD %s?mtime=checkout&keep-git-dir=false&submodules /q7/\n' \
	"$url" "$url" "$url" "$url" "$first" "$url" "$url" "$url" > "$ctx/Dockerfile"
build -t gq "$ctx" > "$tmp/outq" 2>&1 || { cat "$tmp/outq"; fail "ADD <git>?query failed"; }
got=$("$IB" run --rm gq sh -c 'cat /q1/s.txt /q2/hello.txt /q3/f.txt /q4/hello.txt /q5/s.txt /q6/s.txt /q7/hello.txt; ls /q2 | grep -c other.txt || true' | tr '\n' '|')
[ "$got" = "top-of-sub|hello|in-sub|hello|top-of-sub|top-of-sub|hello|0|" ] || fail "the query forms gave: $got"
ctime=$(git -C "$work" log -1 --format=%ct main)
got=$("$IB" run --rm gq sh -c 'for p in /q6 /q6/s.txt /q6/deep /q6/deep/f.txt /q6/escape; do stat -c %Y "$p"; done' | sort -u | tr '\n' ' ')
[ "$got" = "$ctime " ] || fail "mtime=commit gave mtimes $got, not the commit's $ctime"
[ "$("$IB" run --rm gq stat -c %Y /q7/hello.txt)" -ge $((started - 2)) ] || fail "mtime=checkout did not keep the checkout's time"

# 4. the cache key is the commit, not the ref: unchanged -> CACHED; the branch
# moves -> the step runs again and sees the new commit
printf 'FROM busybox\nADD %s#main /src/\n' "$url" > "$ctx/Dockerfile"
build -t g4 "$ctx" > "$tmp/out4a" 2>&1 || { cat "$tmp/out4a"; fail "ADD <git>#main failed"; }
build -t g4 "$ctx" > "$tmp/out4b" 2>&1 || { cat "$tmp/out4b"; fail "ADD <git>#main (again) failed"; }
grep -q '^=> CACHED \[1/1\]' <(steps "$tmp/out4b") || { cat "$tmp/out4b"; fail "an unchanged ref did not find the step in the cache"; }
(cd "$work" && echo two > hello.txt && git commit -q -am two && git push -q "$tmp/srv/repo.git" main)
build -t g4 "$ctx" > "$tmp/out4c" 2>&1 || { cat "$tmp/out4c"; fail "ADD <git>#main (moved) failed"; }
grep -q '^=> CACHED \[1/1\]' <(steps "$tmp/out4c") && { cat "$tmp/out4c"; fail "a moved ref still used the old commit's cache"; }
[ "$("$IB" run --rm g4 cat /src/hello.txt)" = two ] || fail "a moved ref did not check out the new commit"

# 5. --checksum: a prefix of the commit sha
second=$(git -C "$work" rev-parse main)
printf 'FROM busybox\nADD --checksum=%s %s#main /c/\n' "${second:0:12}" "$url" > "$ctx/Dockerfile"
build -t g5 "$ctx" > "$tmp/out5" 2>&1 || { cat "$tmp/out5"; fail "ADD --checksum=<commit> <git> failed"; }

# 6. git:// from a local folder (git daemon)
gport=$(free_port)
git daemon --reuseaddr --listen=127.0.0.1 --port="$gport" --base-path="$tmp/srv" --export-all "$tmp/srv" >"$tmp/daemon.log" 2>&1 &
pids+=($!)
wait_port "$gport"
printf 'FROM busybox\nADD git://127.0.0.1:%s/repo.git#other:sub/deep /d/\n' "$gport" > "$ctx/Dockerfile"
build -t g6 "$ctx" > "$tmp/out6" 2>&1 || { cat "$tmp/out6"; fail "ADD git:// failed"; }
[ "$("$IB" run --rm g6 cat /d/f.txt)" = in-sub ] || fail "ADD git:// gave another tree"

# ---- what is refused: the error names the Dockerfile, the line and the reason; nothing tagged ----
refused() { # NAME "Dockerfile body line 2" "reason"
	printf 'FROM busybox\n%s\n' "$2" > "$ctx/Dockerfile"
	if build -t "refused-$1" "$ctx" > "$tmp/r-$1" 2>&1; then fail "$1: the build succeeded"; fi
	grep -q "Dockerfile:2: " "$tmp/r-$1" || { cat "$tmp/r-$1"; fail "$1: the error does not name Dockerfile:2"; }
	grep -qF -- "$3" "$tmp/r-$1" || { cat "$tmp/r-$1"; fail "$1: the error does not say \`$3\`"; }
	[ -z "$("$IB" images -q "refused-$1" 2>/dev/null)" ] || fail "$1: a refused build was tagged"
	echo "ok refused $1: $(grep -m1 'Dockerfile:2: ' "$tmp/r-$1")"
}
refused dash-ref "ADD $url#-x /x/" 'invalid git ref "-x"'
refused missing-ref "ADD $url#nope /x/" 'the repository has no ref "nope"'
refused missing-subdir "ADD $url#main:nope /x/" 'invalid subdir "nope"'
refused symlink-subdir "ADD $url#main:rootlink /x/" 'invalid subdir "rootlink": not a directory'
refused through-symlink "ADD $url#main:sublink/deep /x/" 'invalid subdir "sublink/deep"'
refused file-subdir "ADD $url#main:hello.txt /x/" 'invalid subdir "hello.txt": not a directory'
refused ssh-scp "ADD git@127.0.0.1:repo.git /x/" 'git over SSH is not supported'
refused ssh-url "ADD ssh://git@127.0.0.1/repo.git /x/" 'git over SSH is not supported'
refused query-conflict "ADD $url?ref=main#other /x/" 'ref conflicts: "other" vs "main"'
refused query-tag-branch "ADD $url?tag=v1&branch=main /x/" 'branch conflicts with tag'
refused query-unknown "ADD $url?depth=1 /x/" 'unexpected query "depth"'
refused query-twice "ADD $url?ref=main&ref=main /x/" 'query "ref" has multiple values'
refused query-empty "ADD $url?ref= /x/" 'query "ref" has no value'
refused query-mtime "ADD $url?mtime=now /x/" 'invalid mtime value: "now"'
refused query-keep "ADD $url?keep-git-dir /x/" 'keep-git-dir is not supported'
refused query-fetch-by-commit "ADD $url?fetch-by-commit=true /x/" 'fetch-by-commit is not supported'
refused query-checksum "ADD --checksum=$first $url?checksum=abc /x/" "checksum mismatch \"$first\" != \"abc\""
refused keep-git-dir "ADD --keep-git-dir=true $url /x/" 'ADD --keep-git-dir is not supported'
refused copy-git "COPY $url /x/" "source can't be a git ref for COPY"
refused checksum "ADD --checksum=0000000 $url#main /x/" 'expected checksum to match 0000000'
refused sha-unknown "ADD $url#$(printf '%040d' 1) /x/" 'holds the commit'
# a repository with a submodule: BuildKit checks it out; refused rather than left empty
(cd "$work" && git -c protocol.file.allow=always submodule add -q "$tmp/srv/repo.git" mod >/dev/null 2>&1 &&
	git commit -q -m submodule && git push -q "$tmp/srv/repo.git" main:withsub)
refused submodule "ADD $url#withsub /x/" 'submodules are not supported (`mod` is one)'
# a subdir without the submodule is fine
printf 'FROM busybox\nADD %s#withsub:sub /x/\n' "$url" > "$ctx/Dockerfile"
build -t g7 "$ctx" > "$tmp/out7" 2>&1 || { cat "$tmp/out7"; fail "ADD <git>#withsub:sub failed"; }
echo "add-git: ok"
