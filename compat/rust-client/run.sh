#!/usr/bin/env bash
# Runs the real Rust VSS client (vss-client-ng) against a freshly built server on loopback.
# Usage: bash compat/rust-client/run.sh   (from anywhere; needs go, make, cargo, curl)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="$here/target"

echo "== building the server and vssctl"
make -C "$root" build build-vssctl

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

# The change feed: a device (vssctl, through Connect) follows the store "rust-feed" and
# watches it live while the Rust client writes it through the VSS HTTP API.
feed_dir="$(mktemp -d "${TMPDIR:-/tmp}/vss-feed.XXXXXX")"
trap 'cleanup; rm -rf "$feed_dir"; if [[ -n "${limited_pid:-}" ]]; then kill "$limited_pid" 2>/dev/null || true; wait "$limited_pid" 2>/dev/null || true; fi' EXIT
vssctl=("$root/bin/vssctl" --server "$base" --store-id rust-feed --private-key-file "$feed_dir/key")
"$root/bin/vssctl" keygen --file "$feed_dir/key" >/dev/null
cursor="$("${vssctl[@]}" cursor)"
timeout 300 "${vssctl[@]}" watch --cursor "$cursor" --count 5 >"$feed_dir/changes" &
watch_pid=$!

echo "== running vss-client-ng 0.6.0 against $base/vss (and a rate-limited server on port $limited_port)"
status=0
VSS_BASE_URL="$base" VSS_RATE_LIMITED_URL="http://127.0.0.1:$limited_port" VSS_FEED_KEY="$(cat "$feed_dir/key")" \
	timeout 300 cargo run --quiet --manifest-path "$here/Cargo.toml" || status=$?
if [[ $status -ne 0 ]]; then
	echo "== the client program failed (exit $status); server log:" >&2
	cat "$log" >&2
	exit "$status"
fi

echo "== the change feed of the Rust client's writes, as vssctl watch saw them live"
watch_status=0
wait "$watch_pid" || watch_status=$?
cat "$feed_dir/changes"
# Cursor, put/delete, key, version, device (none through the VSS HTTP API). The changes of
# one write are consecutive, in the store's order.
want="$(printf '%s\n' $'1\tput\ta\t1\t' $'2\tput\tb\t1\t' $'3\tput\ta\t2\t' \
	$'4\tput\tglobal_version\t1\t' $'5\tdelete\tb\t1\t')"
if [[ $watch_status -ne 0 || "$(cat "$feed_dir/changes")" != "$want" ]]; then
	echo "== the feed differs from the Rust client's writes (vssctl watch exit $watch_status); want:" >&2
	printf '%s\n' "$want" >&2
	exit 1
fi
echo "ok   feed: the Rust client's create, update, global version and delete, live, once each"
