package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/geodns"
)

const twoRegions = `
edges:
  - {id: edge-eu, region: eu, addr: 127.0.0.11:8080}
  - {id: edge-eu2, region: eu, addr: 127.0.0.13:8080}
  - {id: edge-us, region: us, addr: 127.0.0.12:8080}
dns:
  enabled: true
  geoip: /geo.mmdb
  default_region: us
  records:
    - {name: mail, type: A, value: 192.0.2.25, ttl: 1h}
  regions:
    - name: eu
      countries: [GB, SE]
      cidrs: [10.1.0.0/16]
      fallback: [us]
      weights: {edge-eu2: 3}
    - name: us
      countries: [US]
      continents: [NA]
      fallback: [eu]
`

func TestGeoDNS(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte(twoRegions))
	if err != nil {
		t.Fatal(err)
	}
	want := geodns.DefaultConfig()
	want.Addr, want.MetricsAddr, want.Zone, want.GeoIPPath, want.DefaultRegion = "127.0.0.1:5353", "127.0.0.1:9153", "example.test.", "/geo.mmdb", "us"
	want.Records = []geodns.Record{{Name: "mail", Type: "A", Value: "192.0.2.25", TTL: time.Hour}}
	want.Regions = []geodns.Region{
		{
			Name: "eu", Countries: []string{"GB", "SE"}, CIDRs: []string{"10.1.0.0/16"}, Fallback: []string{"us"},
			Edges: []geodns.Edge{
				{IP: "127.0.0.11", HealthAddr: "127.0.0.11:8080"},
				{IP: "127.0.0.13", HealthAddr: "127.0.0.13:8080", Weight: 3},
			},
		},
		{
			Name: "us", Countries: []string{"US"}, Continents: []string{"NA"}, Fallback: []string{"eu"},
			Edges: []geodns.Edge{{IP: "127.0.0.12", HealthAddr: "127.0.0.12:8080"}},
		},
	}
	if diff := cmp.Diff(want, c.GeoDNS()); diff != "" {
		t.Errorf("GeoDNS (-want +got):\n%s", diff)
	}
}

func TestGeoDNSRegionsFromEdges(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte("edges:\n  - {addr: 127.0.0.11:80, region: a}\n  - {addr: 127.0.0.12:80, region: b}\n  - {addr: 127.0.0.13:80, region: a}\ndns:\n  enabled: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range c.GeoDNS().Regions {
		got = append(got, r.Name+":"+r.Edges[0].IP)
	}
	if diff := cmp.Diff([]string{"a:127.0.0.11", "b:127.0.0.12"}, got); diff != "" {
		t.Error(diff)
	}
}

func TestExampleTwoRegions(t *testing.T) {
	c, err := Load("../../examples/two-regions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.DNS.Enabled || len(c.GeoDNS().Regions) != 2 {
		t.Errorf("dns %+v", c.DNS)
	}
}

func TestValidateDNS(t *testing.T) {
	tests := []struct {
		name    string
		edit    string // replaces "  enabled: true\n" in twoRegions
		from    string // replaced instead of the default
		wantErr string // substring; empty = valid
	}{
		{name: "valid"},
		{name: "disabled section is not checked", edit: "  enabled: false\n  zone: \"..\"\n"},
		{name: "bad addr", edit: "  enabled: true\n  addr: localhost:53\n", wantErr: `dns.addr: must be IP:port`},
		{name: "addr taken", edit: "  enabled: true\n  addr: 127.0.0.1:9090\n", wantErr: `dns.addr: address 127.0.0.1:9090 is already used by api.addr`},
		{name: "metrics addr", edit: "  enabled: true\n  metrics_addr: 127.0.0.1:9153\n"},
		{name: "bad metrics addr", edit: "  enabled: true\n  metrics_addr: localhost:9153\n", wantErr: `dns.metrics_addr: must be IP:port`},
		{name: "metrics addr taken", edit: "  enabled: true\n  metrics_addr: 127.0.0.1:9090\n", wantErr: `dns.metrics_addr: address 127.0.0.1:9090 is already used by api.addr`},
		{name: "bad zone", edit: "  enabled: true\n  zone: \"a..b\"\n", wantErr: `dns.zone: "a..b": is not a valid domain name`},
		{name: "ttl fraction", edit: "  enabled: true\n  ttl: 1500ms\n", wantErr: `dns.ttl: 1.5s is not a whole number of seconds`},
		{name: "timeout above interval", edit: "  enabled: true\n  health: {interval: 1s, timeout: 2s}\n", wantErr: `dns.health.timeout: must be positive and at most health.interval`},
		{name: "no geoip", from: "  geoip: /geo.mmdb\n", edit: "", wantErr: `dns.geoip: regions list countries or continents, so a GeoIP database is needed`},
		{name: "bad country", from: "countries: [US]", edit: "countries: [USA]", wantErr: `dns.regions[1].countries[0]: "USA" is not a two-letter ISO code`},
		{name: "country twice", from: "countries: [US]", edit: "countries: [gb]", wantErr: `dns.regions[1].countries[0]: GB is already served by region "eu"`},
		{name: "bad fallback", from: "fallback: [eu]", edit: "fallback: [mars]", wantErr: `dns.regions[1].fallback[0]: "mars" is not a region`},
		{name: "default region", from: "default_region: us", edit: "default_region: mars", wantErr: `dns.default_region: "mars" is not a region`},
		{name: "record type", from: "type: A,", edit: "type: MX,", wantErr: `dns.records[0].type: "MX" is not one of A, AAAA, CNAME, TXT`},
		{name: "edge region not listed", from: "region: us, addr", edit: "region: asia, addr", wantErr: `edges[2].region: "asia" is not one of dns.regions (eu, us)`},
		{name: "region without edge", from: "region: us, addr", edit: "region: eu, addr", wantErr: `dns.regions[1].name: no edge has region "us"`},
		{name: "weight of unknown edge", from: "{edge-eu2: 3}", edit: "{edge-us: 3}", wantErr: `dns.regions[0].weights.edge-us: "edge-us" is not an edge of region "eu"`},
		{name: "weight out of range", from: "{edge-eu2: 3}", edit: "{edge-eu2: 0}", wantErr: `dns.regions[0].weights.edge-eu2: must be 1-1000, got 0`},
		{name: "edge on any address", from: "127.0.0.12:8080", edit: "0.0.0.0:8080", wantErr: `edges[2].addr: geo DNS answers with the edge's IP, and 0.0.0.0 is the unspecified address`},
		{name: "two edges of a region on one IP", from: "127.0.0.13:8080", edit: "127.0.0.11:8081", wantErr: `edges[1].addr: IP 127.0.0.11 is also edges[0].addr's`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := tt.from
			if from == "" {
				from = "  enabled: true\n"
			}
			doc := twoRegions
			if tt.edit != "" || tt.from != "" {
				if !strings.Contains(doc, from) {
					t.Fatalf("test config has no %q", from)
				}
				doc = strings.Replace(doc, from, tt.edit, 1)
			}
			_, err := Parse("cfg.yaml", []byte(doc))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestDNSMetricsAddrDefault: with dns on, the dns role always has its
// monitoring address (the console reads answers per region there), on
// loopback unless the file names another.
func TestDNSMetricsAddrDefault(t *testing.T) {
	tests := []struct {
		name, edit, want string
	}{
		{name: "default dns addr", edit: "  enabled: true\n", want: "127.0.0.1:9153"},
		{name: "loopback dns addr keeps its IP", edit: "  enabled: true\n  addr: 127.49.0.53:5353\n", want: "127.49.0.53:9153"},
		{name: "public dns addr: metrics stay on loopback", edit: "  enabled: true\n  addr: 192.0.2.53:53\n", want: "127.0.0.1:9153"},
		{name: "any address: loopback", edit: "  enabled: true\n  addr: 0.0.0.0:53\n", want: "127.0.0.1:9153"},
		{name: "IPv6 loopback", edit: "  enabled: true\n  addr: \"[::1]:53\"\n", want: "[::1]:9153"},
		{name: "given is kept", edit: "  enabled: true\n  metrics_addr: 127.0.0.1:9999\n", want: "127.0.0.1:9999"},
		{name: "dns off: none", edit: "  enabled: false\n", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("cfg.yaml", []byte(strings.Replace(twoRegions, "  enabled: true\n", tt.edit, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if c.DNS.MetricsAddr != tt.want {
				t.Errorf("dns.metrics_addr = %q, want %q", c.DNS.MetricsAddr, tt.want)
			}
		})
	}
}
