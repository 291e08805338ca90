#!/usr/bin/env bash
# Start-up: seconds from `scalepress up` (foreground) to the first 200 through
# the edge, on the built-in defaults (3 DB members, 2 nodes), fresh state dir
# and resume (same dir after `down`), REPS times each, with the step lines up
# prints. Issue 14's goals: fresh <= 15 s, resume <= 5 s.
# Usage: bench/startup.sh [REPS=3]   Needs: make build, curl.
# Raw output: bench/results/startup-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3}
BIN=${BIN:-$PWD/bin/scalepress}
W=${W:-/tmp/scalepress-bench-startup}
EDGE=127.88.0.1:8080
[[ -x $BIN ]] || make build
cleanup() {
  $BIN down --dir $W >/dev/null 2>&1 || true
  results_close
}
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W; mkdir -p $W; chmod 755 $W
results_open startup "REPS=$REPS BIN=$BIN ($(sha256sum $BIN | cut -c1-12))"
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.88.0.1:9090}
edges: [{addr: $EDGE}]
nodes: {ip_base: 127.88.1.0}
db: {ip_base: 127.88.2.0, router: 127.88.0.1:3306}
files: {addr: 127.88.4.1:8080}
redis: {addr: 127.88.3.1:6379}
EOC

# once LABEL: up in the foreground until the first 200, then down.
once() {
  local t0 t1 pid
  t0=$(date +%s%N)
  $BIN up --dir $W >$W/up.out 2>&1 &
  pid=$!
  until [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Host: $EDGE" "http://$EDGE/" 2>/dev/null) == 200 ]]; do
    kill -0 $pid 2>/dev/null || { cat $W/up.out; echo "up exited before the first 200"; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s%N)
  sleep 1 # up prints its ready line
  echo "$1: first 200 after $(( (t1 - t0) / 1000000 )) ms (load $(cut -d' ' -f1-3 /proc/loadavg))"
  raw_add "$1 up output" "$(cat $W/up.out)"
  $BIN down --dir $W >/dev/null
  wait $pid || true
}
for i in $(seq 1 $REPS); do
  rm -rf $W/db $W/site $W/nodes $W/secrets $W/state.json $W/run $W/logs $W/redis $W/files
  once "run $i fresh"
  once "run $i resume"
done
