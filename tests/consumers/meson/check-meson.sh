#!/bin/sh
# A meson project with this source tree as its subproject: meson finds the
# subproject through the [provide] section of docs/libimagebuild.wrap and
# builds only the library (no test, example or Python target), of the kind
# the parent's default_library asks for; with static, the program linked
# with libimagebuild.a runs.
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

# Only the library: every target of the subproject is the library (of
# the kind default_library asks for), one of its layer archives, or what it
# embeds (lib/execute's exec helper and seccomp profile, lib/push's
# registries.conf shim object); no test.
# only_library BUILD_DIR KIND
only_library() {
	meson introspect "$1" --targets > "$dest/targets.json"
	/usr/bin/python3 - "$dest/targets.json" "$2" <<'PY' || exit 1
import json, sys
kind = sys.argv[2]
bad = []
for t in json.load(open(sys.argv[1])):
    if t.get("subproject") != "libimagebuild":
        continue
    paths = t["filename"]
    if t["type"] == "static library" and all("/subprojects/libimagebuild/lib/" in p for p in paths):
        continue  # a layer's archive
    if t["name"] == "imagebuild" and t["type"] == kind + " library":
        continue
    if t["type"] in ("executable", "custom") and all("/subprojects/libimagebuild/lib/execute/" in p for p in paths):
        continue
    # lib/push's registries.conf shim (C++), made one object with only its entry point global
    if t["type"] == "custom" and all(p.endswith("/subprojects/libimagebuild/lib/push/regconf_toml.o") for p in paths):
        continue
    bad.append(f'{t["type"]} {t["name"]}: {" ".join(paths)}')
if bad:
    print(f"the subproject builds more than the {kind} library:")
    print("\n".join(bad))
    sys.exit(1)
PY
	tests=$(meson introspect "$1" --tests)
	[ "$tests" = "[]" ] || { echo "the subproject registered tests: $tests"; exit 1; }
}

# --force-fallback-for: the subproject even when libimagebuild is installed.
# With default_library=shared (configured only): no tests, examples, Python.
(cd "$proj" && meson setup b-shared --force-fallback-for=libimagebuild -Ddefault_library=shared) > "$dest/setup.log" 2>&1 ||
	{ cat "$dest/setup.log"; exit 1; }
only_library "$proj/b-shared" shared

# With default_library=static: built, linked and run.
(cd "$proj" && meson setup b --force-fallback-for=libimagebuild -Ddefault_library=static) > "$dest/setup.log" 2>&1 ||
	{ cat "$dest/setup.log"; exit 1; }
grep -q 'Dependency libimagebuild found: YES' "$dest/setup.log" || { cat "$dest/setup.log"; echo "libimagebuild was not found"; exit 1; }
only_library "$proj/b" static

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
