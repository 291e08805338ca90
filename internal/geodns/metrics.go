package geodns

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Stats is a snapshot of the server's counters since New.
type Stats struct {
	// Queries counts the queries answered by ServeDNS, by transport.
	Queries map[string]uint64 // "udp", "tcp"
	// Rcodes counts responses by RCODE name ("NOERROR", "NXDOMAIN", ...).
	Rcodes map[string]uint64
	// Qtypes counts queries by question type; rare types count as "OTHER".
	Qtypes map[string]uint64
	// Regions counts, per region, the geo answers for clients placed there
	// (Matched) and the geo answers that handed out its edges (Served).
	Regions map[string]RegionStats
	// ECS counts queries with a usable EDNS Client Subnet option.
	ECS uint64
	// Truncated counts UDP answers sent with TC=1 for the client to retry
	// over TCP.
	Truncated uint64
	// Fallbacks counts geo answers from another region than the client's.
	Fallbacks uint64
	// FailOpen counts geo answers with all edges because none was healthy.
	FailOpen uint64
	// Rejected counts messages refused before the handler: unparseable,
	// wrong opcode or section counts (answered FORMERR or NOTIMP by the
	// DNS library) or responses (dropped).
	Rejected uint64
}

// RegionStats counts the geo answers of one region.
type RegionStats struct {
	Matched uint64
	Served  uint64
}

// qtypeNames are the question types counted on their own.
var qtypeNames = []string{"A", "AAAA", "ANY", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "MX", "NS", "PTR", "SOA", "SRV", "SVCB", "TXT", "OTHER"}

const qtypeOther = 15

func qtypeIndex(t uint16) int {
	switch t {
	case dns.TypeA:
		return 0
	case dns.TypeAAAA:
		return 1
	case dns.TypeANY:
		return 2
	case dns.TypeCAA:
		return 3
	case dns.TypeCNAME:
		return 4
	case dns.TypeDNSKEY:
		return 5
	case dns.TypeDS:
		return 6
	case dns.TypeHTTPS:
		return 7
	case dns.TypeMX:
		return 8
	case dns.TypeNS:
		return 9
	case dns.TypePTR:
		return 10
	case dns.TypeSOA:
		return 11
	case dns.TypeSRV:
		return 12
	case dns.TypeSVCB:
		return 13
	case dns.TypeTXT:
		return 14
	}
	return qtypeOther
}

const numRcodes = 24 // through BADCOOKIE (23)

// counters are the hot counters, updated with atomics on the query path.
type counters struct {
	udp, tcp  atomic.Uint64
	rcodes    [numRcodes]atomic.Uint64
	qtypes    [16]atomic.Uint64
	ecs       atomic.Uint64
	truncated atomic.Uint64
	fallbacks atomic.Uint64
	failOpen  atomic.Uint64
	rejected  atomic.Uint64
	matched   []atomic.Uint64 // per region
	served    []atomic.Uint64 // per region
	regions   []string
}

func newCounters(regions []string) *counters {
	return &counters{
		matched: make([]atomic.Uint64, len(regions)),
		served:  make([]atomic.Uint64, len(regions)),
		regions: regions,
	}
}

// Snapshot copies the counters.
func (c *counters) Snapshot() Stats {
	s := Stats{
		Queries:   map[string]uint64{"udp": c.udp.Load(), "tcp": c.tcp.Load()},
		Rcodes:    map[string]uint64{},
		Qtypes:    map[string]uint64{},
		Regions:   map[string]RegionStats{},
		ECS:       c.ecs.Load(),
		Truncated: c.truncated.Load(),
		Fallbacks: c.fallbacks.Load(),
		FailOpen:  c.failOpen.Load(),
		Rejected:  c.rejected.Load(),
	}
	for i := range c.rcodes {
		if n := c.rcodes[i].Load(); n > 0 {
			s.Rcodes[rcodeName(i)] = n
		}
	}
	for i := range c.qtypes {
		if n := c.qtypes[i].Load(); n > 0 {
			s.Qtypes[qtypeNames[i]] = n
		}
	}
	for i, r := range c.regions {
		s.Regions[r] = RegionStats{Matched: c.matched[i].Load(), Served: c.served[i].Load()}
	}
	return s
}

func rcodeName(i int) string {
	if i == dns.RcodeBadVers {
		return "BADVERS" // shares 16 with BADSIG; this server has no TSIG
	}
	if n, ok := dns.RcodeToString[i]; ok {
		return n
	}
	return "RCODE" + strconv.Itoa(i)
}

// writeMetrics writes s and the regions' health in the Prometheus text
// exposition format, series sorted for stable output.
func writeMetrics(w io.Writer, s Stats, health map[string]bool) error {
	bw := bufio.NewWriter(w)
	family := func(name, typ, help string) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	labelled := func(name, label string, m map[string]uint64) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(bw, "%s{%s=\"%s\"} %d\n", name, label, escapeLabel(k), m[k])
		}
	}
	plain := func(name, help string, v uint64) {
		family(name, "counter", help)
		fmt.Fprintf(bw, "%s %d\n", name, v)
	}

	family("scalepress_geodns_queries_total", "counter", "DNS queries answered, by transport.")
	labelled("scalepress_geodns_queries_total", "proto", s.Queries)
	family("scalepress_geodns_responses_total", "counter", "DNS responses, by RCODE.")
	labelled("scalepress_geodns_responses_total", "rcode", s.Rcodes)
	family("scalepress_geodns_queries_by_type_total", "counter", "DNS queries, by question type.")
	labelled("scalepress_geodns_queries_by_type_total", "qtype", s.Qtypes)

	regions := slices.Sorted(maps.Keys(s.Regions))
	family("scalepress_geodns_region_matched_total", "counter", "Geo answers for clients placed in the region.")
	for _, r := range regions {
		fmt.Fprintf(bw, "scalepress_geodns_region_matched_total{region=\"%s\"} %d\n", escapeLabel(r), s.Regions[r].Matched)
	}
	family("scalepress_geodns_region_served_total", "counter", "Geo answers that handed out the region's edges.")
	for _, r := range regions {
		fmt.Fprintf(bw, "scalepress_geodns_region_served_total{region=\"%s\"} %d\n", escapeLabel(r), s.Regions[r].Served)
	}
	family("scalepress_geodns_region_healthy", "gauge", "1 while the region has a healthy edge.")
	for _, r := range slices.Sorted(maps.Keys(health)) {
		v := 0
		if health[r] {
			v = 1
		}
		fmt.Fprintf(bw, "scalepress_geodns_region_healthy{region=\"%s\"} %d\n", escapeLabel(r), v)
	}

	plain("scalepress_geodns_ecs_queries_total", "Queries with an EDNS Client Subnet option.", s.ECS)
	plain("scalepress_geodns_truncated_total", "UDP answers truncated (TC=1).", s.Truncated)
	plain("scalepress_geodns_fallback_answers_total", "Geo answers from another region than the client's.", s.Fallbacks)
	plain("scalepress_geodns_failopen_answers_total", "Geo answers with all edges because no region was healthy.", s.FailOpen)
	plain("scalepress_geodns_rejected_total", "Messages rejected before the handler (malformed, wrong opcode, responses).", s.Rejected)
	return bw.Flush()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
