# Sourced by shell tests that read what `imagebuild build` showed: its
# progress is on stderr, in BuildKit's plain lines when stderr is not a
# terminal ("#3 [2/7] RUN …", "#3 CACHED", "#3 DONE 0.4s").
# steps FILE: the build steps of such a log, one a line, in the order they
# started: "=> [2/7] RUN …" for a step that ran, "=> CACHED [2/7] RUN …" for
# one taken from the cache ([internal] work and exporting are left out).
# Read it as `grep -q PATTERN <(steps FILE)` (a pipe into grep -q may end
# the writer early, which `set -o pipefail` reports as a failure).
steps() {
	awk '
		/^#[0-9]+ \[/ { n = $1; line = $0; sub(/^#[0-9]+ /, "", line)
			if (!(n in name)) order[++k] = n; name[n] = line; next }
		/^#[0-9]+ CACHED$/ { cached[$1] = 1 }
		END { for (i = 1; i <= k; i++) { n = order[i]
			if (name[n] ~ /^\[internal\]/) continue
			print "=> " (cached[n] ? "CACHED " : "") name[n] } }
	' "$1"
}
