#!/usr/bin/env bash
# Node start: how long a scale-out node takes from "launching" to in service,
# and where it goes, on the default stack (2 nodes, then one more per rep:
# node-3, node-4, node-5, each with a fresh docroot). Per rep, from the
# controller's events and the roles' logs:
#   prepare   launching → the node's processes started and answering
#             (docroot made, php-fpm up: the launcher's part, "pending")
#   bootstrap the filesync agent's "docroot bootstrapped ... took"
#   warm      the controller's "node warmed ... took" (opcache warm-up)
#   total     launching → in service
# plus the docroot's disk use (du counts a hard-linked file once per tree
# walked, so the second figure is the docroot alone after the others).
# Usage: bench/nodestart.sh [REPS=3]   Loopback block 127.86.x.y.
# Raw output: bench/results/nodestart-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3}
BIN=${BIN:-$PWD/bin/scalepress}
W=${W:-/tmp/scalepress-bench-nodestart}
[[ -x $BIN ]] || make build
cleanup() {
  $BIN down --dir $W >/dev/null 2>&1 || true
  results_close
}
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W; mkdir -p $W; chmod 755 $W
results_open nodestart "REPS=$REPS BIN=$BIN ($(sha256sum $BIN | cut -c1-12))"
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.86.0.1:9090}
edges: [{addr: 127.86.0.1:8080}]
nodes: {count: 2, ip_base: 127.86.1.0}
autoscaling: {enabled: true, min: 2, max: $((REPS + 2))}
db: {members: 1, ip_base: 127.86.2.0, router: 127.86.0.1:3306}
files: {addr: 127.86.4.1:8080}
redis: {addr: 127.86.3.1:6379}
wordpress: {cron_interval: 0s}
EOC
$BIN up --detach --dir $W >/dev/null
curl -s -o /dev/null http://127.86.0.1:8080/
ms() { date -d "$1" +%s%3N; }
evtime() { # NODE PATTERN: the time of the node's first event matching PATTERN
  jq -r --arg n "$1" --arg p "$2" 'select(.node == $n and (.message | test($p))) | .time' $W/events.log | head -1
}
printf "%-7s %-9s %-9s %-9s %-9s %-10s %s\n" node prepare bootstrap warm total "du docroot" "load"
for i in $(seq 1 $REPS); do
  n=$((i + 2)) id=node-$((i + 2))
  $BIN scale --dir $W --min $n >/dev/null
  for _ in $(seq 1 600); do
    [[ -n $(evtime $id 'warming → in-service') ]] && break
    sleep 0.1
  done
  t0=$(ms "$(evtime $id launching)") t1=$(ms "$(evtime $id 'pending → warming')") t2=$(ms "$(evtime $id 'warming → in-service')")
  boot=$(grep -h 'docroot bootstrapped' $W/logs/$id-filesync.log | sed -E 's/.* took=([^ ]+).*/\1/' | head -1)
  warm=$(grep -h "msg=\"node warmed\".*node=$id " $W/logs/controller.log | sed -E 's/.* took=([^ ]+).*/\1/' | head -1)
  du=$(du -sh $W/nodes/$id/docroot | cut -f1)
  printf "%-7s %-9s %-9s %-9s %-9s %-10s %s\n" $id "$((t1 - t0))ms" "$boot" "$warm" "$((t2 - t0))ms" "$du" "$(cut -d' ' -f1-3 /proc/loadavg)"
  raw_add "$id filesync log" "$(cat $W/logs/$id-filesync.log)"
  sleep 5
done
raw_add "events" "$(cat $W/events.log)"
raw_add "du of every docroot, in order" "$(du -sh $W/nodes/*/docroot)"
