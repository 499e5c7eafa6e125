#!/bin/sh
# A meson project with this source tree as its subproject, set up with
# -Ddefault_library=static: meson finds the subproject through the
# [provide] section of docs/libimagebuild.wrap, builds only the library
# (no test, example or Python target), only the static one, and the
# program linked with it runs.
# Usage: check-meson.sh SOURCE_ROOT
set -eu
src=$1
here=$(cd "$(dirname "$0")" && pwd)
unset LD_LIBRARY_PATH
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
proj=$dest/consumer
mkdir -p "$proj/subprojects"
cp "$here/meson.build" "$here/../consumer.c" "$proj/"
cp "$src/docs/libimagebuild.wrap" "$proj/subprojects/libimagebuild.wrap"
# the wrap's directory is there already: nothing is downloaded
dir=$(sed -n 's/^directory *= *//p' "$proj/subprojects/libimagebuild.wrap" | head -1)
[ "$dir" = libimagebuild ] || { echo "docs/libimagebuild.wrap: directory is '$dir', expected libimagebuild"; exit 1; }
ln -s "$src" "$proj/subprojects/$dir"

# --force-fallback-for: the subproject even when libimagebuild is installed
(cd "$proj" && meson setup b --force-fallback-for=libimagebuild -Ddefault_library=static) > "$dest/setup.log" 2>&1 ||
	{ cat "$dest/setup.log"; exit 1; }
grep -q 'Dependency libimagebuild found: YES' "$dest/setup.log" || { cat "$dest/setup.log"; echo "libimagebuild was not found"; exit 1; }

# Only the library, only static: every target of the subproject is a static
# library, or what the library embeds (lib/execute's exec helper, seccomp profile).
meson introspect "$proj/b" --targets > "$dest/targets.json"
/usr/bin/python3 - "$dest/targets.json" <<'PY'
import json, sys
bad = []
for t in json.load(open(sys.argv[1])):
    if t.get("subproject") != "libimagebuild":
        continue
    paths = [p for f in t["filename"] for p in [f]]
    inlib = all("/subprojects/libimagebuild/lib/" in p or p.endswith("/subprojects/libimagebuild/libimagebuild.a") for p in paths)
    if t["type"] == "static library" and inlib:
        continue
    if t["type"] in ("executable", "custom") and all("/subprojects/libimagebuild/lib/execute/" in p for p in paths):
        continue
    bad.append(f'{t["type"]} {t["name"]}: {" ".join(paths)}')
if bad:
    print("the subproject builds more than the static library:")
    print("\n".join(bad))
    sys.exit(1)
PY
tests=$(meson introspect "$proj/b" --tests)
[ "$tests" = "[]" ] || { echo "the subproject registered tests: $tests"; exit 1; }

ninja -C "$proj/b" > "$dest/build.log" 2>&1 || { cat "$dest/build.log"; exit 1; }
[ -f "$proj/b/subprojects/libimagebuild/libimagebuild.a" ] || { echo "libimagebuild.a was not built"; exit 1; }
if ls "$proj/b/subprojects/libimagebuild/"libimagebuild.so* >/dev/null 2>&1; then
	echo "libimagebuild.so was built with default_library=static"; exit 1
fi
if ldd "$proj/b/consumer" | grep libimagebuild; then
	echo "consumer is linked with the shared library"; exit 1
fi
out=$("$proj/b/consumer")
echo "$out"
version=$(sed -n "s/^  version: '\([^']*\)',$/\1/p" "$src/meson.build" | head -1)
[ "$out" = "libimagebuild $version ok" ] || { echo "expected: libimagebuild $version ok"; exit 1; }
