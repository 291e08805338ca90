#!/usr/bin/env bash
# Backups of the baseline content (~200 posts, comments, 5 images with their
# sub-sizes: bench/baselines/wordpress-stack/gen-content.php, run in node-1's
# docroot so that the images go through the files store): time and size of
# the first backup, size and time of the next one after one new upload
# (incremental), time of `restore` and of `up` of the restored directory
# until it serves, and the p50/p99 of uncached pages (searches, which the
# edge never caches) during back-to-back backups against without, each
# measured REPS times alternating.
# Usage: bench/backup.sh [REPS=3] [RATE=20] [DURATION=20s]
# Raw output: bench/results/backup-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=$PWD/bin/scalepress
W=${W:-/tmp/scalepress-bench-backup}
REPS=${REPS:-3} RATE=${RATE:-20} DUR=${DURATION:-20s}
EDGE=127.83.0.1:8080
[[ -x $BIN ]] || make build
cleanup() {
  [[ -n ${LOOP:-} ]] && kill $LOOP 2>/dev/null || true
  $BIN down --dir $W >/dev/null 2>&1 || true
  $BIN down --dir $W.restored >/dev/null 2>&1 || true
  results_close
}
trap cleanup EXIT
$BIN down --dir $W >/dev/null 2>&1 || true
$BIN down --dir $W.restored >/dev/null 2>&1 || true
rm -rf $W $W.restored $W.target; mkdir -p $W; chmod 755 $W
results_open backup "REPS=$REPS RATE=$RATE DURATION=$DUR"
cat > $W/scalepress.yaml <<EOC
api: {addr: 127.83.0.1:9090}
edges: [{addr: $EDGE}]
nodes: {count: 2, ip_base: 127.83.1.0, php_children: 2}
autoscaling: {enabled: false}
db: {members: 1, ip_base: 127.83.2.0, router: 127.83.0.1:3306}
redis: {addr: 127.83.3.1:6379}
wordpress: {cron_interval: 0s}
files: {addr: 127.83.4.1:8080}
backup: {to: $W.target, binlog_interval: 5s}
EOC
$BIN up --detach --dir $W >/dev/null
WP=$W/nodes/node-1/docroot php bench/baselines/wordpress-stack/gen-content.php
chown -R www-data:www-data $W/nodes/node-1/docroot/wp-content/uploads
# Wait until the files store has taken the uploads (its seq stops moving).
seq_now() { $BIN status --dir $W --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["files"]["seq"])'; }
prev=-1; for _ in $(seq 1 60); do s=$(seq_now); [[ $s == "$prev" ]] && break; prev=$s; sleep 2; done
echo "files store at seq $prev; posts: $(mariadb --no-defaults --socket=$W/db/db-1/run/mysqld.sock -uroot -N -e "SELECT COUNT(*) FROM wordpress.wp_posts WHERE post_status='publish' AND post_type='post'")"

bk() { # prints "seconds bytes-added id"
  local t0 t1 out id
  t0=$(date +%s.%N); out=$($BIN backup --dir $W); t1=$(date +%s.%N)
  id=$(tail -1 <<<"$out")
  echo "$(echo "$t1 - $t0" | bc) $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(sum(a["size"] for a in m["artefacts"]) + m["files"]["new_bytes"], m["files"]["new_blobs"], [a["size"] for a in m["artefacts"] if a["name"]=="db.xbstream"][0])' $W.target/$id/manifest.json) $id"
}
echo "== first backup: seconds, bytes added, blobs added, db.xbstream bytes, id"
read -r secs bytes blobs dbb id1 < <(bk); echo "full $secs s, $bytes B ($blobs blobs, database $dbb B) $id1"
echo "== one new upload (a 200 KB image), then the next backup"
cp $W/nodes/node-1/docroot/wp-content/uploads/*/*/bench-image-0.jpg $W/nodes/node-1/docroot/wp-content/uploads/bench-new-upload.jpg
printf 'x' >> $W/nodes/node-1/docroot/wp-content/uploads/bench-new-upload.jpg
chown www-data:www-data $W/nodes/node-1/docroot/wp-content/uploads/bench-new-upload.jpg
prev=-1; for _ in $(seq 1 30); do s=$(seq_now); [[ $s == "$prev" ]] && break; prev=$s; sleep 1; done
read -r secs bytes blobs dbb id2 < <(bk); echo "incremental $secs s, $bytes B ($blobs blobs, database $dbb B) $id2"
du -sb $W.target | awk '{print "target total " $1 " B"}'

echo "== uncached pages (GET /?s=bench) at $RATE/s for $DUR: without and during back-to-back backups"
for rep in $(seq 1 $REPS); do
  out=$($BIN load --url "http://$EDGE/?s=bench" --rate $RATE --duration $DUR 2>&1); raw_add "rep $rep without" "$out"
  echo "rep $rep without: $(grep -E 'latency|success' <<<"$out" | tr '\n' ' ')"
  ( while :; do $BIN backup --dir $W >/dev/null 2>&1 || true; done ) & LOOP=$!
  out=$($BIN load --url "http://$EDGE/?s=bench" --rate $RATE --duration $DUR 2>&1); raw_add "rep $rep during" "$out"
  kill $LOOP; wait $LOOP 2>/dev/null || true; LOOP=
  echo "rep $rep during backups: $(grep -E 'latency|success' <<<"$out" | tr '\n' ' ')"
done
$BIN backups --dir $W | sed -n 1,3p

echo "== restore to serving"
for rep in $(seq 1 $REPS); do
  rm -rf $W.restored
  t0=$(date +%s.%N); $BIN restore $W.target/$id2 --dir $W.restored >/dev/null; t1=$(date +%s.%N)
  $BIN down --dir $W >/dev/null
  $BIN up --detach --dir $W.restored >/dev/null; t2=$(date +%s.%N)
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$EDGE/?s=restored")
  echo "rep $rep: restore $(echo "$t1 - $t0" | bc) s, up until serving $(echo "$t2 - $t1" | bc) s, first search $code"
  $BIN down --dir $W.restored >/dev/null
  $BIN up --detach --dir $W >/dev/null
done
