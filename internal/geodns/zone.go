package geodns

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// zone is the immutable data of the served zone, built once by New.
type zone struct {
	origin string // lower case, fully qualified
	nodes  map[string]*node
	// negSOA goes in the authority section of NXDOMAIN and NODATA answers;
	// its TTL is min(SOA TTL, SOA minimum) (RFC 2308 §3).
	negSOA dns.RR
	// geoNames are the owner names answered per region; geoRRs[g][e] is
	// the A or AAAA record of edge e under geoNames[g].
	geoNames []string
	geoRRs   [][]dns.RR
}

// node is one owner name: static RRsets, maybe a CNAME, maybe a geo name.
// An empty non-terminal is a node without data.
type node struct {
	name   string
	rrsets map[uint16][]dns.RR
	cname  *dns.CNAME
	geo    int // index into zone.geoNames, -1 if not a geo name
	// hinfo is the RFC 8482 answer to ANY.
	hinfo dns.RR
	// glue is the additional section of an NS answer (apex only).
	glue []dns.RR
}

func ttlSeconds(d time.Duration) uint32 { return uint32(d / time.Second) }

// buildZone turns a validated, defaulted configuration into zone data. The
// edges are all regions' edges in order; serial is the SOA serial.
func buildZone(cfg Config, edges []edgeInfo, serial uint32) (*zone, error) {
	origin, err := canonicalZone(cfg.Zone)
	if err != nil {
		return nil, err
	}
	z := &zone{origin: origin, nodes: make(map[string]*node)}
	staticTTL := ttlSeconds(cfg.StaticTTL)
	hdr := func(name string, t uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}

	apex := z.ensure(origin)
	nsNames := cfg.NS
	if len(nsNames) == 0 {
		nsNames = []string{"ns1"}
	}
	var ns []string
	for _, n := range nsNames {
		fq, _ := absName(n, origin) // out-of-zone name servers are fine
		ns = append(ns, fq)
		apex.rrsets[dns.TypeNS] = append(apex.rrsets[dns.TypeNS], &dns.NS{Hdr: hdr(origin, dns.TypeNS, staticTTL), Ns: fq})
	}
	mname, rname := ns[0], "hostmaster."+origin
	if cfg.SOA.MName != "" {
		mname, _ = absName(cfg.SOA.MName, origin)
	}
	if cfg.SOA.RName != "" {
		rname, _ = absName(cfg.SOA.RName, origin)
	}
	soa := &dns.SOA{
		Hdr:     hdr(origin, dns.TypeSOA, staticTTL),
		Ns:      mname,
		Mbox:    rname,
		Serial:  serial,
		Refresh: ttlSeconds(cfg.SOA.Refresh),
		Retry:   ttlSeconds(cfg.SOA.Retry),
		Expire:  ttlSeconds(cfg.SOA.Expire),
		Minttl:  ttlSeconds(cfg.SOA.Minimum),
	}
	apex.rrsets[dns.TypeSOA] = []dns.RR{soa}
	neg := *soa
	neg.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	z.negSOA = &neg

	for _, g := range cfg.GeoNames {
		name, err := absName(g, origin)
		if err != nil {
			return nil, err
		}
		n := z.ensure(name)
		n.geo = len(z.geoNames)
		z.geoNames = append(z.geoNames, name)
		rrs := make([]dns.RR, len(edges))
		for i, e := range edges {
			if e.addr.Is4() {
				rrs[i] = &dns.A{Hdr: hdr(name, dns.TypeA, ttlSeconds(cfg.TTL)), A: net.IP(e.addr.AsSlice())}
			} else {
				rrs[i] = &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttlSeconds(cfg.TTL)), AAAA: net.IP(e.addr.AsSlice())}
			}
		}
		z.geoRRs = append(z.geoRRs, rrs)
	}

	for _, r := range cfg.Records {
		name, err := absName(r.Name, origin)
		if err != nil {
			return nil, err
		}
		rtype := strings.ToUpper(r.Type)
		value, err := recordValue(rtype, r.Value, origin)
		if err != nil && rtype != "CNAME" {
			return nil, err
		}
		ttl := staticTTL
		if r.TTL > 0 {
			ttl = ttlSeconds(r.TTL)
		}
		n := z.ensure(name)
		switch rtype {
		case "A":
			ip := netip.MustParseAddr(value)
			n.rrsets[dns.TypeA] = append(n.rrsets[dns.TypeA], &dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: net.IP(ip.AsSlice())})
		case "AAAA":
			ip := netip.MustParseAddr(value)
			n.rrsets[dns.TypeAAAA] = append(n.rrsets[dns.TypeAAAA], &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: net.IP(ip.AsSlice())})
		case "CNAME":
			c := &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME, ttl), Target: value}
			n.cname = c
			n.rrsets[dns.TypeCNAME] = []dns.RR{c}
		case "TXT":
			n.rrsets[dns.TypeTXT] = append(n.rrsets[dns.TypeTXT], &dns.TXT{Hdr: hdr(name, dns.TypeTXT, ttl), Txt: txtStrings(value)})
		}
	}

	// Glue: addresses of in-zone name servers.
	for _, n := range ns {
		if target := z.nodes[n]; target != nil {
			apex.glue = append(apex.glue, target.rrsets[dns.TypeA]...)
			apex.glue = append(apex.glue, target.rrsets[dns.TypeAAAA]...)
		}
	}

	for _, n := range z.nodes {
		n.hinfo = &dns.HINFO{Hdr: hdr(n.name, dns.TypeHINFO, staticTTL), Cpu: "RFC8482"}
	}
	return z, nil
}

// ensure returns the node of name, creating it and the empty non-terminals
// between it and the apex.
func (z *zone) ensure(name string) *node {
	if n := z.nodes[name]; n != nil {
		return n
	}
	n := &node{name: name, rrsets: make(map[uint16][]dns.RR), geo: -1}
	z.nodes[name] = n
	if name != z.origin {
		if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
			z.ensure(name[i+1:])
		}
	}
	return n
}

// contains reports whether the lower-case, fully qualified name is at or
// below the apex.
func (z *zone) contains(name string) bool {
	o := z.origin
	switch {
	case len(name) < len(o):
		return false
	case len(name) == len(o):
		return name == o
	case name[len(name)-len(o)-1] != '.' || name[len(name)-len(o):] != o:
		return false
	case strings.IndexByte(name, '\\') >= 0:
		// An escaped dot is part of a label, not a separator.
		return dns.IsSubDomain(o, name)
	default:
		return true
	}
}

// txtStrings splits a TXT value into strings of at most 255 bytes, escaped
// for miekg/dns's presentation form.
func txtStrings(v string) []string {
	if v == "" {
		return []string{""}
	}
	var out []string
	for len(v) > 0 {
		n := min(len(v), 255)
		out = append(out, escapeTXT(v[:n]))
		v = v[n:]
	}
	return out
}

func escapeTXT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('\\')
			b.WriteByte('0' + c/100)
			b.WriteByte('0' + c/10%10)
			b.WriteByte('0' + c%10)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// lowerName returns name in lower case, without allocating when it already
// is.
func lowerName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}
