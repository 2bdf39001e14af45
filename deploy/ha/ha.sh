#!/usr/bin/env bash
# A highly available VSS on one machine, for evaluation and as the template for production:
# etcd, PostgreSQL nodes managed by Patroni with synchronous replication, and vss-server
# instances. Usage: deploy/ha/ha.sh start|stop|status|etcd-stop|etcd-start   (HA_DIR, default /tmp/vss-ha)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${HA_DIR:-/tmp/vss-ha}"
nodes="${HA_PG_NODES:-3}"
# HA_SYNC=0 replicates asynchronously, for comparison: a commit then waits for no standby.
sync="${HA_SYNC:-1}"
pgbin="${HA_PG_BIN:-/usr/lib/postgresql/15/bin}"
run_as=()
if [[ "$(id -u)" == 0 ]]; then run_as=(setpriv --reuid=postgres --regid=postgres --init-groups); fi  # exec, so that $! is the process itself

etcd_port=2379
pg_port() { echo $((5440 + $1)); }
api_port() { echo $((8008 + $1)); }

node_config() {
	local i="$1"
	cat <<YAML
scope: vss
name: pg$i
restapi:
  listen: 127.0.0.1:$(api_port "$i")
  connect_address: 127.0.0.1:$(api_port "$i")
etcd3:
  hosts: 127.0.0.1:$etcd_port
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: $([[ "$sync" == 1 ]] && echo 0 || echo 67108864)
    synchronous_mode: $([[ "$sync" == 1 ]] && echo true || echo false)
    synchronous_mode_strict: $([[ "$sync" == 1 ]] && echo true || echo false)
    # With etcd unreachable, the primary keeps running as long as it reaches every
    # other member (instead of demoting itself when its leader key expires).
    failsafe_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        synchronous_commit: "on"
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$(pg_port "$i")
  connect_address: 127.0.0.1:$(pg_port "$i")
  data_dir: $dir/pg$i
  bin_dir: $pgbin
  pgpass: $dir/pgpass$i
  authentication:
    replication:
      username: replicator
      password: replicator
    superuser:
      username: postgres
      password: postgres
  parameters:
    unix_socket_directories: $dir
YAML
}

start_etcd() {
	"${run_as[@]}" etcd --name e1 --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster e1=http://127.0.0.1:2380 >>"$dir/etcd.log" 2>&1 &
	echo $! >"$dir/etcd.pid"
}

stop_etcd() {
	kill "$(cat "$dir/etcd.pid")" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null || return 0
		sleep 0.1
	done
}

start() {
	mkdir -p "$dir"
	chmod 0755 "$dir"
	if [[ -n "${run_as[*]}" ]]; then chown postgres "$dir"; fi
	start_etcd
	for i in $(seq 1 "$nodes"); do
		node_config "$i" >"$dir/pg$i.yml"
		"${run_as[@]}" patroni "$dir/pg$i.yml" >"$dir/pg$i.log" 2>&1 &
		echo $! >"$dir/pg$i.pid"
	done
}

stop() {
	# Patroni stops its PostgreSQL on SIGTERM; whatever is left after 30 s is killed.
	for f in "$dir"/pg*.pid "$dir"/etcd.pid; do
		[[ -f "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true
	done
	for _ in $(seq 1 300); do
		pgrep -f "$dir/" >/dev/null || break
		sleep 0.1
	done
	pkill -9 -f "$dir/" 2>/dev/null || true
	rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) patronictl -c "$dir/pg1.yml" list ;;
etcd-stop) stop_etcd ;;
etcd-start) start_etcd ;;
*) echo "usage: $0 start|stop|status|etcd-stop|etcd-start" >&2; exit 2 ;;
esac
