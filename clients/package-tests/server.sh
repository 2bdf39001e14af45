# Sourced by the package tests: start_server starts the real vss-server ($VSS_SERVER_BIN,
# default bin/vss-server of this checkout) with an in-memory store and signature
# authentication on a loopback port the kernel picks, waits until it serves, and sets
# VSS_URL; the server is stopped when the sourcing script exits.

vss_server_pid=""
vss_server_log=""

stop_server() {
	if [[ -n "$vss_server_pid" ]] && kill -0 "$vss_server_pid" 2>/dev/null; then
		kill "$vss_server_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$vss_server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$vss_server_pid" 2>/dev/null || true
		wait "$vss_server_pid" 2>/dev/null || true
	fi
	vss_server_pid=""
}

start_server() {
	local root bin addr
	root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
	bin="${VSS_SERVER_BIN:-$root/bin/vss-server}"
	if [[ ! -x "$bin" ]]; then
		echo "$bin does not exist: run make build (or set VSS_SERVER_BIN)" >&2
		return 1
	fi
	vss_server_log="$(mktemp "${TMPDIR:-/tmp}/vss-server-log.XXXXXX")"
	"$bin" --listen 127.0.0.1:0 --database-url memory: --log-format json --auth signature 2>"$vss_server_log" &
	vss_server_pid=$!
	for _ in $(seq 1 300); do
		addr="$(sed -n 's/.*"msg":"serving VSS".*"addr":"\([^"]*\)".*/\1/p' "$vss_server_log" | head -1)"
		if [[ -n "$addr" ]]; then
			VSS_URL="http://$addr"
			export VSS_URL
			echo "vss-server serving at $VSS_URL"
			return 0
		fi
		if ! kill -0 "$vss_server_pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "vss-server did not start within 30 s:" >&2
	cat "$vss_server_log" >&2
	stop_server
	return 1
}
