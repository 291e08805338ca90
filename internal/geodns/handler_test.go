package geodns

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestRespond(t *testing.T) {
	s := newTestServer(t, testConfig())
	www, apex := "www.example.test.", "example.test."
	bigTXT := []string{}
	for _, n := range []string{"1", "2", "3"} {
		bigTXT = append(bigTXT, `big.example.test. 300 TXT "`+repeat("x", 200)+n+`"`)
	}
	tests := []struct {
		name string
		q    query
		src  string // default 127.0.0.1, placed in ap by its CIDR rule
		tcp  bool
		edit func(*dns.Msg)
		want summary
	}{
		{
			name: "ECS GB /32 gets eu, scope of the GeoIP network",
			q:    query{name: www, qtype: dns.TypeA, ecs: "81.2.69.142/32"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, euV4), EDNS: true, UDPSize: 1232, ECS: "81.2.69.142/32/31"},
		},
		{
			name: "ECS GB /27 network",
			q:    query{name: www, qtype: dns.TypeA, ecs: "81.2.69.160/27"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, euV4), EDNS: true, UDPSize: 1232, ECS: "81.2.69.160/27/27"},
		},
		{
			name: "ECS scope capped at the source prefix",
			q:    query{name: www, qtype: dns.TypeA, ecs: "67.43.156.0/23"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, apV4), EDNS: true, UDPSize: 1232, ECS: "67.43.156.0/23/23"},
		},
		{
			name: "ECS scope of a GeoIP network wider than the source",
			q:    query{name: www, qtype: dns.TypeA, ecs: "214.78.1.0/24"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, usV4), EDNS: true, UDPSize: 1232, ECS: "214.78.1.0/24/19"},
		},
		{
			name: "ECS subnet whose masked address the database lacks: default",
			q:    query{name: www, qtype: dns.TypeA, ecs: "89.160.20.0/24"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, glV4), EDNS: true, UDPSize: 1232, ECS: "89.160.20.0/24/24"},
		},
		{
			name: "ECS SE by country",
			q:    query{name: www, qtype: dns.TypeA, ecs: "89.160.20.128/26"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, euV4), EDNS: true, UDPSize: 1232, ECS: "89.160.20.128/26/25"},
		},
		{
			name: "ECS US gets us",
			q:    query{name: www, qtype: dns.TypeA, ecs: "216.160.83.56/30"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, usV4), EDNS: true, UDPSize: 1232, ECS: "216.160.83.56/30/29"},
		},
		{
			name: "ECS US AAAA",
			q:    query{name: www, qtype: dns.TypeAAAA, ecs: "216.160.83.56/32"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, usV6), EDNS: true, UDPSize: 1232, ECS: "216.160.83.56/32/29"},
		},
		{
			name: "ECS BT by continent AS",
			q:    query{name: apex, qtype: dns.TypeA, ecs: "67.43.156.0/24"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(apex, 30, apV4), EDNS: true, UDPSize: 1232, ECS: "67.43.156.0/24/24"},
		},
		{
			name: "ECS JP IPv6, region without IPv6 edges: NODATA",
			q:    query{name: www, qtype: dns.TypeAAAA, ecs: "2001:218::/48"},
			want: summary{Rcode: "NOERROR", AA: true, Ns: []string{negSOA}, EDNS: true, UDPSize: 1232, ECS: "[2001:218::]/48/32"},
		},
		{
			name: "ECS unknown network gets the default region, scope = source",
			q:    query{name: www, qtype: dns.TypeA, ecs: "1.1.1.0/24"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, glV4), EDNS: true, UDPSize: 1232, ECS: "1.1.1.0/24/24"},
		},
		{
			name: "ECS source 0 uses the source address, echoed with scope 0",
			q:    query{name: www, qtype: dns.TypeA, ecs: "0.0.0.0/0"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, apV4), EDNS: true, UDPSize: 1232, ECS: "0.0.0.0/0/0"},
		},
		{
			name: "ECS on a static answer: scope 0",
			q:    query{name: apex, qtype: dns.TypeTXT, ecs: "81.2.69.142/32"},
			want: summary{Rcode: "NOERROR", AA: true, Answer: []string{`example.test. 300 TXT "v=spf1 -all"`}, EDNS: true, UDPSize: 1232, ECS: "81.2.69.142/32/0"},
		},
		{
			name: "source address GB",
			q:    query{name: www, qtype: dns.TypeA},
			src:  "81.2.69.142",
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, euV4)},
		},
		{
			name: "source address US over TCP",
			q:    query{name: www, qtype: dns.TypeA},
			src:  "216.160.83.60",
			tcp:  true,
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, usV4)},
		},
		{
			name: "source address by CIDR rule",
			q:    query{name: www, qtype: dns.TypeA},
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, apV4)},
		},
		{
			name: "source address unknown: default",
			q:    query{name: www, qtype: dns.TypeA},
			src:  "10.1.2.3",
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, glV4)},
		},
		{
			name: "source IPv6 JP AAAA at the apex: NODATA",
			q:    query{name: apex, qtype: dns.TypeAAAA},
			src:  "2001:218::1",
			want: summary{Rcode: "NOERROR", AA: true, Ns: []string{negSOA}},
		},
		{
			name: "AAAA from GB",
			q:    query{name: www, qtype: dns.TypeAAAA},
			src:  "81.2.69.142",
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, euV6)},
		},
		{
			name: "name case is ignored",
			q:    query{name: "WwW.ExAmPlE.tEsT.", qtype: dns.TypeA},
			src:  "81.2.69.142",
			want: summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, euV4)},
		},
		{
			name: "CNAME chased to a geo name",
			q:    query{name: "blog.example.test.", qtype: dns.TypeA},
			src:  "81.2.69.142",
			want: summary{Rcode: "NOERROR", AA: true, Answer: append([]string{"blog.example.test. 300 CNAME www.example.test."}, addrs(www, 30, euV4)...)},
		},
		{
			name: "CNAME asked for itself",
			q:    query{name: "blog.example.test.", qtype: dns.TypeCNAME},
			want: summary{Rcode: "NOERROR", AA: true, Answer: []string{"blog.example.test. 300 CNAME www.example.test."}},
		},
		{
			name: "CNAME out of the zone",
			q:    query{name: "docs.example.test.", qtype: dns.TypeAAAA},
			want: summary{Rcode: "NOERROR", AA: true, Answer: []string{"docs.example.test. 300 CNAME docs.example.org."}},
		},
		{
			name: "NXDOMAIN with SOA",
			q:    query{name: "nope.example.test.", qtype: dns.TypeA},
			want: summary{Rcode: "NXDOMAIN", AA: true, Ns: []string{negSOA}},
		},
		{
			name: "NXDOMAIN below a geo name",
			q:    query{name: "x.www.example.test.", qtype: dns.TypeA, edns: true},
			want: summary{Rcode: "NXDOMAIN", AA: true, Ns: []string{negSOA}, EDNS: true, UDPSize: 1232},
		},
		{
			name: "NODATA with SOA",
			q:    query{name: www, qtype: dns.TypeMX},
			want: summary{Rcode: "NOERROR", AA: true, Ns: []string{negSOA}},
		},
		{
			name: "unknown type at an existing name: NODATA",
			q:    query{name: www, qtype: 65280},
			want: summary{Rcode: "NOERROR", AA: true, Ns: []string{negSOA}},
		},
		{
			name: "empty non-terminal: NODATA",
			q:    query{name: "deep.example.test.", qtype: dns.TypeA},
			want: summary{Rcode: "NOERROR", AA: true, Ns: []string{negSOA}},
		},
		{
			name: "static record with its own TTL",
			q:    query{name: "a.deep.example.test.", qtype: dns.TypeA},
			want: summary{Rcode: "NOERROR", AA: true, Answer: []string{"a.deep.example.test. 60 A 192.0.2.10"}},
		},
		{
			name: "ANY gets one HINFO (RFC 8482)",
			q:    query{name: www, qtype: dns.TypeANY},
			want: summary{Rcode: "NOERROR", AA: true, Answer: []string{`www.example.test. 300 HINFO "RFC8482" ""`}},
		},
		{
			name: "ANY at an empty non-terminal: NODATA",
			q:    query{name: "deep.example.test.", qtype: dns.TypeANY},
			want: summary{Rcode: "NOERROR", AA: true, Ns: []string{negSOA}},
		},
		{
			name: "ANY at a missing name",
			q:    query{name: "nope.example.test.", qtype: dns.TypeANY},
			want: summary{Rcode: "NXDOMAIN", AA: true, Ns: []string{negSOA}},
		},
		{
			name: "SOA",
			q:    query{name: apex, qtype: dns.TypeSOA},
			want: summary{Rcode: "NOERROR", AA: true, Answer: []string{"example.test. 300 SOA ns1.example.test. hostmaster.example.test. 2024010101 3600 600 604800 60"}},
		},
		{
			name: "NS with glue",
			q:    query{name: apex, qtype: dns.TypeNS},
			want: summary{Rcode: "NOERROR", AA: true, Answer: []string{"example.test. 300 NS ns1.example.test."}, Extra: []string{"ns1.example.test. 300 A 192.0.2.53"}},
		},
		{
			name: "outside the zone: REFUSED, no recursion",
			q:    query{name: "www.example.org.", qtype: dns.TypeA},
			edit: func(m *dns.Msg) { m.RecursionDesired = true },
			want: summary{Rcode: "REFUSED"},
		},
		{
			name: "parent of the zone: REFUSED",
			q:    query{name: "test.", qtype: dns.TypeSOA},
			want: summary{Rcode: "REFUSED"},
		},
		{
			name: "look-alike suffix: REFUSED",
			q:    query{name: "badexample.test.", qtype: dns.TypeA},
			want: summary{Rcode: "REFUSED"},
		},
		{
			name: "escaped dot is not a label boundary: REFUSED",
			q:    query{name: `www\.example.test.`, qtype: dns.TypeA},
			want: summary{Rcode: "REFUSED"},
		},
		{
			name: "AXFR: REFUSED",
			q:    query{name: apex, qtype: dns.TypeAXFR},
			tcp:  true,
			want: summary{Rcode: "REFUSED", AA: true},
		},
		{
			name: "class CH: REFUSED",
			q:    query{name: apex, qtype: dns.TypeTXT},
			edit: func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS },
			want: summary{Rcode: "REFUSED"},
		},
		{
			name: "EDNS version 1: BADVERS",
			q:    query{name: www, qtype: dns.TypeA, version: 1},
			want: summary{Rcode: "BADVERS", EDNS: true, UDPSize: 1232},
		},
		{
			name: "DO bit echoed",
			q:    query{name: apex, qtype: dns.TypeSOA, do: true},
			want: summary{Rcode: "NOERROR", AA: true, Answer: []string{"example.test. 300 SOA ns1.example.test. hostmaster.example.test. 2024010101 3600 600 604800 60"}, EDNS: true, UDPSize: 1232, DO: true},
		},
		{
			name: "ECS bits beyond the source prefix: FORMERR",
			q:    query{name: www, qtype: dns.TypeA, edns: true},
			edit: func(m *dns.Msg) { addRawECS(m, []byte{0, 1, 24, 0, 81, 2, 69, 142}) },
			want: summary{Rcode: "FORMERR", AA: true, EDNS: true, UDPSize: 1232},
		},
		{
			name: "two ECS options: FORMERR",
			q:    query{name: www, qtype: dns.TypeA, ecs: "81.2.69.142/32"},
			edit: func(m *dns.Msg) { addRawECS(m, []byte{0, 1, 8, 0, 81}) },
			want: summary{Rcode: "FORMERR", AA: true, EDNS: true, UDPSize: 1232},
		},
		{
			name: "two OPT records: FORMERR without OPT",
			q:    query{name: www, qtype: dns.TypeA, edns: true},
			edit: func(m *dns.Msg) { m.Extra = append(m.Extra, m.Extra[0]) },
			want: summary{Rcode: "FORMERR"},
		},
		{
			name: "opcode NOTIFY: NOTIMP",
			q:    query{name: apex, qtype: dns.TypeSOA},
			edit: func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify },
			want: summary{Rcode: "NOTIMP"},
		},
		{
			name: "no question: FORMERR",
			q:    query{name: apex, qtype: dns.TypeSOA},
			edit: func(m *dns.Msg) { m.Question = nil },
			want: summary{Rcode: "FORMERR"},
		},
		{
			name: "large answer over UDP without EDNS: TC and empty",
			q:    query{name: "big.example.test.", qtype: dns.TypeTXT},
			want: summary{Rcode: "NOERROR", AA: true, TC: true},
		},
		{
			name: "large answer over UDP with a 512 byte EDNS buffer: TC",
			q:    query{name: "big.example.test.", qtype: dns.TypeTXT, edns: true, bufsize: 512},
			want: summary{Rcode: "NOERROR", AA: true, TC: true, EDNS: true, UDPSize: 1232},
		},
		{
			name: "large answer over UDP within the EDNS buffer",
			q:    query{name: "big.example.test.", qtype: dns.TypeTXT, edns: true},
			want: summary{Rcode: "NOERROR", AA: true, Answer: bigTXT, EDNS: true, UDPSize: 1232},
		},
		{
			name: "large answer over TCP",
			q:    query{name: "big.example.test.", qtype: dns.TypeTXT},
			tcp:  true,
			want: summary{Rcode: "NOERROR", AA: true, Answer: bigTXT},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.q.msg()
			if tt.edit != nil {
				tt.edit(m)
			}
			src := tt.src
			if src == "" {
				src = "127.0.0.1"
			}
			resp := respondTo(t, s, m, src, !tt.tcp)
			if resp.Id != m.Id || !resp.Response {
				t.Errorf("id %d response %v, want id %d and QR", resp.Id, resp.Response, m.Id)
			}
			if diff := cmp.Diff(tt.want, summarize(resp)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// addRawECS appends an ECS option with raw payload to m's OPT record.
func addRawECS(m *dns.Msg, data []byte) {
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: data})
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

func TestRespondIgnoresResponses(t *testing.T) {
	s := newTestServer(t, testConfig())
	m := query{name: "www.example.test.", qtype: dns.TypeA}.msg()
	m.Response = true
	if out := s.respond(m, netipLoopback, true, newReply().(*reply)); out != nil {
		t.Errorf("answered a response: %x", out)
	}
}

func TestWeightedAnswerOrderVaries(t *testing.T) {
	s := newTestServer(t, testConfig())
	firsts := map[string]int{}
	for range 200 {
		resp := respondTo(t, s, query{name: "www.example.test.", qtype: dns.TypeA}.msg(), "81.2.69.142", true)
		if len(resp.Answer) != 2 {
			t.Fatalf("answer %v, want both eu addresses", resp.Answer)
		}
		firsts[resp.Answer[0].(*dns.A).A.String()]++
	}
	if len(firsts) != 2 {
		t.Errorf("first addresses %v, want both to lead sometimes", firsts)
	}
}

func TestAnswerCount(t *testing.T) {
	cfg := testConfig()
	cfg.AnswerCount = 1
	s := newTestServer(t, cfg)
	resp := respondTo(t, s, query{name: "www.example.test.", qtype: dns.TypeA}.msg(), "81.2.69.142", true)
	if len(resp.Answer) != 1 {
		t.Fatalf("answer %v, want one address", resp.Answer)
	}
	got := resp.Answer[0].(*dns.A).A.String()
	if got != euV4[0] && got != euV4[1] {
		t.Errorf("answer %s, want an eu address", got)
	}
}

// panickyGeoIP fails in the worst way.
type panickyGeoIP struct{}

func (panickyGeoIP) Lookup(netip.Addr) (Location, error) { panic("geoip exploded") }

func TestServeDNSRecoversFromPanic(t *testing.T) {
	s := newTestServer(t, testConfig(), WithGeoIP(panickyGeoIP{}))
	w := udpFrom("81.2.69.142")
	m := query{name: "www.example.test.", qtype: dns.TypeA}.msg()
	s.ServeDNS(w, m)
	resp := new(dns.Msg)
	if err := resp.Unpack(w.out); err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeServerFailure || resp.Id != m.Id {
		t.Errorf("rcode %s id %d, want SERVFAIL id %d", rcodeName(resp.Rcode), resp.Id, m.Id)
	}
	// The next query that needs no GeoIP is answered as usual.
	w = udpFrom("127.0.0.1")
	s.ServeDNS(w, query{name: "example.test.", qtype: dns.TypeSOA}.msg())
	if err := resp.Unpack(w.out); err != nil || resp.Rcode != dns.RcodeSuccess {
		t.Errorf("after a panic: %v %v", err, resp)
	}
}

// TestConcurrentQueriesAndHealthChanges is for the race detector: queries
// share the precomputed records and read the state while it is replaced.
func TestConcurrentQueriesAndHealthChanges(t *testing.T) {
	s := newTestServer(t, testConfig())
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			qs := []query{
				{name: "www.example.test.", qtype: dns.TypeA, ecs: "81.2.69.142/32"},
				{name: "example.test.", qtype: dns.TypeAAAA, ecs: "216.160.83.56/32"},
				{name: "blog.example.test.", qtype: dns.TypeA},
				{name: "big.example.test.", qtype: dns.TypeTXT},
				{name: "example.test.", qtype: dns.TypeNS},
			}
			for j := range 300 {
				w := udpFrom("81.2.69.142")
				s.ServeDNS(w, qs[(i+j)%len(qs)].msg())
				if len(w.out) == 0 {
					t.Error("no answer")
					return
				}
			}
		})
	}
	for j := range 50 {
		up := make([]bool, len(s.edges))
		for k := range up {
			up[k] = (j+k)%3 != 0
		}
		s.publish(up)
	}
	wg.Wait()
}
