#!/usr/bin/env bash
# Releases (issue 17's Measure, docs/adr/0023-releases.md), on a 2-node stack:
#  1. core update: time from `scalepress update core` to every node serving
#     the new version (generator meta, asked of each node directly), and the
#     failed requests of uncached load through the edge (searches) meanwhile;
#  2. a plugin of 200 files (the mixcheck plugin of test/e2e/units_test.go:
#     check.php requires first.php, 196 fillers and last/last.php and prints
#     the versions of the first and the last): how long each node serves a
#     mix of old and new files while it is updated
#       a) as a release: `scalepress update plugin` (one unit push per node,
#          ADR 26), and
#       b) file by file, the path before ADR 26: the new files written in
#          place into node-1's live tree one after the other, in path order,
#          as WordPress 6.1's upgrader (copy_dir) wrote them, and reaching
#          node-2 through file sync change by change.
# Each node is probed directly (uncached): the core update by one worker
# (searches back to back), the plugin likewise (check.php): one PHP worker
# of each node's two stays free for the load.
# Each measured REPS times. Usage: bench/release.sh [REPS=3] [RATE=10]
# Raw output: bench/results/release-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${BIN:-$PWD/bin/scalepress}
W=${W:-/tmp/scalepress-bench-release}
REPS=${REPS:-3} RATE=${RATE:-10}
B=87
EDGE=127.$B.0.1:8080
[[ -x $BIN ]] || make build
go build -o $W.probe ./bench/releaseprobe
cleanup() { $BIN down --dir $W >/dev/null 2>&1 || true; results_close; }
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
rm -rf $W $W.src; mkdir -p $W $W.src; chmod 755 $W $W.src
results_open release "REPS=$REPS RATE=$RATE"
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.$B.0.1:9090}
edges: [{addr: $EDGE}]
nodes: {count: 2, ip_base: 127.$B.1.0, php_children: 2}
autoscaling: {enabled: false}
db: {members: 1, ip_base: 127.$B.2.0, router: 127.$B.0.1:3306}
redis: {addr: 127.$B.3.1:6379}
files: {addr: 127.$B.4.1:8080}
wordpress: {cron_interval: 0s}
EOC
$BIN up --detach --dir $W >/dev/null
NODES=$($BIN status --dir $W --json | python3 -c 'import json,sys; print(",".join(n["addr"] for n in json.load(sys.stdin)["nodes"]))')
DOC1=$($BIN status --dir $W --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"][0]["docroot"])')
echo "nodes $NODES; $(nproc) cores"

# core VERSION: Debian's core (links resolved, no wp-content) with $wp_version VERSION.
core() {
  local d=$W.src/core-$1/wordpress
  mkdir -p $d
  for f in /usr/share/wordpress/*; do
    case ${f##*/} in wp-content|wp-config.php) continue;; esac
    cp -rL "$f" $d/
  done
  sed -i "s/^\$wp_version = '[^']*';/\$wp_version = '$1';/" $d/wp-includes/version.php
  echo $d
}
# mixcheck N: the 200-file plugin at version N, as a directory and a zip.
mixcheck() {
  python3 - "$W.src/mixcheck-$1" "$1" <<'EOP'
import os, sys, zipfile
root, v = sys.argv[1], sys.argv[2]
files = {"mixcheck.php": f"<?php\n/*\nPlugin Name: mixcheck\nVersion: {v}\n*/\n",
         "first.php": f"<?php $mixcheck_first = '{v}';\n", "last/last.php": f"<?php $mixcheck_last = '{v}';\n"}
check = "<?php\nrequire __DIR__ . '/first.php';\n"
for i in range(196):
    files[f"inc/f{i:03d}.php"] = f"<?php $mixcheck_fill[] = '{v}-{i}';\n"
    check += f"require __DIR__ . '/inc/f{i:03d}.php';\n"
check += "require __DIR__ . '/last/last.php';\nheader('Cache-Control: no-store');\necho $mixcheck_first, ' ', $mixcheck_last;\n"
files["check.php"] = check
with zipfile.ZipFile(root + ".zip", "w") as z:
    for name in sorted(files):
        p = os.path.join(root, "mixcheck", name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "w").write(files[name])
        z.writestr("mixcheck/" + name, files[name])
EOP
  chmod -R a+rX $W.src
}
# inplace N: version N's files written into node-1's live plugin directory,
# one after the other in path order, each in place (WordPress 6.1's copy_dir).
cat > $W.src/inplace.py <<'EOP'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
names = sorted(os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs)
for n in names:
    data = open(os.path.join(src, n), "rb").read()
    with open(os.path.join(dst, n), "wb") as f:
        f.write(data)
EOP
probe() { "$W.probe" -nodes "$NODES" "$@"; }

mixcheck 1
$BIN update plugin mixcheck --from $W.src/mixcheck-1.zip --dir $W >/dev/null
echo "== 1. core update: every node on the new version, uncached load at $RATE/s through the edge"
for rep in $(seq 1 $REPS); do
  v=6.1.9$rep
  src=$(core $v)
  out=$(probe -conc 1 -path "/?s=release-probe" -want "content=\"WordPress $v" -load "http://$EDGE/?s=bench-release-$rep" -rate $RATE -- $BIN update core --from $src --dir $W 2>&1)
  raw_add "core rep $rep" "$out"
  echo "rep $rep (core $v): $(grep -E '^command|^every node|^load' <<<"$out" | tr '\n' ' ')"
done
echo "== 2. plugin of 200 files: mixed window per node"
n=1
for rep in $(seq 1 $REPS); do
  n=$((n + 1)); mixcheck $n
  out=$(probe -conc 1 -pair -path /wp-content/plugins/mixcheck/check.php -want "$n $n" -load "http://$EDGE/?s=bench-unit-$rep" -rate $RATE -- $BIN update plugin mixcheck --from $W.src/mixcheck-$n.zip --dir $W 2>&1)
  raw_add "plugin as a release, rep $rep" "$out"
  echo "rep $rep a) update plugin (unit pushes):"; grep -E '^command|^node|^every|^load' <<<"$out" | sed 's/^/   /'
  n=$((n + 1)); mixcheck $n
  out=$(probe -conc 1 -pair -path /wp-content/plugins/mixcheck/check.php -want "$n $n" -load "http://$EDGE/?s=bench-inplace-$rep" -rate $RATE -- python3 $W.src/inplace.py $W.src/mixcheck-$n/mixcheck $DOC1/wp-content/plugins/mixcheck 2>&1)
  raw_add "plugin file by file, rep $rep" "$out"
  echo "rep $rep b) file by file into node-1's live tree (before ADR 26):"; grep -E '^command|^node|^every|^load' <<<"$out" | sed 's/^/   /'
  # let file sync settle before the next release reads the store
  sleep 3
done
$BIN release --dir $W | sed -n 1,4p
