package geodns

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// locator places a client address in a region: the most specific CIDR rule
// wins, then the GeoIP country, then the GeoIP continent, else the default
// region.
type locator struct {
	rules      []cidrRule // most specific first
	countries  map[string]int
	continents map[string]int
	def        int
	geo        GeoIP // nil when no region uses countries or continents
}

type cidrRule struct {
	prefix netip.Prefix
	region int
	// nested: a more specific rule lies inside prefix, so the decision does
	// not hold for all of prefix.
	nested bool
}

// placement is where a client was placed and how far that holds.
type placement struct {
	region int
	// bits is the prefix length of the network around the address that is
	// placed alike, or -1 when unknown (then the client's own prefix is the
	// honest ECS scope).
	bits int
	// how tells which rule placed the client, for the query log.
	how string
}

func newLocator(regions []Region, def int, geo GeoIP) *locator {
	l := &locator{countries: map[string]int{}, continents: map[string]int{}, def: def}
	usesGeo := false
	for i, r := range regions {
		for _, c := range r.Countries {
			l.countries[strings.ToUpper(c)] = i
			usesGeo = true
		}
		for _, c := range r.Continents {
			l.continents[strings.ToUpper(c)] = i
			usesGeo = true
		}
		for _, s := range r.CIDRs {
			if p, err := netip.ParsePrefix(s); err == nil {
				l.rules = append(l.rules, cidrRule{prefix: p.Masked(), region: i})
			}
		}
	}
	if usesGeo {
		l.geo = geo
	}
	slices.SortStableFunc(l.rules, func(a, b cidrRule) int { return cmp.Compare(b.prefix.Bits(), a.prefix.Bits()) })
	for i := range l.rules {
		for j := range l.rules {
			if l.rules[j].prefix.Bits() > l.rules[i].prefix.Bits() && l.rules[i].prefix.Overlaps(l.rules[j].prefix) {
				l.rules[i].nested = true
			}
		}
	}
	return l
}

// locate places addr. A GeoIP error places the client in the default
// region, over an unknown extent.
func (l *locator) locate(addr netip.Addr) placement {
	for i := range l.rules {
		r := &l.rules[i]
		if r.prefix.Contains(addr) {
			bits := r.prefix.Bits()
			if r.nested {
				bits = -1
			}
			return placement{region: r.region, bits: bits, how: "cidr"}
		}
	}
	if l.geo == nil {
		return placement{region: l.def, bits: -1, how: "default"}
	}
	loc, err := l.geo.Lookup(addr)
	if err != nil || !loc.Network.IsValid() {
		return placement{region: l.def, bits: -1, how: "default"}
	}
	bits := loc.Network.Bits()
	// A rule inside the GeoIP network places part of it elsewhere.
	for i := range l.rules {
		if l.rules[i].prefix.Overlaps(loc.Network) {
			bits = -1
			break
		}
	}
	if r, ok := l.countries[loc.Country]; ok && loc.Country != "" {
		return placement{region: r, bits: bits, how: "country"}
	}
	if r, ok := l.continents[loc.Continent]; ok && loc.Continent != "" {
		return placement{region: r, bits: bits, how: "continent"}
	}
	return placement{region: l.def, bits: bits, how: "default"}
}
