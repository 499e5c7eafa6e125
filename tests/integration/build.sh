#!/bin/bash
# The seed's second half, end to end: build an app image from a Dockerfile,
# rebuild after a source change (only the steps from the source COPY on
# run), run it; a multi-stage build; --target; a failing RUN.
# Usage: build.sh IMAGEBUILD SNAPSHOTTER
set -euo pipefail
IB=$1 SNAP=$2
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
. "$IB_SOURCE_ROOT/tests/common/progress.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"
tmp=$(mktemp -d /tmp/ibtest-build-XXXXXX)
cleanup() { umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
build() { "$IB" build --snapshotter "$SNAP" "$@"; }

"$IB_SOURCE_ROOT/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null

# ---- the app ----
ctx=$tmp/app
mkdir -p "$ctx/src"
cat > "$ctx/Dockerfile" <<'DF'
FROM busybox
WORKDIR /app
COPY requirements.txt .
RUN mkdir -p /opt/deps && for r in $(cat requirements.txt); do echo "$r" > "/opt/deps/$r"; done
COPY src/ ./src/
ENV GREETING=hello
EXPOSE 8080
USER nobody
CMD ["sh", "-c", "echo $GREETING from $(cat src/version) with $(ls /opt/deps)"]
DF
echo "flask" > "$ctx/requirements.txt"
echo "v1" > "$ctx/src/version"
printf 'Dockerfile\n*.log\n' > "$ctx/.dockerignore"
echo "noise" > "$ctx/debug.log"

build -t app "$ctx" > "$tmp/out1" 2>&1
cat "$tmp/out1"
grep -q CACHED <(steps "$tmp/out1") && fail "a first build found cached steps"
[ "$("$IB" run --rm app)" = "hello from v1 with flask" ] || fail "the app printed: $("$IB" run --rm app)"

# a no-op rebuild: everything cached, the same image
build --iidfile "$tmp/id1" -t app "$ctx" > /dev/null
build --iidfile "$tmp/id2" -t app "$ctx" > "$tmp/out2" 2>&1
[ "$(grep -c '^=> CACHED' <(steps "$tmp/out2"))" = 8 ] || { cat "$tmp/out2"; fail "a no-op rebuild did not cache all 8 steps"; }
[ "$(cat "$tmp/id1")" = "$(cat "$tmp/id2")" ] || fail "a no-op rebuild changed the image id"

# an ignored file changes nothing
echo "more noise" > "$ctx/debug.log"
build -t app "$ctx" > "$tmp/out3" 2>&1
[ "$(grep -c '^=> CACHED' <(steps "$tmp/out3"))" = 8 ] || { cat "$tmp/out3"; fail ".dockerignore'd file broke the cache"; }

# one source file changes: steps 1-3 cached, 4-8 run
echo "v2" > "$ctx/src/version"
build -t app "$ctx" > "$tmp/out4" 2>&1
cat "$tmp/out4"
for s in 1 2 3; do grep -q "^=> CACHED \[$s/8\]" <(steps "$tmp/out4") || fail "step $s re-ran after a source change"; done
for s in 4 5 6 7 8; do grep -q "^=> \[$s/8\]" <(steps "$tmp/out4") || fail "step $s did not re-run after a source change"; done
[ "$("$IB" run --rm app)" = "hello from v2 with flask" ] || fail "the rebuilt app printed: $("$IB" run --rm app)"
"$IB" inspect app | grep -q '"8080/tcp"' || fail "EXPOSE missing from the config"
"$IB" inspect app | grep -q '"User": *"nobody"' || fail "USER missing from the config"

# --no-cache runs everything
build --no-cache --iidfile "$tmp/id5" -t app "$ctx" > "$tmp/out5" 2>&1
grep -q CACHED <(steps "$tmp/out5") && fail "--no-cache used the cache"

# ---- multi-stage ----
ms=$tmp/multi
mkdir -p "$ms"
cat > "$ms/Dockerfile" <<'DF'
FROM busybox AS builder
WORKDIR /src
COPY main.sh .
COPY notes.txt .
RUN mkdir -p /out && { echo '#!/bin/sh'; cat main.sh; } > /out/app && chmod 755 /out/app && dd if=/dev/zero of=/src/bulk bs=1024 count=512 2>/dev/null

FROM busybox AS broken
RUN echo this stage must not be built && exit 1

FROM busybox
COPY --from=builder /out/app /usr/local/bin/app
CMD ["app"]
DF
echo 'echo built by a builder stage' > "$ms/main.sh"
echo 'notes' > "$ms/notes.txt"
build -t multi "$ms" > "$tmp/out6"
cat "$tmp/out6"
grep -q "must not be built" "$tmp/out6" && fail "an unneeded stage was built"
[ "$("$IB" run --rm multi)" = "built by a builder stage" ] || fail "multi printed: $("$IB" run --rm multi)"
"$IB" run --rm multi sh -c 'test ! -e /src/bulk' || fail "the builder's files leaked into the final image"
# a builder change that leaves the copied file as it was keeps COPY --from cached (content, as BuildKit)
echo 'other notes' > "$ms/notes.txt"
build -t multi "$ms" > "$tmp/out6b" 2>&1
grep -q "^=> \[builder 4/4\] RUN" <(steps "$tmp/out6b") || fail "the builder did not re-run after its input changed"
grep -q "^=> CACHED \[stage-2 1/2\] COPY --from=builder" <(steps "$tmp/out6b") || { cat "$tmp/out6b"; fail "COPY --from re-ran though what it copies did not change"; }
build --target builder -t onlybuilder "$ms" > "$tmp/out7"
grep -q "COPY --from=builder" "$tmp/out7" && fail "--target builder ran the final stage"
"$IB" run --rm onlybuilder sh -c 'test -x /out/app' || fail "--target builder did not build the builder"

# ---- a failing RUN ----
bad=$tmp/bad
mkdir -p "$bad"
printf 'FROM busybox\nRUN echo first-step > /f\nRUN echo some output; echo more output; exit 7\nRUN echo never\n' > "$bad/Dockerfile"
set +e
build -t badimg "$bad" > "$tmp/out8" 2>&1; rc=$?
set -e
cat "$tmp/out8"
[ $rc != 0 ] || fail "a failing RUN did not fail the build"
grep -q "\[2/3\]" "$tmp/out8" && grep -q "exit code 7" "$tmp/out8" && grep -q "more output" "$tmp/out8" ||
	fail "the error does not name the step, the exit code and the output"
[ -z "$("$IB" images -q badimg)" ] || fail "a failed build was tagged"
[ "$("$IB" images -q app:latest)" = "$(cut -c8-19 "$tmp/id5")" ] || fail "images REPOSITORY:TAG does not list app"
grep -q never "$tmp/out8" && fail "the build went on after a failing step"
printf 'FROM busybox\nRUN echo first-step > /f\nRUN echo fixed\n' > "$bad/Dockerfile"
build -t badimg "$bad" > "$tmp/out9" 2>&1
grep -q "^=> CACHED \[1/2\]" <(steps "$tmp/out9") || fail "the steps before the failure were not cached"

# ---- heredocs (RUN and COPY; BuildKit's dockerfile:1.4 syntax) ----
hd=$tmp/heredoc
mkdir -p "$hd"
cat > "$hd/Dockerfile" <<'OUTER'
FROM busybox
ARG WHO=heredocs
RUN <<EOF
echo "plain script $WHO" > /plain.txt
EOF
RUN cat <<EOF > /from-shell.txt
shell sees $WHO
EOF
RUN <<EOF
#!/usr/bin/awk -f
BEGIN { print "awk via shebang" > "/awk.txt" }
EOF
COPY <<a.txt <<'b.txt' /dest/
expanded ${WHO}
a.txt
raw ${WHO}
b.txt
COPY <<-EOF /single.txt
	tabbed $WHO
	EOF
OUTER
build -t heredoc "$hd" > "$tmp/out10" || { cat "$tmp/out10"; fail "the heredoc build failed"; }
got=$("$IB" run --rm heredoc sh -c 'cat /plain.txt /from-shell.txt /awk.txt /dest/a.txt /dest/b.txt /single.txt; test -e /.imagebuild-heredoc && echo LEFT-BEHIND; true' | tr '\n' '|')
[ "$got" = 'plain script heredocs|shell sees heredocs|awk via shebang|expanded heredocs|raw ${WHO}|tabbed heredocs|' ] ||
	fail "heredocs gave: $got"

# ---- RUN --mount: bind (context, stage), cache, tmpfs ----
mt=$tmp/mounts
mkdir -p "$mt/sub"
echo secret > "$mt/sub/ignored.txt"
echo visible > "$mt/sub/seen.txt"
printf 'sub/ignored.txt\n' > "$mt/.dockerignore"
cat > "$mt/Dockerfile" <<'OUTER'
FROM busybox AS tools
RUN mkdir -p /out && echo from-stage > /out/tool
FROM busybox
RUN --mount=type=bind,source=sub,target=/ctx ls /ctx > /ctx-list && cat /ctx/seen.txt >> /ctx-list
RUN --mount=type=bind,from=tools,source=/out,target=/t cat /t/tool > /stage.txt
RUN --mount=type=cache,target=/cache sh -c 'echo run >> /cache/count; wc -l < /cache/count > /cache-count'
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/f && ls /scratch > /tmpfs.txt'
RUN --mount=type=bind,source=sub,target=/rw,rw sh -c 'echo scribble > /rw/new'
OUTER
build -t mounts "$mt" > "$tmp/out11" || { cat "$tmp/out11"; fail "the RUN --mount build failed"; }
got=$("$IB" run --rm mounts sh -c 'cat /ctx-list /stage.txt /cache-count /tmpfs.txt; ls -d /ctx /t /cache /scratch /rw 2>/dev/null; true' | tr '\n' '|')
[ "$got" = "seen.txt|visible|from-stage|1|f|" ] || fail "RUN --mount gave: $got (ignored files, mount points or stage content wrong)"
[ ! -e "$mt/sub/new" ] || fail "a rw bind mount wrote into the context"
build --no-cache -t mounts "$mt" > /dev/null
[ "$("$IB" run --rm mounts cat /cache-count)" = 2 ] || fail "the cache mount did not persist"
echo changed > "$mt/sub/seen.txt"
build -t mounts "$mt" > "$tmp/out12" 2>&1
grep -q "^=> \[stage-1 1/5\] RUN --mount=type=bind,source=sub" <(steps "$tmp/out12") || fail "a changed bind source did not invalidate the step"

# ---- secrets: seen by the RUN, in no layer, config or cache key ----
sc=$tmp/secrets
mkdir -p "$sc"
printf s3cr3t-token > "$tmp/token"
cat > "$sc/Dockerfile" <<'OUTER'
FROM busybox
RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /token-length && stat -c '%a' /run/secrets/token > /token-mode
RUN --mount=type=secret,id=token,env=TOKEN,target=/tok sh -c 'test "$TOKEN" = "$(cat /tok)" && echo same > /env-and-file'
RUN --mount=type=secret,id=absent echo optional secrets may be missing > /optional
OUTER
build --secret id=token,src="$tmp/token" -t secrets "$sc" > "$tmp/out13" 2>&1 || { cat "$tmp/out13"; fail "the secrets build failed"; }
got=$("$IB" run --rm secrets sh -c 'cat /token-length /token-mode /env-and-file; test -e /run/secrets/token && echo LEFT; true' | tr '\n' '|')
[ "$got" = "12|400|same|" ] || fail "secrets gave: $got"
"$IB" save --format docker-archive -o "$tmp/secrets.tar" secrets
if grep -aq s3cr3t "$tmp/secrets.tar"; then fail "the secret is in the image"; fi
if grep -rqa s3cr3t "$IMAGEBUILD_ROOT/blobs" "$IMAGEBUILD_ROOT/cache"; then fail "the secret reached the store"; fi
echo "an0ther-token" > "$tmp/token"
build --secret id=token,src="$tmp/token" -t secrets "$sc" > "$tmp/out14" 2>&1
grep -q "^=> CACHED \[1/3\]" <(steps "$tmp/out14") || fail "a changed secret re-ran the step (it must not be in the key)"
printf 'FROM busybox\nRUN --mount=type=secret,id=needed,required cat /run/secrets/needed\n' > "$sc/Dockerfile"
if build -t secrets2 "$sc" > "$tmp/out15" 2>&1; then fail "a missing required secret did not fail"; fi
grep -q "secret \`needed\` is required" "$tmp/out15" || fail "unclear missing-secret error: $(cat "$tmp/out15")"

# ---- ADD <url> (a local HTTP server) ----
mkdir -p "$tmp/www" "$tmp/addurl"
printf downloaded > "$tmp/www/file.txt"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$port" >/dev/null 2>&1 &
http_pid=$!
trap 'kill $http_pid 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
sum=sha256:$(sha256sum "$tmp/www/file.txt" | cut -d' ' -f1)
cat > "$tmp/addurl/Dockerfile" <<OUTER
FROM busybox
ADD http://127.0.0.1:$port/file.txt /dl/
ADD --checksum=$sum http://127.0.0.1:$port/file.txt /dl/checked.txt
RUN stat -c '%a %u' /dl/file.txt > /dl-mode && cat /dl/file.txt /dl/checked.txt > /dl-content
OUTER
build -t addurl "$tmp/addurl" > "$tmp/out16" 2>&1 || { cat "$tmp/out16"; fail "ADD <url> failed"; }
got=$("$IB" run --rm addurl sh -c 'cat /dl-mode /dl-content' | tr '\n' '|')
[ "$got" = "600 0|downloadeddownloaded" ] || fail "ADD <url> gave: $got"
printf 'FROM busybox\nADD --checksum=sha256:%064d http://127.0.0.1:%s/file.txt /x\n' 0 "$port" > "$tmp/addurl/Dockerfile"
if build -t addurl2 "$tmp/addurl" > "$tmp/out17" 2>&1; then fail "a wrong --checksum was accepted"; fi
grep -q "checksum mismatch" "$tmp/out17" || fail "unclear checksum error: $(cat "$tmp/out17")"
printf 'FROM busybox\nADD http://127.0.0.1:%s/missing.txt /x\n' "$port" > "$tmp/addurl/Dockerfile"
if build -t addurl3 "$tmp/addurl" > "$tmp/out18" 2>&1; then fail "a 404 download was accepted"; fi
grep -q "missing.txt" "$tmp/out18" || fail "unclear download error: $(cat "$tmp/out18")"
# a redirect to another scheme (ftp://, file://) is never followed
rport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302); self.send_header("Location", "ftp://127.0.0.1:1" + self.path if "ftp" in self.path else "file:///etc/hostname"); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$rport" &
redir_pid=$!
trap 'kill $http_pid $redir_pid 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && break; sleep 0.05; done
for target in ftp file; do
	printf 'FROM busybox\nADD http://127.0.0.1:%s/%s /x\n' "$rport" "$target" > "$tmp/addurl/Dockerfile"
	if build -t addurl4 "$tmp/addurl" > "$tmp/out19" 2>&1; then fail "a redirect to $target:// was followed"; fi
	grep -Eqi "protocol .*(not supported|disabled)|scheme .(ftp|file). \(only http and https" "$tmp/out19" || fail "a redirect to $target:// was tried: $(cat "$tmp/out19")"
done

# ---- ADD of an empty tar (only its end blocks) copies the file, as Docker's isArchivePath ----
mkdir -p "$tmp/emptytar"
tar -cf "$tmp/emptytar/empty.tar" -T /dev/null
printf 'FROM busybox\nADD empty.tar /x/\n' > "$tmp/emptytar/Dockerfile"
build -t emptytar "$tmp/emptytar" > "$tmp/out20" 2>&1 || { cat "$tmp/out20"; fail "ADD of an empty tar failed"; }
[ "$("$IB" run --rm emptytar stat -c %s /x/empty.tar)" = "$(stat -c %s "$tmp/emptytar/empty.tar")" ] ||
	fail "ADD of an empty tar did not copy it"

# ---- dry run ----
build --dry-run --target builder "$ms" | grep -q 'target: stage 0 (builder)' || fail "--dry-run did not print the plan"

# ---- prune frees what no image uses ----
"$IB" rmi multi onlybuilder >/dev/null
# an imported image (no cache entry holds its layer), unpacked by a run and
# removed: the CLI's prune frees its unpacked layer too, not only its blob
cp "$tmp/busybox.tar" "$tmp/gone.tar"
/usr/bin/python3 - "$tmp/gone.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "a") as t:
    i = tarfile.TarInfo("gone")
    i.size = 5
    t.addfile(i, io.BytesIO(b"gone\n"))
PY
"$IB" import "$tmp/gone.tar" gone >/dev/null
[ "$("$IB" run --snapshotter "$SNAP" --rm gone cat /gone)" = gone ] || fail "the imported image does not run"
gone=$("$IB" inspect gone | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["RootFS"]["Layers"][0].split(":")[1])')
unpacked=$IMAGEBUILD_ROOT/snapshots/overlay/layers/$gone
[ "$SNAP" != overlay ] || [ -d "$unpacked" ] || fail "overlay did not keep the run's layer unpacked (the check below would prove nothing)"
"$IB" rmi gone >/dev/null
out=$("$IB" prune)
echo "$out"
[ ! -e "$unpacked" ] || fail "prune left the unpacked layer of a removed image"
[ "$SNAP" != overlay ] || echo "$out" | grep -q "Deleted snapshots and unpacked layers: [1-9]" ||
	fail "prune says it freed no unpacked layer"
"$IB" fsck >/dev/null || fail "fsck failed after prune"
[ "$("$IB" run --rm app)" = "hello from v2 with flask" ] || fail "prune broke a tagged image"
echo "build: ok ($SNAP)"
