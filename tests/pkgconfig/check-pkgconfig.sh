#!/bin/sh
set -eu
build=$1 cc=$2 src=$3
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$dest" > "$dest.log" 2>&1 || { cat "$dest.log"; rm -f "$dest.log"; exit 1; }
rm -f "$dest.log"
pc=$(find "$dest" -name libimagebuild.pc | head -1)
[ -n "$pc" ] || { echo "libimagebuild.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
cflags=$(pkg-config --cflags libimagebuild)
libs=$(pkg-config --libs libimagebuild)
echo "cflags: $cflags"; echo "libs: $libs"
# only the installed headers: no -I into the source tree
"$cc" -std=c99 -Wall -Wextra -Werror $cflags "$src" -o "$dest/outside" $libs
so=$(find "$dest" -name "libimagebuild.so.0" | head -1)
out=$(LD_LIBRARY_PATH="$(dirname "$so")" "$dest/outside")
echo "$out"
expected="libimagebuild $(pkg-config --modversion libimagebuild) ok"
[ "$out" = "$expected" ] || { echo "expected: $expected"; exit 1; }
