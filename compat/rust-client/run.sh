#!/usr/bin/env bash
# Runs the real Rust VSS client (vss-client-ng) against a freshly built server on loopback.
# Usage: bash compat/rust-client/run.sh   (from anywhere; needs go, make, cargo, curl)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="$here/target"

echo "== building the server"
make -C "$root" build

echo "== building the client program"
cargo build --quiet --manifest-path "$here/Cargo.toml"

# A free loopback port: bind port 0 and read what the kernel gave.
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
		return
	fi
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free port found" >&2
	return 1
}
port="$(free_port)"
base="http://localhost:$port"

log="$(mktemp "${TMPDIR:-/tmp}/vss-server-log.XXXXXX")"
server_pid=""
cleanup() {
	if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -f "$log"
}
trap 'cleanup; if [[ -n "${limited_pid:-}" ]]; then kill "$limited_pid" 2>/dev/null || true; wait "$limited_pid" 2>/dev/null || true; fi' EXIT
trap 'exit 130' INT TERM

echo "== starting bin/vss-server on 127.0.0.1:$port (log: $log)"
"$root/bin/vss-server" --listen "127.0.0.1:$port" --database-url memory: \
	--auth signature,jwt --lnurl-auth --public-url "$base" >"$log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 1 300); do # 30 s
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "the server exited before answering /healthz; its log:" >&2
		cat "$log" >&2
		exit 1
	fi
	if curl -fsS --max-time 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
		ready=1
		break
	fi
	sleep 0.1
done
if [[ -z "$ready" ]]; then
	echo "the server did not answer /healthz within 30 s; its log:" >&2
	cat "$log" >&2
	exit 1
fi

# A second server with a per-user rate limit, for the rate-limit checks.
limited_port="$(free_port)"
"$root/bin/vss-server" --listen "127.0.0.1:$limited_port" --database-url memory: \
	--auth signature --rate-limit 2 --rate-burst 2 >>"$log" 2>&1 &
limited_pid=$!
for _ in $(seq 1 300); do
	curl -fsS --max-time 1 "http://127.0.0.1:$limited_port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done

echo "== running vss-client-ng 0.6.0 against $base/vss (and a rate-limited server on port $limited_port)"
status=0
VSS_BASE_URL="$base" VSS_RATE_LIMITED_URL="http://127.0.0.1:$limited_port" timeout 300 cargo run --quiet --manifest-path "$here/Cargo.toml" || status=$?
if [[ $status -ne 0 ]]; then
	echo "== the client program failed (exit $status); server log:" >&2
	cat "$log" >&2
fi
exit "$status"
