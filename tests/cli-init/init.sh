#!/bin/bash
# imagebuild init, end to end: on a sample project of every stack
# (tests/cli-init/projects/), with stdin not a terminal, it writes a
# Dockerfile, a .dockerignore and a compose.yaml; the Dockerfile parses
# (parse-dump --typed), passes the build checks (build --check) and plans
# (build --dry-run) with the stack's pinned base image, cache mounts and a
# non-root user; compose.yaml is YAML naming the final stage and the port;
# the .dockerignore keeps VCS and secrets out. The generic template builds
# on the offline busybox base and runs as an unprivileged user, with the
# ignored files absent. Existing files are never replaced without --force
# (nothing written, exit 1), a missing start command is an error naming
# --cmd, flags override detection, and the terminal prompts work.
# Every check runs and the failures are listed at the end.
# Usage: init.sh IMAGEBUILD PARSE_DUMP
set -uo pipefail
IB=$1 PARSE_DUMP=$2
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"
export IMAGEBUILD_INIT_TEMPLATES=${IB_INIT_TEST_TEMPLATES:-$IB_SOURCE_ROOT/examples/imagebuild/init}
projects=$IB_SOURCE_ROOT/tests/cli-init/projects
python=/usr/bin/python3
"$python" -c 'import yaml' 2>/dev/null || skip_or_fail "python3-yaml is not installed"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-init-XXXXXX")
cleanup() { umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
failures=()
check() { echo "FAIL: $*" >&2; failures+=("$*"); }
has() { grep -qF -- "$2" "$1" || check "$3: no \`$2\` in $1: $(cat "$1")"; }
has_line() { grep -qxF -- "$2" "$1" || check "$3: no line \`$2\` in $1"; }
hasnt() { ! grep -qF -- "$2" "$1" || check "$3: unexpected \`$2\` in $1"; }

# init PROJECT [FLAGS...]: a fresh copy of the sample in $tmp/PROJECT, init'ed
init_copy() {
	local p=$1
	shift
	rm -rf "${tmp:?}/$p"
	cp -r "$projects/${p%%+*}" "$tmp/$p"
	"$IB" init "$@" "$tmp/$p" </dev/null >"$tmp/$p.out" 2>"$tmp/$p.err"
}

# compose.yaml: services.server.build {context: ., target: final}, ports as
# given. Collected here, checked by one python3 run at the end (it is slow to start).
compose_checks=()
compose_ok() { # DIR PORT|"" LABEL
	compose_checks+=("$1/compose.yaml" "$2" "$3")
}
compose_verify() {
	local out
	out=$("$python" - "${compose_checks[@]}" <<'PY'
import sys, yaml
a = sys.argv[1:]
for path, port, label in zip(a[0::3], a[1::3], a[2::3]):
    try:
        doc = yaml.safe_load(open(path))
        srv = doc["services"]["server"]
        assert srv["build"] == {"context": ".", "target": "final"}, srv["build"]
        if port:
            assert srv["ports"] == [f"{port}:{port}"], srv.get("ports")
        else:
            assert "ports" not in srv, srv
    except Exception as e:
        print(f"{label}: {path}: {type(e).__name__}: {e}")
PY
)
	[ $? = 0 ] || check "compose.yaml checks did not run"
	[ -z "$out" ] || check "compose.yaml: $out"
}

# stack checks: project, expected lines of the plan (base images) and of the Dockerfile
verify() { # PROJECT PORT PLAN-STRINGS(|-separated) DOCKERFILE-STRINGS(|-separated)
	local p=$1 port=$2 d=$tmp/$1 s
	for f in Dockerfile .dockerignore compose.yaml; do
		[ -s "$d/$f" ] || check "$p: no $f written: $(cat "$tmp/$p.err")"
	done
	[ -s "$d/Dockerfile" ] || return
	[ "$(head -n 1 "$d/Dockerfile")" = "# syntax=docker/dockerfile:1" ] || check "$p: Dockerfile does not start with the syntax line"
	has "$tmp/$p.out" "Created Dockerfile" "$p"
	"$PARSE_DUMP" --typed "$d/Dockerfile" >"$tmp/$p.dump" 2>"$tmp/$p.dump.err" ||
		check "$p: parse-dump failed: $(cat "$tmp/$p.dump.err")"
	[ ! -s "$tmp/$p.dump.err" ] || check "$p: parser warnings: $(cat "$tmp/$p.dump.err")"
	"$IB" build --check "$d" >"$tmp/$p.check" 2>&1 || check "$p: build --check failed: $(cat "$tmp/$p.check")"
	has "$tmp/$p.check" "Check complete, no warnings found." "$p: --check"
	"$IB" build --dry-run "$d" >"$tmp/$p.plan" 2>&1 || check "$p: build --dry-run failed: $(cat "$tmp/$p.plan")"
	has "$tmp/$p.plan" 'stage' "$p: --dry-run"
	IFS='|' read -ra want <<<"$3"
	for s in "${want[@]}"; do has "$tmp/$p.plan" "$s" "$p: plan"; done
	IFS='|' read -ra want <<<"$4"
	for s in "${want[@]}"; do has "$d/Dockerfile" "$s" "$p: Dockerfile"; done
	grep -q '^USER ' "$d/Dockerfile" || check "$p: no USER in the Dockerfile"
	! grep -qE '^USER (root|0)(:|$)' "$d/Dockerfile" || check "$p: runs as root"
	grep -qE '^ENTRYPOINT \[|^CMD \[|^FROM php:' "$d/Dockerfile" || check "$p: no exec-form start command"
	for s in '**/.git' '**/.env' '**/.env.*' '**/*.pem' '**/*.key' '**/id_rsa*'; do has_line "$d/.dockerignore" "$s" "$p: .dockerignore"; done
	compose_ok "$d" "$port" "$p"
}

# ---- every stack, detected ----
init_copy go || check "go: init failed: $(cat "$tmp/go.err")"
verify go 8080 'FROM golang:1.22-alpine (image)|FROM alpine:3.21 (image)|EXPOSE 8080' \
	'--mount=type=cache,target=/go/pkg/mod/|--mount=type=bind,source=go.mod,target=go.mod|AS build|AS final|ENTRYPOINT [ "/bin/server" ]'
hasnt "$tmp/go/Dockerfile" 'source=go.sum' "go: no go.sum, no bind of it"
has_line "$tmp/go/.dockerignore" '**/vendor' "go: .dockerignore"
init_copy python-pip || check "python-pip: init failed: $(cat "$tmp/python-pip.err")"
verify python-pip 8000 'FROM python:3.12-slim (image)' \
	'--mount=type=cache,target=/root/.cache/pip|source=requirements.txt|CMD [ "python", "app.py" ]|USER appuser'
has_line "$tmp/python-pip/.dockerignore" '**/__pycache__' "python-pip: .dockerignore"
init_copy python-poetry || check "python-poetry: init failed: $(cat "$tmp/python-poetry.err")"
verify python-poetry 8000 'FROM python:3.13-slim (image)' \
	'poetry==2.1.1|--mount=type=cache,target=/root/.cache/pypoetry|source=poetry.lock|poetry install --only main --no-root|CMD [ "python", "main.py" ]'
init_copy python-uv || check "python-uv: init failed: $(cat "$tmp/python-uv.err")"
verify python-uv 8000 'FROM python:3.13-slim (image)|ghcr.io/astral-sh/uv:0.6.3' \
	'--mount=type=cache,target=/root/.cache/uv|source=uv.lock|uv sync --locked --no-install-project --no-dev'
init_copy python-project || check "python-project: init failed: $(cat "$tmp/python-project.err")"
verify python-project 8000 'FROM python:3.13-slim (image)' 'python -m pip install .|--mount=type=cache,target=/root/.cache/pip|CMD [ "python", "app.py" ]'
init_copy node-npm || check "node-npm: init failed: $(cat "$tmp/node-npm.err")"
verify node-npm 3000 'FROM node:20-alpine (image)' \
	'npm ci --omit=dev|--mount=type=cache,target=/root/.npm|source=package-lock.json|USER node|CMD [ "node", "index.js" ]'
has_line "$tmp/node-npm/.dockerignore" '**/node_modules' "node-npm: .dockerignore"
init_copy node-yarn || check "node-yarn: init failed: $(cat "$tmp/node-yarn.err")"
verify node-yarn 3000 'FROM node:22-alpine (image)' \
	'yarn install --production --frozen-lockfile|--mount=type=cache,target=/usr/local/share/.cache/yarn|CMD [ "node", "server.js" ]'
init_copy node-pnpm || check "node-pnpm: init failed: $(cat "$tmp/node-pnpm.err")"
verify node-pnpm 3000 'FROM node:22-alpine (image)' \
	'pnpm@${PNPM_VERSION}|ARG PNPM_VERSION=9.15.4|pnpm install --prod --frozen-lockfile|CMD [ "pnpm", "start" ]'
init_copy rust || check "rust: init failed: $(cat "$tmp/rust.err")"
verify rust 8000 'FROM rust:1.85-alpine (image)|FROM alpine:3.21 (image)' \
	'ARG APP_NAME=hello-server|--mount=type=cache,target=/usr/local/cargo/registry/|source=Cargo.lock|cargo build --locked --release'
has_line "$tmp/rust/.dockerignore" '**/target' "rust: .dockerignore"
init_copy java-maven || check "java-maven: init failed: $(cat "$tmp/java-maven.err")"
verify java-maven 8080 'FROM maven:3.9.9-eclipse-temurin-17 (image)|FROM eclipse-temurin:17-jre-jammy (image)' \
	'--mount=type=cache,target=/root/.m2|mvn --batch-mode package -DskipTests|ENTRYPOINT [ "java", "-jar", "/app/app.jar" ]'
init_copy java-gradle || check "java-gradle: init failed: $(cat "$tmp/java-gradle.err")"
verify java-gradle 8080 'FROM gradle:8.12-jdk21 (image)|FROM eclipse-temurin:21-jre-jammy (image)' \
	'--mount=type=cache,target=/home/gradle/.gradle/caches|gradle --no-daemon assemble'
init_copy dotnet || check "dotnet: init failed: $(cat "$tmp/dotnet.err")"
verify dotnet 8080 'FROM mcr.microsoft.com/dotnet/sdk:8.0-alpine (image)|FROM mcr.microsoft.com/dotnet/aspnet:8.0-alpine (image)' \
	'--mount=type=cache,id=nuget,target=/root/.nuget/packages|dotnet publish "Hello.csproj"|ENTRYPOINT [ "dotnet", "Hello.dll" ]'
has_line "$tmp/dotnet/.dockerignore" '**/obj' "dotnet: .dockerignore"
init_copy php || check "php: init failed: $(cat "$tmp/php.err")"
verify php 80 'FROM composer:2.8 (image)|FROM php:8.3-apache (image)' \
	'--mount=type=cache,target=/tmp/cache|source=composer.lock|USER www-data'
hasnt "$tmp/php/Dockerfile" 'Listen' "php: port 80 is Apache's own"

# ---- the generic template: --cmd is needed, then it builds and runs on busybox ----
init_copy other
rc=$?
[ "$rc" = 125 ] || check "other without --cmd exited $rc, not 125"
has "$tmp/other.err" "--cmd" "other without --cmd"
[ -z "$(ls -A "$tmp/other" | grep -v hello.sh)" ] || check "other without --cmd wrote files: $(ls -A "$tmp/other")"
init_copy other --cmd "./hello.sh" || check "other: init failed: $(cat "$tmp/other.err")"
verify other "" 'FROM alpine:3.21 (image)' 'ARG BASE_IMAGE=alpine:3.21|USER 10001:10001|CMD [ "./hello.sh" ]'
hasnt "$tmp/other/Dockerfile" 'EXPOSE' "other: no port, no EXPOSE"

not_root=
if [ "$(id -u)" != 0 ]; then
	not_root=1 # the rest runs; a skip at the end when nothing else failed
else
	"$IB_SOURCE_ROOT/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar" || skip_or_fail "busybox-static is not installed"
	"$IB" import "$tmp/busybox.tar" busybox >/dev/null || check "import busybox"
	# what the .dockerignore keeps out
	mkdir -p "$tmp/other/.git" && echo "[core]" >"$tmp/other/.git/config"
	echo "PASSWORD=hunter2" >"$tmp/other/.env"
	echo "-----BEGIN PRIVATE KEY-----" >"$tmp/other/server.pem"
	"$IB" build --snapshotter copy --build-arg BASE_IMAGE=busybox -t init-generic "$tmp/other" >"$tmp/build.out" 2>&1 ||
		check "generic build failed: $(cat "$tmp/build.out")"
	"$IB" run --snapshotter copy --rm init-generic >"$tmp/run.out" 2>&1 || check "generic run failed: $(cat "$tmp/run.out")"
	has "$tmp/run.out" "hello from 10001" "generic run (unprivileged)"
	"$IB" run --snapshotter copy --rm init-generic ls -a /app >"$tmp/ls.out" 2>&1 || check "ls /app failed: $(cat "$tmp/ls.out")"
	has "$tmp/ls.out" "hello.sh" "generic image's /app"
	for f in .git .env server.pem Dockerfile .dockerignore compose.yaml; do
		! grep -qx -- "$f" "$tmp/ls.out" || check "generic image holds $f, which .dockerignore names"
	done
fi

# ---- never overwrite without --force ----
for existing in Dockerfile .dockerignore compose.yaml docker-compose.yml; do
	d=$tmp/exist-$existing
	rm -rf "$d" && cp -r "$projects/go" "$d"
	echo "mine" >"$d/$existing"
	"$IB" init "$d" </dev/null >"$tmp/exist.out" 2>"$tmp/exist.err"
	rc=$?
	[ "$rc" = 1 ] || check "init over an existing $existing exited $rc, not 1"
	has "$tmp/exist.err" "$existing" "refusal names $existing"
	has "$tmp/exist.err" "--force" "refusal names --force"
	[ "$(cat "$d/$existing")" = mine ] || check "init changed the existing $existing"
	[ "$(ls -A "$d" | sort | tr '\n' ' ')" = "$(ls -A "$projects/go" | { cat; echo "$existing"; } | sort | tr '\n' ' ')" ] ||
		check "init over $existing wrote other files: $(ls -A "$d")"
	"$IB" init --force "$d" </dev/null >"$tmp/exist.out" 2>"$tmp/exist.err" || check "--force over $existing failed: $(cat "$tmp/exist.err")"
	[ "$(cat "$d/$existing")" != mine ] || check "--force did not replace $existing"
	has "$d/Dockerfile" "FROM golang:" "--force over $existing"
	[ -z "$(find "$d" -name '.*imagebuild-init-*')" ] || check "temporary files left in $d"
done
# an existing docker-compose.yml is the Compose file replaced (as docker init does), no second one
[ ! -e "$tmp/exist-docker-compose.yml/compose.yaml" ] || check "a compose.yaml beside the existing docker-compose.yml"
has "$tmp/exist-docker-compose.yml/docker-compose.yml" "target: final" "--force over docker-compose.yml"

# ---- flags ----
init_copy go+flags --language other --cmd 'sh -c "echo $HOME" | cat' --port 9000 || check "--language other on go: $(cat "$tmp/go+flags.err")"
has "$tmp/go+flags/Dockerfile" 'CMD [ "/bin/sh", "-c", "sh -c \"echo $HOME\" | cat" ]' "--cmd with shell syntax"
has "$tmp/go+flags/Dockerfile" 'EXPOSE 9000' "--port"
compose_ok "$tmp/go+flags" 9000 "--port"
init_copy go+ver --language-version 1.23.4 --port 8081 || check "--language-version: $(cat "$tmp/go+ver.err")"
has "$tmp/go+ver/Dockerfile" 'ARG GO_VERSION=1.23.4' "--language-version"
compose_ok "$tmp/go+ver" 8081 "--port on go"
init_copy node-npm+pm --package-manager pnpm || check "--package-manager pnpm: $(cat "$tmp/node-npm+pm.err")"
has "$tmp/node-npm+pm/Dockerfile" 'pnpm install --prod' "--package-manager pnpm"
hasnt "$tmp/node-npm+pm/Dockerfile" 'frozen-lockfile' "--package-manager pnpm without pnpm-lock.yaml"
"$IB" build --check "$tmp/node-npm+pm" >"$tmp/pm.check" 2>&1 || check "--package-manager pnpm: --check: $(cat "$tmp/pm.check")"
init_copy python-pip+uv --package-manager uv --cmd "uvicorn app:app --host 0.0.0.0" || check "--package-manager uv: $(cat "$tmp/python-pip+uv.err")"
has "$tmp/python-pip+uv/Dockerfile" 'uv sync --no-install-project' "--package-manager uv without uv.lock"
has "$tmp/python-pip+uv/Dockerfile" 'CMD [ "uvicorn", "app:app", "--host", "0.0.0.0" ]' "--cmd words"
refused() { # FLAG ARGS...: init with ARGS exits 125 (as docker on a bad flag), names FLAG, writes nothing
	local flag=$1
	shift
	rm -rf "$tmp/bad" && cp -r "$projects/go" "$tmp/bad"
	"$IB" init "$@" "$tmp/bad" </dev/null >"$tmp/bad.out" 2>"$tmp/bad.err"
	local rc=$?
	[ "$rc" = 125 ] || check "init $* exited $rc, not 125: $(cat "$tmp/bad.err")"
	has "$tmp/bad.err" "$flag" "init $* names $flag"
	[ ! -e "$tmp/bad/Dockerfile" ] || check "init $* wrote a Dockerfile"
}
refused --language --language cobol
refused --package-manager --package-manager yarn
refused --port --port 70000
refused --port --port x
refused --cmd --cmd ./x
refused --language-version --language-version '1.2;rm'
refused --cmd --language other --cmd "'unbalanced"
refused --bogus --bogus
# no IMAGEBUILD_INIT_TEMPLATES: the installed templates, else (nothing installed) the source tree's
rm -rf "$tmp/noenv" && cp -r "$projects/go" "$tmp/noenv"
env -u IMAGEBUILD_INIT_TEMPLATES "$IB" init "$tmp/noenv" </dev/null >"$tmp/noenv.out" 2>&1 ||
	check "init without IMAGEBUILD_INIT_TEMPLATES failed: $(cat "$tmp/noenv.out")"
has "$tmp/noenv/Dockerfile" "ARG GO_VERSION=1.22" "init without IMAGEBUILD_INIT_TEMPLATES"
IMAGEBUILD_INIT_TEMPLATES=$tmp/none "$IB" init "$tmp/bad" </dev/null >"$tmp/none.out" 2>"$tmp/none.err"
[ $? = 1 ] || check "missing templates: not exit 1"
has "$tmp/none.err" "IMAGEBUILD_INIT_TEMPLATES" "missing templates"

# ---- a terminal: the questions, answered ----
rm -rf "$tmp/tty" && cp -r "$projects/other" "$tmp/tty"
printf 'other\n7000\n./hello.sh --loud\n' | script -qec "\"$IB\" init \"$tmp/tty\"" /dev/null >"$tmp/tty.out" 2>&1 ||
	check "init on a terminal failed: $(cat "$tmp/tty.out")"
has "$tmp/tty.out" "What is the command that starts the application?" "terminal prompts"
has "$tmp/tty/Dockerfile" 'CMD [ "./hello.sh", "--loud" ]' "terminal: the command answered"
has "$tmp/tty/Dockerfile" 'EXPOSE 7000' "terminal: the port answered"
# 'none': no port, where the stack has a default
rm -rf "$tmp/tty3" && cp -r "$projects/node-npm" "$tmp/tty3"
printf '\n\nnone\n\n' | script -qec "\"$IB\" init \"$tmp/tty3\"" /dev/null >"$tmp/tty3.out" 2>&1 ||
	check "init on a terminal (node) failed: $(cat "$tmp/tty3.out")"
has "$tmp/tty3/Dockerfile" 'ARG NODE_VERSION=20' "terminal: the detected version by default"
has "$tmp/tty3/Dockerfile" 'CMD [ "node", "index.js" ]' "terminal: the detected command by default"
hasnt "$tmp/tty3/Dockerfile" 'EXPOSE' "terminal: port none"
compose_ok "$tmp/tty3" "" "terminal: port none"
# and on a terminal an existing file is replaced only when the answer is yes
printf 'go\n\n\nn\n' | script -qec "\"$IB\" init \"$tmp/tty\"" /dev/null >"$tmp/tty2.out" 2>&1
has "$tmp/tty/Dockerfile" 'CMD [ "./hello.sh", "--loud" ]' "terminal: answer n keeps the files"
has "$tmp/tty2.out" "nothing written" "terminal: answer n"

compose_verify
if [ ${#failures[@]} -gt 0 ]; then
	echo "${#failures[@]} check(s) failed:" >&2
	printf '  %s\n' "${failures[@]}" >&2
	exit 1
fi
[ -z "$not_root" ] || skip_or_fail "the generic image's build and run need root (all else passed)"
echo "all init checks passed"
