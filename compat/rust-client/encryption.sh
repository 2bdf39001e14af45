#!/usr/bin/env bash
# The cross-language encryption test (docs/encryption.md): one bin/vss-server on loopback
# (--auth none, embedded store); every language writes the fixture of encryption-vectors.json
# under its own store-id prefix, then every language reads and verifies what every language
# wrote, including the tampering it must detect.
#
# Usage: bash compat/rust-client/encryption.sh   (make test-encryption-compat)
# ENCRYPTION_LANGS="rust go" selects languages for a local run; the default is all four, and a
# missing compat/encryption/<lang>.sh fails the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="$here/target"
vectors="$here/encryption-vectors.json"
read -r -a langs <<<"${ENCRYPTION_LANGS:-rust go ts kotlin}"

for lang in "${langs[@]}"; do
	if [[ ! -f "$root/compat/encryption/$lang.sh" ]]; then
		echo "compat/encryption/$lang.sh is missing: every language writes and reads the fixture" >&2
		exit 1
	fi
done

echo "== building the server, vssctl and the Rust encryption program"
make -C "$root" --no-print-directory build build-vssctl
cargo build --quiet --manifest-path "$here/Cargo.toml" --bin encryption

echo "== checking that encryption-vectors.json is what the crates produce now"
if ! "$CARGO_TARGET_DIR/debug/encryption" vectors | diff -u "$vectors" - >/dev/null; then
	echo "compat/rust-client/encryption-vectors.json is stale: run make encryption-vectors" >&2
	exit 1
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
log="$(mktemp "${TMPDIR:-/tmp}/vss-server-log.XXXXXX")"
out="$(mktemp "${TMPDIR:-/tmp}/vss-encryption-out.XXXXXX")"
server_pid=""
target_pid=""
target_dir=""
cleanup() {
	for pid in "$server_pid" "$target_pid"; do
		if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	rm -f "$log" "$out"
	if [[ -n "$target_dir" ]]; then rm -rf "$target_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting bin/vss-server on 127.0.0.1:$port"
"$root/bin/vss-server" --listen "127.0.0.1:$port" --database-url memory: --auth none >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do # 30 s
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "the server exited; its log:" >&2
		cat "$log" >&2
		exit 1
	fi
	curl -fsS --max-time 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done

export VSS_BASE_URL="http://127.0.0.1:$port" VSS_ENCRYPTION_VECTORS="$vectors"

# run LANG ARGS...: runs compat/encryption/LANG.sh, printing its output only on failure.
run() {
	local lang="$1"
	shift
	if ! timeout 600 bash "$root/compat/encryption/$lang.sh" "$@" >"$out" 2>&1; then
		echo "FAIL $lang $*:" >&2
		cat "$out" >&2
		echo "== server log:" >&2
		cat "$log" >&2
		exit 1
	fi
}

for writer in "${langs[@]}"; do
	run "$writer" write "enc-$writer"
	echo "ok   $writer wrote the fixture under enc-$writer: $(tail -n 1 "$out")"
done

declare -A total
for reader in "${langs[@]}"; do
	total[$reader]=0
	for writer in "${langs[@]}"; do
		run "$reader" read "enc-$writer"
		n="$(grep -Eo '[0-9]+ checks passed' "$out" | tail -n 1 | cut -d' ' -f1 || true)"
		if [[ -z "$n" || "$n" -eq 0 ]]; then
			echo "FAIL $reader read enc-$writer: its output has no 'N checks passed' (N > 0):" >&2
			cat "$out" >&2
			exit 1
		fi
		total[$reader]=$((total[$reader] + n))
		echo "ok   $reader read what $writer wrote: $n checks passed"
	done
done

echo "== checks passed per reading language (over ${#langs[@]} writers)"
for reader in "${langs[@]}"; do
	echo "$reader: ${total[$reader]}"
done

# Moving the wallets to another provider: vssctl migrate streams every store of the
# server (all written above, by the four languages, under the one user of --auth none)
# into a second server on the embedded store, then the real Rust crate reads every
# fixture there. Its reads check each value, each key's version against the sealed one
# (a conditional write's rollback) and the listing, so they pass only if the move kept
# values, versions, global versions and listing order.
target_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
target_dir="$(mktemp -d "${TMPDIR:-/tmp}/vss-migrated.XXXXXX")"
echo "== migrating every store to a second server (embedded store) on 127.0.0.1:$target_port"
"$root/bin/vss-server" --listen "127.0.0.1:$target_port" --data-dir "$target_dir" --auth none >>"$log" 2>&1 &
target_pid=$!
for _ in $(seq 1 300); do # 30 s
	if ! kill -0 "$target_pid" 2>/dev/null; then
		echo "the second server exited; the log:" >&2
		cat "$log" >&2
		exit 1
	fi
	curl -fsS --max-time 1 "http://127.0.0.1:$target_port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
if ! "$root/bin/vssctl" migrate --from "$VSS_BASE_URL" --to "http://127.0.0.1:$target_port" >"$out" 2>&1; then
	echo "FAIL vssctl migrate:" >&2
	cat "$out" >&2
	cat "$log" >&2
	exit 1
fi
sed 's/^/     /' "$out"
export VSS_BASE_URL="http://127.0.0.1:$target_port"
migrated=0
for writer in "${langs[@]}"; do
	run rust read "enc-$writer"
	n="$(grep -Eo '[0-9]+ checks passed' "$out" | tail -n 1 | cut -d' ' -f1 || true)"
	if [[ -z "$n" || "$n" -eq 0 ]]; then
		echo "FAIL rust read enc-$writer after the migration: no 'N checks passed' (N > 0):" >&2
		cat "$out" >&2
		exit 1
	fi
	migrated=$((migrated + n))
	echo "ok   after the migration, rust read what $writer wrote: $n checks passed"
done
echo "== after the migration: $migrated checks passed (vss-client-ng reading every fixture on the target)"
