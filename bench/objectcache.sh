#!/usr/bin/env bash
# The object-cache drop-in's cost per call, against a real redis on
# 127.0.0.1: this tree's drop-in vs OLD's (default 3f8d5a8, before values
# were signed and redis had a password). Prints the min and median µs of
# REPS runs.
# Usage: bench/objectcache.sh [REPS=5] [OLD=3f8d5a8]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5} OLD=${OLD:-3f8d5a8}
W=$(mktemp -d /tmp/scalepress-bench-oc.XXXXXX)
PW=bench-0123456789abcdef0123456789abcdef
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
git show "$OLD:internal/wordpress/php/object-cache.php" > $W/old.php
cp internal/wordpress/php/object-cache.php $W/new.php
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
OLDPORT=$(free_port); NEWPORT=$(free_port)
redis-server --port $OLDPORT --bind 127.0.0.1 --save "" --dir $W >/dev/null & pids+=($!)
redis-server --port $NEWPORT --bind 127.0.0.1 --save "" --dir $W --requirepass $PW >/dev/null & pids+=($!)
sleep 0.5
for r in $(seq $REPS); do
  php bench/objectcache/run.php $W/old.php $OLDPORT | sed 's/^/old /'
  php bench/objectcache/run.php $W/new.php $NEWPORT $PW | sed 's/^/new /'
done > $W/results
python3 - $W/results <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    who, name, us = line.split()
    d[(name, who)].append(float(us))
print(f"{'µs per call':16s} {'old min/median':>16s} {'new min/median':>16s}")
for name in dict.fromkeys(k[0] for k in d):
    o, n = d[(name, 'old')], d[(name, 'new')]
    print(f"{name:16s} {min(o):7.1f} /{statistics.median(o):6.1f} {min(n):7.1f} /{statistics.median(n):6.1f}")
PY
