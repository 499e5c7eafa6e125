#!/bin/sh
# The shared library's start-up dependencies (DT_NEEDED) name none of the
# libraries it opens only when needed (libcurl, libgit2, libarchive:
# lib/util/lazylib.h) nor, when SHA-256 is linked from libcrypto.a
# (-Dsha256_static, meson.build), libcrypto: each would be mapped and
# relocated at every command's start.
# Usage: check-needed.sh LIB PREFIX...
set -u
lib=$1
shift
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p') || { echo "readelf $lib failed"; exit 1; }
[ -n "$needed" ] || { echo "no NEEDED entries in $lib"; exit 1; }
bad=0
for prefix in "$@"; do
	for n in $needed; do
		case $n in "$prefix"*) echo "$lib needs $n at start"; bad=1 ;; esac
	done
done
[ $bad = 0 ] || exit 1
echo "$lib needs at start: $(echo $needed)"
