# Sourced by shell tests that need a registry: start_registry NAME PORT [EXTRA
# YAML] runs Debian's docker-registry ($REGISTRY) on 127.0.0.1:PORT with its
# data under $tmp/NAME, records its pid in the array `pids` (the caller kills
# them on exit) and waits until it answers. free_port prints a free TCP port.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
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
	"${REGISTRY:-/usr/bin/docker-registry}" serve "$tmp/$name/config.yml" >"$tmp/$name/log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.05
	done
	cat "$tmp/$name/log" >&2
	echo "FAIL: registry $name did not start on port $port" >&2
	exit 1
}
