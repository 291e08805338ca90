#!/usr/bin/env bash
# Foundation benchmarks, side by side in one run:
#  1. seconds from `scalepress up --detach` to the first 200 through the edge, cold and resumed;
#  2. uncached home page requests/s: scalepress (edge -> node agent -> php-fpm) vs
#     nginx -> php-fpm, same docroot, same database, same php.ini, same pool size.
# Usage: bench/foundation.sh [REPS=3] [DURATION=15s] [CONC="8 32"] [CHILDREN=4] [STARTUP=1]
# (STARTUP=0 skips part 1.) Part 2 also gives the CPU each process tree
# used per request, from /proc.
# Needs: make build, scripts/install-deps.sh --bench (nginx-light, wrk).
# Raw output (every wrk run in full): bench/results/foundation-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3} DUR=${DURATION:-15s} STARTUP=${STARTUP:-1} CONC=${CONC:-"8 32"} CHILDREN=${CHILDREN:-4}
BIN=${BIN:-$PWD/bin/scalepress}
W=${W:-/tmp/scalepress-bench}
EDGE=127.77.0.1:8080 NGINX=127.77.0.9:8081
SITE_HOST=$EDGE
# An (invalid) logged-in cookie: the edge passes the request to PHP instead of
# its cache, and PHP does the same work for both targets.
BYPASS="Cookie: wordpress_logged_in_bench=1"
[[ -x $BIN ]] || make build
command -v nginx >/dev/null || { echo "nginx missing: scripts/install-deps.sh --bench"; exit 1; }

cleanup() {
  stop_nginx_fpm $W
  $BIN down --dir $W >/dev/null 2>&1 || true
  results_close
  sched_group_close
}
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W; mkdir -p $W; chmod 755 $W
results_open foundation "BIN=$BIN ($(sha256sum <$BIN | cut -c1-12)) REPS=$REPS DURATION=$DUR CONC=\"$CONC\" CHILDREN=$CHILDREN STARTUP=$STARTUP MEMBERS=${MEMBERS:-1}"
sched_group_open foundation
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.77.0.1:9090}
edges: [{addr: $EDGE}]
nodes: {count: 1, ip_base: 127.77.1.0, php_children: $CHILDREN}
autoscaling: {enabled: false}
db: {members: ${MEMBERS:-1}, ip_base: 127.77.2.0, router: 127.77.0.1:3306}
files: {addr: 127.77.4.1:8080}
redis: {addr: 127.77.3.1:6379}
wordpress: {cron_interval: 0s}
# Like with like: nginx -> php-fpm never refuses, its waiters queue in
# php-fpm's listen backlog (511). With the edge's defaults (16 waiting per
# node, 3 s) a c=32 run against one 4-worker node has 12 connections refused
# at once with 503 and looping, which measured 20k 503/s, not pages. The edge
# still admits at most php_children per node; only the refusals are off.
http: {queue_backlog: 64, queue_timeout: 30s}
EOC

echo "== time from up to first 200 through the edge"
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null || { echo "failed: $*" >&2; exit 1; }; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
for i in $(seq 1 $((STARTUP ? REPS : 0))); do
  rm -rf $W/db $W/site $W/nodes $W/secrets $W/state.json $W/run $W/logs $W/redis
  cold=$(ms $BIN up --detach --dir $W)
  $BIN down --dir $W >/dev/null
  resume=$(ms $BIN up --detach --dir $W)
  $BIN down --dir $W >/dev/null
  echo "run $i: cold ${cold} ms, resume ${resume} ms"
done

$BIN up --detach --dir $W >/dev/null
# ~200 posts, categories, tags, comments, images: the baseline's content.
WP=$W/site php bench/baselines/wordpress-stack/gen-content.php
DOCROOT=$W/nodes/node-1/docroot

# nginx -> php-fpm on the node's docroot with the node's php.ini and pool settings.
start_nginx_fpm $W $NGINX $DOCROOT $SITE_HOST
for u in "http://$EDGE/" "http://$NGINX/"; do
  code=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "Host: $SITE_HOST" -H "$BYPASS" "$u")
  echo "check $u: $code"
done
# Whose CPU: /proc ticks of each process tree (utime+stime, plus what its
# reaped children used: php-fpm children respawn after pm.max_requests).
st=$($BIN status --dir $W --json)
EDGE_PID=$(jq '.edges[0].pid' <<<"$st")
# A node's pids: its agent, filesync agent, php-fpm master and children.
AGENT_PID="" PHP_SP="" FILESYNC_PID=""
for p in $(jq '.nodes[0].pids[]' <<<"$st"); do
  case "$(tr '\0' ' ' </proc/$p/cmdline)" in
    *"php-fpm: master"*) PHP_SP=$p ;;
    *php-fpm*) ;;
    *filesync*) FILESYNC_PID=$p ;;
    *) AGENT_PID=$p ;;
  esac
done
PHP_NG=$(cat $W/nginx/php-fpm.pid) NGINX_PID=$(cat $W/nginx/nginx.pid)
DB_PIDS="$(jq '.db.members[].pid, .db.router_pid' <<<"$st" | tr '\n' ' ')"
REDIS_PID=$(jq '.redis.pid' <<<"$st")
# The controller is the parent of every role: only its own CPU counts as background.
CTL_PID=$(jq '.controller.pid' <<<"$st")
BG_PIDS="$(jq '.files.pid // empty' <<<"$st") $FILESYNC_PID"
echo "pids: edge $EDGE_PID, node agent $AGENT_PID, php-fpm master (node) $PHP_SP, nginx $NGINX_PID, php-fpm master (nginx) $PHP_NG, db $DB_PIDS, redis $REDIS_PID, controller $CTL_PID, background $BG_PIDS"
ticks() {
  local t=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    t=$((t + $(awk '{print $14 + $15 + $16 + $17}' /proc/$p/stat 2>/dev/null || echo 0)))
    t=$((t + $(ticks $(pgrep -P $p))))
  done
  echo $t
}
# own: a process's ticks with its reaped children but not its live ones
# (this script: wrk, not the php-fpm it started for nginx).
own() { awk '{print $14 + $15 + $16 + $17}' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)
# snap: ticks of edge (or nginx), agent, php, db, redis, background, wrk for a target.
snap() {
  if [[ $1 == scalepress ]]; then echo "$(ticks $EDGE_PID) $(ticks $AGENT_PID) $(ticks $PHP_SP) $(ticks $DB_PIDS) $(ticks $REDIS_PID) $(( $(own $CTL_PID) + $(ticks $BG_PIDS) )) $(own $$)"
  else echo "$(ticks $NGINX_PID) 0 $(ticks $PHP_NG) $(ticks $DB_PIDS) $(ticks $REDIS_PID) $(( $(own $CTL_PID) + $(ticks $BG_PIDS) )) $(own $$)"; fi
}
# us_per_req BEFORE AFTER REQUESTS: µs of CPU per request for each column.
us_per_req() {
  awk -v a="$1" -v b="$2" -v n="$3" -v hz=$HZ 'BEGIN { split(a, x, " "); split(b, y, " ");
    for (i = 1; i <= 7; i++) printf "%s%.0f", (i > 1 ? " " : ""), (y[i] - x[i]) / hz * 1e6 / n; print "" }'
}

# Warm both (opcache, buffer pool).
wrk -t1 -c4 -d5s -H "Host: $SITE_HOST" -H "$BYPASS" "http://$EDGE/" >/dev/null
wrk -t1 -c4 -d5s -H "Host: $SITE_HOST" -H "$BYPASS" "http://$NGINX/" >/dev/null

echo "== uncached home page, wrk -t1 -d$DUR, $CHILDREN php-fpm children each, alternating"
echo "CPU µs per request: edge (or nginx), node agent, php = the target's php-fpm,"
echo "db = mysqld + router, bg = controller, files, filesync; wrk = this script's tree (the load generator)"
printf "%-4s %-4s %-12s %-10s %-10s %-12s %s\n" c rep target rps p50 "edge/front" "agent php db redis bg wrk (load1)"
for c in $CONC; do
  for r in $(seq 1 $REPS); do
    for t in scalepress nginx; do
      u="http://$EDGE/"; [[ $t == nginx ]] && u="http://$NGINX/"
      s0=$(snap $t)
      out=$(wrk -t1 -c$c -d$DUR --latency --timeout 30s -H "Host: $SITE_HOST" -H "$BYPASS" "$u")
      s1=$(snap $t)
      raw_add "c=$c rep=$r $t" "$out"
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
      p50=$(awk '$1=="50%" {print $2}' <<<"$out")
      non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
      n=$(awk '/requests in/ {print $1}' <<<"$out")
      cpu=$(us_per_req "$s0" "$s1" "$n")
      printf "%-4s %-4s %-12s %-10s %-10s %-12s %s (%s) %s\n" $c $r $t $rps $p50 "${cpu%% *}" "${cpu#* }" "$(cut -d' ' -f1 /proc/loadavg)" "${non2xx:+non-2xx=$non2xx}"
      # let php-fpm finish queued requests before the next target
      sleep 3
    done
  done
done
