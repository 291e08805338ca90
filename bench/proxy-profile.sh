#!/usr/bin/env bash
# Where the edge's proxy hop spends its CPU: the edge (`scalepress edge
# --spec`, cache off, signing) in front of nginx serving a 7 KB file, as in
# bench/proxy-lite.sh, under wrk; then
#   - perf record -g of the edge process for PERF_SECS (perf report input),
#   - strace -c -f of the edge for STRACE_SECS: system calls per request,
#   - the edge's CPU µs per request without either attached.
# No Galera or php-fpm: no e2e lock needed.
# Usage: bench/proxy-profile.sh [CONC=8] [BIN=bin/scalepress] [OUT=/tmp/scalepress-proxy-profile]
# Needs: nginx, wrk, perf, strace.
set -euo pipefail
cd "$(dirname "$0")/.."
CONC=${CONC:-8} BIN=${BIN:-$PWD/bin/scalepress} OUT=${OUT:-/tmp/scalepress-proxy-profile}
PERF_SECS=${PERF_SECS:-8} STRACE_SECS=${STRACE_SECS:-5}
W=$OUT/run
NODE=127.78.7.1:8080 EDGE=127.78.7.2:8080
FILE=/wp-includes/css/bench.css
cleanup() { for p in $W/*.pid; do [[ -f $p ]] && kill "$(cat $p)" 2>/dev/null || true; done; }
trap cleanup EXIT
rm -rf $W; mkdir -p $W/www/wp-includes/css $W/tmp
head -c 7000 /dev/zero | tr '\0' 'x' > $W/www$FILE
echo '{"generation":1,"nodes":[{"id":"node-1","addr":"'$NODE'"}]}' > $W/www/upstreams
cat > $W/nginx.conf <<EOC
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; tcp_nodelay on;
  keepalive_timeout 75; keepalive_requests 1000000;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  server { listen $NODE; root $W/www; default_type text/css; }
}
EOC
nginx -c $W/nginx.conf
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat > $W/edge.json <<EOC
{"id":"edge-prof","region":"default","addr":"$EDGE","upstreams_url":"http://$NODE/upstreams","slow_start":"1ms","cache":{"enabled":false},"forward_key":"$KEY","http":{}}
EOC
$BIN edge --spec $W/edge.json 2>$W/edge.log & echo $! > $W/edge.pid
EPID=$(cat $W/edge.pid)
sleep 1.5
echo "check: $(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://$EDGE$FILE")"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)
wrk -t1 -c$CONC -d3s "http://$EDGE$FILE" >/dev/null # warm
t0=$(ticks $EPID)
out=$(wrk -t1 -c$CONC -d10s "http://$EDGE$FILE")
t1=$(ticks $EPID)
n=$(awk '/requests in/ {print $1}' <<<"$out")
echo "plain: $(awk '/Requests\/sec/ {print $2}' <<<"$out") rps, $(awk -v a=$t0 -v b=$t1 -v n=$n -v hz=$HZ 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}') edge CPU us/req"
wrk -t1 -c$CONC -d$((PERF_SECS + 2))s "http://$EDGE$FILE" > $OUT/perf-wrk.txt & WRK=$!
sleep 1
perf record -g -o $OUT/perf.data -p $EPID -- sleep $PERF_SECS 2>/dev/null >/dev/null
wait $WRK
echo "perf: $(awk '/requests in/ {print $1}' $OUT/perf-wrk.txt) requests; perf report -i $OUT/perf.data"
wrk -t1 -c$CONC -d$((STRACE_SECS + 2))s "http://$EDGE$FILE" > $OUT/strace-wrk.txt & WRK=$!
sleep 1
timeout -s INT $STRACE_SECS strace -c -f -p $EPID -o $OUT/strace.txt 2>/dev/null || true
wait $WRK
# Every proxied answer is one writev to the client (hitfront's writer):
# the writev count is the number of requests served while attached.
n=$(awk '$NF=="writev" {print $4}' $OUT/strace.txt)
echo "strace: $n requests (writev calls) while attached; system calls per request:"
awk -v n=$n 'NR>2 && $NF!="total" && $4 ~ /^[0-9]+$/ {e=($5 ~ /^[0-9]+$/) ? $5 : 0; printf "  %-14s %6.2f (%.2f errors)\n", $NF, $4/n, e/n}' $OUT/strace.txt
