#!/usr/bin/env bash
# Cache hits side by side: the scalepress edge vs Varnish (in front of the same
# node) vs nginx fastcgi_cache (on the same docroot and php.ini), on the same
# home page; and a static 10 KB-class file: edge (cached) vs nginx (from disk).
# Reports requests/s, p50/p99 and the server's CPU µs per request, and the
# body bytes per hit each server sends for each Accept-Encoding. The
# edge-hit-ae row is the edge with a browser's Accept-Encoding (it sends br;
# Varnish and nginx as configured here send the plain page to everyone).
# Usage: bench/cache.sh [REPS=3] [DURATION=10s] [CONC="8 32"] [FAST_HITS=true]
# (FAST_HITS=false: the edge with cache.fast_hits off, every request through net/http)
# Raw output (every wrk run in full): bench/results/cache-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3} DUR=${DURATION:-10s} CONC=${CONC:-"8 32"} FAST_HITS=${FAST_HITS:-true}
BIN=$PWD/bin/scalepress
W=${W:-/tmp/scalepress-bench-cache}
EDGE=127.80.0.1:8080 NODE=127.80.1.1:8080 VARNISH=127.80.0.9:8083 NGINX=127.80.0.9:8081
HOST=$EDGE
[[ -x $BIN ]] || make build
for c in varnishd nginx wrk; do command -v $c >/dev/null || { echo "$c missing: scripts/install-deps.sh --bench"; exit 1; }; done
cleanup() {
  [[ -f $W/varnish.pid ]] && kill "$(cat $W/varnish.pid)" 2>/dev/null || true
  stop_nginx_fpm $W
  $BIN down --dir $W >/dev/null 2>&1 || true
  results_close
}
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W; mkdir -p $W; chmod 755 $W
results_open cache "REPS=$REPS DURATION=$DUR CONC=\"$CONC\" FAST_HITS=$FAST_HITS"
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.80.0.1:9090}
edges: [{addr: $EDGE}]
nodes: {count: 1, ip_base: 127.80.1.0, php_children: 4}
autoscaling: {enabled: false}
db: {members: 1, ip_base: 127.80.2.0, router: 127.80.0.1:3306}
redis: {addr: 127.80.3.1:6379}
wordpress: {cron_interval: 0s}
cache: {fast_hits: $FAST_HITS}
EOC
$BIN up --detach --dir $W >/dev/null
WP=$W/site php bench/baselines/wordpress-stack/gen-content.php >/dev/null
DOCROOT=$W/nodes/node-1/docroot

# Varnish in front of the same node agent (default VCL: anonymous pages cached 120 s).
varnishd -a $VARNISH -b $NODE -n $W/varnish -s malloc,256M -T none -P $W/varnish.pid -p default_ttl=300
# nginx fastcgi_cache -> php-fpm on the node's docroot and php.ini.
start_nginx_fpm $W $NGINX $DOCROOT $HOST cache
sleep 0.5
EDGE_PID=$($BIN status --dir $W --json | jq '.edges[0].pid')
VARNISH_PID=$(pgrep -f "varnishd -a $VARNISH" | sort -n | tail -1)   # the cache child
NGINX_PIDS=$(pgrep -f "nginx: worker" | tr '\n' ' ')
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
HZ=$(getconf CLK_TCK)
STATIC=/wp-includes/css/wp-embed-template.min.css
for u in "http://$EDGE/" "http://$VARNISH/" "http://$NGINX/" "http://$EDGE$STATIC" "http://$NGINX$STATIC"; do
  for i in 1 2; do hdr=$(curl -s -o /dev/null -D- -H "Host: $HOST" "$u" | tr -d '\r' | grep -iE '^(x-cache|age):' | tr '\n' ' ' || true); done
  echo "check $u: $(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "Host: $HOST" "$u") $hdr"
done
AE="gzip, deflate, br, zstd"
echo "body bytes per hit, by Accept-Encoding (none / gzip / br / zstd / a browser's):"
for u in "http://$EDGE/" "http://$VARNISH/" "http://$NGINX/" "http://$EDGE$STATIC" "http://$NGINX$STATIC"; do
  line="$u"
  for ae in "" gzip br zstd "$AE"; do
    line="$line $(curl -s -o /dev/null -w '%{size_download}' -H "Host: $HOST" ${ae:+-H "Accept-Encoding: $ae"} "$u")"
  done
  echo "bytes $line"
done
run() { # target url pids... (EXTRA_H: one more request header)
  local name=$1 u=$2; shift 2
  local t0 t1 out; t0=$(ticks "$@")
  out=$(wrk -t1 -c$c -d$DUR --latency -H "Host: $HOST" ${EXTRA_H:+-H "$EXTRA_H"} "$u")
  t1=$(ticks "$@")
  raw_add "c=$c rep=$r $name, server CPU ticks $t0 -> $t1 (hz $HZ)" "$out"
  local rps p50 p99 total; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out"); total=$(awk '/requests in/ {print $1}' <<<"$out")
  printf "%-4s %-4s %-16s %-10s %-9s %-9s %s\n" $c $r $name $rps $p50 $p99 "$(awk -v a=$t0 -v b=$t1 -v n=$total -v hz=$HZ 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}')"
}
printf "%-4s %-4s %-16s %-10s %-9s %-9s %s\n" c rep target rps p50 p99 "server-cpu-us/req"
for c in $CONC; do
  for r in $(seq 1 $REPS); do
    run edge-hit "http://$EDGE/" $EDGE_PID
    EXTRA_H="Accept-Encoding: $AE" run edge-hit-ae "http://$EDGE/" $EDGE_PID
    run varnish-hit "http://$VARNISH/" $VARNISH_PID
    run nginx-cache-hit "http://$NGINX/" $NGINX_PIDS
    run edge-static "http://$EDGE$STATIC" $EDGE_PID
    run nginx-static "http://$NGINX$STATIC" $NGINX_PIDS
  done
done
