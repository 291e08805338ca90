#!/usr/bin/env bash
# What the hardening of 2026-12-07 (ADR 9) costs on the request path, side by
# side with the commit before it in the same run: two environments up at
# once, one from each binary, loaded in turn with the same wrk runs.
#   hop   a 7 KB static file through the edge with a logged-in cookie (no
#         cache): the proxy hop alone (edge signs, node verifies)
#   page  an uncached search page /?s=bench through the edge (PHP every time)
#   post  the same page as a POST with a 2 KB form body (the node reads the
#         body before it takes a PHP worker)
# Reported: requests/s and the CPU µs per request of our two Go processes on
# the path (edge + node agent).
# Usage: bench/hardening.sh [REPS=3] [DURATION=10s] [CONC=8] [BEFORE=7a0c066] [TESTS="hop page post"]
# Needs: make build, wrk. Raw output: bench/results/hardening-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3} DUR=${DURATION:-10s} CONC=${CONC:-8} BEFORE=${BEFORE:-7a0c066} TESTS=${TESTS:-"hop page post"}
W=${W:-/tmp/scalepress-bench-hardening}
AFTER_BIN=$PWD/bin/scalepress
BEFORE_BIN=$W/before/scalepress
FILE=/wp-includes/css/wp-embed-template.min.css
COOKIE="Cookie: wordpress_logged_in_bench=1"
[[ -x $AFTER_BIN ]] || make build
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh"; exit 1; }
cleanup() {
  for v in before after; do
    b=$BEFORE_BIN; [[ $v == after ]] && b=$AFTER_BIN
    [[ -x $b ]] && $b down --dir $W/$v-env >/dev/null 2>&1 || true
  done
  git worktree remove --force $W/src >/dev/null 2>&1 || true
  results_close
}
trap cleanup EXIT
mkdir -p $W; chmod 755 $W
results_open hardening "REPS=$REPS DURATION=$DUR CONC=$CONC BEFORE=$BEFORE TESTS=\"$TESTS\""
if [[ ! -x $BEFORE_BIN ]]; then
  git worktree remove --force $W/src >/dev/null 2>&1 || true
  git worktree add --detach $W/src "$BEFORE" >/dev/null
  (cd $W/src && go build -o $BEFORE_BIN ./cmd/scalepress)
fi
echo "before: $BEFORE ($($BEFORE_BIN version 2>/dev/null | head -1)); after: $(git rev-parse --short HEAD)"
declare -A SITE EDGE_PID NODE_PID
n=0
for v in before after; do
  n=$((n + 1)); b=$BEFORE_BIN; [[ $v == after ]] && b=$AFTER_BIN
  B=$((75 + n)); d=$W/$v-env
  $b down --dir $d >/dev/null 2>&1 || true
  rm -rf $d; mkdir -p $d; chmod 755 $d
  cat > $d/scalepress.yaml <<EOC
api: {addr: 127.$B.0.1:9090}
edges: [{id: edge-1, region: default, addr: 127.$B.0.1:8080}]
nodes: {count: 1, ip_base: 127.$B.1.0, php_children: 2}
autoscaling: {enabled: false}
db: {members: 1, ip_base: 127.$B.2.0, router: 127.$B.0.1:3306, buffer_pool: 64M}
redis: {addr: 127.$B.3.1:6379}
files: {addr: 127.$B.4.1:8080}
wordpress: {cron_interval: 0s}
EOC
  $b up --detach --dir $d >/dev/null
  st=$($b status --dir $d --json)
  SITE[$v]=$(jq -r .site_url <<<"$st")
  EDGE_PID[$v]=$(jq '.edges[0].pid' <<<"$st")
  NODE_PID[$v]=$(jq '.nodes[0].pids[0]' <<<"$st")
  echo "$v: ${SITE[$v]} edge pid ${EDGE_PID[$v]} node agent pid ${NODE_PID[$v]} ($(tr '\0' ' ' </proc/${NODE_PID[$v]}/cmdline | cut -c1-60))"
done
body=$(head -c 2048 /dev/zero | tr '\0' 'a')
cat > $W/post.lua <<EOL
wrk.method = "POST"
wrk.body = "comment=$body"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
EOL
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)
for v in before after; do
  for p in "$FILE" "/?s=bench"; do
    echo "check $v $p: $(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "$COOKIE" "${SITE[$v]}$p")"
  done
done
printf "%-5s %-4s %-7s %-10s %-8s %-8s %s\n" test rep version rps p50 p99 "edge+agent-cpu-us/req"
for r in $(seq 1 $REPS); do
  for t in $TESTS; do
    for v in before after; do
      args=(-t1 -c$CONC -d$DUR --latency)
      case $t in
        hop) args+=(-H "$COOKIE" "${SITE[$v]}$FILE");;
        page) args+=("${SITE[$v]}/?s=bench");;
        post) args+=(-s $W/post.lua "${SITE[$v]}/?s=bench");;
      esac
      e0=$(ticks ${EDGE_PID[$v]}); a0=$(ticks ${NODE_PID[$v]})
      out=$(wrk "${args[@]}")
      e1=$(ticks ${EDGE_PID[$v]}); a1=$(ticks ${NODE_PID[$v]})
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
      p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
      total=$(awk '/requests in/ {print $1}' <<<"$out")
      cpu=$(awk -v a=$((e1 - e0 + a1 - a0)) -v n=$total -v hz=$HZ 'BEGIN{printf "%.1f", a/hz*1e6/n}')
      raw_add "$t rep=$r $v: edge ticks $e0 -> $e1, agent ticks $a0 -> $a1 (hz $HZ)" "$out"
      printf "%-5s %-4s %-7s %-10s %-8s %-8s %s\n" $t $r $v $rps $p50 $p99 $cpu
    done
  done
done
