#!/usr/bin/env bash
# Issue 18's mixed load, side by side in one run: cache hits (home, a post, a
# static file) at hundreds per second plus uncached searches, with autoscaling
# on, on three setups of the same machine:
#   before  admission control off, PHP at nice 0, no CPU budget or pressure
#           check in the scaler (what the stack did before issue 18);
#   after   the defaults (docs/adr/0024-capacity.md);
#   nginx   nginx fastcgi_cache + php-fpm (searches bypass the cache) on the
#           before stack's docroot, database and php.ini: the peer for the hit
#           path under PHP load.
# Per run: hit p50/p99, search p50/p99 and error rate, node count over time,
# CPU pressure (/proc/pressure/cpu some avg10) over time.
# Usage: bench/capacity.sh [REPS=3] [PHASE=60s] [HOME_RATE=400] [POST_RATE=100]
#        [STATIC_RATE=150] [SEARCH_RATE=8] [SETUPS="before nginx after"] [SLOW=20ms]
#        [BIN=bin/scalepress] [LOAD_BIN=bin/scalepress] [LOADGEN_NICE=-10|off]
# SETUPS runs some of the setups only (nginx needs before's stack: it runs
# on before's docroot and database). SLOW: the load generators count the
# answers slower than this by X-Cache, per second of the run, and the raw
# output lists the first ones (start offset, latency, status, X-Cache, Age).
# Per second, beside the node count and CPU pressure, the edge process's run
# delay (time its threads waited for a CPU, /proc/PID/task/*/schedstat, in ms
# per s summed over threads) and CPU time (ms per s), and the same for the load
# generators; the edge's own metrics (request durations by cache status,
# cache responses, refreshes, admission) before and after each run.
# Raw output (every load run, the per-second samples, the scale events):
# bench/results/capacity-DATE.txt. Loopback block 127.85.x.y.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3} PHASE=${PHASE:-60s}
HOME_RATE=${HOME_RATE:-400} POST_RATE=${POST_RATE:-100} STATIC_RATE=${STATIC_RATE:-150} SEARCH_RATE=${SEARCH_RATE:-8}
SETUPS=${SETUPS:-before nginx after} SLOW=${SLOW:-20ms}
# BIN runs the stack (another build to compare code), LOAD_BIN the load
# generators (they need --slow). LOADGEN_NICE: the load generators'
# autogroup nice; "off" runs them in this script's session, as before.
BIN=${BIN:-$PWD/bin/scalepress} LOAD_BIN=${LOAD_BIN:-$PWD/bin/scalepress} LOADGEN_NICE=${LOADGEN_NICE:--10}
W=${W:-/tmp/scalepress-bench-capacity}
EDGE=127.85.0.1:8080 NGINX=127.85.0.9:8081
STATIC=/wp-includes/css/dist/block-library/style.min.css
[[ -x $BIN ]] || make build
for c in nginx jq; do command -v $c >/dev/null || { echo "$c missing: scripts/install-deps.sh --bench"; exit 1; }; done
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  stop_nginx_fpm $W
  $BIN down --dir $W >/dev/null 2>&1 || true
  results_close
}
trap cleanup EXIT
results_open capacity "REPS=$REPS PHASE=$PHASE HOME_RATE=$HOME_RATE POST_RATE=$POST_RATE STATIC_RATE=$STATIC_RATE SEARCH_RATE=$SEARCH_RATE SETUPS=\"$SETUPS\" SLOW=$SLOW BIN=$BIN LOADGEN_NICE=$LOADGEN_NICE"
has() { [[ " $SETUPS " == *" $1 "* ]]; }

up() { # before|after
  $BIN down --dir $W >/dev/null 2>&1 || true
  rm -rf $W; mkdir -p $W; chmod 755 $W
  local extra=""
  if [[ $1 == before ]]; then
    extra="
  workers_per_core: 0
  cpu_saturated: 0
  cpu_clear: 0"
  fi
  cat > $W/scalepress.yaml <<EOC
api: {addr: 127.85.0.1:9090}
edges: [{addr: $EDGE}]
nodes:
  count: 2
  ip_base: 127.85.1.0
  php_nice: $([[ $1 == before ]] && echo 0 || echo 10)
autoscaling:
  enabled: true
  min: 2
  max: 8$extra
# one load generator stands for many clients: no per-client cap
http: {client_concurrency: 0, admission: $([[ $1 == before ]] && echo false || echo true)}
db: {members: 1, ip_base: 127.85.2.0, router: 127.85.0.1:3306}
redis: {addr: 127.85.3.1:6379}
wordpress: {cron_interval: 0s}
EOC
  $BIN up --detach --dir $W >/dev/null
}

# sched PID...: "run-delay-ns cpu-ns" summed over the threads of the PIDs
# (/proc/PID/task/TID/schedstat: on-CPU time, run-queue wait, timeslices).
sched() {
  local p
  for p in "$@"; do cat /proc/$p/task/*/schedstat 2>/dev/null; done | awk '{c+=$1; d+=$2} END {printf "%d %d", d, c}'
}

# edge_metrics: the edge's own view (request durations by cache status,
# cache outcomes, admission), for before/after a run.
edge_metrics() {
  curl -s --max-time 5 http://$EDGE/_scalepress/edge/metrics |
    grep -E '^scalepress_edge_(request_duration_seconds_(count|sum)\{[^}]*method="GET"|request_duration_seconds_bucket\{cache="hit"[^}]*method="GET"|cache_(responses|refreshes|stores|purged)_total|admitted_total|overload_refused_total|queue_wait_seconds_(count|sum))' || true
}

# loadgen ARGS: `scalepress load ARGS` in a session of its own whose
# autogroup has nice -10 (as root; else as it comes): the instrument must not
# wait for a CPU behind what it measures, or behind other sessions (with
# SEARCH_RATE=30 the load generators' threads waited 1-15 s per second in the
# run queue, and their latencies with them). The same for every setup.
loadgen() {
  [[ $LOADGEN_NICE == off ]] && exec $LOAD_BIN load "$@"
  exec setsid bash -c 'echo '"$LOADGEN_NICE"' > /proc/self/autogroup 2>/dev/null; exec "$0" load "$@"' $LOAD_BIN "$@"
}

# mixed NAME BASE: the four loads at once against BASE for PHASE, with the
# node count, CPU pressure and the edge's and load generators' scheduling
# sampled every second.
mixed() {
  local name=$1 base=$2 d=$W/out-$1-$r
  mkdir -p $d
  for u in "$base/" "$base/?p=1" "$base$STATIC"; do curl -s -o /dev/null "$u"; curl -s -o /dev/null "$u"; done
  local edge_pid="" pids=() f
  [[ $name == nginx ]] || edge_pid=$(ss -ltnpH "src $EDGE" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
  [[ -n $edge_pid ]] && raw_add "$name rep $r edge metrics before" "$(edge_metrics)"
  loadgen --url "$base/" --rate $HOME_RATE --duration $PHASE --slow $SLOW --slow-log $d/home.slow > $d/home.txt & pids+=($!)
  loadgen --url "$base/?p=1" --rate $POST_RATE --duration $PHASE --slow $SLOW --slow-log $d/post.slow > $d/post.txt & pids+=($!)
  loadgen --url "$base$STATIC" --rate $STATIC_RATE --duration $PHASE --slow $SLOW --slow-log $d/static.slow > $d/static.txt & pids+=($!)
  loadgen --url "$base/?s=capacity" --rate $SEARCH_RATE --duration $PHASE > $d/search.txt & pids+=($!)
  # time node-count cpu-pressure edge-run-delay-ms/s edge-cpu-ms/s load-run-delay-ms/s load-cpu-ms/s
  ( prev_e="" prev_l=""
    while true; do
      e=$( [[ -n $edge_pid ]] && sched $edge_pid || echo "0 0" ) l=$(sched "${pids[@]}")
      if [[ -n $prev_e ]]; then
        echo "$(date +%s) $($BIN status --dir $W --json 2>/dev/null | jq -r '[.nodes[] | select(.state != "terminated" and .state != "failed")] | length') $(awk '/^some/ {sub("avg10=", "", $2); print $2}' /proc/pressure/cpu)" \
          $(echo $prev_e $e $prev_l $l | awk '{printf "%d %d %d %d", ($3-$1)/1e6, ($4-$2)/1e6, ($7-$5)/1e6, ($8-$6)/1e6}')
      fi
      prev_e=$e prev_l=$l
      sleep 1
    done ) > $d/samples.txt 2>/dev/null &
  local sampler=$!
  wait "${pids[@]}"
  kill $sampler 2>/dev/null || true
  [[ -n $edge_pid ]] && raw_add "$name rep $r edge metrics after" "$(edge_metrics)"
  raw_add "$name rep $r samples: time nodes cpu-pressure edge-run-delay-ms/s edge-cpu-ms/s loadgen-run-delay-ms/s loadgen-cpu-ms/s" "$(cat $d/samples.txt)"
  for f in home post static search; do raw_add "$name rep $r $f" "$(cat $d/$f.txt)"; done
  for f in home post static; do raw_add "$name rep $r $f: first 40 answers over $SLOW (start s, latency, status, X-Cache, Age)" "$(head -40 $d/$f.slow)"; done
  lat() { awk '/^latency/ {print $3, $9}' $d/$1.txt; }
  ok() { awk '/^success/ {print $2}' $d/$1.txt; }
  # searches answered 200 per second of the phase: PHP's throughput
  served() { awk -v p=${PHASE%s} '/^status/ {for (i=2;i<=NF;i++) if ($i ~ /^200=/) {sub("200=","",$i); printf "%.1f/s", $i/p}}' $d/$1.txt; }
  nslow() { awk '/^slow / {print $2}' $d/$1.txt; }
  printf "%-7s %-3s %-18s %-18s %-18s %-22s %-8s %-8s %-9s %-8s %-14s %s\n" $name $r "$(lat home)" "$(lat post)" "$(lat static)" "$(lat search) $(ok search)" "$(served search)" \
    "$(awk '/^status/ {for (i=2;i<=NF;i++) if ($i ~ /^503=/) {sub("503=","",$i); print $i}}' $d/search.txt | head -1)" \
    "$(awk '{print $2}' $d/samples.txt | sort -n | tail -1)" \
    "$(awk '{s+=$3; n++} END {if (n) printf "%.0f%%", s/n}' $d/samples.txt)" \
    "$(nslow home)/$(nslow post)/$(nslow static)" \
    "$(awk '{s+=$4; n++} END {if (n) printf "%.0f", s/n}' $d/samples.txt)"
}
printf "%-7s %-3s %-18s %-18s %-18s %-22s %-8s %-8s %-9s %-8s %-14s %s\n" setup rep "home p50 p99" "post p50 p99" "static p50 p99" "search p50 p99 ok" "200/s" "503s" "max nodes" "cpu pres" "slow h/p/s" "edge run delay ms/s"
if has before || has nginx; then
  up before
  if has before; then
    for r in $(seq 1 $REPS); do mixed before http://$EDGE; sleep 20; done
  fi
  if has nginx; then
    start_nginx_fpm $W $NGINX $W/nodes/node-1/docroot $EDGE cache
    for r in $(seq 1 $REPS); do mixed nginx http://$NGINX; sleep 20; done
  fi
  raw_add "before: scale events" "$($BIN events --dir $W | grep -E 'scale|heal' | tail -40)"
  stop_nginx_fpm $W
fi
if has after; then
  up after
  for r in $(seq 1 $REPS); do mixed after http://$EDGE; sleep 20; done
  raw_add "after: scale and overload events" "$($BIN events --dir $W | grep -E 'scale|heal|overload|refused' | tail -40)"
fi
