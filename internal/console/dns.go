package console

import (
	"context"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// dnsRead is one read of the dns role's counters.
type dnsRead struct {
	at       time.Time
	counters api.DNSCounters
}

// readDNS reads the dns role's answers per region (api.DNSPathStatus) and
// turns them into totals and rates against the previous read. It runs on
// every tick, dashboards or not, so that a new dashboard gets a rate at
// once; one small loopback GET per interval.
func (c *Console) readDNS(ctx context.Context, now time.Time, st api.Status) {
	if c.cfg.DNSAddr == "" || st.DNS == nil {
		return
	}
	cl := api.Client{Base: "http://" + c.cfg.DNSAddr, HTTP: c.cfg.HTTP}
	var cur api.DNSCounters
	err := cl.Get(ctx, api.DNSPathStatus, &cur)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.dns = dnsFailed(st.DNS.Regions, err)
		c.dnsPrev = nil
		return
	}
	c.dns = dnsAnswers(c.dnsPrev, dnsRead{at: now, counters: cur})
	c.dnsPrev = &dnsRead{at: now, counters: cur}
}

// dnsAnswers is each region's total answers at cur and its answers per
// second since prev (nil: no rate yet). A counter lower than before means
// the role restarted: its rate counts from zero. Served counts: the answers
// that handed out the region's edges.
func dnsAnswers(prev *dnsRead, cur dnsRead) []api.DNSAnswers {
	before := map[string]uint64{}
	var secs float64
	if prev != nil {
		secs = cur.at.Sub(prev.at).Seconds()
		for _, r := range prev.counters.Regions {
			before[r.Name] = r.Served
		}
	}
	out := make([]api.DNSAnswers, 0, len(cur.counters.Regions))
	for _, r := range cur.counters.Regions {
		a := api.DNSAnswers{Region: r.Name, Answers: r.Served}
		if b, ok := before[r.Name]; ok && secs > 0 {
			if r.Served < b {
				b = 0
			}
			a.Rate = float64(r.Served-b) / secs
		}
		out = append(out, a)
	}
	return out
}

// dnsFailed is every configured region with why the counters could not
// be read.
func dnsFailed(regions []api.DNSRegionStatus, err error) []api.DNSAnswers {
	out := make([]api.DNSAnswers, len(regions))
	for i, r := range regions {
		out[i] = api.DNSAnswers{Region: r.Name, Error: err.Error()}
	}
	return out
}

// dnsNow is the answers per region of the last read.
func (c *Console) dnsNow() []api.DNSAnswers {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]api.DNSAnswers(nil), c.dns...)
}
