#!/usr/bin/env bash
# A highly available VSS on one machine, for evaluation and as the template for production:
# etcd, PostgreSQL nodes managed by Patroni with synchronous replication, and vss-server
# instances. Every node archives its WAL into $HA_DIR/wal-archive (the shared backup storage
# of production, on one machine); backup takes a base backup from the primary, and restore
# recovers one to a point in time as a standalone PostgreSQL, for the restore drill.
# Usage: deploy/ha/ha.sh start|stop|status|url|proxy-start|etcd-stop|etcd-start
#        deploy/ha/ha.sh node-start pgN
#        deploy/ha/ha.sh backup [DIR]
#        deploy/ha/ha.sh restore BACKUP_DIR TARGET_TIME DATA_DIR PORT
#        deploy/ha/ha.sh restore-stop DATA_DIR
# (HA_DIR, default /tmp/vss-ha)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="$(realpath -m "${HA_DIR:-/tmp/vss-ha}")"
nodes="${HA_PG_NODES:-3}"
# HA_SYNC=0 replicates asynchronously, for comparison: a commit then waits for no standby.
sync="${HA_SYNC:-1}"
pgbin="${HA_PG_BIN:-/usr/lib/postgresql/15/bin}"
# Patroni's timing: the leader renews its key in etcd every loop_wait seconds, the key
# lives ttl seconds (a crashed primary is replaced once it expires), and a call to etcd
# or PostgreSQL is retried for retry_timeout seconds. Patroni needs
# ttl >= loop_wait + 2 * retry_timeout.
ttl="${HA_TTL:-6}"
loop_wait="${HA_LOOP_WAIT:-1}"
retry_timeout="${HA_RETRY_TIMEOUT:-2}"
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
    ttl: $ttl
    loop_wait: $loop_wait
    retry_timeout: $retry_timeout
    # Asynchronous (HA_SYNC=0, for comparison only): a standby may take over however far
    # behind it is (up to 1 GiB), so that a crash always fails over and shows what is lost.
    maximum_lag_on_failover: $([[ "$sync" == 1 ]] && echo 0 || echo 1073741824)
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
        # A standby whose primary went away tries to stream from the new one after this
        # long (PostgreSQL's default is 5 s). Until a standby streams from the new primary
        # and Patroni names it synchronous, commits there wait: this is most of the gap
        # between the promotion and the first write.
        wal_retrieve_retry_interval: 500ms
        # WAL archiving, for point-in-time recovery from a base backup (backup, restore).
        # archive_timeout bounds how much an idle database leaves unarchived. "always":
        # standbys archive the WAL they receive too, so WAL that a crashed primary never
        # archived is in the archive all the same (the copies coincide: archive-wal
        # accepts a file already archived when it is identical).
        archive_mode: "always"
        archive_command: "$dir/archive-wal %p $dir/wal-archive/%f"
        archive_timeout: 60s
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

# archive_script is every node's archive_command, "archive-wal SRC DEST": it copies the
# WAL file SRC to a temporary name next to DEST, flushes it, and links it to DEST, which
# fails if DEST exists (an atomic rename that never overwrites). When DEST exists (a file
# archived again after a failover, or after a crash before PostgreSQL noted the success),
# it succeeds only if the two are identical, and fails otherwise, so that no archived WAL
# is ever replaced.
archive_script() {
	cat <<'SH'
#!/bin/sh
set -eu
src="$1" dest="$2"
tmp="$dest.tmp.$$"
trap 'rm -f "$tmp"' EXIT
if [ ! -e "$dest" ]; then
	cp "$src" "$tmp"
	sync "$tmp"
	if ln "$tmp" "$dest" 2>/dev/null; then
		sync "$(dirname "$dest")"
		exit 0
	fi
fi
cmp -s "$src" "$dest"
SH
}

# as_pg runs a command as the user PostgreSQL runs as.
as_pg() { "${run_as[@]}" "$@"; }

# own_pg makes directories the PostgreSQL user's (when this runs as root).
own_pg() {
	if [[ -n "${run_as[*]}" ]]; then chown postgres:postgres "$@"; fi
}

# check_ports fails when a port this setup listens on is taken already (another cluster
# of ha.sh, or a system etcd or PostgreSQL), rather than start a half cluster.
check_ports() {
	local ports=("$etcd_port" 2380)
	for i in $(seq 1 "$nodes"); do ports+=("$(pg_port "$i")" "$(api_port "$i")"); done
	if [[ "$start_vss" == 1 ]]; then ports+=("${vss_ports[@]}" "$proxy_port"); fi
	for p in "${ports[@]}"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "port $p on 127.0.0.1 is in use: ha.sh start needs it (stop the other cluster: HA_DIR=... $0 stop)" >&2
			exit 1
		fi
	done
}

# check_tools fails when a tool this setup runs is missing, rather than start a half cluster
# and wait for a leader that cannot come.
check_tools() {
	local missing=()
	for t in etcd patroni haproxy curl "$pgbin/initdb"; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	if [[ ${#missing[@]} -gt 0 ]]; then
		echo "missing: ${missing[*]} (make ha-tools installs etcd, Patroni and HAProxy from the Debian packages; HA_PG_BIN names PostgreSQL's bin directory)" >&2
		exit 1
	fi
}

start() {
	check_tools
	check_ports
	mkdir -p "$dir"
	chmod 0755 "$dir"
	own_pg "$dir"
	archive_script >"$dir/archive-wal"
	chmod 0755 "$dir/archive-wal"
	mkdir -p "$dir/wal-archive"
	own_pg "$dir/wal-archive"
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

# primary_port prints the port of the node whose Patroni says it is the primary.
primary_port() {
	for i in $(seq 1 "$nodes"); do
		if curl -fs -o /dev/null "http://127.0.0.1:$(api_port "$i")/primary"; then
			pg_port "$i"
			return 0
		fi
	done
	echo "no node is the primary" >&2
	return 1
}

# backup [DIR] takes a base backup from the primary into DIR (default
# $dir/backups/<UTC time>), with the WAL it needs streamed alongside, and prints DIR.
backup() {
	local target="${1:-$dir/backups/$(date -u +%Y%m%dT%H%M%SZ)}" port
	port="$(primary_port)"
	if [[ -e "$target" && -n "$(ls -A "$target")" ]]; then
		echo "$target exists and is not empty" >&2
		exit 1
	fi
	mkdir -p "$target"
	chmod 0700 "$target"
	own_pg "$target"
	as_pg "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$port" -U replicator -D "$target" \
		--format=plain --wal-method=stream --checkpoint=fast --label="vss $(date -u +%FT%TZ)" >&2
	echo "$target"
}

# restore BACKUP_DIR TARGET_TIME DATA_DIR PORT copies a base backup into DATA_DIR (which
# must be missing or empty), recovers it with the WAL of $dir/wal-archive up to
# TARGET_TIME (a timestamptz, such as "2025-01-02 03:04:05.123456+00": every transaction
# committed at or before it, none after), and starts it as a standalone PostgreSQL on
# 127.0.0.1:PORT, not under Patroni. It waits until the recovery is done and the instance
# promoted, and prints its database URL. restore-stop DATA_DIR stops it; stop does too.
restore() {
	local backup="$1" target="$2" data="$3" port="$4" timeout="${HA_RESTORE_TIMEOUT:-600}"
	if [[ ! -f "$backup/backup_label" ]]; then
		echo "$backup is not a base backup (no backup_label)" >&2
		exit 1
	fi
	if [[ "$target" == *"'"* || "$target" == *\\* ]]; then
		echo "bad target time: $target" >&2
		exit 1
	fi
	if [[ -e "$data" && -n "$(ls -A "$data")" ]]; then
		echo "$data exists and is not empty" >&2
		exit 1
	fi
	mkdir -p "$data"
	chmod 0700 "$data"
	own_pg "$data"
	data="$(cd "$data" && pwd)"
	as_pg cp -a "$backup/." "$data/"
	rm -f "$data/standby.signal" "$data/postmaster.pid" "$data/postmaster.opts"
	# The backup holds the configuration Patroni wrote for its node. A standalone
	# instance must not wait for a synchronous standby (every commit would hang), must
	# not archive into the cluster's archive, and listens on its own port and socket with
	# the cluster's loopback trust.
	as_pg tee "$data/pg_hba.conf" >/dev/null <<HBA
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
HBA
	as_pg tee -a "$data/postgresql.auto.conf" >/dev/null <<CONF
# ha.sh restore: a standalone instance recovered from $backup up to $target.
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
hba_file = '$data/pg_hba.conf'
ident_file = '$data/pg_ident.conf'
cluster_name = 'vss-restore'
synchronous_standby_names = ''
archive_mode = 'off'
archive_command = ''
primary_conninfo = ''
primary_slot_name = ''
restore_command = 'cp $dir/wal-archive/%f %p'
recovery_target_time = '$target'
recovery_target_timeline = 'latest'
recovery_target_action = 'promote'
CONF
	as_pg touch "$data/recovery.signal"
	if [[ -d "$dir" ]]; then echo "$data" >>"$dir/restores"; fi
	if ! as_pg "$pgbin/pg_ctl" -D "$data" -l "$data/restore.log" -w -t "$timeout" start >/dev/null; then
		echo "PostgreSQL did not start; $data/restore.log:" >&2
		tail -n 30 "$data/restore.log" >&2
		exit 1
	fi
	for _ in $(seq 1 $((timeout * 10))); do
		if [[ "$("$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc 'SELECT pg_is_in_recovery()' 2>/dev/null)" == f ]]; then
			echo "postgres://postgres:postgres@127.0.0.1:$port/postgres?sslmode=disable"
			return 0
		fi
		if ! as_pg "$pgbin/pg_ctl" -D "$data" status >/dev/null; then
			echo "PostgreSQL stopped during the recovery; $data/restore.log:" >&2
			tail -n 30 "$data/restore.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "the recovery did not end within $timeout s; see $data/restore.log" >&2
	exit 1
}

# restore_stop DATA_DIR stops an instance that restore started.
restore_stop() {
	if [[ -f "$1/postmaster.pid" ]]; then
		as_pg "$pgbin/pg_ctl" -D "$1" -m fast -w stop >/dev/null
	fi
}

stop() {
	if [[ -f "$dir/restores" ]]; then
		while read -r d; do restore_stop "$d" || true; done <"$dir/restores"
	fi
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

# Paths given as arguments are taken from the caller's directory; then everything runs
# from /, since the processes started as the postgres user (Patroni, etcd, the PostgreSQL
# tools) may not be allowed into the caller's directory (Patroni fails to start its
# workers there).
args=("$@")
case "${1:-}" in
backup) [[ -n "${2:-}" ]] && args[1]="$(realpath -m "$2")" ;;
restore) [[ $# -eq 5 ]] && args[1]="$(realpath -m "$2")" && args[3]="$(realpath -m "$4")" ;;
restore-stop) [[ $# -eq 2 ]] && args[1]="$(realpath -m "$2")" ;;
esac
set -- "${args[@]}"
cd /

case "${1:-}" in
start) start ;;
stop) stop ;;
status) patronictl -c "$dir/pg1.yml" list ;;
url) database_url ;;
proxy-start) start_proxy ;;
etcd-stop) stop_etcd ;;
etcd-start) start_etcd ;;
node-start) start_node "${2#pg}" ;;
backup) backup "${2:-}" ;;
restore)
	if [[ $# -ne 5 ]]; then echo "usage: $0 restore BACKUP_DIR TARGET_TIME DATA_DIR PORT" >&2; exit 2; fi
	restore "$2" "$3" "$4" "$5"
	;;
restore-stop)
	if [[ $# -ne 2 ]]; then echo "usage: $0 restore-stop DATA_DIR" >&2; exit 2; fi
	restore_stop "$2"
	;;
*)
	echo "usage: $0 start|stop|status|url|proxy-start|etcd-stop|etcd-start|node-start pgN|backup [DIR]|restore BACKUP_DIR TARGET_TIME DATA_DIR PORT|restore-stop DATA_DIR" >&2
	exit 2
	;;
esac
