package geodns

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

var benchQueries = []struct {
	name string
	q    query
	from string
}{
	{name: "ECS GB", q: query{name: "www.example.test.", qtype: dns.TypeA, ecs: "81.2.69.160/27"}, from: "127.0.0.1"},
	{name: "ECS US", q: query{name: "www.example.test.", qtype: dns.TypeA, ecs: "216.160.83.56/29"}, from: "127.0.0.1"},
	{name: "ECS unknown", q: query{name: "www.example.test.", qtype: dns.TypeA, ecs: "1.1.1.0/24"}, from: "127.0.0.1"},
	{name: "no ECS GeoIP", q: query{name: "www.example.test.", qtype: dns.TypeA}, from: "81.2.69.142"},
	{name: "no ECS CIDR", q: query{name: "www.example.test.", qtype: dns.TypeA}, from: "127.0.0.1"},
	{name: "NXDOMAIN", q: query{name: "nope.example.test.", qtype: dns.TypeA}, from: "127.0.0.1"},
	{name: "static TXT", q: query{name: "example.test.", qtype: dns.TypeTXT, edns: true}, from: "127.0.0.1"},
}

// BenchmarkServeDNS measures the per-query work of the server minus socket
// I/O: parsing the packet (as the DNS library does before calling the
// handler), ServeDNS with placement and weighted pick, packing and counting.
func BenchmarkServeDNS(b *testing.B) {
	s := newTestServer(b, testConfig())
	for _, tt := range benchQueries {
		b.Run(tt.name, func(b *testing.B) {
			wire, err := tt.q.msg().Pack()
			if err != nil {
				b.Fatal(err)
			}
			w := &fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(tt.from), Port: 5353}, out: make([]byte, 0, 512)}
			b.ReportAllocs()
			for b.Loop() {
				req := new(dns.Msg)
				if err := req.Unpack(wire); err != nil {
					b.Fatal(err)
				}
				s.ServeDNS(w, req)
			}
			if len(w.out) == 0 {
				b.Fatal("no answer")
			}
		})
	}
}

// BenchmarkHandler is BenchmarkServeDNS without parsing the query: what
// this package adds to the DNS library's own per-query work.
func BenchmarkHandler(b *testing.B) {
	s := newTestServer(b, testConfig())
	for _, tt := range benchQueries {
		b.Run(tt.name, func(b *testing.B) {
			req := tt.q.msg()
			w := &fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(tt.from), Port: 5353}, out: make([]byte, 0, 512)}
			b.ReportAllocs()
			for b.Loop() {
				s.ServeDNS(w, req)
			}
			if len(w.out) == 0 {
				b.Fatal("no answer")
			}
		})
	}
}

// BenchmarkServeDNSParallel is BenchmarkServeDNS's ECS GB case on all
// cores, to show contention on the shared counters and state.
func BenchmarkServeDNSParallel(b *testing.B) {
	s := newTestServer(b, testConfig())
	wire, err := query{name: "www.example.test.", qtype: dns.TypeA, ecs: "81.2.69.142/32"}.msg().Pack()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5353}, out: make([]byte, 0, 512)}
		for pb.Next() {
			req := new(dns.Msg)
			if err := req.Unpack(wire); err != nil {
				b.Error(err)
				return
			}
			s.ServeDNS(w, req)
		}
	})
}
