#!/bin/bash
# meson install puts the command, its man pages and its bash and zsh
# completion where man, bash-completion and zsh look.
# Usage: cli-install.sh   (env: IB_BUILD_ROOT)
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
dest=$(mktemp -d /tmp/ibtest-cli-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
meson install -C "$IB_BUILD_ROOT" --no-rebuild --quiet --destdir "$dest" >"$dest.log" 2>&1 ||
	{ cat "$dest.log"; rm -f "$dest.log"; fail "meson install"; }
rm -f "$dest.log"
prefix=$(meson introspect --buildoptions "$IB_BUILD_ROOT" | /usr/bin/python3 -c \
	'import json,sys; o={x["name"]: x["value"] for x in json.load(sys.stdin)}; print(o["prefix"], o["bindir"], o["mandir"], o["datadir"])')
read -r p bindir mandir datadir <<<"$prefix"
root=$dest$p
[ -x "$root/$bindir/imagebuild" ] || fail "no $bindir/imagebuild"
for page in imagebuild imagebuild-build imagebuild-run imagebuild-images imagebuild-inspect; do
	[ -s "$root/$mandir/man1/$page.1" ] || fail "no $mandir/man1/$page.1"
done
[ -s "$root/$datadir/bash-completion/completions/imagebuild" ] || fail "no bash completion"
[ -s "$root/$datadir/zsh/site-functions/_imagebuild" ] || fail "no zsh completion"
# the installed command runs (its library from the same install)
LD_LIBRARY_PATH=$(dirname "$(find "$root" -name 'libimagebuild.so*' | head -1)") \
	"$root/$bindir/imagebuild" --version | grep -q '^imagebuild version' || fail "the installed imagebuild does not run"
echo ok
