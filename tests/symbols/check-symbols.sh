#!/bin/sh
# Lists the dynamic symbols the library defines: every one must be
# ib_<name> without "__" (which marks a layer-internal name), and carry the
# version node NODE (lib/libimagebuild.map); the node must be defined.
# With ARCHIVE (libimagebuild.a), its global definitions must all be ib_
# names too (internals are ib_<layer>__name): a program linking it
# statically gets no other name of ours.
# Usage: check-symbols.sh LIB NODE [ARCHIVE]
set -u
lib=$1 node=$2 archive=${3:-}
if [ -n "$archive" ]; then
	globals=$(nm --defined-only -g "$archive" 2>/dev/null | awk 'NF == 3 {print $3}') || { echo "nm $archive failed"; exit 1; }
	[ -n "$globals" ] || { echo "no global symbols in $archive"; exit 1; }
	other=$(printf '%s\n' "$globals" | grep -v '^ib_[A-Za-z0-9_]*$' | sort -u)
	[ -z "$other" ] || { echo "$archive defines names outside the ib_ namespace:"; printf '%s\n' "$other"; exit 1; }
	echo "$(printf '%s\n' "$globals" | wc -l) global symbols in $(basename "$archive"), all ib_"
fi
# objdump -T: ADDRESS FLAGS SECTION SIZE VERSION NAME; defined ones only.
# The node itself shows as an *ABS* symbol named after it.
table=$(objdump -T "$lib") || { echo "objdump -T $lib failed"; exit 1; }
defined=$(printf '%s\n' "$table" | awk '$NF != "" && / DF | DO |\*ABS\*/ && !/\*UND\*/ { print $(NF-1), $NF }')
printf '%s\n' "$defined" | grep -qx "$node $node" || { echo "version node $node is not defined in $lib"; exit 1; }
# (a version node is an *ABS* symbol whose name is its version)
pairs=$(printf '%s\n' "$defined" | awk '$1 != $2')
[ -n "$pairs" ] || { echo "no exported symbols in $lib"; exit 1; }
syms=$(printf '%s\n' "$pairs" | awk '{print $2}')
bad=$(printf '%s\n' "$syms" | grep -v '^ib_[a-z0-9_]*$' ; printf '%s\n' "$syms" | grep '__')
if [ -n "$bad" ]; then
	echo "exported symbols outside the public API:"; printf '%s\n' "$bad"; exit 1
fi
unversioned=$(printf '%s\n' "$pairs" | awk -v n="$node" '$1 != n {print $2 " (" $1 ")"}')
if [ -n "$unversioned" ]; then
	echo "exported symbols without the version node $node:"; printf '%s\n' "$unversioned"; exit 1
fi
for must in ib_error_last ib_init ib_digest_parse ib_buf_dispose; do
	printf '%s\n' "$syms" | grep -qx "$must" || { echo "missing public symbol $must"; exit 1; }
done
echo "$(printf '%s\n' "$syms" | wc -l) symbols, all public, all $node"
