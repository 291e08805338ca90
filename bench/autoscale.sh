#!/usr/bin/env bash
# Autoscaling under a load step, measured through the edge with the open-model
# `scalepress load`: time from the step to the first new node in service, p99
# before/during/after, and node-seconds spent vs a fixed fleet sized for the peak.
# Usage: bench/autoscale.sh [LOW=5] [HIGH=40] [PHASE=40s]
# Raw output (load phases, the per-second node samples, events):
# bench/results/autoscale-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
LOW=${LOW:-5} HIGH=${HIGH:-40} PHASE=${PHASE:-40s}
BIN=$PWD/bin/scalepress
W=${W:-/tmp/scalepress-bench-autoscale}
SITE=http://127.79.0.1:8080
[[ -x $BIN ]] || make build
trap '$BIN down --dir $W >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true; results_close' EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W; mkdir -p $W; chmod 755 $W
results_open autoscale "LOW=$LOW HIGH=$HIGH PHASE=$PHASE"
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.79.0.1:9090}
edges: [{addr: 127.79.0.1:8080}]
nodes: {count: 1, ip_base: 127.79.1.0, php_children: 2, slow_start: 5s}
autoscaling: {enabled: true, min: 1, max: 4, target: 0.5, scale_in_window: 20s}
# one load generator stands for many clients: no per-client cap
http: {client_concurrency: 0}
db: {members: 1, ip_base: 127.79.2.0, router: 127.79.0.1:3306}
redis: {addr: 127.79.3.1:6379}
wordpress: {cron_interval: 0s}
EOC
$BIN up --detach --dir $W >/dev/null
# Sample the group every second: time, nodes pending/warming/in-service/draining.
( while true; do
    echo "$(date +%s.%N) $($BIN status --dir $W --json | jq -r '[.nodes[] | select(.state != "terminated" and .state != "failed")] | length') $($BIN status --dir $W --json | jq -r '[.nodes[] | select(.state == "in-service")] | length')"
    sleep 1
  done ) > $W/samples.txt 2>/dev/null &
URL="$SITE/?s=scalepress"
echo "== low load $LOW/s for $PHASE"; $BIN load --url $URL --rate $LOW --duration $PHASE | tee $W/low1.txt
STEP=$(date +%s.%N)
echo "== step to $HIGH/s for $PHASE"; $BIN load --url $URL --rate $HIGH --duration $PHASE | tee $W/high.txt
echo "== back to $LOW/s for $PHASE"; $BIN load --url $URL --rate $LOW --duration $PHASE | tee $W/low2.txt
sleep 25
kill %1 2>/dev/null || true
raw_add "samples: unix time, nodes neither terminated nor failed, nodes in service (step at $STEP)" "$(cat $W/samples.txt)"
first=$(awk -v s=$STEP '$1 > s && $3 > 1 {printf "%.1f", $1 - s; exit}' $W/samples.txt)
awk -v first="$first" '
  NR == 1 {t0 = $1} {if (NR > 1) {dt = $1 - prev; ns += dt * prevn}; prev = $1; prevn = $2; if ($2 > peak) peak = $2; last = $1}
  END {printf "first new node in service %s s after the step; node-seconds %.0f over %.0f s; fixed fleet of %d (the peak) would spend %.0f: ratio %.2f\n", first, ns, last - t0, peak, peak * (last - t0), ns / (peak * (last - t0))}' $W/samples.txt
$BIN events --dir $W | grep -E "scale|heal" | tail -20
