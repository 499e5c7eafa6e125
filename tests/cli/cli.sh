#!/bin/bash
# The imagebuild command as docker users and scripts drive it (issue 15):
# --help on every command, and that its flags, the man pages and the bash and
# zsh completion list the same flags (one table); getopt_long parsing;
# unknown flags exit 125; --format json/table/templates; images filters;
# docker's management aliases; meson install. No root needed.
# Usage: cli.sh IMAGEBUILD IMAGEBUILD.1 BASH-COMPLETION ZSH-COMPLETION (as built)
set -euo pipefail
IB=$1 MANDIR=$(dirname "$2") BASHCOMP=$3 ZSHCOMP=$4
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
tmp=$(mktemp -d /tmp/ibtest-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
py=/usr/bin/python3

# --- help on every command, and the same flags in help, man, bash and zsh ---
"$IB" --help >"$tmp/help" || fail "imagebuild --help"
"$IB" -h | cmp -s - "$tmp/help" || fail "imagebuild -h differs from --help"
"$IB" --version | grep -q '^imagebuild version [0-9]' || fail "--version"
commands=$(sed -n '/^Commands:/,/^$/p' "$tmp/help" | awk 'NF && $1 != "Commands:" {print $1}')
[ "$(echo "$commands" | wc -l)" -ge 20 ] || fail "imagebuild --help lists too few commands: $commands"
bash -n "$BASHCOMP" || fail "the bash completion does not parse"
if command -v zsh >/dev/null; then
	zsh -n "$ZSHCOMP" || fail "the zsh completion does not parse"
else
	skip_or_fail "zsh is not installed (apt-get install zsh)"
fi
flags() { grep -o -- '--[a-z][a-z0-9-]*' | sort -u; }
for c in $commands; do
	"$IB" "$c" --help >"$tmp/c.help" || fail "$c --help exits $?"
	grep -q "^Usage:  imagebuild $c " "$tmp/c.help" || fail "$c --help has no usage line"
	if [ "$c" != run ]; then # run -h is --hostname, as docker's
		"$IB" "$c" -h | cmp -s - "$tmp/c.help" || fail "$c -h differs from $c --help"
	fi
	# every option line has a description
	sed -n '/^Options:/,$p' "$tmp/c.help" | tail -n +2 >"$tmp/c.opts"
	$py - "$tmp/c.opts" <<'PY' || fail "$c --help: an option without a description"
import re, sys
lines = open(sys.argv[1]).read().splitlines()
for i, l in enumerate(lines):
    m = re.match(r"^  (-\w, |    )--[\w-]+( \S+)?(\s+(.*))?$", l)
    if m and not (m.group(4) or (i + 1 < len(lines) and re.match(r"^ {20,}\S", lines[i + 1]))):
        sys.exit(f"no description: {l}")
PY
	help=$(flags <"$tmp/c.opts")
	[ -n "$help" ] || fail "$c --help lists no flag"
	man=$(sed -n '/^\.SH OPTIONS/,/^\.SH SEE/p' "$MANDIR/imagebuild-$c.1" | sed 's/\\-/-/g' | flags)
	bash=$(awk -v c="$c" '$0 ~ "^\t" c "[)|]" {getline; print; exit}' "$BASHCOMP" | flags)
	zsh=$(sed -n "/^_imagebuild_$c() {/,/^}/p" "$ZSHCOMP" | flags)
	[ "$help" = "$man" ] || fail "$c: --help and imagebuild-$c.1 list different flags: $help / $man"
	[ "$help" = "$bash" ] || fail "$c: --help and the bash completion list different flags: $help / $bash"
	[ "$help" = "$zsh" ] || fail "$c: --help and the zsh completion list different flags: $help / $zsh"
	# an unknown flag: one line, a hint, exit 125
	set +e
	"$IB" "$c" --no-such-flag >/dev/null 2>"$tmp/err"
	rc=$?
	set -e
	[ "$rc" = 125 ] || fail "$c --no-such-flag exits $rc, not 125"
	grep -qx "imagebuild $c: unknown flag: --no-such-flag" "$tmp/err" || fail "$c: $(cat "$tmp/err")"
	grep -qx "See 'imagebuild $c --help'." "$tmp/err" || fail "$c: no hint: $(cat "$tmp/err")"
done
grep -q '^\.TH IMAGEBUILD 1' "$MANDIR/imagebuild.1" || fail "imagebuild.1"
for c in $commands; do
	grep -q "imagebuild\\\\-$c\\b" "$MANDIR/imagebuild.1" || fail "imagebuild.1 does not name imagebuild-$c"
done
set +e
"$IB" no-such-command 2>/dev/null; rc1=$?
"$IB" --no-such-flag 2>/dev/null; rc2=$?
"$IB" build -x . 2>"$tmp/err"; rc3=$?
"$IB" build --no-c . 2>/dev/null; rc4=$? # abbreviations are not flags (getopt_long would take them)
"$IB" build -t 2>/dev/null; rc5=$?
"$IB" images a b 2>/dev/null; rc6=$?
set -e
[ "$rc1 $rc2 $rc3 $rc4 $rc5 $rc6" = "125 125 125 125 125 125" ] || fail "bad invocations exit $rc1 $rc2 $rc3 $rc4 $rc5 $rc6, not 125"
grep -q "unknown shorthand flag: 'x'" "$tmp/err" || fail "build -x: $(cat "$tmp/err")"

# bash completion, driven as bash drives it
cat >"$tmp/comp.sh" <<EOF
. "$BASHCOMP"
r() { _imagebuild; printf '%s\n' "\${COMPREPLY[@]}" | sort | tr '\n' ' '; echo; }
COMP_WORDS=(imagebuild build --ta); COMP_CWORD=2; r
COMP_WORDS=(imagebuild image l); COMP_CWORD=2; r # load ls
COMP_WORDS=(imagebuild image ls --fo); COMP_CWORD=3; r
COMP_WORDS=(imagebuild bu); COMP_CWORD=1; r
COMP_WORDS=(imagebuild --root /x run --rm --ne); COMP_CWORD=5; r
EOF
[ "$(bash "$tmp/comp.sh")" = "$(printf '%s\n' '--tag --target ' 'load ls ' '--format ' 'build builder ' '--network ')" ] ||
	fail "bash completion: $(bash "$tmp/comp.sh")"

# --- parsing: -tNAME, -t NAME, --flag=value, --flag value, --, clusters, options after operands ---
"$IB_MAKE_BUSYBOX" "$tmp/bb.tar"
"$IB" import -mone -c'LABEL k=v' "$tmp/bb.tar" one >/dev/null
"$IB" import -m two --change 'ENV A=1' "$tmp/bb.tar" two >/dev/null
"$IB" import --message=three --change='LABEL k=w' "$tmp/bb.tar" three >/dev/null
[ "$("$IB" history --format '{{.Comment}}' one)" = one ] || fail "-mVALUE"
[ "$("$IB" history --format '{{.Comment}}' two)" = two ] || fail "-m VALUE"
[ "$("$IB" history --format '{{.Comment}}' three)" = three ] || fail "--message=VALUE"
[ "$("$IB" inspect --format '{{.Config.Labels}}' one)" = 'map[k:v]' ] || fail "-cVALUE"
[ "$("$IB" inspect --format '{{.Config.Env}}' two)" = '[A=1]' ] || fail "--change VALUE"
[ "$("$IB" images -qa | wc -l)" = 3 ] || fail "clustered -qa"
# images, inspect and tag load neither libcurl, libgit2 nor libarchive: each is opened when first needed
for args in "images" "inspect one" "tag one lazy:1"; do
	LD_DEBUG=files "$IB" $args 2>"$tmp/ld" >/dev/null || fail "imagebuild $args (LD_DEBUG=files)"
	grep -q "file=libimagebuild" "$tmp/ld" || fail "LD_DEBUG=files shows no loading ($args)"
	if grep -E "file=(libcurl|libgit2|libarchive)" "$tmp/ld"; then fail "imagebuild $args loaded a library it does not need"; fi
done
"$IB" rmi lazy:1 >/dev/null || fail "rmi lazy:1"
# booleans take =true/=false as docker's (pflag's) do
[ "$("$IB" images --quiet=true one)" = "$("$IB" images -q one)" ] || fail "--quiet=true"
"$IB" images --quiet=false one | head -1 | grep -q '^REPOSITORY' || fail "--quiet=false"
# the last occurrence wins, as pflag's: -q --quiet=false is no -q, --quiet=false -q is -q
"$IB" images -q --quiet=false one | head -1 | grep -q '^REPOSITORY' || fail "-q --quiet=false kept -q"
"$IB" images -q --quiet=0 --no-trunc one | head -1 | grep -q '^REPOSITORY' || fail "-q --quiet=0 kept -q"
[ "$("$IB" images --quiet=false -q one)" = "$("$IB" images -q one)" ] || fail "--quiet=false -q is not -q"
[ "$("$IB" images --quiet=false --quiet=true one)" = "$("$IB" images -q one)" ] || fail "--quiet=false --quiet=true"
# a flag on by default whose =false we do not implement is refused, not ignored; the last wins
if "$IB" history -H --human=false one >/dev/null 2>"$tmp/err"; then fail "history --human=false was accepted"; fi
grep -q -- "--human=false is not supported" "$tmp/err" || fail "history --human=false: $(cat "$tmp/err")"
"$IB" history --human=false -H one >/dev/null || fail "history --human=false -H was refused"
set +e
"$IB" images --quiet=maybe >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 125 ] || fail "--quiet=maybe exits $rc"
[ "$("$IB" images one -q)" = "$("$IB" images -q one)" ] || fail "options after operands"
[ "$("$IB" images -q -- one)" = "$("$IB" images -q one)" ] || fail "--"
set +e
"$IB" images -- -q >/dev/null 2>&1; rc=$?
set -e
[ "$rc" != 0 ] || fail "after --, -q is an operand (an invalid reference), not a flag"

# --- --format ---
id=$("$IB" inspect --format '{{.Id}}' one)
[[ $id == sha256:* ]] || fail "inspect {{.Id}}: $id"
"$IB" inspect --format '{{json .Config}}' one | $py -m json.tool >/dev/null || fail "{{json .Config}}"
[ "$("$IB" inspect --format '{{index .RepoTags 0}}' one)" = one:latest ] || fail "{{index .RepoTags 0}}"
"$IB" inspect one two | $py -m json.tool >/dev/null || fail "inspect output is not JSON"
"$IB" inspect --format json one | $py -m json.tool >/dev/null || fail "inspect --format json"
"$IB" images --format json | $py -m json.tool --json-lines >/dev/null || fail "images --format json"
"$IB" history --format json one | $py -m json.tool --json-lines >/dev/null || fail "history --format json"
"$IB" ps -a --format json | $py -m json.tool --json-lines >/dev/null || fail "ps --format json"
[ "$("$IB" images --format json | $py -c 'import json,sys; print(sorted(json.loads(l)["Repository"] for l in sys.stdin))')" = "['one', 'three', 'two']" ] ||
	fail "images --format json rows"
[ "$("$IB" images --format '{{.Repository}}:{{.Tag}}' | sort | tr '\n' ' ')" = "one:latest three:latest two:latest " ] ||
	fail "images {{.Repository}}:{{.Tag}}"
[ "$("$IB" images --format '{{.ID}}' one)" = "${id:7:12}" ] || fail "images {{.ID}}"
[ "$("$IB" images --no-trunc --format '{{.ID}}' one)" = "$id" ] || fail "images --no-trunc {{.ID}}"
[ "$("$IB" images -q --no-trunc one)" = "$id" ] || fail "images -q --no-trunc"
"$IB" images --format 'table {{.Repository}}\t{{.Tag}}' one >"$tmp/t"
[ "$(head -1 "$tmp/t" | tr -s ' ')" = "REPOSITORY TAG" ] || fail "table header: $(cat "$tmp/t")"
[ "$(sed -n 2p "$tmp/t" | tr -s ' ')" = "one latest" ] || fail "table row: $(cat "$tmp/t")"
"$IB" images --format table | head -1 | grep -q '^REPOSITORY *TAG *IMAGE ID *CREATED *SIZE$' || fail "--format table"
"$IB" images --digests | head -1 | grep -q 'DIGEST' || fail "--digests"
[ "$("$IB" images --format '{{lower .Repository}}-{{upper .Tag}}' one)" = one-LATEST ] || fail "lower/upper"
[ "$("$IB" inspect --format '{{join .RepoTags ","}}' one)" = one:latest ] || fail "join"
# fields docker's structs always have print as Go prints their zero values, never <no value>
# (image two has no labels nor Cmd; one has no Env): map[], [], "" and json null, as docker's
[ "$("$IB" inspect --format '{{.Config.Labels}}' two)" = 'map[]' ] || fail "{{.Config.Labels}} without labels"
[ "$("$IB" inspect --format '{{json .Config.Labels}}' two)" = null ] || fail "{{json .Config.Labels}} without labels"
[ "$("$IB" inspect --format '{{.Config.Env}}|{{.Config.Cmd}}|{{.Config.Volumes}}' one)" = '[]|[]|map[]' ] ||
	fail "nil slices and maps: $("$IB" inspect --format '{{.Config.Env}}|{{.Config.Cmd}}|{{.Config.Volumes}}' one)"
[ "$("$IB" inspect --format '{{.Config.User}}|{{json .Config.WorkingDir}}' one)" = '|""' ] || fail "empty strings"
set +e
"$IB" images --format '{{range .}}x{{end}}' 2>"$tmp/err"; rc=$?
set -e
[ "$rc" = 125 ] && grep -q 'not supported' "$tmp/err" || fail "an unsupported template: $rc $(cat "$tmp/err")"
set +e
"$IB" images --format '{{.NoSuchField}}' 2>"$tmp/err"; rc=$?
set -e
[ "$rc" != 0 ] && grep -q 'NoSuchField' "$tmp/err" || fail "an unknown field: $rc $(cat "$tmp/err")"

# --- --filter ---
sleep 1.1 # a later second for before/since (created times are in seconds)
late=$("$IB" import "$tmp/bb.tar") # untagged: dangling
f() { "$IB" images --format '{{.Repository}}' "$@" | sort | tr '\n' ' '; }
[ "$(f --filter dangling=true)" = "<none> " ] || fail "dangling=true: $(f --filter dangling=true)"
[ "$(f --filter dangling=false)" = "one three two " ] || fail "dangling=false"
[ "$(f --filter label=k)" = "one three " ] || fail "label=k: $(f --filter label=k)"
[ "$(f --filter label=k=w)" = "three " ] || fail "label=k=w"
[ "$(f --filter 'reference=t*')" = "three two " ] || fail "reference=t*"
[ "$(f -f 'reference=one' -f 'reference=two')" = "one two " ] || fail "two references (or)"
[ "$(f --filter label=k --filter 'reference=t*')" = "three " ] || fail "label and reference (and)"
[ "$(f --filter since=three)" = "<none> " ] || fail "since=three: $(f --filter since=three)"
[ "$(f --filter before="$late")" = "one three two " ] || fail "before=$late: $(f --filter before="$late")"
set +e
"$IB" images --filter nope=1 2>/dev/null; rc=$?
set -e
[ "$rc" != 0 ] || fail "an unknown filter is accepted"

# --- docker's management aliases ---
[ "$("$IB" image ls -q | sort)" = "$("$IB" images -q | sort)" ] || fail "image ls"
"$IB" image inspect --format '{{.Id}}' one | grep -qx "$id" || fail "image inspect"
"$IB" image tag one four && "$IB" image rm four | grep -q four || fail "image tag / image rm"
"$IB" image history -q one | grep -q "${id:7:12}" || fail "image history"
"$IB" container ls -a >/dev/null || fail "container ls"
"$IB" image --help | grep -q '^  ls ' || fail "image --help"
"$IB" image ls --help | grep -q 'imagebuild image ls' || fail "image ls --help names its alias"
for a in "image build" "image save" "image load" "image push" "image pull" "image prune" "container run" \
	"container rm" "container commit" "container exec" "builder prune"; do
	"$IB" $a --help >/dev/null || fail "$a --help"
done
set +e
"$IB" image nope 2>/dev/null; rc=$?
set -e
[ "$rc" = 125 ] || fail "image nope exits $rc"
"$IB" builder prune >/dev/null || fail "builder prune"
[ "$("$IB" images -q --filter dangling=true)" = "" ] || fail "builder prune left the untagged image"
echo ok
