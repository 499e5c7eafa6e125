#!/bin/bash
# The `imagebuild build` flags CI uses daily, end to end (issue 15): --output
# in each of buildx's exporter types, read back by skopeo, umoci and podman;
# --metadata-file's buildx keys against what the archive holds; --label and
# --annotation in what skopeo sees; --platform of the host, several with a local output refused;
# contexts from stdin (`build -` with a Dockerfile or a tar, -f-) and from a
# git URL (git daemon on loopback); --no-cache-filter; --build-context; and
# clear refusals of what is not supported. (RUN's --add-host, --ulimit and
# --shm-size, labels and named contexts in the image are build-compat cases.)
set -euo pipefail
IB=$IMAGEBUILD
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
. "$IB_SOURCE_ROOT/tests/common/progress.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"
for t in skopeo umoci podman git python3; do
	command -v "$t" >/dev/null || skip_or_fail "$t is not installed"
done
tmp=$(mktemp -d /tmp/ibtest-build-cli-XXXXXX)
dpid=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	[ -z "$dpid" ] || kill "$dpid" 2>/dev/null || true
	wait 2>/dev/null || true
	podman rmi -f ibtest-build-cli/out:1 >/dev/null 2>&1 || true
	awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
export TMPDIR=$tmp
fail() { echo "FAIL: $*" >&2; exit 1; }
py() { /usr/bin/python3 -c "$@"; }

sh "$IB_MAKE_BUSYBOX" "$tmp/busybox.tar" || skip_or_fail "busybox-static is not installed"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null

ctx=$tmp/ctx
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'EOF'
FROM busybox AS base
RUN echo base > /base.txt
FROM base
LABEL from.dockerfile=1
RUN echo final > /final.txt && rm -f /base.txt
EOF
tag=ibtest-build-cli/out:1

# ---- --output type=oci: an OCI archive (skopeo, umoci), with the label and annotation ----
"$IB" build -q -t "$tag" --label org.example.label=L --annotation org.example.note=N \
	--annotation manifest:org.example.typed=T -o type=oci,dest="$tmp/oci.tar" \
	--metadata-file "$tmp/meta-oci.json" "$ctx" >/dev/null
skopeo inspect oci-archive:"$tmp/oci.tar" >"$tmp/oci.inspect"
py 'import json,sys; d=json.load(open(sys.argv[1])); assert d["Labels"]["org.example.label"]=="L", d; assert d["Labels"]["from.dockerfile"]=="1", d' \
	"$tmp/oci.inspect" || fail "skopeo does not see --label in the oci output"
skopeo inspect --raw oci-archive:"$tmp/oci.tar" >"$tmp/oci.manifest"
py 'import json,sys; a=json.load(open(sys.argv[1]))["annotations"]; assert a=={"org.example.note":"N","org.example.typed":"T"}, a' \
	"$tmp/oci.manifest" || fail "the manifest lacks the --annotation values: $(cat "$tmp/oci.manifest")"
mkdir "$tmp/oci-layout"
tar -xf "$tmp/oci.tar" -C "$tmp/oci-layout"
umoci unpack --image "$tmp/oci-layout:1" "$tmp/bundle" >/dev/null
[ "$(cat "$tmp/bundle/rootfs/final.txt")" = final ] || fail "umoci: /final.txt is not in the oci output"
[ ! -e "$tmp/bundle/rootfs/base.txt" ] || fail "umoci: the whiteout of /base.txt was not applied"
# --metadata-file: buildx's keys, the digests those of the archive's manifest and config
py 'import json,sys,hashlib
m=json.load(open(sys.argv[1])); idx=json.load(open(sys.argv[2]+"/index.json"))["manifests"][0]
raw=open(sys.argv[3],"rb").read()
assert m["containerimage.digest"]==idx["digest"]=="sha256:"+hashlib.sha256(raw).hexdigest(), (m, idx)
d=m["containerimage.descriptor"]
assert d=={"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":idx["digest"],"size":idx["size"]}, d
assert m["containerimage.config.digest"]==json.loads(raw)["config"]["digest"], m
assert m["image.name"]=="docker.io/ibtest-build-cli/out:1", m
' "$tmp/meta-oci.json" "$tmp/oci-layout" "$tmp/oci.manifest" || fail "--metadata-file: $(cat "$tmp/meta-oci.json")"
# without --output (the store): image.name as given, the same digests
"$IB" build -q -t "$tag" --label org.example.label=L --annotation org.example.note=N \
	--annotation manifest:org.example.typed=T --metadata-file "$tmp/meta.json" "$ctx" >/dev/null
py 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
assert a["image.name"]=="ibtest-build-cli/out:1", a
assert {k:v for k,v in a.items() if k!="image.name"}=={k:v for k,v in b.items() if k!="image.name"}, (a,b)' \
	"$tmp/meta.json" "$tmp/meta-oci.json" || fail "--metadata-file of the store: $(cat "$tmp/meta.json")"

# ---- type=oci,tar=false: a layout directory ----
"$IB" build -q -t "$tag" -o type=oci,dest="$tmp/oci-dir",tar=false "$ctx" >/dev/null
skopeo inspect oci:"$tmp/oci-dir":1 >/dev/null || fail "skopeo cannot read the oci directory output"

# ---- type=docker: a docker-archive (skopeo, podman load) ----
"$IB" build -q -t "$tag" --label org.example.label=D -o type=docker,dest="$tmp/docker.tar" "$ctx" >/dev/null
skopeo inspect docker-archive:"$tmp/docker.tar" >"$tmp/docker.inspect"
py 'import json,sys; assert json.load(open(sys.argv[1]))["Labels"]["org.example.label"]=="D"' "$tmp/docker.inspect" ||
	fail "skopeo does not see --label in the docker output"
podman load -i "$tmp/docker.tar" >/dev/null 2>&1 || fail "podman load of the docker output failed"
[ "$(podman image inspect --format '{{index .Labels "org.example.label"}}' "$tag")" = D ] ||
	fail "podman does not see the label"
# to stdout: only the archive there (the progress goes to stderr)
"$IB" build -t "$tag" -o type=docker,dest=- "$ctx" >"$tmp/docker-stdout.tar" 2>"$tmp/err"
skopeo inspect docker-archive:"$tmp/docker-stdout.tar" >/dev/null || fail "dest=- of a docker output is not an archive"
grep -q '^Successfully built' "$tmp/err" || fail "the build's messages did not go to stderr"

# ---- type=tar (the flat root filesystem), to a file and to stdout (-o -) ----
"$IB" build -q -t "$tag" -o type=tar,dest="$tmp/rootfs.tar" "$ctx" >/dev/null
tar -tf "$tmp/rootfs.tar" >"$tmp/rootfs.list"
grep -qx 'final.txt' "$tmp/rootfs.list" || fail "the rootfs tar lacks final.txt"
grep -qx 'bin/busybox' "$tmp/rootfs.list" || fail "the rootfs tar lacks the base's bin/busybox"
! grep -q 'base.txt\|\.wh\.' "$tmp/rootfs.list" || fail "the rootfs tar holds a deleted file or a whiteout"
"$IB" build -t "$tag" -o - "$ctx" >"$tmp/stdout.tar" 2>/dev/null
[ "$(tar -xOf "$tmp/stdout.tar" final.txt)" = final ] || fail "-o - did not write the rootfs tar to stdout"

# ---- type=local (a directory), and a bare path is local ----
"$IB" build -q -t "$tag" -o type=local,dest="$tmp/local" "$ctx" >/dev/null
[ "$(cat "$tmp/local/final.txt")" = final ] && [ ! -e "$tmp/local/base.txt" ] || fail "type=local"
"$IB" build -q -t "$tag" -o "$tmp/local2" --metadata-file "$tmp/meta-local.json" "$ctx" >/dev/null
[ -x "$tmp/local2/bin/busybox" ] || fail "-o PATH did not write a directory"
py 'import json,sys; assert json.load(open(sys.argv[1]))=={}' "$tmp/meta-local.json" ||
	fail "a local output has no image: buildx writes no image keys"

# ---- refused, never ignored ----
refused() { # refused WHAT EXPECTED-TEXT ARGS...: the build fails and says why
	local what=$1 text=$2
	shift 2
	if "$IB" build "$@" >"$tmp/out" 2>"$tmp/err"; then fail "$what was accepted"; fi
	grep -qF -- "$text" "$tmp/err" || fail "$what: $(cat "$tmp/err")"
}
case $(uname -m) in x86_64) arch=amd64 other=arm64 ;; aarch64) arch=arm64 other=amd64 ;; *) arch=$(uname -m) other=s390x ;; esac
# other platforms: tests/integration/platform.sh; a local file system output of several is refused
refused "--platform a,b -o type=local" "type=local and type=tar of several platforms are not supported" \
	--platform "linux/$arch,linux/$other" -o "$tmp/several" "$ctx"
refused "--platform nonsense" "invalid platform" --platform "linux/a b" "$ctx"
"$IB" build -q --platform "linux/$arch" "$ctx" >/dev/null || fail "--platform of the host was refused"
refused "--output type=registry" "type \`registry\` is not supported" -o type=registry "$ctx"
refused "--output name=" "the attribute \`name\` is not supported" -o type=oci,dest="$tmp/x.tar",name=x "$ctx"
refused "two --output" "only one --output" -o "$tmp/a" -o "$tmp/b" "$ctx"
refused "--ulimit bogus" "invalid ulimit type: bogus" --ulimit bogus=1 "$ctx"
refused "--ulimit soft > hard" "soft limit must be less than or equal to hard limit" --ulimit nofile=10:5 "$ctx"
refused "--add-host without IP" "invalid IP address in add-host: nope" --add-host h:nope "$ctx"
refused "--shm-size junk" "--shm-size 12q: invalid size" --shm-size 12q "$ctx"
refused "--annotation index:" "only the manifest type" --annotation index:k=v "$ctx"
refused "a --build-context that is no directory" "not a directory" --build-context base="$tmp/nothere" "$ctx"
refused "an oci-layout --build-context of a missing tag" "index.json\` has no image tagged nope" \
	--build-context base=oci-layout://"$tmp/oci-layout:nope" "$ctx"
refused "an https tarball context" "only local directories and git repositories" https://example.invalid/ctx.tar.gz

# ---- --build-context docker-image:// (image and stage replacement) ----
printf 'FROM notthere:1\nRUN echo ok > /ok\n' >"$tmp/nc.Dockerfile"
"$IB" build -q -t nc:1 -f "$tmp/nc.Dockerfile" --build-context notthere:1=docker-image://busybox "$ctx" >/dev/null ||
	fail "FROM of a named context"
"$IB" build -q -t nc:2 --build-context base=docker-image://busybox -o "$tmp/nc" "$ctx" >/dev/null
[ -e "$tmp/nc/final.txt" ] && [ -x "$tmp/nc/bin/busybox" ] || fail "a stage replaced by a named context"

# a directory (its .dockerignore applied, owners 0:0 as buildx sends them) for COPY --from
mkdir -p "$tmp/files/sub"
echo hello >"$tmp/files/sub/h"
echo secret >"$tmp/files/skip.txt"
echo skip.txt >"$tmp/files/.dockerignore"
chown 1234:1234 "$tmp/files/sub/h"
printf 'FROM busybox\nCOPY --from=files / /all/\nRUN stat -c %%u:%%g /all/sub/h > /owner\n' >"$tmp/dc.Dockerfile"
"$IB" build -q -f "$tmp/dc.Dockerfile" --build-context files="$tmp/files" -o "$tmp/dc" "$ctx" >/dev/null ||
	fail "a directory as a named context"
[ "$(cat "$tmp/dc/all/sub/h")" = hello ] && [ ! -e "$tmp/dc/all/skip.txt" ] && [ -e "$tmp/dc/all/.dockerignore" ] ||
	fail "the directory context's files (and its .dockerignore)"
[ "$(cat "$tmp/dc/owner")" = 0:0 ] || fail "the directory context's owners: $(cat "$tmp/dc/owner")"

# an OCI layout (by tag, by digest, gzip layers): the image it holds, the layout unchanged
printf 'FROM busybox\nCOPY --from=lay /final.txt /from-layout\n' >"$tmp/ol.Dockerfile"
"$IB" build -q -f "$tmp/ol.Dockerfile" --build-context lay=oci-layout://"$tmp/oci-layout:1" -o "$tmp/ol1" "$ctx" \
	>/dev/null || fail "an oci-layout context by tag"
[ "$(cat "$tmp/ol1/from-layout")" = final ] || fail "the oci-layout context's file"
mdigest=$(py 'import json,sys; print(json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"])' "$tmp/oci-layout")
skopeo copy -q oci:"$tmp/oci-layout":1 oci:"$tmp/oci-gz":v2 --dest-compress-format gzip --dest-compress
"$IB" build -q -f "$tmp/ol.Dockerfile" --build-context lay=oci-layout://"$tmp/oci-layout@$mdigest" -o "$tmp/ol2" "$ctx" \
	>/dev/null && [ -e "$tmp/ol2/from-layout" ] || fail "an oci-layout context by digest"
"$IB" build -q -f "$tmp/ol.Dockerfile" --build-context lay=oci-layout://"$tmp/oci-gz:v2" -o "$tmp/ol3" "$ctx" \
	>/dev/null && [ -e "$tmp/ol3/from-layout" ] || fail "an oci-layout context with gzip layers"

# ---- --no-cache-filter: that stage's steps run again, the others come from the cache ----
"$IB" build -t "$tag" "$ctx" >/dev/null
"$IB" build -t "$tag" --no-cache-filter BASE "$ctx" 2>"$tmp/out" >/dev/null
grep -q '^=> \[base 1/1\] RUN' <(steps "$tmp/out") || fail "--no-cache-filter base used the cache: $(cat "$tmp/out")"
grep -q '^=> CACHED \[stage-1 1/2\] LABEL' <(steps "$tmp/out") || fail "--no-cache-filter base did not use the cache elsewhere"
"$IB" build -t "$tag" --no-cache-filter nosuchstage "$ctx" 2>"$tmp/out" >/dev/null
grep -q '^=> CACHED' <(steps "$tmp/out") || fail "--no-cache-filter of no stage: no step seen: $(cat "$tmp/out")"
! grep -q '^=> \[' <(steps "$tmp/out") || fail "--no-cache-filter of no stage ran a step"

# ---- contexts from stdin ----
printf 'FROM busybox\nRUN echo stdin > /s\n' | "$IB" build -q -t stdin:1 - >/dev/null ||
	fail "build - with a Dockerfile on stdin"
"$IB" build -q -o "$tmp/s1" -t stdin:1 - <<<$'FROM busybox\nRUN echo stdin > /s\n' >/dev/null
[ "$(cat "$tmp/s1/s")" = stdin ] || fail "build - (Dockerfile) built something else"
printf 'FROM busybox\nCOPY f /f\n' | "$IB" build -q -t stdin:2 - >/dev/null 2>"$tmp/err" &&
	fail "COPY with a Dockerfile on stdin found a context" || true
mkdir -p "$tmp/tarctx/sub"
echo intar >"$tmp/tarctx/f"
printf 'FROM busybox\nCOPY f /f\n' >"$tmp/tarctx/sub/Build.Dockerfile"
tar -C "$tmp/tarctx" -cf - . | "$IB" build -q -f sub/Build.Dockerfile -o "$tmp/s2" - >/dev/null ||
	fail "build - with a context tar and -f inside it"
[ "$(cat "$tmp/s2/f")" = intar ] || fail "build - (tar) lost the context"
tar -C "$tmp/tarctx" -czf - . | "$IB" build -q -f sub/Build.Dockerfile -o "$tmp/s3" - >/dev/null ||
	fail "build - with a gzip context tar"
printf 'FROM busybox\nCOPY f /g\n' | "$IB" build -q -f- -o "$tmp/s4" "$tmp/tarctx" >/dev/null
[ "$(cat "$tmp/s4/g")" = intar ] || fail "-f- with a context directory"
refused "- for both" "cannot both come from stdin" -f- - </dev/null

# ---- a git URL as the context ----
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
mkdir -p "$tmp/repos/r/sub"
git -C "$tmp/repos/r" init -q -b main
printf 'FROM busybox\nCOPY f /f\n' >"$tmp/repos/r/sub/Dockerfile"
echo fromgit >"$tmp/repos/r/sub/f"
printf 'FROM busybox\nCOPY sub/f /g\n' >"$tmp/repos/r/Other.Dockerfile"
git -C "$tmp/repos/r" add -A
git -C "$tmp/repos/r" commit -qm one
port=$(py 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
git daemon --export-all --base-path="$tmp/repos" --port="$port" --listen=127.0.0.1 --reuseaddr 2>/dev/null &
dpid=$!
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
"$IB" build -q -o "$tmp/g1" "git://127.0.0.1:$port/r#main:sub" >/dev/null || fail "a git context with #ref:subdir"
[ "$(cat "$tmp/g1/f")" = fromgit ] || fail "the git context's file"
"$IB" build -q -o "$tmp/g2" -f Other.Dockerfile "git://127.0.0.1:$port/r" >/dev/null ||
	fail "a git context with -f inside it"
[ "$(cat "$tmp/g2/g")" = fromgit ] || fail "-f of a git context"

echo "all build CLI flag tests passed"
