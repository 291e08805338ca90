#!/usr/bin/env bash
# The edge's proxy hop, before and after a change, beside HAProxy's, in one
# run on the same backend, without the rest of the stack: nginx serves a
# 7 KB file (and the upstream list the edge polls), the edge runs as its own
# role (`scalepress edge --spec`, signing forwarded headers, cache off), and
# the CPU µs per request of each proxy process comes from /proc. No Galera or
# php-fpm, so it needs no e2e lock and leaves the proxies most of the CPU.
# Usage: bench/proxy-lite.sh [REPS=3] [DURATION=10s] [CONC="8 32"] [BEFORE=git-rev (default main)]
#        [BEFORE_PROCS=N] [AFTER_PROCS=N] (GOMAXPROCS of each edge; unset: Go's default,
#        one per CPU; BEFORE=HEAD with different PROCS compares GOMAXPROCS alone)
# Needs: make build, nginx, haproxy, wrk. Raw output: bench/results/proxy-lite-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3} DUR=${DURATION:-10s} CONC=${CONC:-"8 32"} BEFORE=${BEFORE:-main}
BEFORE_PROCS=${BEFORE_PROCS:-} AFTER_PROCS=${AFTER_PROCS:-}
BIN=$PWD/bin/scalepress
W=${W:-/tmp/scalepress-bench-proxy-lite}
NODE=127.78.5.1:8080 OLD=127.78.5.2:8080 NEW=127.78.5.3:8080 HAP=127.78.5.4:8080
FILE=/wp-includes/css/bench.css
[[ -x $BIN ]] || make build
for c in nginx haproxy wrk; do command -v $c >/dev/null || { echo "$c missing: scripts/install-deps.sh --bench"; exit 1; }; done
cleanup() {
  for p in $W/*.pid; do [[ -f $p ]] && kill "$(cat $p)" 2>/dev/null || true; done
  results_close
}
trap cleanup EXIT
rm -rf $W; mkdir -p $W/www/wp-includes/css $W/tmp $W/src
results_open proxy-lite "REPS=$REPS DURATION=$DUR CONC=\"$CONC\" BEFORE=$BEFORE ($(git rev-parse --short $BEFORE)) after=$(git rev-parse --short HEAD) BEFORE_PROCS=${BEFORE_PROCS:-default} AFTER_PROCS=${AFTER_PROCS:-default}"
# The edge before the change, built from BEFORE's tree.
git archive "$BEFORE" | tar -x -C $W/src
(cd $W/src && go build -o $W/scalepress-before ./cmd/scalepress)
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
for v in "before $OLD $W/scalepress-before ${BEFORE_PROCS:--}" "after $NEW $BIN ${AFTER_PROCS:--}"; do
  read -r name addr bin procs <<<"$v"
  cat > $W/edge-$name.json <<EOC
{"id":"edge-$name","region":"default","addr":"$addr","upstreams_url":"http://$NODE/upstreams","slow_start":"1ms","cache":{"enabled":false},"forward_key":"$KEY","http":{}}
EOC
  if [[ $procs == - ]]; then
    $bin edge --spec $W/edge-$name.json 2>$W/edge-$name.log & echo $! > $W/edge-$name.pid
  else
    GOMAXPROCS=$procs $bin edge --spec $W/edge-$name.json 2>$W/edge-$name.log & echo $! > $W/edge-$name.pid
  fi
done
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
sleep 1.5 # the edges poll their upstream list every 0.5 s
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)
for a in $NODE $OLD $NEW $HAP; do
  echo "check http://$a$FILE: $(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://$a$FILE")"
done
printf "%-4s %-4s %-12s %-10s %-8s %-8s %s\n" c rep target rps p50 p99 "proxy-cpu-us/req"
for c in $CONC; do
  for r in $(seq 1 $REPS); do
    for t in direct edge-before edge-after haproxy; do
      case $t in
        direct) u=$NODE; pid="";;
        edge-before) u=$OLD; pid=$(cat $W/edge-before.pid);;
        edge-after) u=$NEW; pid=$(cat $W/edge-after.pid);;
        haproxy) u=$HAP; pid=$(cat $W/haproxy.pid);;
      esac
      [[ -n $pid ]] && t0=$(ticks $pid)
      out=$(wrk -t1 -c$c -d$DUR --latency "http://$u$FILE")
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
      p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
      total=$(awk '/requests in/ {print $1}' <<<"$out")
      cpu="-" t1=
      if [[ -n $pid ]]; then t1=$(ticks $pid); cpu=$(awk -v a=$t0 -v b=$t1 -v n=$total -v hz=$HZ 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}'); fi
      raw_add "c=$c rep=$r $t${pid:+, proxy CPU ticks $t0 -> $t1 (hz $HZ)}" "$out"
      printf "%-4s %-4s %-12s %-10s %-8s %-8s %s\n" $c $r $t $rps $p50 $p99 $cpu
    done
  done
done
