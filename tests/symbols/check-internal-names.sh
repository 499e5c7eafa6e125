#!/bin/sh
# Names in lib/ that look public must be public: every ib_<name> without
# "__" that the library's sources use is declared in include/ (the API) or
# in lib/util/*.h (the shared base every layer uses). A layer's cross-file
# internals are ib_<layer>__name (docs/STYLE.md), else static.
set -u
src=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
find "$src/include" -name '*.h' -exec grep -ohE '\bib_[a-z0-9_]+\b' {} + | sort -u >"$tmp/public"
grep -ohE '\bib_[a-z0-9_]+\b' "$src"/lib/util/*.h | sort -u >"$tmp/util"
find "$src/lib" \( -name '*.c' -o -name '*.h' \) -exec grep -ohE '\bib_[a-z0-9_]+\b' {} + |
	grep -v '__' | sort -u >"$tmp/used"
sort -u "$tmp/public" "$tmp/util" >"$tmp/allowed"
bad=$(comm -13 "$tmp/allowed" "$tmp/used")
if [ -n "$bad" ]; then
	echo "internal names in the public namespace (use ib_<layer>__name or static):"
	for n in $bad; do
		printf '  %s (%s)\n' "$n" "$(grep -rlw "$n" "$src/lib" | head -3 | tr '\n' ' ')"
	done
	exit 1
fi
echo "$(wc -l <"$tmp/used") ib_ names in lib/, all public or util"
