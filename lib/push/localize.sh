#!/bin/sh
# localize.sh LD OBJCOPY ARCHIVE OUT KEEP: one relocatable object of ARCHIVE
# in which only KEEP stays global. The C++ shim's template instances and
# typeinfo (weak globals of toml++ and libstdc++) become local, so the
# library's archives define ib_ names only (tests/symbols) and nothing of
# toml++ can clash with a program that has its own.
set -eu
ld=$1 objcopy=$2 archive=$3 out=$4 keep=$5
"$ld" -r -o "$out.tmp" --whole-archive "$archive"
"$objcopy" --keep-global-symbol="$keep" "$out.tmp" "$out"
rm -f "$out.tmp"
