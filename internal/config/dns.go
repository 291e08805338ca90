package config

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/geodns"
)

// DNS is the authoritative geo DNS server of the site's zone: it answers
// the geo names (apex, www) with the edges of the client's region, and
// with another region's while a region has no healthy edge.
type DNS struct {
	// Enabled runs the dns role; off by default, so the default stack has
	// no DNS server.
	Enabled bool   `yaml:"enabled"`
	Addr    string `yaml:"addr"` // UDP and TCP
	Zone    string `yaml:"zone"`
	// MetricsAddr: IP:port where the dns role serves GET /metrics and GET
	// /status (its answers per region, which the console reads). Empty
	// with dns enabled means DefaultDNSMetricsAddr(Addr).
	MetricsAddr string `yaml:"metrics_addr"`
	// TTL of geo answers: short, so that resolvers follow failover.
	TTL time.Duration `yaml:"ttl"`
	// StaticTTL of records without their own TTL, and of SOA and NS.
	StaticTTL time.Duration `yaml:"static_ttl"`
	// GeoIP is a MaxMind DB file (GeoIP2/GeoLite2 Country or City); a
	// relative path is read from the directory `scalepress up` runs in.
	GeoIP string `yaml:"geoip"`
	// GeoNames are answered per region with the region's edges; "@" is the apex.
	GeoNames []string `yaml:"geo_names"`
	// DefaultRegion answers clients no rule places; empty means the first region.
	DefaultRegion string      `yaml:"default_region"`
	Records       []DNSRecord `yaml:"records"`
	Health        DNSHealth   `yaml:"health"`
	// Regions say which clients each edge region serves; empty means one
	// region per distinct edges[].region, without geo rules.
	Regions []DNSRegion `yaml:"regions"`
}

// DNSRecord is one static record of the zone.
type DNSRecord struct {
	Name  string        `yaml:"name"`  // relative to the zone ("mail", "@") or absolute
	Type  string        `yaml:"type"`  // A, AAAA, CNAME, TXT
	Value string        `yaml:"value"` // address, target name or text
	TTL   time.Duration `yaml:"ttl"`   // 0: dns.static_ttl
}

// DNSHealth tunes the DNS server's own health checks of the edges.
type DNSHealth struct {
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	Rise     int           `yaml:"rise"`
	Fall     int           `yaml:"fall"`
}

// DNSRegion is a region of edges (edges[].region names it) and the clients
// it serves.
type DNSRegion struct {
	Name       string   `yaml:"name"`
	Countries  []string `yaml:"countries"`  // ISO 3166-1 alpha-2
	Continents []string `yaml:"continents"` // AF AN AS EU NA OC SA
	CIDRs      []string `yaml:"cidrs"`      // client networks, whatever GeoIP says
	Fallback   []string `yaml:"fallback"`   // regions answering, nearest first, while this one has no healthy edge
	// Weights is an edge's share of the region's answers by edge id; an
	// edge left out weighs 1.
	Weights map[string]int `yaml:"weights"`
}

// defaultDNS is off, on 127.0.0.1:5353 for example.test., with the geo DNS
// server's own defaults.
func defaultDNS() DNS {
	g := geodns.DefaultConfig()
	return DNS{
		Addr:      "127.0.0.1:5353",
		Zone:      "example.test.",
		TTL:       g.TTL,
		StaticTTL: g.StaticTTL,
		GeoNames:  slices.Clone(g.GeoNames),
		Health: DNSHealth{
			Interval: g.Health.Interval,
			Timeout:  g.Health.Timeout,
			Rise:     g.Health.Rise,
			Fall:     g.Health.Fall,
		},
	}
}

// dnsRegions are the configured regions, or one per distinct edge region.
func (c *Config) dnsRegions() []DNSRegion {
	if len(c.DNS.Regions) > 0 {
		return c.DNS.Regions
	}
	var out []DNSRegion
	for _, e := range c.Edges {
		if !slices.ContainsFunc(out, func(r DNSRegion) bool { return r.Name == e.Region }) {
			out = append(out, DNSRegion{Name: e.Region})
		}
	}
	return out
}

// GeoDNS is the geo DNS server's configuration: the dns section, with each
// edge an answer of its region (its addr's IP, health-checked at its addr).
// dns.geoip is passed as written; the caller resolves a relative path.
func (c *Config) GeoDNS() geodns.Config {
	d := c.DNS
	g := geodns.DefaultConfig()
	g.Addr, g.Zone, g.MetricsAddr = d.Addr, d.Zone, d.MetricsAddr
	g.TTL, g.StaticTTL = d.TTL, d.StaticTTL
	g.GeoIPPath = d.GeoIP
	g.GeoNames = slices.Clone(d.GeoNames)
	g.DefaultRegion = d.DefaultRegion
	g.Health.Interval, g.Health.Timeout = d.Health.Interval, d.Health.Timeout
	g.Health.Rise, g.Health.Fall = d.Health.Rise, d.Health.Fall
	for _, r := range d.Records {
		g.Records = append(g.Records, geodns.Record{Name: r.Name, Type: r.Type, Value: r.Value, TTL: r.TTL})
	}
	for _, r := range c.dnsRegions() {
		gr := geodns.Region{
			Name:       r.Name,
			Countries:  slices.Clone(r.Countries),
			Continents: slices.Clone(r.Continents),
			CIDRs:      slices.Clone(r.CIDRs),
			Fallback:   slices.Clone(r.Fallback),
		}
		for _, e := range c.Edges {
			if e.Region != r.Name {
				continue
			}
			ip := ""
			if ap, err := netip.ParseAddrPort(e.Addr); err == nil {
				ip = ap.Addr().Unmap().String()
			}
			gr.Edges = append(gr.Edges, geodns.Edge{IP: ip, HealthAddr: e.Addr, Weight: r.Weights[e.ID]})
		}
		g.Regions = append(g.Regions, gr)
	}
	return g
}

// DefaultDNSMetricsAddr is dns.metrics_addr when the file leaves it out:
// port 9153 (CoreDNS's) on dnsAddr's IP when that is a loopback address
// (each test stack has its own), else on 127.0.0.1 — never a public
// address the file did not name.
func DefaultDNSMetricsAddr(dnsAddr string) string {
	ip := netip.MustParseAddr("127.0.0.1")
	if ap, err := netip.ParseAddrPort(dnsAddr); err == nil && ap.Addr().Unmap().IsLoopback() {
		ip = ap.Addr().Unmap()
	}
	return netip.AddrPortFrom(ip, 9153).String()
}

// validateDNS checks the dns section when it is enabled. What only the
// scalepress file has (edges as answers, weights by edge id, the GeoIP
// file) is checked here; the rest by the geo DNS server's own Validate,
// whose field names are reported under dns.
func (c *Config) validateDNS(bad func(field, format string, args ...any)) {
	d := c.DNS
	if !d.Enabled {
		return
	}
	skip := false // the server's checks would repeat ours in its own terms
	mark := func(field, format string, args ...any) {
		skip = true
		bad(field, format, args...)
	}
	if _, err := netip.ParseAddrPort(d.Addr); err != nil {
		mark("dns.addr", "must be IP:port (e.g. 127.0.0.1:5353), got %q", d.Addr)
	}
	if d.MetricsAddr != "" {
		if _, err := netip.ParseAddrPort(d.MetricsAddr); err != nil {
			mark("dns.metrics_addr", "must be IP:port (e.g. 127.0.0.1:9153), got %q", d.MetricsAddr)
		}
	}

	regions := c.dnsRegions()
	names := make(map[string]bool, len(regions))
	var list []string
	for _, r := range regions {
		names[r.Name] = true
		list = append(list, r.Name)
	}
	geo := false
	for i, r := range d.Regions {
		geo = geo || len(r.Countries) > 0 || len(r.Continents) > 0
		has := map[string]bool{}
		for _, e := range c.Edges {
			if e.Region == r.Name {
				has[e.ID] = true
			}
		}
		if len(has) == 0 && r.Name != "" {
			mark(fmt.Sprintf("dns.regions[%d].name", i), "no edge has region %q: give an edge `region: %s`, or remove the region", r.Name, r.Name)
		}
		for _, id := range slices.Sorted(maps.Keys(r.Weights)) {
			f := fmt.Sprintf("dns.regions[%d].weights.%s", i, id)
			switch w := r.Weights[id]; {
			case !has[id]:
				mark(f, "%q is not an edge of region %q", id, r.Name)
			case w < 1 || w > 1000:
				mark(f, "must be 1-1000, got %d", w)
			}
		}
	}
	if geo && strings.TrimSpace(d.GeoIP) == "" {
		mark("dns.geoip", "regions list countries or continents, so a GeoIP database is needed: set the path of a GeoIP2/GeoLite2 Country or City .mmdb file")
	}

	// Every edge is an answer of its region: its own IP, unique in the region.
	ips := map[string]string{} // region + IP → edge field
	for i, e := range c.Edges {
		f := fmt.Sprintf("edges[%d]", i)
		if !names[e.Region] {
			mark(f+".region", "%q is not one of dns.regions (%s): geo DNS must know which clients the edge serves", e.Region, strings.Join(list, ", "))
		}
		ap, err := netip.ParseAddrPort(e.Addr)
		if err != nil {
			skip = true // reported as edges[i].addr
			continue
		}
		ip := ap.Addr().Unmap()
		if ip.IsUnspecified() {
			mark(f+".addr", "geo DNS answers with the edge's IP, and %s is the unspecified address: listen on the address clients reach", ip)
			continue
		}
		k := e.Region + " " + ip.String()
		if prev, dup := ips[k]; dup {
			mark(f+".addr", "IP %s is also %s's; geo DNS answers with IPs, so each edge of region %q needs its own IP", ip, prev, e.Region)
			continue
		}
		ips[k] = f + ".addr"
	}
	if skip {
		return
	}

	var errs interface{ Unwrap() []error }
	if err := c.GeoDNS().Validate(); err == nil {
		return
	} else if !errors.As(err, &errs) {
		bad("dns", "%v", err)
		return
	}
	for _, e := range errs.Unwrap() {
		field, msg, ok := strings.Cut(strings.TrimPrefix(e.Error(), "geodns: "), ": ")
		if !ok {
			bad("dns", "%s", e.Error())
			continue
		}
		if field == "geoip_path" {
			field = "geoip"
		}
		bad("dns."+field, "%s", msg)
	}
}
