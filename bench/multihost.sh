#!/usr/bin/env bash
# Issue 12's Measure section: the site across 4 hosts (network namespaces on
# a bridge, test/hosts; subnet 10.79.0.0/24, which no test uses), each
# repetition on a fresh topology: h1 runs the Nomad server and `scalepress up`
# (controller, edge, files role, redis, db), h2..h4 are Nomad clients running
# the nodes, the files store is a bucket (versitygw) on h4, and every request
# comes from a client namespace. Per repetition:
#   1. `up` to the first 200 through the edge;
#   2. a load step (`scalepress load`, LOAD_RATE/s of an uncached search for
#      LOAD_FOR) from 1 node to the first new node in service (autoscaler ->
#      Nomad job scale -> node on a client);
#   3. `scale --min 3`, then memory per host (RSS and PSS of the processes in
#      each host's namespace, by role) while serving;
#   4. upload propagation node on h2 -> node on h3 (through the files role on
#      h1 and the bucket on h4), N files of 4 KiB one every EVERY written as
#      www-data, then one BIG MiB file; then the peer over the same bridge:
#      lsyncd on h2 (delay 0, then its default) pushing to an rsync daemon on
#      h3 (rsync://, no ssh), with the same writer. Then the same with
#      SPARSE_N files one every SPARSE_EVERY (one upload's latency, where the
#      burst also measures how fast a backlog drains).
# No added link delay: the kernel has no sch_netem (`tc ... netem` fails).
# ONLY=propagation runs only scalepress's propagation (step 4 without the
# lsyncd peer; no load step, no memory sample): a before/after pair in a
# third of the time. BIN=PATH runs another build of scalepress; BASELINE=PATH
# runs that build first in every repetition, then BIN's, each on a fresh
# topology, under one hold of the lock (a before/after pair back to back).
# Usage (as root): bench/multihost.sh [REPS=3] [N=500] [EVERY=5ms] [BIG=20] [SPARSE_N=100] [SPARSE_EVERY=50ms]
#   [LOAD_RATE=30] [LOAD_FOR=30s] [SETTLE=5s] [ONLY=propagation] [BIN=bin/scalepress] [BASELINE=PATH]
#   (needs make build, make tools, and lsyncd rsync from Debian; it takes the
#   e2e lock itself: do not wrap it in flock)
# Raw output: bench/results/multihost-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export REPS=${REPS:-3} N=${N:-500} EVERY=${EVERY:-5ms} BIG=${BIG:-20} LOAD_RATE=${LOAD_RATE:-30} LOAD_FOR=${LOAD_FOR:-30s} SETTLE=${SETTLE:-5s} SPARSE_N=${SPARSE_N:-100} SPARSE_EVERY=${SPARSE_EVERY:-50ms} ONLY=${ONLY:-} BASELINE=${BASELINE:-}
[[ $(id -u) == 0 ]] || { echo "run as root: network namespaces"; exit 1; }
command -v lsyncd >/dev/null && command -v rsync >/dev/null || { echo "lsyncd, rsync missing: apt-get install lsyncd rsync"; exit 1; }
[[ -n ${BIN:-} ]] || { make build >/dev/null; BIN=$PWD/bin/scalepress; }
make tools >/dev/null
trap results_close EXIT
results_open multihost "REPS=$REPS N=$N EVERY=$EVERY BIG=$BIG LOAD_RATE=$LOAD_RATE LOAD_FOR=$LOAD_FOR SETTLE=$SETTLE SPARSE_N=$SPARSE_N SPARSE_EVERY=$SPARSE_EVERY ONLY=$ONLY BIN=$BIN BASELINE=$BASELINE"
echo "lsyncd: $(lsyncd -version 2>&1 | head -1); rsync: $(rsync --version | head -1)"
SCALEPRESS_BIN=$BIN go test -count=1 -v -timeout 90m -run '^TestMultiHostBench$' ./bench/multihost/
echo "# finished $(date -Is), load average $(cut -d' ' -f1-3 /proc/loadavg)"
