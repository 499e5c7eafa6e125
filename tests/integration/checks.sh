#!/usr/bin/env bash
# BuildKit's build checks through the CLI: `build --check` runs only the
# checks (exit 1 when one fires, as `docker build --check`), every build
# prints them with file:line, `# check=error=true` (or the
# BUILDKIT_DOCKERFILE_CHECK build argument) fails the build, `skip=` drops
# rules, and a malformed `# check=` is refused. FROM scratch, or a local
# image: nothing is pulled. Every check runs and the failures are listed at the end.
set -uo pipefail
. "${IB_SOURCE_ROOT:?}/tests/common/skip.sh"
. "${IB_SOURCE_ROOT:?}/tests/common/progress.sh"

IB=${IMAGEBUILD:?}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ib-checks-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/store
ib() { "$IB" --root "$root" "$@"; }
failures=()
check() { echo "FAIL: $*" >&2; failures+=("$*"); }
has() { grep -qF -- "$2" "$1" || check "$3: no \`$2\` in: $(cat "$1")"; }
hasnt() { ! grep -qF -- "$2" "$1" || check "$3: unexpected \`$2\` in: $(cat "$1")"; }

ctx=$tmp/ctx
mkdir -p "$ctx"
echo hello >"$ctx/a.txt"
echo secret >"$ctx/secret.txt"
printf 'secret.txt\n' >"$ctx/.dockerignore"

# 1. --check: warnings with file:line, exit 1, nothing built
cat >"$ctx/warn.Dockerfile" <<'DF'
FROM scratch AS Bad
MAINTAINER someone
COPY a.txt /
CMD ["/x"]
DF
sed 's/COPY a.txt/COPY secret.txt/' "$ctx/warn.Dockerfile" >"$ctx/ignored.Dockerfile"
ib build --check -f "$ctx/ignored.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] || check "--check with warnings exited $rc, not 1"
has "$tmp/out" "WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/" "--check"
has "$tmp/out" "$ctx/ignored.Dockerfile:1: Stage name 'Bad' should be lowercase" "--check"
has "$tmp/out" "$ctx/ignored.Dockerfile:2: Maintainer instruction is deprecated in favor of using label" "--check"
has "$tmp/out" "$ctx/ignored.Dockerfile:3: Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore" "--check"
has "$tmp/out" "3 warnings found" "--check"
[ ! -e "$root/index.json" ] || check "--check wrote a store"

# 2. --check on a clean Dockerfile: exit 0
cat >"$ctx/clean.Dockerfile" <<'DF'
FROM scratch AS good
COPY a.txt /
CMD ["/x"]
DF
ib build --check -f "$ctx/clean.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] || check "--check without warnings exited $rc: $(cat "$tmp/err")"
has "$tmp/out" "Check complete, no warnings found." "--check clean"

# 3. a normal build prints the warnings and succeeds
ib build --snapshotter copy -t warned -f "$ctx/warn.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] || check "build with warnings failed ($rc): $(cat "$tmp/err")"
has "$tmp/err" "warning: $ctx/warn.Dockerfile:2: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label" "build"
has "$tmp/err" "warning: $ctx/warn.Dockerfile:1: StageNameCasing: Stage name 'Bad' should be lowercase" "build"

# 4. # check=error=true fails the build with BuildKit's message, before any step
{ echo '# check=error=true'; cat "$ctx/warn.Dockerfile"; } >"$ctx/error.Dockerfile"
ib build --snapshotter copy -t errored -f "$ctx/error.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" != 0 ] || check "# check=error=true: the build succeeded"
has "$tmp/err" "lint violation found for rules: MaintainerDeprecated, StageNameCasing" "error=true"
has "$tmp/err" "warning: $ctx/error.Dockerfile:3: MaintainerDeprecated" "error=true"
[ -z "$(steps "$tmp/err")" ] || check "error=true: a step started: $(cat "$tmp/err")"
ib images >"$tmp/images" 2>&1
hasnt "$tmp/images" "errored" "error=true"

# 5. skip= drops rules, also with error=true
{ echo '# check=skip=StageNameCasing,MaintainerDeprecated;error=true'; cat "$ctx/warn.Dockerfile"; } >"$ctx/skip.Dockerfile"
ib build --snapshotter copy -t skipped -f "$ctx/skip.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] || check "skip=...;error=true failed ($rc): $(cat "$tmp/err")"
hasnt "$tmp/err" "warning: $ctx" "skip="
{ echo '# check=skip=all'; cat "$ctx/warn.Dockerfile"; } >"$ctx/skipall.Dockerfile"
ib build --check -f "$ctx/skipall.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] || check "--check with skip=all exited $rc"

# 6. the BUILDKIT_DOCKERFILE_CHECK build argument replaces the directive
ib build --snapshotter copy --build-arg BUILDKIT_DOCKERFILE_CHECK=error=true -f "$ctx/skipall.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" != 0 ] || check "BUILDKIT_DOCKERFILE_CHECK=error=true: the build succeeded"
has "$tmp/err" "lint violation found for rules:" "BUILDKIT_DOCKERFILE_CHECK"
ib build --snapshotter copy --build-arg BUILDKIT_DOCKERFILE_CHECK=skip=all -f "$ctx/warn.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] || check "BUILDKIT_DOCKERFILE_CHECK=skip=all failed ($rc): $(cat "$tmp/err")"
hasnt "$tmp/err" "warning: $ctx" "BUILDKIT_DOCKERFILE_CHECK=skip=all"
hasnt "$tmp/err" "were not consumed" "BUILDKIT_DOCKERFILE_CHECK=skip=all"

# 7. a malformed directive is refused, never ignored
{ echo '# check=skip'; cat "$ctx/clean.Dockerfile"; } >"$ctx/bad.Dockerfile"
ib build --check -f "$ctx/bad.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" != 0 ] || check "a malformed # check= was accepted"
hasnt "$tmp/out" "Check complete" "bad directive"
has "$tmp/err" "failed to parse check options" "bad directive"
has "$tmp/err" "invalid check option \"skip\"" "bad directive"
{ echo '# check=experimental=all'; cat "$ctx/clean.Dockerfile"; } >"$ctx/exp.Dockerfile"
ib build --snapshotter copy -f "$ctx/exp.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" != 0 ] || check "# check=experimental= was accepted"
has "$tmp/err" "experimental build checks are not supported" "experimental"

# 8. a duplicate stage name is a warning (DuplicateStageName) and the build goes on, as BuildKit's
printf 'FROM scratch AS app\nCOPY a.txt /first\nFROM scratch AS app\nCOPY a.txt /second\n' >"$ctx/dup.Dockerfile"
ib build --snapshotter copy -t checks/dup:1 -f "$ctx/dup.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err" ||
	check "a duplicate stage name failed the build: $(cat "$tmp/err")"
has "$tmp/err" "$ctx/dup.Dockerfile:3: DuplicateStageName: Duplicate stage name \"app\", stage names should be unique" "duplicate stage"

# 9. BuildKit's built-in build arguments we do not do are refused, never
# taken as an ordinary unused build argument; the harmless ones build
# (BUILDKIT_SANDBOX_HOSTNAME is done: build-compat cases 61-63)
# (SOURCE_DATE_EPOCH is done: the CLI takes --build-arg SOURCE_DATE_EPOCH as the build's epoch, as buildx)
# (BUILDKIT_INLINE_CACHE=1 is done: --cache-to type=inline, cache-inline.sh)
for a in BUILDKIT_MULTI_PLATFORM=true \
	BUILDKIT_CACHE_MOUNT_NS=ns BUILDKIT_SYNTAX=example.com/frontend; do
	ib build --snapshotter copy --build-arg "$a" -f "$ctx/clean.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" != 0 ] || check "--build-arg $a was accepted"
	has "$tmp/err" "--build-arg ${a%%=*}" "--build-arg $a"
	has "$tmp/err" "not supported" "--build-arg $a"
done
for a in BUILDKIT_SANDBOX_HOSTNAME='a b' BUILDKIT_SANDBOX_HOSTNAME=$(printf 'h%.0s' $(seq 65)); do
	ib build --snapshotter copy --build-arg "$a" -f "$ctx/clean.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" != 0 ] || check "--build-arg $a was accepted"
	has "$tmp/err" "is not a hostname" "--build-arg $a"
done
ib build --snapshotter copy --build-arg BUILDKIT_SANDBOX_HOSTNAME=box -f "$ctx/clean.Dockerfile" "$ctx" \
	>"$tmp/out" 2>"$tmp/err" || check "--build-arg BUILDKIT_SANDBOX_HOSTNAME=box was refused: $(cat "$tmp/err")"
grep -q 'not consumed' "$tmp/err" && check "BUILDKIT_SANDBOX_HOSTNAME was reported as not consumed"
for a in BUILDKIT_SANDBOX_HOSTNAME= BUILDKIT_INLINE_CACHE=0 BUILDKIT_SYNTAX=dockerfile.v0 BUILDKIT_SYNTAX=docker/dockerfile:1 BUILDKIT_BUILD_NAME=x; do
	ib build --snapshotter copy --build-arg "$a" -f "$ctx/clean.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err" ||
		check "--build-arg $a was refused: $(cat "$tmp/err")"
done

# 10. with a base image (a local one: nothing is pulled), UndefinedVar knows
# its ENV and InvalidBaseImagePlatform its platform, as BuildKit once it
# resolved the image
if sh "${IB_MAKE_BUSYBOX:?}" "$tmp/busybox.tar" >/dev/null 2>&1; then
	ib import "$tmp/busybox.tar" checks/busybox:1 >/dev/null 2>&1 || check "import busybox failed"
	printf 'FROM checks/busybox:1\nENV APP_HOME=/app\n' >"$ctx/envbase.Dockerfile"
	ib build --snapshotter copy -t checks/env:1 -f "$ctx/envbase.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err" ||
		check "building the ENV base failed: $(cat "$tmp/err")"
	printf 'FROM checks/env:1\nENV A=$APP_HOME B=$APP_HOEM\n' >"$ctx/envuse.Dockerfile"
	ib build --snapshotter copy -f "$ctx/envuse.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err" ||
		check "a build on the ENV base failed: $(cat "$tmp/err")"
	has "$tmp/err" "$ctx/envuse.Dockerfile:2: UndefinedVar: Usage of undefined variable '\$APP_HOEM' (did you mean \$APP_HOME?)" "base ENV"
	hasnt "$tmp/err" "variable '\$APP_HOME'" "base ENV"
	case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
	other=arm64
	[ "$arch" != arm64 ] || other=amd64
	# a local image of another platform is never used (BuildKit resolves the platform it builds for):
	# the build tries to pull that platform, and its error says what the store has
	if ib build --snapshotter copy --platform "linux/$other" -f "$ctx/envbase.Dockerfile" "$ctx" >"$tmp/out" 2>"$tmp/err"; then
		check "base platform: a linux/$arch image was used for linux/$other"
	fi
	has "$tmp/err" "image \`checks/busybox:1\` in the store is linux/$arch, not linux/$other (a local image of another platform is never used)" "base platform"
else
	echo "skipping the base image checks: no busybox-static"
fi

if [ ${#failures[@]} -gt 0 ]; then
	printf 'FAILED: %s\n' "${failures[@]}" >&2
	exit 1
fi
echo "all build-check CLI tests passed"
