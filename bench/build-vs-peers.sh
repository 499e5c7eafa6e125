#!/bin/bash
# bench/build-vs-peers.sh [small|big|zstd|all] [BUILD_DIR]
#
# Times `imagebuild build` against Docker's BuildKit and buildah on the
# reference workload of ../shared/bench/peers, in one interleaved run:
# (a) cold build, (b) no-op rebuild, (c) rebuild after late/app.conf
# changes; bench.sh prints medians and per-iteration ratios (imagebuild /
# each peer) and (d) the first push to an empty registry and a second
# push. `big` is scenario (e): one 2 GiB COPY layer, its no-op rebuild and
# its first push (BIG_RUNS=1; the context is generated once, ~1 min).
# `zstd` is scenario (e) for `imagebuild-zstd` (push --compression-format
# zstd, its own store) and the kit's `buildah-zstd` (buildah push
# --compression-format zstd), with the ratio imagebuild-zstd / buildah-zstd;
# `all` runs small, big and zstd.
#
# Needs ../shared/bench/peers/setup.sh to have run (dockerd, registry,
# buildah). imagebuild cannot pull yet: before each cold build its store is
# wiped and the base image is loaded from $BASE_OCI_ARCHIVE and tagged as
# $BASE_REF, outside the timed part.
#   RUNS=3 (default) iterations; TOOLS overrides the tool list.
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
  "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild" load -i "$BASE_OCI_ARCHIVE" >/dev/null &&
    "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild" tag busybox:latest "$BASE_REF"
}
imagebuild_push() {
  if "$IMAGEBUILD" --help 2>&1 | grep -q '^  push '; then
    "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild" push "$1" "$2"
  else
    echo "imagebuild push: not implemented yet" >&2; return 1
  fi
}
# push --compression-format zstd, against the kit's buildah-zstd; a store of its own
imagebuild-zstd_clean() {
  rm -rf "$PEERS_DATA/imagebuild-zstd"
  "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild-zstd" load -i "$BASE_OCI_ARCHIVE" >/dev/null &&
    "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild-zstd" tag busybox:latest "$BASE_REF"
}
imagebuild-zstd_build() { "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild-zstd" build -t "$2" "$1"; }
imagebuild-zstd_push() { "$IMAGEBUILD" --root "$PEERS_DATA/imagebuild-zstd" push --compression-format zstd "$1" "$2"; }
TOOLS
export PEERS_TOOLS_FILE=$tools
export TOOLS=${TOOLS:-"imagebuild docker buildah-oci"}
export BIG_TOOLS=${BIG_TOOLS:-"imagebuild docker buildah-oci"}
export RUNS=${RUNS:-3}
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
  python3 "$peers/summarize.py" "$OUT/zstd.tsv" imagebuild-zstd | tee "$OUT/summary-zstd.md"
fi
