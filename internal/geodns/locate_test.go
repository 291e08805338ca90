package geodns

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLocate(t *testing.T) {
	db, err := OpenMMDB(testGeoIP)
	if err != nil {
		t.Fatal(err)
	}
	regions := []Region{
		{Name: "eu", Countries: []string{"GB"}, Continents: []string{"EU"}, CIDRs: []string{"81.2.69.192/28"}},
		{Name: "us", Countries: []string{"US"}, CIDRs: []string{"10.0.0.0/8", "2001:db8::/32"}},
		{Name: "ap", Continents: []string{"AS"}, CIDRs: []string{"10.1.0.0/16"}},
		{Name: "default"},
	}
	l := newLocator(regions, 3, db)
	tests := []struct {
		addr string
		want placement
	}{
		{"81.2.69.142", placement{region: 0, bits: 31, how: "country"}},
		{"89.160.20.130", placement{region: 0, bits: 25, how: "continent"}},
		{"216.160.83.57", placement{region: 1, bits: 29, how: "country"}},
		{"67.43.156.7", placement{region: 2, bits: 24, how: "continent"}},
		{"2001:218::5", placement{region: 2, bits: 32, how: "continent"}},
		// 202.196.224.0/20 PH is in AS, but a continent needs a region.
		{"217.65.48.1", placement{region: 0, bits: 29, how: "continent"}},
		{"1.1.1.1", placement{region: 3, bits: -1, how: "default"}},
		// CIDR rules win over GeoIP; the most specific one wins.
		{"81.2.69.200", placement{region: 0, bits: 28, how: "cidr"}},
		{"10.2.3.4", placement{region: 1, bits: -1, how: "cidr"}}, // 10/8 holds 10.1/16 of another region
		{"10.1.3.4", placement{region: 2, bits: 16, how: "cidr"}},
		{"2001:db8::1", placement{region: 1, bits: 32, how: "cidr"}},
		// Next to the rule, by GeoIP.
		{"81.2.69.150", placement{region: 0, bits: 28, how: "country"}},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := l.locate(netip.MustParseAddr(tt.addr))
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(placement{})); diff != "" {
				t.Errorf("locate (-want +got):\n%s", diff)
			}
		})
	}
}

// stubGeoIP answers from a table.
type stubGeoIP map[netip.Addr]Location

func (s stubGeoIP) Lookup(a netip.Addr) (Location, error) {
	if a == netip.MustParseAddr("192.0.2.99") {
		return Location{}, errors.New("stub: broken")
	}
	return s[a], nil
}

func TestLocateRuleInsideGeoNetwork(t *testing.T) {
	geo := stubGeoIP{
		netip.MustParseAddr("198.51.100.7"): {Country: "FR", Continent: "EU", Network: netip.MustParsePrefix("198.51.100.0/24")},
		netip.MustParseAddr("203.0.113.9"):  {Country: "ZZ", Continent: "ZZ", Network: netip.MustParsePrefix("203.0.113.0/24")},
	}
	regions := []Region{
		{Name: "eu", Countries: []string{"FR"}},
		{Name: "lab", CIDRs: []string{"198.51.100.128/25"}},
		{Name: "default"},
	}
	l := newLocator(regions, 2, geo)
	tests := []struct {
		addr string
		want placement
	}{
		// The /24 is FR, but its upper half goes to lab: scope unknown.
		{"198.51.100.7", placement{region: 0, bits: -1, how: "country"}},
		// Known network, but no region for its country or continent.
		{"203.0.113.9", placement{region: 2, bits: 24, how: "default"}},
		// A GeoIP error places the client in the default region.
		{"192.0.2.99", placement{region: 2, bits: -1, how: "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := l.locate(netip.MustParseAddr(tt.addr))
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(placement{})); diff != "" {
				t.Errorf("locate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenMMDB(t *testing.T) {
	tests := []struct {
		file string
		addr string
		want Location
	}{
		{"testdata/GeoLite2-Country-Test.mmdb", "81.2.69.142", Location{Country: "GB", Continent: "EU", Network: netip.MustParsePrefix("81.2.69.142/31")}},
		{"testdata/GeoLite2-Country-Test.mmdb", "2001:218::1", Location{Country: "JP", Continent: "AS", Network: netip.MustParsePrefix("2001:218::/32")}},
		{"testdata/GeoLite2-Country-Test.mmdb", "127.0.0.1", Location{}},
		{"testdata/GeoIP2-Country-Test.mmdb", "216.160.83.56", Location{Country: "US", Continent: "NA", Network: netip.MustParsePrefix("216.160.83.56/29")}},
		{"testdata/GeoIP2-Country-Test.mmdb", "89.160.20.129", Location{Country: "SE", Continent: "EU", Network: netip.MustParsePrefix("89.160.20.128/25")}},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+tt.addr, func(t *testing.T) {
			db, err := OpenMMDB(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second lookup comes from the cache
				got, err := db.Lookup(netip.MustParseAddr(tt.addr))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
					t.Errorf("Lookup (-want +got):\n%s", diff)
				}
			}
		})
	}
	if _, err := OpenMMDB("testdata/missing.mmdb"); err == nil {
		t.Error("OpenMMDB of a missing file: no error")
	}
	if _, err := OpenMMDB("testdata/README.md"); err == nil {
		t.Error("OpenMMDB of a text file: no error")
	}
}
