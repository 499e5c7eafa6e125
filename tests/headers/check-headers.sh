#!/bin/sh
# Compiles each public header alone with -std=c99 -Wall -Wextra -pedantic -Werror.
# Usage: check-headers.sh CC INCLUDE_DIR
set -u
cc=$1 inc=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
for h in $(cd "$inc" && find . -name '*.h' | sed 's|^\./||' | sort); do
	n=$((n + 1))
	printf '#include <%s>\n#include <%s>\nint main(void) { return 0; }\n' "$h" "$h" > "$tmp/t.c"
	if ! "$cc" -std=c99 -Wall -Wextra -pedantic -Werror -I"$inc" -c "$tmp/t.c" -o "$tmp/t.o" 2> "$tmp/err"; then
		echo "FAIL: $h does not compile on its own:"; cat "$tmp/err"; fail=1
	fi
done
[ "$n" -gt 0 ] || { echo "no headers found under $inc"; exit 1; }
echo "$n headers checked"
exit $fail
