#!/usr/bin/env bash
# Geo DNS, side by side in one run: queries/s of scalepress's DNS server (the
# `dns` role, exactly as the controller runs it) and CoreDNS 1.15 on the same
# zone and the same query mix (bench/baselines/dns: the team's DNS anchor's
# zones, Corefiles and queries), with the anchor's dnsperf flags:
#   plain: CoreDNS `file` vs scalepress without ECS (the client is 127.0.0.1,
#          not in the GeoIP database: the default region);
#   ECS:   CoreDNS `geoip` (edns-subnet) + `view` + `file` vs scalepress, every
#          query carrying ECS 81.2.69.142/32 (GB).
# Two query mixes: the anchor's queries.txt as is (~10 % mail MX and ~10 %
# *.wild A, which scalepress answers NXDOMAIN: it serves neither MX nor
# wildcards), and "common", the same file without those two, which both
# servers answer alike.
# Each run also reports the server's CPU time per query (utime+stime from
# /proc), which travels better than queries/s on a shared 2-core machine.
# Usage: bench/dns.sh [REPS=3] [DURATION=10] [COREDNS=path]
# Raw output (every dnsperf run in full): bench/results/dns-DATE.txt.
# Needs: make build, dnsperf (Debian package), CoreDNS built with
#   GOBIN=/tmp/coredns/bin go install github.com/coredns/coredns@v1.15.0   (~7 min)
# Without CoreDNS it measures scalepress alone and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-3} DUR=${DURATION:-10}
BIN=$PWD/bin/scalepress
BASE=$PWD/bench/baselines/dns
CITY=$PWD/bench/baselines/geoip/GeoLite2-City-Test.mmdb # CoreDNS's geoip plugin reads only City databases
COUNTRY=$PWD/internal/geodns/testdata/GeoLite2-Country-Test.mmdb
COREDNS=${COREDNS:-$(command -v coredns || echo /tmp/coredns/bin/coredns)}
W=${W:-/tmp/scalepress-bench-dns}
IP=127.78.0.1 PCORE=19053 PCOREGEO=19054 POURS=19055
FLAGS=(-c 1 -T 1 -q 100 -l "$DUR")
ECS=(-E 8:000120005102458e) # option 8: family 1, source /32, scope 0, 81.2.69.142
[[ -x $BIN ]] || make build
command -v dnsperf >/dev/null || { echo "dnsperf missing: apt-get install dnsperf"; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; results_close; }
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W"
results_open dns "REPS=$REPS DURATION=$DUR COREDNS=$COREDNS"

# scalepress: the anchor's zone. www is the geo name (GB: 198.51.100.10/.11,
# others: 192.0.2.10/.11; 2001:db8::10 in both); the rest are static records.
# Not supported, so answered NXDOMAIN: mail MX (~10 % of the queries) and
# *.wild (~10 %), which CoreDNS answers with records.
s=1000000000
cat > "$W/dns.json" <<EOF
{"Addr": "$IP:$POURS", "Zone": "example.test.", "NS": ["ns1", "ns2"],
 "SOA": {"Serial": 2026112601, "Refresh": $((3600 * s)), "Retry": $((600 * s)), "Expire": $((604800 * s)), "Minimum": $((300 * s))},
 "Records": [
  {"Name": "ns1", "Type": "A", "Value": "127.0.0.1"}, {"Name": "ns2", "Type": "A", "Value": "127.0.0.1"},
  {"Name": "@", "Type": "A", "Value": "192.0.2.1"}, {"Name": "api", "Type": "CNAME", "Value": "www"},
  {"Name": "mx", "Type": "A", "Value": "192.0.2.25"}, {"Name": "txt", "Type": "TXT", "Value": "v=spf1 -all"}],
 "GeoNames": ["www"], "GeoIPPath": "$COUNTRY", "DefaultRegion": "default",
 "Regions": [
  {"Name": "gb", "Countries": ["GB"], "Edges": [{"IP": "198.51.100.10"}, {"IP": "198.51.100.11"}, {"IP": "2001:db8::10"}]},
  {"Name": "default", "Edges": [{"IP": "192.0.2.10"}, {"IP": "192.0.2.11"}, {"IP": "2001:db8::10"}]}],
 "TTL": $((300 * s)), "StaticTTL": $((300 * s)),
 "Health": {"Interval": $((2 * s)), "Timeout": $s, "Rise": 2, "Fall": 2, "Path": "/_scalepress/edge/health"},
 "MaxTCPConns": 1024}
EOF
"$BIN" dns --spec "$W/dns.json" >"$W/scalepress-dns.log" 2>&1 &
pids+=($!); ours=$!

# CoreDNS: the anchor's files, with their paths and bind address moved to $W and $IP.
cp "$BASE"/example.test.zone "$BASE"/example.test.gb.zone "$W/"
for f in Corefile Corefile.geo; do
  sed -e "s#/tmp/suites-e/dns#$W#g" -e "s#\.\./geoip/GeoLite2-City-Test\.mmdb#$CITY#" -e "s#bind 127\.0\.0\.1#bind $IP#" \
    "$BASE/$f" >"$W/$f"
  if grep -qE 'suites-e|\.\./geoip|bind 127\.0\.0\.1' "$W/$f"; then echo "$BASE/$f: paths not rewritten" >&2; exit 1; fi
done
grep -q ":$PCORE " "$W/Corefile" && grep -q ":$PCOREGEO " "$W/Corefile.geo" || { echo "$BASE: Corefile ports are not $PCORE/$PCOREGEO" >&2; exit 1; }
have_coredns=0
if [[ -x $COREDNS ]]; then
  have_coredns=1
  (cd "$W" && exec "$COREDNS" -conf Corefile >coredns.log 2>&1) & pids+=($!); core=$!
  (cd "$W" && exec "$COREDNS" -conf Corefile.geo >coredns-geo.log 2>&1) & pids+=($!); coregeo=$!
fi
sleep 1

echo "== answers (www A for GB via ECS, and without)"
dig @$IP -p $POURS www.example.test A +subnet=81.2.69.142/32 +short | sort | tr '\n' ' '; echo " <- scalepress, GB"
dig @$IP -p $POURS www.example.test A +short | sort | tr '\n' ' '; echo " <- scalepress, no ECS"
if ((have_coredns)); then
  dig @$IP -p $PCOREGEO www.example.test A +subnet=81.2.69.142/32 +short | sort | tr '\n' ' '; echo " <- CoreDNS geo, GB"
  dig @$IP -p $PCORE www.example.test A +short | sort | tr '\n' ' '; echo " <- CoreDNS plain"
else
  echo "CoreDNS not found at $COREDNS: measuring scalepress alone (no side-by-side)"
fi

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
grep -v -e ' MX$' -e '\.wild\.' "$BASE/queries.txt" >"$W/queries-common.txt"

# run NAME PID PORT QUERIES [dnsperf args...]: one dnsperf run, a result line.
run() {
  local name=$1 pid=$2 port=$3 queries=$4; shift 4
  local t0 t1 out qps done_ rc
  t0=$(ticks "$pid")
  out=$(dnsperf -s $IP -p "$port" -d "$queries" "${FLAGS[@]}" "$@")
  t1=$(ticks "$pid")
  raw_add "$name, $(basename "$queries"), server CPU ticks $t0 -> $t1 (hz $hz)" "$out"
  qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
  done_=$(awk '/Queries completed/ {print $3}' <<<"$out")
  rc=$(grep 'Response codes' <<<"$out" | sed 's/.*codes: *//')
  printf '%-22s %10.0f qps  %6.1f us CPU/query  lost %s  [%s]  load %s\n' "$name" "$qps" \
    "$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$done_" 'BEGIN {print n ? d * 1e6 / hz / n : 0}')" \
    "$(awk '/Queries lost/ {print $3}' <<<"$out")" "$rc" "$(cut -d' ' -f1 /proc/loadavg)"
}

for mix in "$BASE/queries.txt" "$W/queries-common.txt"; do
  echo "== dnsperf ${FLAGS[*]} -d $(basename "$mix") ($(wc -l <"$mix") queries), $REPS reps, alternating"
  for i in $(seq 1 "$REPS"); do
    echo "-- rep $i"
    if ((have_coredns)); then run "coredns plain" "$core" $PCORE "$mix"; fi
    run "scalepress plain" "$ours" $POURS "$mix"
    if ((have_coredns)); then run "coredns geo+ECS" "$coregeo" $PCOREGEO "$mix" "${ECS[@]}"; fi
    run "scalepress ECS" "$ours" $POURS "$mix" "${ECS[@]}"
  done
done
