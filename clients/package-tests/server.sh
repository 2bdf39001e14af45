# Sourced by the package tests: start_server starts the real vss-server ($VSS_SERVER_BIN,
# default bin/vss-server of this checkout) with an in-memory store and signature
# authentication on a loopback port the kernel picks, waits until it serves, and sets
# VSS_URL; the server is stopped when the sourcing script exits.

vss_server_pid=""
vss_server_log=""

# stop_pid stops the server with process id $1, if it runs: SIGTERM, then after 10 s SIGKILL.
stop_pid() {
	if [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; then
		kill "$1" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$1" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}

# serving_addr waits up to 30 s for the server with process id $1 to log, in its JSON log
# $2, that it serves, and prints the address it serves on; it fails if the server exits
# or the time runs out.
serving_addr() {
	local addr
	for _ in $(seq 1 300); do
		addr="$(sed -n 's/.*"msg":"serving VSS".*"addr":"\([^"]*\)".*/\1/p' "$2" | head -1)"
		if [[ -n "$addr" ]]; then
			echo "$addr"
			return 0
		fi
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

stop_server() {
	stop_pid "$vss_server_pid"
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
	if addr="$(serving_addr "$vss_server_pid" "$vss_server_log")"; then
		VSS_URL="http://$addr"
		export VSS_URL
		echo "vss-server serving at $VSS_URL"
		return 0
	fi
	echo "vss-server did not start within 30 s:" >&2
	cat "$vss_server_log" >&2
	stop_server
	return 1
}

# start_lnurl_server starts a second vss-server, with signature and JWT authentication and
# its LNURL-auth issuer, and sets VSS_LNURL_SERVER_URL (its base URL) and VSS_LNURL_URL
# (the issuer, VSS_LNURL_SERVER_URL/auth/lnurl). The LNURLs it answers lead to its public
# URL, which must name a host, http://localhost:<port>: so the port is picked before the
# start, and the start is tried again on another port if another process took it
# meanwhile. stop_lnurl_server stops it.
lnurl_server_pid=""
lnurl_server_log=""

stop_lnurl_server() {
	stop_pid "$lnurl_server_pid"
	lnurl_server_pid=""
}

start_lnurl_server() {
	local root bin port
	root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
	bin="${VSS_SERVER_BIN:-$root/bin/vss-server}"
	lnurl_server_log="$(mktemp "${TMPDIR:-/tmp}/vss-server-lnurl-log.XXXXXX")"
	for _ in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		"$bin" --listen "127.0.0.1:$port" --database-url memory: --log-format json --auth signature,jwt \
			--lnurl-auth --public-url "http://localhost:$port" 2>"$lnurl_server_log" &
		lnurl_server_pid=$!
		if serving_addr "$lnurl_server_pid" "$lnurl_server_log" >/dev/null; then
			VSS_LNURL_SERVER_URL="http://localhost:$port"
			VSS_LNURL_URL="$VSS_LNURL_SERVER_URL/auth/lnurl"
			export VSS_LNURL_SERVER_URL VSS_LNURL_URL
			echo "vss-server with LNURL-auth serving at $VSS_LNURL_SERVER_URL"
			return 0
		fi
		stop_lnurl_server
		grep -q 'address already in use' "$lnurl_server_log" || break
	done
	echo "vss-server with LNURL-auth did not start:" >&2
	cat "$lnurl_server_log" >&2
	return 1
}
