# Sourced by shell tests that need a registry (Debian's docker-registry).
# The caller sets $tmp (a scratch directory), an array `pids` (killed by its
# cleanup), $REGISTRY (the docker-registry program) and a fail() function.

# free_port: a TCP port nobody listens on
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_registry NAME PORT [EXTRA YAML]: run a registry and wait until it answers
start_registry() {
	local name=$1 port=$2 extra=${3:-}
	mkdir -p "$tmp/$name"
	cat >"$tmp/$name/config.yml" <<-EOF2
	version: 0.1
	log:
	  level: error
	storage:
	  filesystem:
	    rootdirectory: $tmp/$name/data
	http:
	  addr: 127.0.0.1:$port
	$extra
	EOF2
	"$REGISTRY" serve "$tmp/$name/config.yml" >"$tmp/$name/log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.05
	done
	cat "$tmp/$name/log" >&2
	fail "registry $name did not start on port $port"
}
