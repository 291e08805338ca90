#!/usr/bin/env bash
# What the request duration histogram costs the edge's hot paths: the edge's
# Go benchmarks (BenchmarkCacheHit, BenchmarkProxyHop, BenchmarkProxyPost,
# and BenchmarkCacheHitHTTP: a hit through net/http over loopback) built from
# BASE (before) and from the working tree (after), run alternately ROUNDS
# times, one count each, on CPU cores (-test.cpu), then benchstat. The
# working tree's BenchmarkCacheHitHTTP is added to BASE's tree if it lacks it.
# Usage: bench/metrics-edge.sh [BASE=main] [ROUNDS=30] [CPU=1] [BENCH='CacheHit|Proxy']
#   (needs benchstat: go install golang.org/x/perf/cmd/benchstat@latest)
# Raw output: bench/results/metrics-edge-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BASE=${BASE:-main} ROUNDS=${ROUNDS:-30} CPU=${CPU:-1} BENCH=${BENCH:-CacheHit|Proxy}
W=${W:-/tmp/scalepress-bench-metrics-edge}
BENCHSTAT=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
[[ -x $BENCHSTAT ]] || { echo "benchstat missing: go install golang.org/x/perf/cmd/benchstat@latest"; exit 1; }
trap results_close EXIT
rm -rf $W; mkdir -p $W/base
git archive "$BASE" | tar -x -C $W/base
if ! grep -q 'func BenchmarkCacheHitHTTP' $W/base/internal/edge/bench_test.go; then
  { echo; sed -n '/^\/\/ BenchmarkCacheHitHTTP/,/^}/p' internal/edge/bench_test.go; } >> $W/base/internal/edge/bench_test.go
fi
(cd $W/base && go test -c -o $W/before.test ./internal/edge)
go test -c -o $W/after.test ./internal/edge
results_open metrics-edge "BASE=$BASE ($(git rev-parse --short "$BASE")) ROUNDS=$ROUNDS CPU=$CPU BENCH='$BENCH'"
: > $W/before.txt; : > $W/after.txt
for i in $(seq 1 "$ROUNDS"); do
  for side in before after; do
    (cd internal/edge && $W/$side.test -test.run '^$' -test.bench "$BENCH" -test.count 1 -test.cpu "$CPU" -test.benchmem) >> $W/$side.txt 2>&1
  done
  echo "round $i/$ROUNDS, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "## benchstat before.txt after.txt"
$BENCHSTAT $W/before.txt $W/after.txt
raw_add before.txt "$(cat $W/before.txt)"
raw_add after.txt "$(cat $W/after.txt)"
