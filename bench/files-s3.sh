#!/usr/bin/env bash
# Upload propagation node -> node with the files store on S3 (versitygw on
# loopback, posix backend) against the local store, in the same run,
# alternating, REPS times: N files of 4 KiB written (temp + rename) into
# node-1's uploads one every EVERY, then one BIG MiB file; latency until each
# is complete in node-2's docroot. Every push through S3 is a blob PUT plus a
# conditional PUT of its log object (docs/adr/0012-files-on-s3.md).
# SETTLE seconds after `up` before writing: the first seconds after up (cron,
# opcache warming, the agents' rescans) put 0.4-1 s outliers into either store.
# Usage: bench/files-s3.sh [N=500] [EVERY=5ms] [BIG=20] [REPS=3] [SETTLE=5]
#   (needs make build and versitygw: make tools, or SCALEPRESS_VERSITYGW=PATH)
# Raw output: bench/results/files-s3-DATE.txt, with node-2's "applied a
# backlog" log lines (where its applier's time went: waiting for the
# stream, blob GETs, the rest) after each run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${BIN:-$PWD/bin/scalepress} # BIN=PATH: another build, e.g. for a before/after run
W=${W:-/tmp/scalepress-bench-files-s3}
N=${N:-500} EVERY=${EVERY:-5ms} BIG=${BIG:-20} REPS=${REPS:-3} SETTLE=${SETTLE:-5}
VGW=${SCALEPRESS_VERSITYGW:-$HOME/.cache/scalepress/tools/bin/versitygw}
[[ -x $BIN ]] || make build
[[ -x $VGW ]] || { echo "versitygw missing: make tools (or SCALEPRESS_VERSITYGW=PATH)"; exit 1; }
go build -o $W.propagation ./bench/propagation
cleanup() { $BIN down --dir $W >/dev/null 2>&1 || true; [[ -n ${GPID:-} ]] && kill $GPID 2>/dev/null || true; results_close; }
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W $W.s3; mkdir -p $W $W.s3/data/bench $W.s3/keys; chmod 755 $W; chmod 700 $W.s3/keys
results_open files-s3 "N=$N EVERY=$EVERY BIG=$BIG REPS=$REPS SETTLE=$SETTLE BIN=$BIN"
echo "versitygw $($VGW --version 2>&1 | head -1)"
$VGW --port 127.82.5.1:7070 --access bench --secret bench-secret --quiet posix $W.s3/data >$W.s3/log 2>&1 & GPID=$!
echo bench > $W.s3/keys/access; echo bench-secret > $W.s3/keys/secret; chmod 600 $W.s3/keys/*
for _ in $(seq 1 50); do curl -s -o /dev/null http://127.82.5.1:7070/ && break; sleep 0.1; done

config() { # $1 = local | s3
  cat <<EOC
api: {addr: 127.82.0.1:9090}
edges: [{addr: 127.82.0.1:8080}]
nodes: {count: 2, ip_base: 127.82.1.0, php_children: 2}
autoscaling: {enabled: false}
db: {members: 1, ip_base: 127.82.2.0, router: 127.82.0.1:3306}
redis: {addr: 127.82.3.1:6379}
wordpress: {cron_interval: 0s}
EOC
  if [[ $1 == s3 ]]; then
    cat <<EOC
files:
  addr: 127.82.4.1:8080
  store: {kind: s3, endpoint: "http://127.82.5.1:7070", bucket: bench, prefix: "run-$2", access_key_file: $W.s3/keys/access, secret_key_file: $W.s3/keys/secret}
EOC
  else
    echo "files: {addr: 127.82.4.1:8080}"
  fi
}
A=$W/nodes/node-1/docroot/wp-content/uploads B=$W/nodes/node-2/docroot/wp-content/uploads
for rep in $(seq 1 $REPS); do
  for store in local s3; do
    $BIN down --dir $W >/dev/null 2>&1 || true
    rm -rf $W; mkdir -p $W; chmod 755 $W
    config $store $rep > $W/scalepress.yaml
    $BIN up --detach --dir $W >/dev/null
    sleep $SETTLE
    echo "== rep $rep, files.store.kind $store (node-1 -> node-2)"
    $W.propagation -src $A -dst $B -n $N -every $EVERY -big $BIG -uid "$(id -u www-data)"
    # Where node-2's applier spent a backlog's time (applystats.go), if it had one.
    grep -h "applied a backlog" $W/logs/node-2-filesync.log 2>/dev/null | sed "s/^/node-2 /" || true
    $BIN down --dir $W >/dev/null
  done
done
