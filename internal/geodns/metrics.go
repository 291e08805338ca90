package geodns

import (
	"strconv"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scalepress/scalepress/internal/metrics"
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

// collector exposes the counters and the regions' health
// (docs/metrics.md, "dns"), read at scrape time.
type collector struct {
	s                                                    *Server
	queries, responses, qtypes, matched, served, healthy *prometheus.Desc
	ecs, truncated, fallbacks, failOpen, rejected        *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{s: s,
		queries:   d("scalepress_geodns_queries_total", "DNS queries answered, by transport.", "proto"),
		responses: d("scalepress_geodns_responses_total", "DNS responses, by RCODE.", "rcode"),
		qtypes:    d("scalepress_geodns_queries_by_type_total", "DNS queries, by question type.", "qtype"),
		matched:   d("scalepress_geodns_region_matched_total", "Geo answers for clients placed in the region.", "region"),
		served:    d("scalepress_geodns_region_served_total", "Geo answers that handed out the region's edges.", "region"),
		healthy:   d("scalepress_geodns_region_healthy", "1 while the region has a healthy edge.", "region"),
		ecs:       d("scalepress_geodns_ecs_queries_total", "Queries with an EDNS Client Subnet option."),
		truncated: d("scalepress_geodns_truncated_total", "UDP answers truncated (TC=1)."),
		fallbacks: d("scalepress_geodns_fallback_answers_total", "Geo answers from another region than the client's."),
		failOpen:  d("scalepress_geodns_failopen_answers_total", "Geo answers with all edges because no region was healthy."),
		rejected:  d("scalepress_geodns_rejected_total", "Messages rejected before the handler (malformed, wrong opcode, responses)."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queries, c.responses, c.qtypes, c.matched, c.served, c.healthy, c.ecs, c.truncated, c.fallbacks, c.failOpen, c.rejected} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st, health := c.s.Stats(), c.s.Health()
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	labelled := func(d *prometheus.Desc, m map[string]uint64) {
		for k, v := range m {
			counter(d, v, k)
		}
	}
	labelled(c.queries, st.Queries)
	labelled(c.responses, st.Rcodes)
	labelled(c.qtypes, st.Qtypes)
	for r, rs := range st.Regions {
		counter(c.matched, rs.Matched, r)
		counter(c.served, rs.Served, r)
	}
	for r, ok := range health {
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, metrics.B2F(ok), r)
	}
	counter(c.ecs, st.ECS)
	counter(c.truncated, st.Truncated)
	counter(c.fallbacks, st.Fallbacks)
	counter(c.failOpen, st.FailOpen)
	counter(c.rejected, st.Rejected)
}
