#!/bin/bash
# COPY --exclude/--parents in the step's cache key, COPY --link, and RUN
# --mount=type=cache's sharing= across builds that run at the same time
# against one store (BuildKit's mount manager: shared users see each other's
# writes, locked ones run one after the other, a private one gets a fresh
# instance while another holds the cache). Builds run in the background;
# each waits for the other through a second (shared) cache, bounded in time.
set -euo pipefail
IB=$IMAGEBUILD
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
. "$IB_SOURCE_ROOT/tests/common/progress.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds need root"
tmp=$(mktemp -d /tmp/ibtest-build-flags-XXXXXX)
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
build() { "$IB" build "$@"; }

sh "$IB_MAKE_BUSYBOX" "$tmp/busybox.tar" || skip_or_fail "busybox-static is not installed"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null

# ---- COPY --exclude and --parents: the patterns are in the step's key ----
ctx=$tmp/copy
mkdir -p "$ctx/src/a" "$ctx/src/b"
echo 1 > "$ctx/src/a/keep.txt"
echo 2 > "$ctx/src/b/drop.log"
df() { printf 'FROM busybox\n%s\n' "$1" > "$ctx/Dockerfile"; }
df 'COPY --exclude=**/*.log src /dst/'
build -t x "$ctx" > "$tmp/o1" 2>&1
build -t x "$ctx" > "$tmp/o2" 2>&1
grep -q '^=> CACHED \[1/1\]' <(steps "$tmp/o2") || { cat "$tmp/o2"; fail "a rebuild of COPY --exclude was not cached"; }
# an excluded file is not in the key (BuildKit's content hash skips it too)
echo changed > "$ctx/src/b/drop.log"
build -t x "$ctx" > "$tmp/o3" 2>&1
grep -q '^=> CACHED \[1/1\]' <(steps "$tmp/o3") || { cat "$tmp/o3"; fail "a change of an excluded file missed the cache"; }
# another pattern is another step
df 'COPY --exclude=**/*.txt src /dst/'
build -t x "$ctx" > "$tmp/o4" 2>&1
grep -q '^=> CACHED' <(steps "$tmp/o4") && { cat "$tmp/o4"; fail "a changed --exclude pattern hit the cache"; }
[ "$("$IB" run --rm x find /dst -type f)" = /dst/b/drop.log ] || fail "--exclude=**/*.txt: /dst holds $("$IB" run --rm x find /dst -type f)"
# --parents, and its pattern
df 'COPY --parents src/./a/keep.txt /p/'
build -t p "$ctx" > "$tmp/o5" 2>&1
[ "$("$IB" run --rm p cat /p/a/keep.txt)" = 1 ] || fail "COPY --parents src/./a/keep.txt did not make /p/a/keep.txt"
df 'COPY src/./a/keep.txt /p/'
build -t p "$ctx" > "$tmp/o6" 2>&1
grep -q '^=> CACHED' <(steps "$tmp/o6") && { cat "$tmp/o6"; fail "dropping --parents hit the cache"; }
df 'COPY --parents src/a/./keep.txt /p/'
build -t p "$ctx" > "$tmp/o7" 2>&1
grep -q '^=> CACHED' <(steps "$tmp/o7") && { cat "$tmp/o7"; fail "moving the --parents pivot hit the cache"; }
[ "$("$IB" run --rm p cat /p/keep.txt)" = 1 ] || fail "COPY --parents src/a/./keep.txt did not make /p/keep.txt"

# ---- COPY/ADD --link: a layer made on an empty filesystem (BuildKit's merge
# of a copy onto scratch): the destination's directories are the layer's own
# (they replace the stage's), a symlink on the way is not followed; with
# --chmod, BuildKit copies as without --link ----
lk=$tmp/link
mkdir -p "$lk"
echo linked > "$lk/f"
cat > "$lk/Dockerfile" <<'DF'
FROM busybox
RUN mkdir -p /app /add /srv/real /keep && chown 1000 /app /add /keep && chmod 700 /app /add /keep && ln -s /srv/real /lnk
COPY --link f /app/
COPY --link f /lnk/
COPY --link --chmod=644 f /keep/
ADD --link f /add/
RUN stat -c '%u %a %F' /app /lnk /keep /add > /meta && ls /srv/real | wc -l >> /meta && cat /app/f /lnk/f /keep/f >> /meta
DF
build -t link "$lk" > "$tmp/l1" 2>&1 || { cat "$tmp/l1"; fail "COPY --link failed"; }
got=$("$IB" run --rm link cat /meta | tr '\n' '|')
[ "$got" = "0 755 directory|0 755 directory|1000 700 directory|0 755 directory|0|linked|linked|linked|" ] ||
	fail "COPY --link gave: $got"
printf 'FROM busybox\nCOPY --link --chown=nobody f /x\n' > "$lk/Dockerfile"
if build -t link2 "$lk" > "$tmp/l2" 2>&1; then fail "COPY --link --chown=<name> found the name in the stage"; fi
grep -q "no such user" "$tmp/l2" || { cat "$tmp/l2"; fail "COPY --link --chown=<name>: unclear error"; }

# ---- RUN --mount=type=cache,sharing=... across concurrent builds ----
# Two builds of one store at once: $1 and $2 are their RUN lines.
concurrent() {
	local name=$1 a=$2 b=$3
	mkdir -p "$tmp/$name-a" "$tmp/$name-b"
	printf 'FROM busybox\nRUN %s\n' "$a" > "$tmp/$name-a/Dockerfile"
	printf 'FROM busybox\nRUN %s\n' "$b" > "$tmp/$name-b/Dockerfile"
	build --no-cache "$tmp/$name-a" > "$tmp/$name-a.out" 2>&1 & pids+=($!)
	build --no-cache "$tmp/$name-b" > "$tmp/$name-b.out" 2>&1 & pids+=($!)
	local rc=0
	wait "${pids[0]}" || rc=1
	wait "${pids[1]}" || rc=1
	pids=()
	if [ $rc != 0 ]; then
		sed 's/^/    a| /' "$tmp/$name-a.out" >&2
		sed 's/^/    b| /' "$tmp/$name-b.out" >&2
		fail "$name: a build failed"
	fi
}
# wait (at most 60 s) for a file another build writes
waitfor='w() { i=0; while [ ! -e "$1" ]; do i=$((i+1)); [ $i -lt 600 ] || { echo "timed out waiting for $1"; exit 1; }; sleep 0.1; done; }'

# shared (the default): each sees what the other wrote while both run
concurrent shared \
	"--mount=type=cache,target=/c,id=sh sh -c '$waitfor; echo a > /c/a; w /c/b; echo saw-\$(cat /c/b)'" \
	"--mount=type=cache,target=/c,id=sh,sharing=shared sh -c '$waitfor; echo b > /c/b; w /c/a; echo saw-\$(cat /c/a)'"
grep -q saw-b "$tmp/shared-a.out" && grep -q saw-a "$tmp/shared-b.out" || fail "shared: the builds did not see each other's writes"

# locked: one after the other; each writes when it starts and ends into the cache
run='sh -c '"'"'echo "$(date +%s) start $X" >> /c/log; sleep 3; echo "$(date +%s) end $X" >> /c/log'"'"''
concurrent locked \
	"--mount=type=cache,target=/c,id=lk,sharing=locked X=a $run" \
	"--mount=type=cache,target=/c,id=lk,sharing=locked X=b $run"
mkdir -p "$tmp/show"
printf 'FROM busybox\nRUN --mount=type=cache,target=/c,id=lk,sharing=locked cat /c/log\n' > "$tmp/show/Dockerfile"
build --no-cache "$tmp/show" > "$tmp/show.out" 2>&1 || { cat "$tmp/show.out"; fail "locked: reading the log failed"; }
sed "s/^/    /" "$tmp/show.out"
log=$(grep -E '[0-9]+ (start|end) [ab]$' "$tmp/show.out" | sed -E 's/^.*[^0-9]([0-9]+ (start|end) [ab])$/\1/' || true)
echo "locked: the cache's log:"; echo "$log" | sed 's/^/    /'
[ "$(echo "$log" | wc -l)" = 4 ] || fail "locked: expected 4 lines in the log"
order=$(echo "$log" | awk '{ printf "%s-%s ", $2, $3 }')
case $order in
"start-a end-a start-b end-b " | "start-b end-b start-a end-a ") ;;
*) fail "locked: the two RUNs overlapped ($order)" ;;
esac
end1=$(echo "$log" | sed -n 2p | cut -d' ' -f1)
start2=$(echo "$log" | sed -n 3p | cut -d' ' -f1)
[ "$start2" -ge "$end1" ] || fail "locked: the second started at $start2, before the first ended at $end1"

# private: while one holds the cache, the other gets a fresh (empty) one;
# a second, shared cache is how b knows a holds its instance
concurrent private \
	"--mount=type=cache,target=/c,id=pv,sharing=private --mount=type=cache,target=/chan,id=chan sh -c '$waitfor; echo a > /c/who; touch /chan/a-holds; w /chan/b-done; cat /c/who'" \
	"--mount=type=cache,target=/c,id=pv,sharing=private --mount=type=cache,target=/chan,id=chan sh -c '$waitfor; w /chan/a-holds; for f in /c/*; do [ -e \$f ] && echo in-c:\$f; done; echo b > /c/who; touch /chan/b-done; echo b-\$(echo ran)'"
grep -q b-ran "$tmp/private-b.out" || fail "private: b did not run"
grep -q in-c:/c/who "$tmp/private-b.out" && fail "private: b saw a's cache instance: $(grep in-c:/ "$tmp/private-b.out")"
grep -qx '\(.* \)\?a' "$tmp/private-a.out" || { cat "$tmp/private-a.out"; fail "private: a's instance was written by b"; }
# both instances are kept: a later private user takes one of them
printf 'FROM busybox\nRUN --mount=type=cache,target=/c,id=pv,sharing=private cat /c/who\n' > "$tmp/show/Dockerfile"
build --no-cache "$tmp/show" > "$tmp/show.out" 2>&1 || { cat "$tmp/show.out"; fail "private: a third build failed"; }
grep -qE '(^| )(a|b)$' "$tmp/show.out" || { cat "$tmp/show.out"; fail "private: a later build found neither instance"; }

# one RUN that mounts one locked cache twice has the one instance twice (no wait on itself)
printf 'FROM busybox\nRUN --mount=type=cache,target=/a,id=twice,sharing=locked --mount=type=cache,target=/b,id=twice,sharing=locked sh -c "echo twice-\\$(echo seen) > /a/f; cat /b/f"\n' > "$tmp/show/Dockerfile"
timeout 120 "$IB" build --no-cache "$tmp/show" > "$tmp/show.out" 2>&1 || { cat "$tmp/show.out"; fail "twice: a RUN mounting one locked cache twice failed or waited on itself"; }
grep -Eq '(^| )twice-seen$' "$tmp/show.out" || { cat "$tmp/show.out"; fail "twice: the two mounts of one cache are not the same directory"; }

echo "build-flags: ok"
