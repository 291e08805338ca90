#!/usr/bin/env bash
# The edge's proxy hop vs HAProxy's, side by side on the same backend (a
# scalepress node agent serving a 7 KB static file from its docroot):
# requests/s and CPU µs per request of the proxy process.
# Usage: bench/proxy.sh [REPS=3] [DURATION=10s] [CONC="8 32"] [BIN=bin/scalepress]
# (BIN: another build, e.g. the edge before a change, run back to back.)
# Needs: make build, scripts/install-deps.sh --bench (haproxy, wrk).
# Raw output (every wrk run in full): bench/results/proxy-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3} DUR=${DURATION:-10s} CONC=${CONC:-"8 32"}
BIN=${BIN:-$PWD/bin/scalepress}
W=${W:-/tmp/scalepress-bench-proxy}
EDGE=127.78.0.1:8080 NODE=127.78.1.1:8080 HAP=127.78.0.9:8082
FILE=/wp-includes/css/wp-embed-template.min.css
# A logged-in cookie makes the edge bypass any cache: this measures the hop.
COOKIE="Cookie: wordpress_logged_in_bench=1"
[[ -x $BIN ]] || make build
command -v haproxy >/dev/null || { echo "haproxy missing: scripts/install-deps.sh --bench"; exit 1; }
cleanup() {
  [[ -f $W/haproxy.pid ]] && kill "$(cat $W/haproxy.pid)" 2>/dev/null || true
  $BIN down --dir $W >/dev/null 2>&1 || true
  results_close
}
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W; mkdir -p $W; chmod 755 $W
results_open proxy "REPS=$REPS DURATION=$DUR CONC=\"$CONC\""
echo "binary: $BIN"
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.78.0.1:9090}
edges: [{addr: $EDGE}]
nodes: {count: 1, ip_base: 127.78.1.0, php_children: 2}
autoscaling: {enabled: false}
db: {members: 1, ip_base: 127.78.2.0, router: 127.78.0.1:3306}
redis: {addr: 127.78.3.1:6379}
wordpress: {cron_interval: 0s}
# The hop alone: no admission control (HAProxy has none here either). With
# it, c=32 exceeds php_children + queue_backlog and the edge answers 503s.
http: {admission: false}
EOC
$BIN up --detach --dir $W >/dev/null
cat > $W/haproxy.cfg <<EOC
global
  maxconn 4096
  pidfile $W/haproxy.pid
  daemon
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  http-reuse always
  option http-keep-alive
frontend fe
  bind $HAP
  default_backend nodes
backend nodes
  server node1 $NODE maxconn 1024
EOC
haproxy -f $W/haproxy.cfg
sleep 0.5
EDGE_PID=$($BIN status --dir $W --json | jq '.edges[0].pid')
HAP_PID=$(cat $W/haproxy.pid)
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)
for u in "http://$NODE$FILE" "http://$EDGE$FILE" "http://$HAP$FILE"; do
  echo "check $u: $(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "$COOKIE" "$u")"
done
printf "%-4s %-4s %-10s %-10s %-8s %-8s %s\n" c rep target rps p50 p99 "proxy-cpu-us/req"
for c in $CONC; do
  for r in $(seq 1 $REPS); do
    for t in direct edge haproxy; do
      case $t in direct) u="http://$NODE$FILE"; pid="";; edge) u="http://$EDGE$FILE"; pid=$EDGE_PID;; haproxy) u="http://$HAP$FILE"; pid=$HAP_PID;; esac
      [[ -n $pid ]] && t0=$(ticks $pid)
      out=$(wrk -t1 -c$c -d$DUR --latency -H "$COOKIE" "$u")
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
      p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
      total=$(awk '/requests in/ {print $1}' <<<"$out")
      cpu="-" t1=
      if [[ -n $pid ]]; then t1=$(ticks $pid); cpu=$(awk -v a=$t0 -v b=$t1 -v n=$total -v hz=$HZ 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}'); fi
      raw_add "c=$c rep=$r $t${pid:+, proxy CPU ticks $t0 -> $t1 (hz $HZ)}" "$out"
      printf "%-4s %-4s %-10s %-10s %-8s %-8s %s\n" $c $r $t $rps $p50 $p99 $cpu
    done
  done
done
