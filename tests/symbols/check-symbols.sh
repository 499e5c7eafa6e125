#!/bin/sh
# Lists the dynamic symbols the library defines; every one must be ib_<name>
# without "__" (which marks a layer-internal name).
set -u
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '{print $NF}') || exit 1
[ -n "$syms" ] || { echo "no exported symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^ib_[a-z0-9_]*$' ; printf '%s\n' "$syms" | grep '__')
if [ -n "$bad" ]; then
	echo "exported symbols outside the public API:"; printf '%s\n' "$bad"; exit 1
fi
for must in ib_error_last ib_init ib_digest_parse ib_buf_dispose; do
	printf '%s\n' "$syms" | grep -qx "$must" || { echo "missing public symbol $must"; exit 1; }
done
echo "$(printf '%s\n' "$syms" | wc -l) symbols, all public"
