package geodns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testGeoIP = "testdata/GeoLite2-Country-Test.mmdb"

var netipLoopback = netip.MustParseAddr("127.0.0.1")

// Edges of the test regions.
var (
	euV4 = []string{"192.0.2.1", "192.0.2.2"}
	euV6 = []string{"2001:db8:e::1"}
	usV4 = []string{"198.51.100.1"}
	usV6 = []string{"2001:db8:a::1"}
	apV4 = []string{"203.0.113.1"}
	glV4 = []string{"203.0.113.200"}
)

// testConfig is a zone with four regions: eu (GB, SE, continent EU), us
// (US, continent NA), ap (continent AS and the loopback network, so that
// queries from the tests' own address land there) and global, the
// default.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Zone = "Example.TEST" // canonicalised by the server
	cfg.SOA.Serial = 2024010101
	cfg.GeoIPPath = testGeoIP
	big := strings.Repeat("x", 200)
	cfg.Records = []Record{
		{Name: "ns1", Type: "A", Value: "192.0.2.53"},
		{Name: "@", Type: "TXT", Value: "v=spf1 -all"},
		{Name: "blog", Type: "CNAME", Value: "www"},
		{Name: "docs", Type: "CNAME", Value: "docs.example.org."},
		{Name: "a.deep.example.test.", Type: "A", Value: "192.0.2.10", TTL: time.Minute},
		{Name: "big", Type: "TXT", Value: big + "1"},
		{Name: "big", Type: "TXT", Value: big + "2"},
		{Name: "big", Type: "TXT", Value: big + "3"},
	}
	edges := func(prefix string, ips ...[]string) []Edge {
		var out []Edge
		for _, list := range ips {
			for _, ip := range list {
				out = append(out, Edge{IP: ip, HealthAddr: fmt.Sprintf("%s%d.test:80", prefix, len(out)+1)})
			}
		}
		return out
	}
	cfg.Regions = []Region{
		{Name: "eu", Edges: edges("eu", euV4, euV6), Countries: []string{"GB", "se"}, Continents: []string{"EU"}, Fallback: []string{"us"}},
		{Name: "us", Edges: edges("us", usV4, usV6), Countries: []string{"US"}, Continents: []string{"NA"}, Fallback: []string{"eu"}},
		{Name: "ap", Edges: edges("ap", apV4), Continents: []string{"AS"}, CIDRs: []string{"127.0.0.0/8"}, Fallback: []string{"us"}},
		{Name: "global", Edges: edges("gl", glV4)},
	}
	cfg.DefaultRegion = "global"
	return cfg
}

// fakeProber fails the health addresses marked down.
type fakeProber struct {
	mu   sync.Mutex
	down map[string]bool
}

var _ Prober = (*fakeProber)(nil)

func newFakeProber() *fakeProber { return &fakeProber{down: map[string]bool{}} }

func (p *fakeProber) Probe(_ context.Context, addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[addr] {
		return errors.New("fake: down")
	}
	return nil
}

// setRegion marks all edges of a test region down or up.
func (p *fakeProber) setRegion(cfg Config, region string, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range cfg.Regions {
		if r.Name == region {
			for _, e := range r.Edges {
				p.down[e.HealthAddr] = down
			}
		}
	}
}

// fakeClock ticks when the test says so.
type fakeClock struct {
	now  time.Time
	tick chan time.Time
}

var _ Clock = (*fakeClock)(nil)

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), tick: make(chan time.Time)}
}

func (c *fakeClock) Now() time.Time                 { return c.now }
func (c *fakeClock) NewTicker(time.Duration) Ticker { return fakeTicker{c.tick} }

type fakeTicker struct{ c chan time.Time }

func (t fakeTicker) C() <-chan time.Time { return t.c }
func (fakeTicker) Stop()                 {}

// newTestServer builds a server of cfg without serving it. Its prober is
// a fakeProber with all edges healthy unless opts give another: the test
// health addresses are names that must not be looked up.
func newTestServer(t testing.TB, cfg Config, opts ...Option) *Server {
	t.Helper()
	opts = append([]Option{WithProber(newFakeProber())}, opts...)
	s, err := New(cfg, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// runTestServer serves s on loopback until the test ends and returns its
// address.
func runTestServer(t testing.TB, s *Server) string {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s.Addr()
}

// query describes a test query.
type query struct {
	name    string
	qtype   uint16
	ecs     string // client subnet such as "81.2.69.142/24", "" for none
	edns    bool   // add OPT (implied by ecs)
	version uint8  // EDNS version
	do      bool
	bufsize uint16 // EDNS UDP size, default 1232
}

func (q query) msg() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(q.name, q.qtype)
	m.RecursionDesired = false
	if q.edns || q.ecs != "" || q.version != 0 || q.do {
		size := q.bufsize
		if size == 0 {
			size = 1232
		}
		m.SetEdns0(size, q.do)
		opt := m.IsEdns0()
		opt.SetVersion(q.version)
		if q.ecs != "" {
			p := netip.MustParsePrefix(q.ecs)
			e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, SourceNetmask: uint8(p.Bits()), Address: net.IP(p.Addr().AsSlice())}
			e.Family = 1
			if p.Addr().Is6() {
				e.Family = 2
			}
			opt.Option = append(opt.Option, e)
		}
	}
	return m
}

// summary is a response reduced to what tests compare.
type summary struct {
	Rcode   string
	AA, TC  bool
	RA      bool
	Answer  []string // "type value", sorted
	Ns      []string
	Extra   []string // without OPT
	EDNS    bool
	UDPSize uint16
	DO      bool
	ECS     string // "addr/source/scope"
}

func summarize(m *dns.Msg) summary {
	s := summary{
		Rcode: rcodeName(m.Rcode),
		AA:    m.Authoritative, TC: m.Truncated, RA: m.RecursionAvailable,
		Answer: rrStrings(m.Answer), Ns: rrStrings(m.Ns),
	}
	for _, rr := range m.Extra {
		opt, ok := rr.(*dns.OPT)
		if !ok {
			s.Extra = append(s.Extra, rrString(rr))
			continue
		}
		s.EDNS, s.UDPSize, s.DO = true, opt.UDPSize(), opt.Do()
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_SUBNET); ok {
				s.ECS = e.String()
			}
		}
	}
	return s
}

// rrString is "name ttl type value" without the class and tabs.
func rrString(rr dns.RR) string {
	f := strings.Split(rr.String(), "\t")
	if len(f) >= 5 {
		return f[0] + " " + f[1] + " " + f[3] + " " + strings.Join(f[4:], " ")
	}
	return rr.String()
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rrString(rr))
	}
	slices.Sort(out)
	return out
}

// addrs returns "name ttl A ip" lines for ips, as in a summary.
func addrs(name string, ttl int, ips ...[]string) []string {
	var out []string
	for _, list := range ips {
		for _, ip := range list {
			t := "A"
			if strings.Contains(ip, ":") {
				t = "AAAA"
			}
			out = append(out, fmt.Sprintf("%s %d %s %s", name, ttl, t, ip))
		}
	}
	slices.Sort(out)
	return out
}

const negSOA = "example.test. 60 SOA ns1.example.test. hostmaster.example.test. 2024010101 3600 600 604800 60"

// respondTo runs the handler on m as if from src and unpacks the answer.
func respondTo(t testing.TB, s *Server, m *dns.Msg, src string, udp bool) *dns.Msg {
	t.Helper()
	// Round-trip the query through the wire format, as the server does.
	wire, err := m.Pack()
	if err != nil {
		t.Fatalf("pack query: %v", err)
	}
	req := new(dns.Msg)
	if err := req.Unpack(wire); err != nil {
		t.Fatalf("unpack query: %v", err)
	}
	out := s.respond(req, netip.MustParseAddr(src), udp, newReply().(*reply))
	if out == nil {
		t.Fatalf("no answer")
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(out); err != nil {
		t.Fatalf("unpack answer: %v", err)
	}
	return resp
}
