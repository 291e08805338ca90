#!/usr/bin/env bash
# The console's cost: the dashboard's page weight, its update rate and size,
# and the controller's CPU with no dashboard and with N open (server-sent
# event streams read by curl, as a browser reads them).
# Usage: bench/console.sh [SECONDS=60] [DASHBOARDS=5]
# Needs: make build. Raw output: bench/results/console-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${SECONDS_EACH:-${1:-60}} N=${DASHBOARDS:-${2:-5}}
BIN=$PWD/bin/scalepress
W=${W:-/tmp/scalepress-bench-console}
API=http://127.75.0.1:9090
[[ -x $BIN ]] || make build
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  $BIN down --dir $W >/dev/null 2>&1 || true
  results_close
}
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W; mkdir -p $W; chmod 755 $W
results_open console "SECONDS=$SECS DASHBOARDS=$N"
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.75.0.1:9090}
edges: [{addr: 127.75.0.1:8080}]
nodes: {count: 2, ip_base: 127.75.1.0, php_children: 2}
autoscaling: {enabled: false}
db: {members: 1, ip_base: 127.75.2.0, router: 127.75.0.1:3306, buffer_pool: 64M}
files: {addr: 127.75.4.1:8080}
redis: {addr: 127.75.3.1:6379}
wordpress: {cron_interval: 0s}
EOC
$BIN up --detach --dir $W >/dev/null
CTL=$(cat $W/run/controller.pid)

echo "== page weight (bytes as served; gzip -9 for reference, the API does not compress)"
total=0
for p in / /console/app.js /console/app.css; do
  b=$(curl -sf $API$p | wc -c); z=$(curl -sf $API$p | gzip -9 | wc -c)
  total=$((total + b))
  printf '  %-18s %6d bytes (%5d gzipped)\n' "$p" "$b" "$z"
done
printf '  %-18s %6d bytes\n' total "$total"
printf '  %-18s %6d bytes\n' "snapshot" "$(curl -sf $API/v1/console | wc -c)"

# cpu_ms: the controller's user+system CPU time so far, in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' /proc/$CTL/stat; }

measure() {
  local label=$1 a b
  a=$(cpu_ms); sleep "$SECS"; b=$(cpu_ms)
  printf '  %-22s %5d ms CPU in %d s = %.2f%% of one core\n' "$label" $((b - a)) "$SECS" "$(echo "($b - $a) / ($SECS * 10)" | bc -l)"
}
echo "== controller CPU"
sleep 5
measure "no dashboard"
for i in $(seq 1 "$N"); do
  curl -sN $API/v1/console/stream -o $W/stream-$i.txt & pids+=($!)
done
sleep 2
for i in $(seq 1 "$N"); do : >"$W/stream-$i.txt"; done # count from here
measure "$N dashboards"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()
updates=$(grep -ac '^event: update' $W/stream-1.txt || true)
bytes=$(grep -a -A1 '^event: update' $W/stream-1.txt | grep -a '^data: ' | wc -c)
echo "== update rate (one dashboard)"
printf '  %d updates in %d s = %.2f/s, %d bytes each on average (%d B/s)\n' "$updates" "$SECS" "$(echo "$updates / $SECS" | bc -l)" $((bytes / (updates > 0 ? updates : 1))) $((bytes / SECS))
