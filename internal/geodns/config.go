package geodns

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// Config configures a geo DNS server. The zero value is not usable; start
// from DefaultConfig. Field paths in Validate's errors use the lower-case
// names shown in each comment (e.g. "regions[1].countries[0]").
type Config struct {
	// Addr (addr) is the host:port served over UDP and TCP alike.
	Addr string
	// MetricsAddr (metrics_addr), when set, is the host:port where Run
	// serves GET /metrics (MetricsHandler) and GET /status (StatusHandler,
	// the answers per region) over HTTP, to requests whose Host is that
	// address.
	MetricsAddr string
	// Zone (zone) is the zone served with authority, e.g. "example.test."
	// (the trailing dot is optional).
	Zone string
	// SOA (soa) tunes the generated SOA record.
	SOA SOAConfig
	// NS (ns) names the zone's name servers, relative to Zone or absolute.
	// Empty means ["ns1"], i.e. ns1.<zone>. Addresses for in-zone name
	// servers come from Records and are added as glue to NS answers.
	NS []string
	// Records (records) are the static records of the zone.
	Records []Record
	// GeoNames (geo_names) are the owner names answered per region with the
	// A/AAAA records of the region's edges; "@" is the apex.
	GeoNames []string
	// Regions (regions) are the places that have edges.
	Regions []Region
	// DefaultRegion (default_region) answers clients that no rule places;
	// empty means the first region.
	DefaultRegion string
	// GeoIPPath (geoip_path) is a MaxMind DB file (GeoIP2/GeoLite2 Country
	// or City, or a compatible one) mapping addresses to countries and
	// continents. Needed when a region lists countries or continents,
	// unless a test gives New its own database.
	GeoIPPath string
	// TTL (ttl) is the TTL of geo answers: short, so that clients follow
	// health changes.
	TTL time.Duration
	// StaticTTL (static_ttl) is the TTL of static records without their own
	// TTL and of SOA, NS and the RFC 8482 ANY answer.
	StaticTTL time.Duration
	// Health (health) tunes the edges' health checks.
	Health HealthConfig
	// AnswerCount (answer_count) caps the addresses in a geo answer: N > 0
	// returns N addresses chosen by weight; 0 returns all healthy addresses
	// of the region in weighted random order.
	AnswerCount int
	// QueryLog (query_log) logs every query at debug level.
	QueryLog bool
	// MaxTCPConns (max_tcp_conns) bounds concurrent TCP connections; 0
	// means no bound.
	MaxTCPConns int
}

// SOAConfig tunes the zone's SOA record.
type SOAConfig struct {
	// MName (mname) is the primary name server; empty means the first NS
	// (ns1.<zone> by default).
	MName string
	// RName (rname) is the responsible mailbox written as a domain name;
	// empty means hostmaster.<zone>.
	RName string
	// Serial (serial) is the zone serial; 0 means the Unix time at New.
	Serial uint32
	// Refresh, Retry, Expire (refresh, retry, expire) matter only to
	// secondaries; Minimum (minimum) caps the TTL of negative answers
	// (RFC 2308).
	Refresh, Retry, Expire, Minimum time.Duration
}

// Record is one static resource record.
type Record struct {
	// Name (name) is relative to the zone ("www", "@" for the apex) or
	// absolute ("www.example.test.").
	Name string
	// Type (type) is A, AAAA, CNAME or TXT.
	Type string
	// Value (value) is an address (A, AAAA), a target name relative to the
	// zone or absolute (CNAME), or the text (TXT; longer than 255 bytes is
	// split into several strings).
	Value string
	// TTL (ttl) is the record's TTL; 0 means StaticTTL. Records of the same
	// name and type must share one TTL.
	TTL time.Duration
}

// Region is a place with edges and the clients it serves.
type Region struct {
	// Name (name) identifies the region in fallbacks, metrics and logs.
	Name string
	// Edges (edges) are the region's HTTP fronts.
	Edges []Edge
	// Countries (countries) are ISO 3166-1 alpha-2 codes ("GB").
	Countries []string
	// Continents (continents) are the GeoIP continent codes: AF, AN, AS,
	// EU, NA, OC, SA.
	Continents []string
	// CIDRs (cidrs) are client networks ("192.0.2.0/24") served by this
	// region whatever GeoIP says; the most specific network wins.
	CIDRs []string
	// Fallback (fallback) lists, nearest first, the regions that answer
	// while this one has no healthy edge.
	Fallback []string
}

// Edge is one address of a region.
type Edge struct {
	// IP (ip) is the IPv4 or IPv6 address handed out.
	IP string
	// HealthAddr (health_addr) is the host:port of the edge's HTTP listener
	// probed for health; empty means the edge is not probed and always
	// counts as healthy.
	HealthAddr string
	// Weight (weight) is the edge's share within its region; 0 means 1.
	Weight int
}

// HealthConfig tunes the active health checks of edges.
type HealthConfig struct {
	// Interval (interval) is the time between two checks of an edge.
	Interval time.Duration
	// Timeout (timeout) bounds one check; at most Interval.
	Timeout time.Duration
	// Rise (rise) is how many good checks in a row make an edge healthy.
	Rise int
	// Fall (fall) is how many failed checks in a row make it unhealthy.
	Fall int
	// Path (path) is the HTTP path probed on each edge.
	Path string
}

// Limits of the configuration.
const (
	maxWeight = 1000
	maxTTL    = math.MaxInt32 * time.Second // RFC 2181 §8
	maxEdges  = 1024                        // all regions together; keeps TCP answers far below 64 KiB
)

// DefaultConfig returns the defaults: port 53, geo names "@" and "www",
// 30 s geo TTL, 300 s static TTL, SOA refresh 1 h, retry 10 min, expire
// 7 days, minimum 60 s, checks every 2 s with 1 s timeout, rise 2, fall 2,
// 1024 TCP connections. Zone and Regions have no default.
func DefaultConfig() Config {
	return Config{
		Addr: ":53",
		SOA: SOAConfig{
			Refresh: time.Hour,
			Retry:   10 * time.Minute,
			Expire:  7 * 24 * time.Hour,
			Minimum: time.Minute,
		},
		GeoNames:  []string{"@", "www"},
		TTL:       30 * time.Second,
		StaticTTL: 300 * time.Second,
		Health: HealthConfig{
			Interval: 2 * time.Second,
			Timeout:  time.Second,
			Rise:     2,
			Fall:     2,
			Path:     api.EdgePathHealth,
		},
		MaxTCPConns: 1024,
	}
}

// continents are the continent codes of GeoIP databases.
var continents = map[string]bool{"AF": true, "AN": true, "AS": true, "EU": true, "NA": true, "OC": true, "SA": true}

// Validate reports every invalid field, each by name.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("geodns: %s: %s", field, fmt.Sprintf(format, args...)))
	}

	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port", c.Addr)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("addr", "port %q is not a number from 0 to 65535", port)
	} else if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			bad("addr", "host %q is not an IP address", host)
		}
	}

	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics_addr", "%q is not host:port", c.MetricsAddr)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("metrics_addr", "port %q is not a number from 0 to 65535", port)
		}
	}

	zone, err := canonicalZone(c.Zone)
	if err != nil {
		bad("zone", "%v", err)
	}
	checkTTL := func(field string, d time.Duration, zeroOK bool) {
		switch {
		case d < 0 || d > maxTTL:
			bad(field, "%s is out of range 0 to %s", d, maxTTL)
		case d%time.Second != 0:
			bad(field, "%s is not a whole number of seconds", d)
		case d == 0 && !zeroOK:
			bad(field, "must be positive")
		}
	}
	checkTTL("ttl", c.TTL, true)
	checkTTL("static_ttl", c.StaticTTL, true)
	checkTTL("soa.refresh", c.SOA.Refresh, false)
	checkTTL("soa.retry", c.SOA.Retry, false)
	checkTTL("soa.expire", c.SOA.Expire, false)
	checkTTL("soa.minimum", c.SOA.Minimum, true)
	if c.AnswerCount < 0 {
		bad("answer_count", "must not be negative (0 answers with all addresses), got %d", c.AnswerCount)
	}
	if c.MaxTCPConns < 0 {
		bad("max_tcp_conns", "must not be negative (0 means no bound), got %d", c.MaxTCPConns)
	}

	h := c.Health
	if h.Interval <= 0 {
		bad("health.interval", "must be positive, got %s", h.Interval)
	}
	if h.Timeout <= 0 || (h.Interval > 0 && h.Timeout > h.Interval) {
		bad("health.timeout", "must be positive and at most health.interval (%s), got %s", h.Interval, h.Timeout)
	}
	if h.Rise < 1 {
		bad("health.rise", "must be at least 1, got %d", h.Rise)
	}
	if h.Fall < 1 {
		bad("health.fall", "must be at least 1, got %d", h.Fall)
	}
	if !strings.HasPrefix(h.Path, "/") {
		bad("health.path", "%q must start with /", h.Path)
	}

	// Names below need a valid zone; without one, the zone error suffices.
	if zone != "" {
		c.validateNames(zone, bad)
	}
	c.validateRegions(bad)
	return errors.Join(errs...)
}

func (c Config) validateNames(zone string, bad func(field, format string, args ...any)) {
	if c.SOA.MName != "" {
		if _, err := absName(c.SOA.MName, zone); err != nil && !errors.Is(err, errOutOfZone) {
			bad("soa.mname", "%v", err)
		}
	}
	if c.SOA.RName != "" {
		if strings.Contains(c.SOA.RName, "@") {
			bad("soa.rname", "%q: write the mailbox as a domain name, e.g. hostmaster.%s", c.SOA.RName, zone)
		} else if _, err := absName(c.SOA.RName, zone); err != nil && !errors.Is(err, errOutOfZone) {
			bad("soa.rname", "%v", err)
		}
	}
	for i, ns := range c.NS {
		if _, err := absName(ns, zone); err != nil && !errors.Is(err, errOutOfZone) {
			bad(fmt.Sprintf("ns[%d]", i), "%v", err)
		}
	}

	geo := make(map[string]int)
	for i, g := range c.GeoNames {
		field := fmt.Sprintf("geo_names[%d]", i)
		name, err := absName(g, zone)
		if err != nil {
			bad(field, "%v", err)
			continue
		}
		if j, dup := geo[name]; dup {
			bad(field, "%q repeats geo_names[%d]", g, j)
			continue
		}
		geo[name] = i
	}

	type rrsetKey struct {
		name  string
		rtype string
	}
	type seen struct {
		index int
		ttl   time.Duration
	}
	rrsets := make(map[rrsetKey]seen)
	values := make(map[string]int)
	types := make(map[string]map[string]int) // name → type → first record
	for i, r := range c.Records {
		field := fmt.Sprintf("records[%d]", i)
		name, err := absName(r.Name, zone)
		if err != nil {
			bad(field+".name", "%v", err)
			continue
		}
		rtype := strings.ToUpper(r.Type)
		value, err := recordValue(rtype, r.Value, zone)
		if err != nil {
			if rtype != "A" && rtype != "AAAA" && rtype != "CNAME" && rtype != "TXT" {
				bad(field+".type", "%q is not one of A, AAAA, CNAME, TXT", r.Type)
			} else {
				bad(field+".value", "%v", err)
			}
			continue
		}
		if r.TTL < 0 || r.TTL > maxTTL || r.TTL%time.Second != 0 {
			bad(field+".ttl", "%s is not a whole number of seconds from 0 to %s", r.TTL, maxTTL)
			continue
		}
		if rtype == "CNAME" && name == zone {
			bad(field, "a CNAME cannot be at the zone apex %s", zone)
			continue
		}
		if _, isGeo := geo[name]; isGeo && rtype != "TXT" {
			bad(field, "%s %s: %s is a geo name, answered from the regions' edges", name, rtype, name)
			continue
		}
		if j, dup := values[name+" "+rtype+" "+value]; dup {
			bad(field, "repeats records[%d]", j)
			continue
		}
		values[name+" "+rtype+" "+value] = i
		if types[name] == nil {
			types[name] = make(map[string]int)
		}
		if rtype == "CNAME" {
			for t, j := range types[name] {
				bad(field, "CNAME %s cannot share its name with records[%d] (%s)", name, j, t)
				break
			}
		} else if j, ok := types[name]["CNAME"]; ok {
			bad(field, "%s cannot share its name with the CNAME of records[%d]", rtype, j)
		}
		if _, ok := types[name][rtype]; !ok {
			types[name][rtype] = i
		}
		ttl := r.TTL
		if ttl == 0 {
			ttl = c.StaticTTL
		}
		k := rrsetKey{name, rtype}
		if s, ok := rrsets[k]; ok && s.ttl != ttl {
			bad(field+".ttl", "%s differs from %s of records[%d]; records of one name and type share one TTL", ttl, s.ttl, s.index)
		} else if !ok {
			rrsets[k] = seen{i, ttl}
		}
	}
}

func (c Config) validateRegions(bad func(field, format string, args ...any)) {
	if len(c.Regions) == 0 {
		bad("regions", "at least one region is needed")
		return
	}
	names := make(map[string]int)
	for i, r := range c.Regions {
		field := fmt.Sprintf("regions[%d].name", i)
		switch {
		case !validRegionName(r.Name):
			bad(field, "%q must be non-empty and use only letters, digits, '-', '_' and '.'", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				bad(field, "%q repeats regions[%d]", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
	}
	if c.DefaultRegion != "" {
		if _, ok := names[c.DefaultRegion]; !ok {
			bad("default_region", "%q is not a region", c.DefaultRegion)
		}
	}

	countries := make(map[string]string)
	conts := make(map[string]string)
	cidrs := make(map[netip.Prefix]string)
	edges := 0
	for i, r := range c.Regions {
		pfx := fmt.Sprintf("regions[%d]", i)
		if len(r.Edges) == 0 {
			bad(pfx+".edges", "region %q has no edge", r.Name)
		}
		ips := make(map[netip.Addr]int)
		for j, e := range r.Edges {
			edges++
			ef := fmt.Sprintf("%s.edges[%d]", pfx, j)
			ip, err := netip.ParseAddr(e.IP)
			switch {
			case err != nil || ip.Zone() != "":
				bad(ef+".ip", "%q is not an IP address", e.IP)
			case ip.Is4In6():
				bad(ef+".ip", "%q is an IPv4-mapped IPv6 address; write %s", e.IP, ip.Unmap())
			case ip.IsUnspecified():
				bad(ef+".ip", "%q is the unspecified address", e.IP)
			default:
				if k, dup := ips[ip]; dup {
					bad(ef+".ip", "%s repeats %s.edges[%d]", ip, pfx, k)
				}
				ips[ip] = j
			}
			if e.HealthAddr != "" {
				if _, port, err := net.SplitHostPort(e.HealthAddr); err != nil || port == "" {
					bad(ef+".health_addr", "%q is not host:port", e.HealthAddr)
				}
			}
			if e.Weight < 0 || e.Weight > maxWeight {
				bad(ef+".weight", "%d is out of range 0 (meaning 1) to %d", e.Weight, maxWeight)
			}
		}
		for j, cc := range r.Countries {
			f := fmt.Sprintf("%s.countries[%d]", pfx, j)
			code := strings.ToUpper(cc)
			if !isAlpha2(code) {
				bad(f, "%q is not a two-letter ISO code", cc)
				continue
			}
			if other, dup := countries[code]; dup {
				bad(f, "%s is already served by region %q", code, other)
				continue
			}
			countries[code] = r.Name
		}
		for j, cc := range r.Continents {
			f := fmt.Sprintf("%s.continents[%d]", pfx, j)
			code := strings.ToUpper(cc)
			if !continents[code] {
				bad(f, "%q is not a continent code (AF, AN, AS, EU, NA, OC, SA)", cc)
				continue
			}
			if other, dup := conts[code]; dup {
				bad(f, "%s is already served by region %q", code, other)
				continue
			}
			conts[code] = r.Name
		}
		for j, s := range r.CIDRs {
			f := fmt.Sprintf("%s.cidrs[%d]", pfx, j)
			p, err := netip.ParsePrefix(s)
			if err != nil {
				bad(f, "%q is not a network such as 192.0.2.0/24", s)
				continue
			}
			if p.Addr().Is4In6() {
				bad(f, "%q is an IPv4-mapped network; write it as IPv4", s)
				continue
			}
			if p.Masked() != p {
				bad(f, "%q has bits set beyond the prefix; write %s", s, p.Masked())
				continue
			}
			if other, dup := cidrs[p]; dup {
				bad(f, "%s is already served by region %q", p, other)
				continue
			}
			cidrs[p] = r.Name
		}
		fb := make(map[string]bool)
		for j, f := range r.Fallback {
			field := fmt.Sprintf("%s.fallback[%d]", pfx, j)
			switch _, ok := names[f]; {
			case !ok:
				bad(field, "%q is not a region", f)
			case f == r.Name:
				bad(field, "region %q cannot fall back to itself", f)
			case fb[f]:
				bad(field, "%q is listed twice", f)
			}
			fb[f] = true
		}
	}
	if edges > maxEdges {
		bad("regions", "%d edges in all; at most %d are supported", edges, maxEdges)
	}
}

func validRegionName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

func isAlpha2(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
