#!/bin/sh
# Installs the build into a DESTDIR, then configures, builds and runs the
# CMake project beside this script against it: find_package(libimagebuild)
# must find the installed package config, and the programs linked with its
# imported targets (shared, and static when installed) must run.
# Usage: check-cmake.sh BUILD_DIR
set -eu
# the programs must find the installed library by themselves (CMake's build rpath)
unset LD_LIBRARY_PATH
build=$1
here=$(cd "$(dirname "$0")" && pwd)
command -v cmake >/dev/null || { echo "cmake is missing (Debian: cmake)"; [ "${IB_TEST_STRICT:-0}" = 1 ] && exit 1; exit 77; }
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$dest/root" > "$dest/install.log" 2>&1 || { cat "$dest/install.log"; exit 1; }
config=$(find "$dest/root" -name libimagebuildConfig.cmake | head -1)
[ -n "$config" ] || { echo "libimagebuildConfig.cmake was not installed"; exit 1; }
[ -f "$(dirname "$config")/libimagebuildConfigVersion.cmake" ] || { echo "libimagebuildConfigVersion.cmake was not installed"; exit 1; }
case $config in
*/cmake/libimagebuild/libimagebuildConfig.cmake) ;;
*) echo "installed in the wrong place: $config"; exit 1 ;;
esac
prefix=$(meson introspect "$build" --buildoptions | /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
version=$(meson introspect "$build" --projectinfo | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')

# A version the install does not satisfy is refused.
if cmake -S "$here" -B "$dest/too-new" -DCMAKE_PREFIX_PATH="$dest/root$prefix" -DIB_FIND_VERSION=1.0 > "$dest/too-new.log" 2>&1; then
	cat "$dest/too-new.log"; echo "find_package(libimagebuild 1.0) accepted version $version"; exit 1
fi

cmake -S "$here" -B "$dest/b" -DCMAKE_PREFIX_PATH="$dest/root$prefix" -DCMAKE_BUILD_TYPE=Release > "$dest/configure.log" 2>&1 || { cat "$dest/configure.log"; exit 1; }
grep 'libimagebuild .* from' "$dest/configure.log"
cmake --build "$dest/b" > "$dest/build.log" 2>&1 || { cat "$dest/build.log"; exit 1; }
expected="libimagebuild $version ok"
for exe in consumer consumer-static; do
	if [ ! -x "$dest/b/$exe" ]; then
		[ "$exe" = consumer-static ] && ! find "$dest/root" -name libimagebuild.a | grep -q . && continue
		echo "$exe was not built"; exit 1
	fi
	# the library it runs with is the installed one, not the build tree's
	lib=$(ldd "$dest/b/$exe" | awk '/libimagebuild/ {print $3}')
	if [ "$exe" = consumer ]; then
		case $lib in "$dest/root"/*) ;; *) echo "$exe runs with '$lib', not the installed library"; exit 1 ;; esac
	else
		[ -z "$lib" ] || { echo "$exe is linked with $lib, not statically"; exit 1; }
	fi
	out=$("$dest/b/$exe")
	echo "$exe: $out"
	[ "$out" = "$expected" ] || { echo "expected: $expected"; exit 1; }
done
