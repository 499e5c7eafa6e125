#!/bin/bash
# bench/build-vs-peers.sh [small|big|zstd|all] [BUILD_DIR]
#
# Times `imagebuild build` against Docker's BuildKit and buildah on the
# reference workload of ../shared/bench/peers, in one interleaved run:
# (a) cold build, (b) no-op rebuild, (c) rebuild after late/app.conf
# changes; bench.sh prints medians and per-iteration ratios (imagebuild /
# each peer) and (d) the first push to an empty registry and a second
# push. `big` is scenario (e): one 2 GiB COPY layer, its no-op rebuild and
# its first push (the context is generated once, ~1 min), and the floor of
# the copy (tool `floor`: cat | tee | sha256sum; sync).
# `zstd` is scenario (e) for `imagebuild-zstd` (push --compression-format
# zstd, its own store) and the kit's `buildah-zstd` (buildah push
# --compression-format zstd), with the ratio imagebuild-zstd / buildah-zstd;
# `all` runs small, big and zstd.
#
# Needs ../shared/bench/peers/setup.sh to have run (dockerd, registry,
# buildah). Before each cold build every tool's store is wiped, ours
# included: the cold build pulls the base image ($BASE_REF) from the kit's
# registry inside the timed part, as the peers' cold builds do.
#   RUNS=5 (default) small iterations, BIG_RUNS=3 (default) big ones;
#   TOOLS / BIG_TOOLS override the tool lists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
peers=$root/../shared/bench/peers
[ -x "$peers/bench.sh" ] || { echo "no $peers/bench.sh" >&2; exit 1; }
what=small
case ${1:-} in small|big|zstd|all) what=$1; shift ;; esac
build=${1:-$root/build}
IMAGEBUILD=$(cd "$build" && pwd)/examples/imagebuild/imagebuild
[ -x "$IMAGEBUILD" ] || { echo "no $IMAGEBUILD: build first (scripts/setup)" >&2; exit 1; }
export IMAGEBUILD

tools=$(mktemp)
pybin=$(mktemp -d)
trap 'rm -f "$tools"; rm -rf "$pybin"' EXIT
# bench.sh timestamps every tool's output through python3 inside the timed
# pipeline: a pyenv shim there (a bash script) costs seconds on a loaded
# machine and swamps the short scenarios (pushes, no-ops). Debian's python3.
if [ -x /usr/bin/python3 ]; then ln -s /usr/bin/python3 "$pybin/python3"; export PATH=$pybin:$PATH; fi
cat > "$tools" <<'TOOLS'
imagebuild_clean() {
  rm -rf "$PEERS_DATA/imagebuild"
}
imagebuild_push() {
  "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild" push "$1" "$2"
}
# the floor of a build that copies a context into a layer: every byte read
# once, written once (and made durable, as a build's layer is) and hashed
# once, by standard tools: cat CTX/* | tee COPY | sha256sum; sync COPY.
# (Its "push" does nothing: the push ratios against it mean nothing.)
floor_check() { command -v sha256sum >/dev/null && command -v tee >/dev/null; }
floor_build() {
  (cd "$1" && find . -type f ! -name Dockerfile -print0 | sort -z | xargs -0 cat) |
    tee "$PEERS_DATA/floor-copy" | sha256sum >/dev/null && sync "$PEERS_DATA/floor-copy"
}
floor_push()  { :; }
floor_clean() { rm -f "$PEERS_DATA/floor-copy"; }
# IMAGEBUILD_BEFORE=path/to/another/imagebuild: the same as imagebuild, as tool
# `imagebuild-before` with a store of its own (before/after comparisons)
imagebuild-before_build() { "$IMAGEBUILD_BEFORE" --root "$PEERS_DATA/imagebuild-before" build -t "$2" "$1"; }
imagebuild-before_push()  { "$IMAGEBUILD_BEFORE" --root "$PEERS_DATA/imagebuild-before" push "$1" "$2"; }
imagebuild-before_clean() {
  rm -rf "$PEERS_DATA/imagebuild-before"
  "$IMAGEBUILD_BEFORE" --root "$PEERS_DATA/imagebuild-before" load -i "$BASE_OCI_ARCHIVE" >/dev/null &&
    "$IMAGEBUILD_BEFORE" --root "$PEERS_DATA/imagebuild-before" tag busybox:latest "$BASE_REF"
}
# push --compression-format zstd, against the kit's buildah-zstd; a store of its own
imagebuild-zstd_clean() {
  rm -rf "$PEERS_DATA/imagebuild-zstd"
}
imagebuild-zstd_build() { "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild-zstd" build -t "$2" "$1"; }
imagebuild-zstd_push() { "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild-zstd" push --compression-format zstd "$1" "$2"; }
# BENCH_EXTRA_TOOLS=file: sourced last (e.g. to leave out a slow peer's push)
[ -z "${BENCH_EXTRA_TOOLS:-}" ] || . "$BENCH_EXTRA_TOOLS"
TOOLS
export PEERS_TOOLS_FILE=$tools
export TOOLS=${TOOLS:-"imagebuild docker buildah-oci"}
export BIG_TOOLS=${BIG_TOOLS:-"imagebuild docker buildah-oci floor"}
export RUNS=${RUNS:-5}
export BIG_RUNS=${BIG_RUNS:-3}
zstd_tools="imagebuild-zstd buildah-zstd"
case $what in
  zstd) export BIG_TOOLS=$zstd_tools; what=big ;;
  all) case " $BIG_TOOLS " in *" imagebuild-zstd "*) ;; *) export BIG_TOOLS="$BIG_TOOLS $zstd_tools" ;; esac ;;
esac
export OUT=${OUT:-${PEERS_DATA:-/var/tmp/imagebuild-peers}/results/$(date +%Y%m%dT%H%M%S)}
"$peers/bench.sh" "$what"
# the zstd push's ratio: imagebuild-zstd / buildah-zstd (bench.sh's tables take the first tool as the subject)
if grep -q $'^e_big_push\timagebuild-zstd\t' "$OUT/runs.tsv" 2>/dev/null; then
  echo "== zstd push: imagebuild-zstd / buildah-zstd"
  grep -P '^(scenario|e_big_push\t(imagebuild-zstd|buildah-zstd))\t' "$OUT/runs.tsv" > "$OUT/zstd.tsv"
  /usr/bin/python3 "$peers/summarize.py" "$OUT/zstd.tsv" imagebuild-zstd | tee "$OUT/summary-zstd.md"
fi
