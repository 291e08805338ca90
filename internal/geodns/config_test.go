package geodns

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultConfig(t *testing.T) {
	want := Config{
		Addr:      ":53",
		SOA:       SOAConfig{Refresh: time.Hour, Retry: 10 * time.Minute, Expire: 168 * time.Hour, Minimum: time.Minute},
		GeoNames:  []string{"@", "www"},
		TTL:       30 * time.Second,
		StaticTTL: 5 * time.Minute,
		Health: HealthConfig{
			Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 2,
			Path: "/_scalepress/edge/health",
		},
		MaxTCPConns: 1024,
	}
	if diff := cmp.Diff(want, DefaultConfig()); diff != "" {
		t.Errorf("DefaultConfig (-want +got):\n%s", diff)
	}
	// Zone and regions have no default.
	err := DefaultConfig().Validate()
	if err == nil || !strings.Contains(err.Error(), "geodns: zone: is empty") || !strings.Contains(err.Error(), "geodns: regions: at least one region") {
		t.Errorf("Validate of the defaults: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // one line per error; nil means valid
	}{
		{name: "test config", edit: func(*Config) {}},
		{name: "zone without dot, relative and absolute names", edit: func(c *Config) {
			c.Zone = "example.test"
			c.Records = append(c.Records, Record{Name: "x.EXAMPLE.test.", Type: "a", Value: "192.0.2.9"})
		}},
		{name: "no regions", edit: func(c *Config) { c.Regions = nil }, want: []string{
			"geodns: regions: at least one region is needed",
		}},
		{name: "bad country", edit: func(c *Config) { c.Regions[1].Countries = []string{"GBR"} }, want: []string{
			`geodns: regions[1].countries[0]: "GBR" is not a two-letter ISO code`,
		}},
		{name: "country in two regions", edit: func(c *Config) { c.Regions[1].Countries = []string{"gb"} }, want: []string{
			`geodns: regions[1].countries[0]: GB is already served by region "eu"`,
		}},
		{name: "bad continent", edit: func(c *Config) { c.Regions[0].Continents = []string{"Europe"} }, want: []string{
			`geodns: regions[0].continents[0]: "Europe" is not a continent code (AF, AN, AS, EU, NA, OC, SA)`,
		}},
		{name: "CIDR with host bits and a bad one", edit: func(c *Config) { c.Regions[2].CIDRs = []string{"10.0.0.1/8", "10.0.0.0"} }, want: []string{
			`geodns: regions[2].cidrs[0]: "10.0.0.1/8" has bits set beyond the prefix; write 10.0.0.0/8`,
			`geodns: regions[2].cidrs[1]: "10.0.0.0" is not a network such as 192.0.2.0/24`,
		}},
		{name: "region names", edit: func(c *Config) { c.Regions[1].Name = "eu"; c.Regions[2].Name = "a p" }, want: []string{
			`geodns: regions[1].name: "eu" repeats regions[0]`,
			`geodns: regions[2].name: "a p" must be non-empty and use only letters, digits, '-', '_' and '.'`,
			`geodns: regions[0].fallback[0]: "us" is not a region`,
			`geodns: regions[1].fallback[0]: region "eu" cannot fall back to itself`,
			`geodns: regions[2].fallback[0]: "us" is not a region`,
		}},
		{name: "fallbacks", edit: func(c *Config) { c.Regions[0].Fallback = []string{"eu", "us", "us", "mars"} }, want: []string{
			`geodns: regions[0].fallback[0]: region "eu" cannot fall back to itself`,
			`geodns: regions[0].fallback[2]: "us" is listed twice`,
			`geodns: regions[0].fallback[3]: "mars" is not a region`,
		}},
		{name: "default region", edit: func(c *Config) { c.DefaultRegion = "mars" }, want: []string{
			`geodns: default_region: "mars" is not a region`,
		}},
		{name: "edges", edit: func(c *Config) {
			c.Regions[3].Edges = []Edge{
				{IP: "192.0.2.300"},
				{IP: "::ffff:192.0.2.1"},
				{IP: "203.0.113.200", HealthAddr: "nohost", Weight: -1},
				{IP: "203.0.113.200", Weight: 1001},
			}
			c.Regions[2].Edges = nil
		}, want: []string{
			`geodns: regions[2].edges: region "ap" has no edge`,
			`geodns: regions[3].edges[0].ip: "192.0.2.300" is not an IP address`,
			`geodns: regions[3].edges[1].ip: "::ffff:192.0.2.1" is an IPv4-mapped IPv6 address; write 192.0.2.1`,
			`geodns: regions[3].edges[2].health_addr: "nohost" is not host:port`,
			`geodns: regions[3].edges[2].weight: -1 is out of range 0 (meaning 1) to 1000`,
			`geodns: regions[3].edges[3].ip: 203.0.113.200 repeats regions[3].edges[2]`,
			`geodns: regions[3].edges[3].weight: 1001 is out of range 0 (meaning 1) to 1000`,
		}},
		{name: "zone", edit: func(c *Config) { c.Zone = "" }, want: []string{
			`geodns: zone: is empty; set the zone served, e.g. "example.test."`,
		}},
		{name: "zone with a bad label", edit: func(c *Config) { c.Zone = "exa mple.test" }, want: []string{
			`geodns: zone: "exa mple.test": has the character ' '; use letters, digits, '-' and '_'`,
		}},
		{name: "records", edit: func(c *Config) {
			c.Records = []Record{
				{Name: "www.example.org.", Type: "A", Value: "192.0.2.1"},
				{Name: "x", Type: "MX", Value: "10 mail"},
				{Name: "x", Type: "A", Value: "2001:db8::1"},
				{Name: "x", Type: "AAAA", Value: "192.0.2.1"},
				{Name: "www", Type: "A", Value: "192.0.2.1"},
				{Name: "@", Type: "CNAME", Value: "elsewhere.example.org."},
				{Name: "y", Type: "A", Value: "192.0.2.1"},
				{Name: "y", Type: "CNAME", Value: "www"},
				{Name: "y", Type: "A", Value: "192.0.2.1"},
				{Name: "y", Type: "A", Value: "192.0.2.2", TTL: time.Minute},
				{Name: "*", Type: "A", Value: "192.0.2.1"},
				{Name: "z", Type: "TXT", Value: "ok", TTL: 1500 * time.Millisecond},
			}
		}, want: []string{
			`geodns: records[0].name: "www.example.org." is outside the zone example.test.`,
			`geodns: records[1].type: "MX" is not one of A, AAAA, CNAME, TXT`,
			`geodns: records[2].value: "2001:db8::1" is not an IPv4 address`,
			`geodns: records[3].value: "192.0.2.1" is not an IPv6 address`,
			`geodns: records[4]: www.example.test. A: www.example.test. is a geo name, answered from the regions' edges`,
			`geodns: records[5]: a CNAME cannot be at the zone apex example.test.`,
			`geodns: records[7]: CNAME y.example.test. cannot share its name with records[6] (A)`,
			`geodns: records[8]: repeats records[6]`,
			`geodns: records[9]: A cannot share its name with the CNAME of records[7]`,
			`geodns: records[9].ttl: 1m0s differs from 5m0s of records[6]; records of one name and type share one TTL`,
			`geodns: records[10].name: "*": wildcards are not supported`,
			`geodns: records[11].ttl: 1.5s is not a whole number of seconds from 0 to 596523h14m7s`,
		}},
		{name: "geo names", edit: func(c *Config) { c.GeoNames = []string{"@", "WWW", "www.example.test.", "www.example.org."} }, want: []string{
			`geodns: geo_names[2]: "www.example.test." repeats geo_names[1]`,
			`geodns: geo_names[3]: "www.example.org." is outside the zone example.test.`,
		}},
		{name: "SOA and NS", edit: func(c *Config) {
			c.SOA.RName = "hostmaster@example.test"
			c.SOA.MName = "ns1..example.test."
			c.SOA.Refresh = 0
			c.SOA.Minimum = -time.Second
			c.NS = []string{"ns1", "ns.provider.example.", "bad name"}
		}, want: []string{
			"geodns: soa.refresh: must be positive",
			"geodns: soa.minimum: -1s is out of range 0 to 596523h14m7s",
			`geodns: soa.mname: "ns1..example.test.": is not a valid domain name`,
			`geodns: soa.rname: "hostmaster@example.test": write the mailbox as a domain name, e.g. hostmaster.example.test.`,
			`geodns: ns[2]: "bad name": has the character ' '; use letters, digits, '-' and '_'`,
		}},
		{name: "scalars", edit: func(c *Config) {
			c.Addr = "53"
			c.TTL = -time.Second
			c.AnswerCount = -1
			c.MaxTCPConns = -1
			c.Health = HealthConfig{Interval: time.Second, Timeout: 2 * time.Second, Path: "health"}
		}, want: []string{
			`geodns: addr: "53" is not host:port`,
			"geodns: ttl: -1s is out of range 0 to 596523h14m7s",
			"geodns: answer_count: must not be negative (0 answers with all addresses), got -1",
			"geodns: max_tcp_conns: must not be negative (0 means no bound), got -1",
			"geodns: health.timeout: must be positive and at most health.interval (1s), got 2s",
			"geodns: health.rise: must be at least 1, got 0",
			"geodns: health.fall: must be at least 1, got 0",
			`geodns: health.path: "health" must start with /`,
		}},
		{name: "addr host and port", edit: func(c *Config) { c.Addr = "dns.example:99999" }, want: []string{
			`geodns: addr: port "99999" is not a number from 0 to 65535`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.edit(&cfg)
			var got []string
			if err := cfg.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewNeedsGeoIP(t *testing.T) {
	cfg := testConfig()
	cfg.GeoIPPath = ""
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "geodns: geoip_path:") {
		t.Errorf("New without GeoIP: %v", err)
	}
	cfg.GeoIPPath = "testdata/missing.mmdb"
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "geodns: open geoip:") {
		t.Errorf("New with a missing GeoIP file: %v", err)
	}
	// CIDR rules alone need no database.
	cfg.GeoIPPath = ""
	for i := range cfg.Regions {
		cfg.Regions[i].Countries, cfg.Regions[i].Continents = nil, nil
	}
	if _, err := New(cfg, nil); err != nil {
		t.Errorf("New with CIDR rules only: %v", err)
	}
}
