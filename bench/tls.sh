#!/usr/bin/env bash
# HTTPS at the edge vs nginx, side by side, same certificate (ECDSA P-256),
# same TLS 1.3 suite and key exchange (X25519: Go's client would offer the
# post-quantum hybrid, which OpenSSL 3.0 lacks, so tlsload pins X25519):
# cache hits of the home page over HTTP/1.1 keep-alive (hits) and HTTP/2
# (h2), and a new TLS connection per request, full handshakes (new) and
# resumed sessions (resumed). nginx is a TLS-terminating proxy_cache in front
# of the edge (its hits never reach the edge). Reports requests/s, p50/p99
# and the server's CPU µs per request (edge process; nginx's two workers).
# Usage: bench/tls.sh [REPS=3] [DURATION=10s] [MODES="hits h2 new resumed"]
# Needs: make build, nginx.
# Raw output: bench/results/tls-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3} DUR=${DURATION:-10s} MODES=${MODES:-"hits h2 new resumed"}
BIN=$PWD/bin/scalepress
W=${W:-/tmp/scalepress-bench-tls}
EDGE=127.83.0.1:8080 EDGES=127.83.0.1:8443 NGINX=127.83.0.9:8443 NAME=www.bench.test
[[ -x $BIN ]] || make build
command -v nginx >/dev/null || { echo "nginx missing: scripts/install-deps.sh --bench"; exit 1; }
cleanup() {
  [[ -f $W/nginx.pid ]] && kill "$(cat $W/nginx.pid)" 2>/dev/null || true
  $BIN down --dir $W >/dev/null 2>&1 || true
  results_close
}
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W; mkdir -p $W/certs $W/nginx-cache; chmod 755 $W $W/certs
go build -o $W/tlsload ./bench/tlsload
results_open tls "REPS=$REPS DURATION=$DUR"
# One CA, one ECDSA P-256 certificate for both servers.
openssl ecparam -name prime256v1 -genkey -noout -out $W/certs/ca.key 2>/dev/null
openssl req -x509 -new -key $W/certs/ca.key -subj "/CN=bench root" -days 2 -out $W/certs/ca.pem 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out $W/certs/key.pem 2>/dev/null
openssl req -new -key $W/certs/key.pem -subj "/CN=$NAME" -out $W/certs/leaf.csr 2>/dev/null
printf "subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n" $NAME > $W/certs/ext
openssl x509 -req -in $W/certs/leaf.csr -CA $W/certs/ca.pem -CAkey $W/certs/ca.key -CAcreateserial -days 2 \
  -extfile $W/certs/ext -out $W/certs/fullchain.pem 2>/dev/null
chmod 644 $W/certs/*
cat > $W/scalepress.yaml <<EOC
site: {url: "https://$NAME:8443"}
api: {addr: 127.83.0.1:9090}
edges: [{addr: $EDGE, https_addr: $EDGES}]
nodes: {count: 1, ip_base: 127.83.1.0, php_children: 2}
autoscaling: {enabled: false}
db: {members: 1, ip_base: 127.83.2.0, router: 127.83.0.1:3306}
redis: {addr: 127.83.3.1:6379}
files: {addr: 127.83.4.1:8080}
wordpress: {cron_interval: 0s}
tls:
  certificates: [{cert_file: $W/certs/fullchain.pem, key_file: $W/certs/key.pem}]
EOC
$BIN up --detach --dir $W >/dev/null
cat > $W/nginx.conf <<EOC
worker_processes 2;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  proxy_cache_path $W/nginx-cache levels=1:2 keys_zone=c:10m max_size=256m inactive=60m use_temp_path=off;
  upstream edge { server $EDGES; keepalive 32; }
  server {
    listen $NGINX ssl http2;
    server_name $NAME;
    ssl_certificate $W/certs/fullchain.pem;
    ssl_certificate_key $W/certs/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    http2_max_concurrent_streams 100;
    location / {
      proxy_pass https://edge;
      proxy_ssl_server_name on;
      proxy_ssl_name $NAME;
      proxy_set_header Host $NAME:8443;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache c;
      proxy_cache_valid 200 5m;
      proxy_ignore_headers Cache-Control Expires Set-Cookie Vary;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
EOC
# In the foreground as this script's child, so that its end is recorded.
( nginx -c $W/nginx.conf -g 'daemon off;' >$W/nginx.out 2>&1; echo "nginx exited: status $? at $(date -Is)" >>$W/nginx.out ) &
sleep 0.5
EDGE_PID=$($BIN status --dir $W --json | jq '.edges[0].pid')
# The workers only: the cache loader child exits after a minute.
NGINX_PIDS=$(pgrep -f -P "$(cat $W/nginx.pid)" "nginx: worker process" | tr '\n' ' ')
ticks() {
  local s=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || { echo "process $p is gone (nginx or the edge died, or was killed): $(cat $W/nginx.out 2>/dev/null)" >&2; exit 1; }
    s=$((s + $(awk '{print $14+$15}' /proc/$p/stat)))
  done
  echo $s
}
HZ=$(getconf CLK_TCK)
for t in edge nginx; do
  a=$EDGES; [[ $t == nginx ]] && a=$NGINX
  for i in 1 2; do curl -s -o /dev/null --cacert $W/certs/ca.pem --resolve $NAME:8443:${a%:*} "https://$NAME:8443/"; done
  echo "check $t: $(curl -s -o /dev/null -D - --cacert $W/certs/ca.pem --resolve $NAME:8443:${a%:*} -w '%{http_code} %{size_download} %{http_version}' "https://$NAME:8443/" | tr -d '\r' | awk '/^[xX]-[cC]ache:/ {c=$2} END {print c}') $(curl -s -o /dev/null --cacert $W/certs/ca.pem --resolve $NAME:8443:${a%:*} -w '%{http_code} %{size_download} HTTP/%{http_version}' "https://$NAME:8443/")"
done
printf "%-8s %-4s %-6s %-8s %-10s %-10s %-8s %-8s %s\n" mode rep target rps p50 p99 errors resumed "server-cpu-us/req"
for mode in $MODES; do
  case $mode in hits) c=32;; h2) c=64;; new|resumed) c=16;; esac
  for r in $(seq 1 $REPS); do
    for t in edge nginx; do
      if [[ $t == edge ]]; then a=$EDGES pids=$EDGE_PID; else a=$NGINX pids=$NGINX_PIDS; fi
      t0=$(ticks $pids)
      out=$($W/tlsload -addr $a -name $NAME -ca $W/certs/ca.pem -mode $mode -c $c -d $DUR)
      t1=$(ticks $pids)
      raw_add "mode=$mode rep=$r $t (server CPU ticks $t0 -> $t1, hz $HZ)" "$out"
      read -r _ n _ rps _ p50 _ p99 _ errs _ res <<<"$out"
      cpu=$(awk -v a=$t0 -v b=$t1 -v n=$n -v hz=$HZ 'BEGIN{if (n>0) printf "%.1f", (b-a)/hz*1e6/n; else print "-"}')
      printf "%-8s %-4s %-6s %-8s %-10s %-10s %-8s %-8s %s\n" $mode $r $t $rps $p50 $p99 $errs $res $cpu
    done
  done
done
