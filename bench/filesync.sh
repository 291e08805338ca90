#!/usr/bin/env bash
# File propagation side by side: scalepress file sync between two node
# docroots vs lsyncd + rsync (Debian) between two directories, with the same
# writer: 1,000 files of 4 KiB written (temp + rename) one every 5 ms, then one
# 50 MiB file; latency until each is complete on the other side.
# Usage: bench/filesync.sh [N=1000] [EVERY=5ms] [BIG=50]   (needs make build; apt-get install lsyncd rsync)
# Raw output: bench/results/filesync-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=$PWD/bin/scalepress
W=${W:-/tmp/scalepress-bench-files}
N=${N:-1000} EVERY=${EVERY:-5ms} BIG=${BIG:-50}
[[ -x $BIN ]] || make build
command -v lsyncd >/dev/null || { echo "lsyncd missing: apt-get install lsyncd"; exit 1; }
go build -o $W.propagation ./bench/propagation
cleanup() { $BIN down --dir $W >/dev/null 2>&1 || true; [[ -n ${LPID:-} ]] && kill $LPID 2>/dev/null || true; results_close; }
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W $W.lsync; mkdir -p $W; chmod 755 $W
results_open filesync "N=$N EVERY=$EVERY BIG=$BIG"
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.81.0.1:9090}
edges: [{addr: 127.81.0.1:8080}]
nodes: {count: 2, ip_base: 127.81.1.0, php_children: 2}
autoscaling: {enabled: false}
db: {members: 1, ip_base: 127.81.2.0, router: 127.81.0.1:3306}
redis: {addr: 127.81.3.1:6379}
files: {addr: 127.81.4.1:8080}
wordpress: {cron_interval: 0s}
EOC
$BIN up --detach --dir $W >/dev/null
A=$W/nodes/node-1/docroot/wp-content/uploads B=$W/nodes/node-2/docroot/wp-content/uploads
echo "== scalepress file sync (node-1 -> node-2)"
$W.propagation -src $A -dst $B -n $N -every $EVERY -big $BIG -uid "$(id -u www-data)"
$BIN down --dir $W >/dev/null

for delay in 15 0; do
  mkdir -p $W.lsync/a $W.lsync/b
  cat > $W.lsync/conf.lua <<EOC
settings { nodaemon = true, logfile = "$W.lsync/log", statusFile = "$W.lsync/status" }
sync { default.rsync, source = "$W.lsync/a", target = "$W.lsync/b", delay = $delay }
EOC
  lsyncd $W.lsync/conf.lua >/dev/null 2>&1 & LPID=$!
  sleep 2
  echo "== lsyncd + rsync, delay=$delay s (15 is lsyncd's default)"
  $W.propagation -src $W.lsync/a -dst $W.lsync/b -n $N -every $EVERY -big $BIG -timeout 180s
  kill $LPID; wait $LPID 2>/dev/null || true; LPID=
  rm -rf $W.lsync
done
