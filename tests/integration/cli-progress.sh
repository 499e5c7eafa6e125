#!/bin/bash
# imagebuild --progress=auto|tty|plain|rawjson|quiet on build, push and pull,
# as BuildKit shows a build: the tty view in a real terminal (tmux) while a
# RUN runs (its timer, its last 6 output lines, the cached step collapsed)
# and after (the summary); plain's "#N" lines with durations; rawjson's one
# JSON object a line; quiet's image id alone; progress only ever on stderr.
# Usage: cli-progress.sh IMAGEBUILD
set -euo pipefail
IB=$1
. "$IB_SOURCE_ROOT/tests/common/skip.sh"
. "$IB_SOURCE_ROOT/tests/common/progress.sh"
. "$IB_SOURCE_ROOT/tests/common/registry.sh"
[ "$(id -u)" = 0 ] || skip_or_fail "builds with RUN need root"
command -v tmux >/dev/null || skip_or_fail "no tmux (Debian package tmux)"
tmp=$(mktemp -d /tmp/ibtest-progress-XXXXXX)
pids=()
sock=$tmp/tmux.sock
cleanup() {
	tmux -S "$sock" kill-server 2>/dev/null || true
	for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
	umount -R "$tmp"/store/snapshots/*/active/*/merged 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export IMAGEBUILD_ROOT=$tmp/store
fail() { echo "FAIL: $*" >&2; exit 1; }
unset BUILDKIT_PROGRESS

"$IB_SOURCE_ROOT/tests/resources/make-busybox-tar.sh" "$tmp/busybox.tar"
"$IB" import "$tmp/busybox.tar" busybox >/dev/null
ctx=$tmp/ctx
mkdir -p "$ctx"
echo hello > "$ctx/a"

echo "== plain (the default off a terminal): #N lines, output with its time, DONE with durations, CACHED"
printf 'FROM busybox\nCOPY a /a\n' > "$ctx/Dockerfile"
"$IB" build -t base "$ctx" > "$tmp/p1.out" 2> "$tmp/p1.err" || { cat "$tmp/p1.err"; fail "build"; }
cat > "$ctx/Dockerfile" <<'DF'
FROM busybox
COPY a /a
RUN echo plain-line-1; echo plain-line-2
ENV X=1
DF
"$IB" build --progress=plain -t plain "$ctx" > "$tmp/p2.out" 2> "$tmp/p2.err" || { cat "$tmp/p2.err"; fail "plain build"; }
cat "$tmp/p2.err"
n=$(sed -n 's/^#\([0-9]*\) \[2\/3\] RUN echo plain-line-1; echo plain-line-2$/\1/p' "$tmp/p2.err")
[ -n "$n" ] || fail "no '#N [2/3] RUN …' line"
grep -Eq "^#$n [0-9]+\.[0-9]{3} plain-line-2$" "$tmp/p2.err" || fail "the RUN's output is not '#$n <seconds> line'"
grep -Eq "^#$n DONE [0-9]+\.[0-9]s$" "$tmp/p2.err" || fail "no '#$n DONE <duration>'"
c=$(sed -n 's/^#\([0-9]*\) \[1\/3\] COPY a \/a$/\1/p' "$tmp/p2.err")
[ -n "$c" ] && grep -q "^#$c CACHED$" "$tmp/p2.err" || fail "the COPY step is not '#N CACHED'"
grep -Eq "^#$c DONE" "$tmp/p2.err" && fail "a cached step got a DONE line"
grep -q '^#[0-9]* exporting to image$' "$tmp/p2.err" || fail "no exporting step"
grep -q '^#[0-9]* naming to docker.io/library/plain:latest done$' "$tmp/p2.err" || fail "no naming line"
[ "$(steps "$tmp/p2.err")" = $'=> CACHED [1/3] COPY a /a\n=> [2/3] RUN echo plain-line-1; echo plain-line-2\n=> [3/3] ENV X=1' ] ||
	fail "steps: $(steps "$tmp/p2.err")"
# stdout: the result only
! grep -q '^#\|plain-line' "$tmp/p2.out" || fail "progress on stdout: $(cat "$tmp/p2.out")"
grep -q '^Successfully tagged plain$' "$tmp/p2.out" || fail "no result on stdout"
# --progress=auto is plain off a terminal
"$IB" build --progress auto --no-cache -t plain "$ctx" > "$tmp/p3.out" 2> "$tmp/p3.err" || fail "auto build"
grep -Eq '^#[0-9]+ [0-9]+\.[0-9]{3} plain-line-1$' "$tmp/p3.err" || { cat "$tmp/p3.err"; fail "auto off a terminal is not plain"; }

echo "== rawjson: the library's events, one JSON object a line"
"$IB" build --progress=rawjson --no-cache -t raw "$ctx" > "$tmp/r.out" 2> "$tmp/r.err" || { cat "$tmp/r.err"; fail "rawjson build"; }
/usr/bin/python3 - "$tmp/r.err" <<'PY' || fail "rawjson: $(head -c 2000 "$tmp/r.err")"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]   # every line parses
assert events, "no events"
for e in events:
    assert e["kind"] == "log" or set(e) >= {"version", "kind", "id", "text", "current", "total", "cached", "elapsed"}, e
kinds = {e["kind"] for e in events}
assert {"step", "step_done", "output", "bytes"} <= kinds, kinds
out = [e["text"] for e in events if e["kind"] == "output" and e["id"] == "[2/3]"]
assert out == ["plain-line-1", "plain-line-2"], out
steps = [(e["id"], e["current"], e["total"], e["cached"]) for e in events if e["kind"] == "step"]
assert steps == [("[1/3]", 1, 3, False), ("[2/3]", 2, 3, False), ("[3/3]", 3, 3, False)], steps
assert any(e["kind"] == "bytes" and e["id"].startswith("layer:") and e["current"] > 0 for e in events), events
PY
grep -q '^{' "$tmp/r.out" && fail "rawjson on stdout"
"$IB" build --progress=rawjson -t raw "$ctx" 2> "$tmp/r2.err" > /dev/null || fail "cached rawjson build"
/usr/bin/python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert all(e["cached"] for e in ev if e["kind"] in ("step", "step_done")), ev' "$tmp/r2.err" || fail "cached steps not cached in rawjson"

# $BUILDKIT_PROGRESS is the default, as buildx takes it; --progress wins over it
BUILDKIT_PROGRESS=rawjson "$IB" build -t raw "$ctx" 2> "$tmp/env.err" > /dev/null || fail "BUILDKIT_PROGRESS build"
head -1 "$tmp/env.err" | grep -q '^{"version":1,' || fail "BUILDKIT_PROGRESS=rawjson: $(head -3 "$tmp/env.err")"
BUILDKIT_PROGRESS=rawjson "$IB" build --progress=plain -t raw "$ctx" 2> "$tmp/env.err" > /dev/null || fail "--progress over BUILDKIT_PROGRESS"
grep -q '^#[0-9]* CACHED$' "$tmp/env.err" && ! grep -q '^{' "$tmp/env.err" || fail "--progress=plain lost to BUILDKIT_PROGRESS"

echo "== quiet: only the image id, on stdout"
"$IB" build --progress=quiet -t quiet "$ctx" > "$tmp/q.out" 2> "$tmp/q.err" || { cat "$tmp/q.err"; fail "quiet build"; }
[ ! -s "$tmp/q.err" ] || fail "quiet wrote to stderr: $(cat "$tmp/q.err")"
grep -Eqx 'sha256:[0-9a-f]{64}' "$tmp/q.out" && [ "$(wc -l < "$tmp/q.out")" = 1 ] || fail "quiet printed: $(cat "$tmp/q.out")"
[ "$(cat "$tmp/q.out")" = "$("$IB" inspect quiet | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"])')" ] ||
	fail "quiet did not print the image id"

echo "== a value not known is refused"
if "$IB" build --progress=fancy "$ctx" > /dev/null 2> "$tmp/bad.err"; then fail "--progress=fancy accepted"; fi
grep -q -- '--progress' "$tmp/bad.err" || fail "the error does not name --progress: $(cat "$tmp/bad.err")"

echo "== tty in a real terminal (tmux): the running step, then the summary"
cat > "$ctx/Dockerfile" <<'DF'
FROM busybox
COPY a /a
RUN --mount=type=cache,id=gate,target=/gate for i in 1 2 3 4 5 6 7 8 9; do echo "out-line-$i"; done; touch /gate/ready; while [ ! -e /gate/go ]; do sleep 0.05; done; echo after-gate
ENV Y=2
DF
# stdout and stderr on the terminal, no --progress: auto is tty there
tmux -S "$sock" new-session -d -s build -x 150 -y 40 \
	"IMAGEBUILD_ROOT='$IMAGEBUILD_ROOT' '$IB' build -t tty '$ctx'; echo EXIT=\$?; exec sleep 600"
pane() { tmux -S "$sock" capture-pane -p -t build > "$1"; }
# wait (no time limit of ours: meson's timeout) until the RUN shows its last output line and waits at the gate
until pane "$tmp/run1" && grep -q 'out-line-9' "$tmp/run1" && [ -n "$(find "$IMAGEBUILD_ROOT/cache-mounts" -name ready 2>/dev/null)" ]; do
	grep -q 'EXIT=' "$tmp/run1" && { cat "$tmp/run1"; fail "the build ended before its gate"; }
	sleep 0.1
done
pane "$tmp/run1"
cat "$tmp/run1"
grep -Eq '^\[\+\] Building [0-9]+\.[0-9]s \([0-9]+/[0-9]+\)$' "$tmp/run1" || fail "no running header"
grep -Eq '^ => CACHED \[1/3\] COPY a /a +0\.0s$' "$tmp/run1" || fail "the cached COPY is not collapsed as CACHED"
row='^ => \[2/3\] RUN --mount=type=cache,id=gate,target=/gate for i in'
grep -Eq "$row.* [0-9]+\.[0-9]s$" "$tmp/run1" || fail "the running RUN has no timer"
for i in 4 5 6 7 8 9; do grep -qx " => => # out-line-$i" "$tmp/run1" || fail "line $i of the output is not shown"; done
for i in 1 2 3; do grep -q "out-line-$i\$" "$tmp/run1" && fail "more than the last 6 lines shown (line $i)"; done
grep -q 'FINISHED\|exporting' "$tmp/run1" && fail "finished before the step did"
# the timer runs while the step prints nothing
t1=$(grep -E "$row" "$tmp/run1" | grep -Eo '[0-9]+\.[0-9]s$')
until pane "$tmp/run2" && t2=$(grep -E "$row" "$tmp/run2" | grep -Eo '[0-9]+\.[0-9]s$') && [ "$t2" != "$t1" ]; do sleep 0.1; done
echo "timer: $t1 -> $t2"
touch "$(dirname "$(find "$IMAGEBUILD_ROOT/cache-mounts" -name ready | head -1)")/go"
until pane "$tmp/end" && grep -q 'EXIT=' "$tmp/end"; do sleep 0.1; done
cat "$tmp/end"
grep -q '^EXIT=0$' "$tmp/end" || fail "the tty build failed"
grep -Eq '^\[\+\] Building [0-9]+\.[0-9]s \(([0-9]+)/\1\) FINISHED$' "$tmp/end" || fail "no final summary header"
grep -Eq "$row.* [0-9]+\.[0-9]s$" "$tmp/end" || fail "the RUN has no duration in the summary"
grep -Eq '^ => \[3/3\] ENV Y=2 +[0-9]+\.[0-9]s$' "$tmp/end" || fail "the last step is not in the summary"
grep -Eq '^ => exporting to image +[0-9]+\.[0-9]s$' "$tmp/end" || fail "no exporting step"
grep -Eq '^ => => naming to docker.io/library/tty:latest done$' "$tmp/end" || fail "no naming line"
grep -q '# out-line-' "$tmp/end" && fail "a finished step's output is still shown"
grep -q '^Successfully tagged tty$' "$tmp/end" || fail "no result"

echo "== push and pull: progress on stderr, the result on stdout"
port=$(free_port)
start_registry reg "$port"
reg=127.0.0.1:$port
"$IB" push --progress=plain tty "$reg/tty:1" > "$tmp/push.out" 2> "$tmp/push.err" || { cat "$tmp/push.err"; fail "push"; }
cat "$tmp/push.out" "$tmp/push.err"
grep -q ': Pushed$' "$tmp/push.err" || fail "plain push: no '<id>: Pushed' on stderr"
[ "$(cat "$tmp/push.out")" = "1: digest: $(sed -n 's/^1: digest: //p' "$tmp/push.out")" ] && [ "$(wc -l < "$tmp/push.out")" = 1 ] ||
	fail "push wrote more than its result on stdout"
"$IB" --root "$tmp/store2" pull --progress=rawjson "$reg/tty:1" > "$tmp/pull.out" 2> "$tmp/pull.err" || { cat "$tmp/pull.err"; fail "pull"; }
/usr/bin/python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
texts = {e["text"] for e in ev if e["kind"] == "bytes"}
assert {"Pulling fs layer", "Pull complete"} <= texts, texts
assert all(e["total"] > 0 for e in ev if e["kind"] == "bytes"), ev' "$tmp/pull.err" || fail "rawjson pull: $(cat "$tmp/pull.err")"
grep -q '^{' "$tmp/pull.out" && fail "pull progress on stdout"
"$IB" --root "$tmp/store3" pull --progress=quiet "$reg/tty:1" > "$tmp/pullq.out" 2> "$tmp/pullq.err" || fail "quiet pull"
[ ! -s "$tmp/pullq.err" ] && [ "$(cat "$tmp/pullq.out")" = "$reg/tty:1" ] || fail "quiet pull printed: $(cat "$tmp/pullq.out" "$tmp/pullq.err")"
# run pulling what it lacks: the pull's progress on stderr, stdout the command's alone
"$IB" --root "$tmp/store5" run --rm "$reg/tty:1" cat /a > "$tmp/run.out" 2> "$tmp/run.err" || { cat "$tmp/run.err"; fail "run of a missing image"; }
[ "$(cat "$tmp/run.out")" = hello ] || fail "run printed on stdout: $(cat "$tmp/run.out")"
grep -q ': Pull complete$' "$tmp/run.err" || fail "run's pull showed no progress: $(cat "$tmp/run.err")"
# tty: one row per blob with its final state and time, and the summary
tmux -S "$sock" new-session -d -s pull -x 150 -y 40 \
	"'$IB' --root '$tmp/store4' pull --progress=tty '$reg/tty:1' >/dev/null; echo EXIT=\$?; exec sleep 600"
until tmux -S "$sock" capture-pane -p -t pull > "$tmp/pull.tty" && grep -q 'EXIT=' "$tmp/pull.tty"; do sleep 0.1; done
cat "$tmp/pull.tty"
grep -q '^EXIT=0$' "$tmp/pull.tty" || fail "tty pull failed"
grep -Eq '^\[\+\] Pulling [0-9]+\.[0-9]s \(([0-9]+)/\1\) FINISHED$' "$tmp/pull.tty" || fail "no pull summary"
grep -Eq '^ => [0-9a-f]{12} Pull complete +[0-9]+\.[0-9]s$' "$tmp/pull.tty" || fail "no finished blob row"
echo "OK"
