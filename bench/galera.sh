#!/bin/bash
# bench/galera.sh: the Galera cluster against a standalone MariaDB, side by side.
#
#   REPS=3 DURATION=20 bash bench/galera.sh        (needs `make build` and sysbench)
#
# Brings up two scalepress environments with the same InnoDB settings (64M
# buffer pool, flush at every commit): one with db.members: 1 (standalone
# MariaDB) on 127.55.x.y and one with db.members: 3 (Galera) on 127.54.x.y.
# sysbench oltp_write_only and oltp_read_write (4 threads, 4 tables x 10k
# rows) alternate between: standalone directly, standalone through the
# router, and the cluster through the router (single writer). Then it
# measures the write pause when the writer member is killed (-9) and the time
# `up` takes after every member was killed. Raw output (every sysbench run in
# full): bench/results/galera-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${BIN:-$PWD/bin/scalepress}
REPS=${REPS:-3}
DURATION=${DURATION:-20}
FAILOVERS=${FAILOVERS:-3}
CRASHES=${CRASHES:-3}
OUT=${OUT:-/tmp/scalepress-bench-galera}
rm -rf "$OUT"; mkdir -p "$OUT"; chmod 755 "$OUT"
log() { echo "$*"; }
now() { date +%s.%N; }

config() { # config BLOCK MEMBERS
  cat <<CFG
api:
  addr: 127.$1.0.1:9090
edges:
  - id: edge-1
    region: default
    addr: 127.$1.0.1:8080
nodes:
  count: 1
  ip_base: 127.$1.1.0
  php_children: 2
autoscaling:
  enabled: false
db:
  members: $2
  ip_base: 127.$1.2.0
  router: 127.$1.0.1:3306
  buffer_pool: 64M
  gcache_size: 128M
redis:
  addr: 127.$1.3.1:6379
wordpress:
  cron_interval: 0s
CFG
}

envs=()
cleanup() { for d in "${envs[@]}"; do "$BIN" down --dir "$d" >/dev/null 2>&1 || true; done; results_close; }
trap cleanup EXIT
results_open galera "REPS=$REPS DURATION=$DURATION FAILOVERS=$FAILOVERS CRASHES=$CRASHES"

up() { # up DIR BLOCK MEMBERS
  mkdir -p "$1"; chmod 755 "$1"; config "$2" "$3" > "$1/scalepress.yaml"; envs+=("$1")
  local t0; t0=$(now); "$BIN" up --detach --dir "$1" >/dev/null
  log "up $(basename "$1") (members=$3): $(echo "$(now) - $t0" | bc) s"
  # a sysbench user and database, created on member 1 (Galera replicates it)
  mariadb --no-defaults --socket="$1/db/db-1/run/mysqld.sock" -uroot -e \
    "CREATE DATABASE IF NOT EXISTS sbtest; CREATE USER IF NOT EXISTS 'sb'@'%' IDENTIFIED BY 'sbpass'; GRANT ALL ON sbtest.* TO 'sb'@'%'; CREATE TABLE IF NOT EXISTS sbtest.ack (id INT AUTO_INCREMENT PRIMARY KEY, t DOUBLE)"
}

SA=$OUT/standalone GA=$OUT/galera
up "$SA" 55 1
up "$GA" 54 3

SB="sysbench --db-driver=mysql --mysql-port=3306 --mysql-user=sb --mysql-password=sbpass --mysql-db=sbtest --tables=4 --table-size=10000"
for h in 127.55.2.1 127.54.0.1; do $SB --mysql-host=$h --threads=2 oltp_read_write prepare > "$OUT/prepare_$h.log" 2>&1; done

targets=("standalone-direct 127.55.2.1" "standalone-router 127.55.0.1" "galera3-router 127.54.0.1")
for r in $(seq 1 "$REPS"); do
  for wl in oltp_write_only oltp_read_write; do
    for tg in "${targets[@]}"; do
      set -- $tg; f=$OUT/${1}_${wl}_$r.log
      $SB --mysql-host=$2 --threads=4 --time="$DURATION" --report-interval=0 --percentile=95 \
        --mysql-ignore-errors=1213,1205,1180,1047 $wl run > "$f" 2>&1 || true
      raw_add "$1 $wl rep$r" "$(cat "$f")"
      tps=$(grep -oP 'transactions:\s+\d+\s+\(\K[0-9.]+' "$f" || echo 0); qps=$(grep -oP 'queries:\s+\d+\s+\(\K[0-9.]+' "$f" || echo 0)
      p95=$(grep -oP '95th percentile:\s+\K[0-9.]+' "$f" || echo -); ign=$(grep -oP 'ignored errors:\s+\K\d+' "$f" || echo -)
      log "sysbench $1 $wl rep$r tps=$tps qps=$qps p95_ms=$p95 ignored_errors=$ign load=$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done

# Failover: one INSERT per connection through the router, as PHP does; the
# pause is the longest gap between two acknowledged inserts around the kill.
status() { "$BIN" status --json --dir "$GA"; }
synced3() { status | python3 -c 'import json,sys; d=json.load(sys.stdin)["db"]; sys.exit(0 if all(m["state"]=="synced" for m in d["members"]) and len(d["members"])==3 else 1)'; }
wait_synced() { local t0; t0=$(now); until synced3; do sleep 0.2; (( $(echo "$(now) - $t0 > 180" | bc) )) && { log "not synced after 180 s"; exit 1; }; done; echo "$(now) - $t0" | bc; }
writer() { status | python3 -c 'import json,sys; d=json.load(sys.stdin)["db"]; w=d["writer"]; print(w, [m["pid"] for m in d["members"] if m["id"]==w][0])'; }
M="mariadb --no-defaults -usb -psbpass -h127.54.0.1 -P3306 --connect-timeout=2 sbtest"
for r in $(seq 1 "$FAILOVERS"); do
  read -r wid wpid < <(writer)
  stop=$OUT/stop_$r; : > "$OUT/acks_$r"
  ( while [ ! -e "$stop" ]; do $M -e "INSERT INTO ack(t) VALUES ($(now))" 2>/dev/null && now >> "$OUT/acks_$r" || sleep 0.05; done ) &
  wp=$!
  sleep 4; tk=$(now); kill -9 "$wpid"
  rejoin=$(wait_synced); sleep 2; touch "$stop"; wait $wp
  # the longest gap between acknowledged inserts (the writes are continuous otherwise)
  pause=$(awk 'NR>1 {g=$1-prev; if (g>m) m=g} {prev=$1} END {printf "%.2f", m}' "$OUT/acks_$r")
  log "failover rep$r: kill -9 writer $wid; writes paused ${pause} s; $wid synced again after $(echo "$(now) - $tk - 2" | bc | cut -c1-5) s (rejoin wait ${rejoin} s); acked $(wc -l < "$OUT/acks_$r")"
done

# Full crash: freeze the controller, kill -9 every member, kill the controller, time `up`.
for r in $(seq 1 "$CRASHES"); do
  cp=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["controller"]["pid"])')
  pids=$(status | python3 -c 'import json,sys; print(" ".join(str(m["pid"]) for m in json.load(sys.stdin)["db"]["members"]))')
  kill -STOP "$cp"; kill -9 $pids; kill -9 "$cp"
  while pgrep -f "$GA/" >/dev/null; do sleep 0.2; done
  t0=$(now); "$BIN" up --detach --dir "$GA" >/dev/null; t1=$(now)
  wait_synced >/dev/null
  log "full crash rep$r: up --detach (site answering, all members synced) took $(echo "$t1 - $t0" | bc) s; path: $(grep 'database plan' "$GA/logs/controller.log" | grep -oE 'action=(start-all|bootstrap)' | tail -1)"
done
# The bootstrap path: pc.recovery impossible (no gvwstate.dat, e.g. a member lost it).
cp=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["controller"]["pid"])')
pids=$(status | python3 -c 'import json,sys; print(" ".join(str(m["pid"]) for m in json.load(sys.stdin)["db"]["members"]))')
kill -STOP "$cp"; kill -9 $pids; kill -9 "$cp"
while pgrep -f "$GA/" >/dev/null; do sleep 0.2; done
rm -f "$GA"/db/db-*/data/gvwstate.dat
t0=$(now); "$BIN" up --detach --dir "$GA" >/dev/null; t1=$(now)
log "full crash without gvwstate.dat: up --detach took $(echo "$t1 - $t0" | bc) s; path: $(grep 'database plan' "$GA/logs/controller.log" | grep -oE 'action=(start-all|bootstrap)' | tail -1)"
log "done"
