#!/usr/bin/env bash
# A highly available VSS on one machine, for evaluation and as the template for production:
# etcd, PostgreSQL nodes managed by Patroni with synchronous replication, and vss-server
# instances. Usage: deploy/ha/ha.sh start|stop|status|url|proxy-start|etcd-stop|etcd-start|node-start pgN
# (HA_DIR, default /tmp/vss-ha)
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
# The vss-server instances (started here unless HA_START_VSS=0, when they run elsewhere on
# these ports) and HAProxy in front of them: clients use http://127.0.0.1:$proxy_port.
read -r -a vss_ports <<<"${HA_VSS_PORTS:-8181 8182}"
proxy_port="${HA_PROXY_PORT:-8180}"
start_vss="${HA_START_VSS:-1}"
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

database_url() {
	local hosts=()
	for i in $(seq 1 "$nodes"); do hosts+=("127.0.0.1:$(pg_port "$i")"); done
	local IFS=,
	echo "postgres://postgres:postgres@${hosts[*]}/postgres?target_session_attrs=read-write&sslmode=disable"
}

haproxy_config() {
	cat <<CFG
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    option redispatch
    retries 2
frontend vss
    bind 127.0.0.1:$proxy_port
    default_backend servers
backend servers
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 1s fall 2 rise 1
CFG
	for p in "${vss_ports[@]}"; do
		echo "    server vss$p 127.0.0.1:$p check"
	done
}

start_proxy() {
	haproxy_config >"$dir/haproxy.cfg"
	haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
	echo $! >"$dir/haproxy.pid"
}

start_servers() {
	for p in "${vss_ports[@]}"; do
		"$root/bin/vss-server" --listen "127.0.0.1:$p" --database-url "$(database_url)" >"$dir/vss$p.log" 2>&1 &
		echo $! >"$dir/vss$p.pid"
	done
}

# wait_leader waits until a node's Patroni says it leads (its REST API answers /leader
# with 200), at most 90 s.
wait_leader() {
	for _ in $(seq 1 900); do
		for i in $(seq 1 "$nodes"); do
			if curl -fs -o /dev/null "http://127.0.0.1:$(api_port "$i")/leader"; then return 0; fi
		done
		sleep 0.1
	done
	echo "no PostgreSQL node leads after 90 s; see $dir/pg*.log" >&2
	exit 1
}

# start_node starts node i's Patroni with its configuration, as after a crash of its
# machine: Patroni rejoins the node to the cluster as a standby (rewinding it if it led).
start_node() {
	local i="$1"
	"${run_as[@]}" patroni "$dir/pg$i.yml" >>"$dir/pg$i.log" 2>&1 &
	echo $! >"$dir/pg$i.pid"
}

start() {
	mkdir -p "$dir"
	chmod 0755 "$dir"
	if [[ -n "${run_as[*]}" ]]; then chown postgres "$dir"; fi
	start_etcd
	for i in $(seq 1 "$nodes"); do
		node_config "$i" >"$dir/pg$i.yml"
		start_node "$i"
	done
	wait_leader
	if [[ "$start_vss" == 1 ]]; then
		if [[ ! -x "$root/bin/vss-server" ]]; then
			echo "bin/vss-server is missing: run make build first" >&2
			exit 1
		fi
		start_servers
		for p in "${vss_ports[@]}"; do
			for _ in $(seq 1 300); do
				curl -fs -o /dev/null "http://127.0.0.1:$p/readyz" && break
				sleep 0.1
			done
		done
	fi
	start_proxy
	echo "VSS at http://127.0.0.1:$proxy_port (HAProxy in front of ${vss_ports[*]}); database $(database_url)"
}

stop() {
	# Patroni stops its PostgreSQL on SIGTERM; whatever is left after 30 s is killed.
	for f in "$dir"/haproxy.pid "$dir"/vss*.pid "$dir"/pg*.pid "$dir"/etcd.pid; do
		[[ -f "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true
	done
	for _ in $(seq 1 300); do
		pgrep -f "$dir/" >/dev/null || break
		sleep 0.1
	done
	pkill -9 -f "$dir/" 2>/dev/null || true
	for f in "$dir"/vss*.pid "$dir"/haproxy.pid; do
		[[ -f "$f" ]] && kill -9 "$(cat "$f")" 2>/dev/null || true
	done
	rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) patronictl -c "$dir/pg1.yml" list ;;
url) database_url ;;
proxy-start) start_proxy ;;
etcd-stop) stop_etcd ;;
etcd-start) start_etcd ;;
node-start) start_node "${2#pg}" ;;
*) echo "usage: $0 start|stop|status|url|proxy-start|etcd-stop|etcd-start|node-start pgN" >&2; exit 2 ;;
esac
