package geodns

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// exchange sends m to addr with a real client over proto ("udp", "tcp").
func exchange(t *testing.T, addr, proto string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange over %s: %v", proto, err)
	}
	if resp.Id != m.Id {
		t.Fatalf("answer id %d, want %d", resp.Id, m.Id)
	}
	return resp
}

func TestServerOverTheWire(t *testing.T) {
	s := newTestServer(t, testConfig())
	addr := runTestServer(t, s)
	www := "www.example.test."
	bigTXT := []string{}
	for _, n := range []string{"1", "2", "3"} {
		bigTXT = append(bigTXT, `big.example.test. 300 TXT "`+repeat("x", 200)+n+`"`)
	}
	tests := []struct {
		name  string
		proto string
		q     query
		want  summary
	}{
		{
			name:  "ECS GB gets eu with the ECS echoed",
			proto: "udp",
			q:     query{name: www, qtype: dns.TypeA, ecs: "81.2.69.142/32"},
			want:  summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, euV4), EDNS: true, UDPSize: 1232, ECS: "81.2.69.142/32/31"},
		},
		{
			name:  "ECS US gets us",
			proto: "udp",
			q:     query{name: www, qtype: dns.TypeA, ecs: "216.160.83.56/29"},
			want:  summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, usV4), EDNS: true, UDPSize: 1232, ECS: "216.160.83.56/29/29"},
		},
		{
			name:  "ECS unknown gets the default region",
			proto: "udp",
			q:     query{name: www, qtype: dns.TypeA, ecs: "1.1.1.0/24"},
			want:  summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, glV4), EDNS: true, UDPSize: 1232, ECS: "1.1.1.0/24/24"},
		},
		{
			name:  "ECS over TCP",
			proto: "tcp",
			q:     query{name: www, qtype: dns.TypeAAAA, ecs: "2.125.160.216/29"},
			want:  summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, euV6), EDNS: true, UDPSize: 1232, ECS: "2.125.160.216/29/29"},
		},
		{
			name:  "source address path (127.0.0.1 by CIDR rule)",
			proto: "udp",
			q:     query{name: www, qtype: dns.TypeA},
			want:  summary{Rcode: "NOERROR", AA: true, Answer: addrs(www, 30, apV4)},
		},
		{
			name:  "REFUSED outside the zone",
			proto: "udp",
			q:     query{name: "example.org.", qtype: dns.TypeA},
			want:  summary{Rcode: "REFUSED"},
		},
		{
			name:  "NXDOMAIN with SOA",
			proto: "udp",
			q:     query{name: "nope.example.test.", qtype: dns.TypeA},
			want:  summary{Rcode: "NXDOMAIN", AA: true, Ns: []string{negSOA}},
		},
		{
			name:  "NODATA with SOA over TCP",
			proto: "tcp",
			q:     query{name: www, qtype: dns.TypeTXT},
			want:  summary{Rcode: "NOERROR", AA: true, Ns: []string{negSOA}},
		},
		{
			name:  "large answer over UDP without EDNS: TC",
			proto: "udp",
			q:     query{name: "big.example.test.", qtype: dns.TypeTXT},
			want:  summary{Rcode: "NOERROR", AA: true, TC: true},
		},
		{
			name:  "large answer over TCP: full",
			proto: "tcp",
			q:     query{name: "big.example.test.", qtype: dns.TypeTXT},
			want:  summary{Rcode: "NOERROR", AA: true, Answer: bigTXT},
		},
		{
			name:  "EDNS version 1: BADVERS",
			proto: "udp",
			q:     query{name: www, qtype: dns.TypeA, version: 1},
			want:  summary{Rcode: "BADVERS", EDNS: true, UDPSize: 1232},
		},
		{
			name:  "ANY: HINFO",
			proto: "udp",
			q:     query{name: "example.test.", qtype: dns.TypeANY},
			want:  summary{Rcode: "NOERROR", AA: true, Answer: []string{`example.test. 300 HINFO "RFC8482" ""`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := exchange(t, addr, tt.proto, tt.q.msg())
			if diff := cmp.Diff(tt.want, summarize(resp)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// rawExchange sends raw bytes over UDP and returns the answer, or nil if
// none came within half a second.
func rawExchange(t *testing.T, addr string, pkt []byte) []byte {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// wwwQuery is a packed query for www.example.test. A with an OPT record
// whose ECS option is ecs (family, source, scope, address), id 0x1234.
func wwwQuery(t *testing.T, ecs []byte) []byte {
	t.Helper()
	m := query{name: "www.example.test.", qtype: dns.TypeA, edns: true}.msg()
	m.Id = 0x1234
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if ecs == nil {
		return wire
	}
	// Append the option by hand: the client library refuses to pack bad ones.
	opt := append([]byte{0, 8, 0, byte(len(ecs))}, ecs...)
	wire = append(wire, opt...)
	wire[len(wire)-len(opt)-1] = byte(len(opt)) // OPT RDLENGTH (was 0)
	return wire
}

func TestServerMalformed(t *testing.T) {
	s := newTestServer(t, testConfig())
	addr := runTestServer(t, s)
	tests := []struct {
		name      string
		pkt       []byte
		wantRcode int // -1: no answer
	}{
		// Text: the third byte ('i') reads as opcode 13.
		{name: "text", pkt: []byte("this is not a DNS message at all, just bytes"), wantRcode: dns.RcodeNotImplemented},
		{name: "garbage after a header", pkt: []byte{0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff, 0x3f, 7, 7}, wantRcode: dns.RcodeFormatError},
		{name: "short header", pkt: []byte{1, 2, 3}, wantRcode: -1},
		{name: "truncated question", pkt: wwwQuery(t, nil)[:20], wantRcode: dns.RcodeFormatError},
		{name: "response", pkt: func() []byte { b := wwwQuery(t, nil); b[2] |= 0x80; return b }(), wantRcode: -1},
		{name: "QDCOUNT 2", pkt: func() []byte { b := wwwQuery(t, nil); b[5] = 2; return b }(), wantRcode: dns.RcodeFormatError},
		{name: "opcode UPDATE", pkt: func() []byte { b := wwwQuery(t, nil); b[2] |= 5 << 3; return b }(), wantRcode: dns.RcodeNotImplemented},
		{name: "ECS prefix too long for IPv4", pkt: wwwQuery(t, []byte{0, 1, 33, 0, 81, 2, 69, 142, 0}), wantRcode: dns.RcodeFormatError},
		{name: "ECS unknown family", pkt: wwwQuery(t, []byte{0, 3, 8, 0, 81}), wantRcode: dns.RcodeFormatError},
		{name: "ECS bits beyond the prefix", pkt: wwwQuery(t, []byte{0, 1, 24, 0, 81, 2, 69, 142}), wantRcode: dns.RcodeFormatError},
		{name: "ECS family 0 with a prefix", pkt: wwwQuery(t, []byte{0, 0, 8, 0, 81}), wantRcode: dns.RcodeFormatError},
		{name: "valid ECS", pkt: wwwQuery(t, []byte{0, 1, 24, 0, 81, 2, 69}), wantRcode: dns.RcodeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := rawExchange(t, addr, tt.pkt)
			if tt.wantRcode < 0 {
				if out != nil {
					t.Fatalf("answered %x, want silence", out)
				}
				return
			}
			if out == nil {
				t.Fatal("no answer")
			}
			resp := new(dns.Msg)
			if err := resp.Unpack(out); err != nil {
				t.Fatalf("unpack answer: %v", err)
			}
			if resp.Rcode != tt.wantRcode || !resp.Response {
				t.Errorf("rcode %s QR %v, want %s", rcodeName(resp.Rcode), resp.Response, rcodeName(tt.wantRcode))
			}
		})
	}
	// The server is still there.
	resp := exchange(t, addr, "udp", query{name: "www.example.test.", qtype: dns.TypeA}.msg())
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0 {
		t.Errorf("after garbage: %v", resp)
	}
}

func TestServerTCPGarbage(t *testing.T) {
	s := newTestServer(t, testConfig())
	addr := runTestServer(t, s)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// A length prefix promising more than is sent, then close.
	_, _ = conn.Write([]byte{0xff, 0xff, 1, 2, 3})
	_ = conn.Close()
	resp := exchange(t, addr, "tcp", query{name: "www.example.test.", qtype: dns.TypeA}.msg())
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0 {
		t.Errorf("after garbage: %v", resp)
	}
}

func TestServerHealthFallback(t *testing.T) {
	cfg := testConfig()
	prober := newFakeProber()
	clock := newFakeClock()
	s := newTestServer(t, cfg, WithProber(prober), WithClock(clock))
	rounds := make(chan struct{})
	s.checker.roundDone = func() { rounds <- struct{}{} }
	addr := runTestServer(t, s)
	<-rounds // the first round runs at once

	// tick runs one more round of health checks and waits for it.
	tick := func() {
		clock.tick <- time.Time{}
		<-rounds
	}
	www := "www.example.test."
	gb := query{name: www, qtype: dns.TypeA, ecs: "81.2.69.142/32"}
	answerFor := func(q query) []string {
		t.Helper()
		return summarize(exchange(t, addr, "udp", q.msg())).Answer
	}
	steps := []struct {
		name       string
		act        func()
		wantGB     []string
		wantHealth map[string]bool
	}{
		{
			name:       "all healthy",
			act:        func() {},
			wantGB:     addrs(www, 30, euV4),
			wantHealth: map[string]bool{"eu": true, "us": true, "ap": true, "global": true},
		},
		{
			name:       "eu fails once: below fall",
			act:        func() { prober.setRegion(cfg, "eu", true); tick() },
			wantGB:     addrs(www, 30, euV4),
			wantHealth: map[string]bool{"eu": true, "us": true, "ap": true, "global": true},
		},
		{
			name:       "eu fails twice: fall reached, fallback us",
			act:        tick,
			wantGB:     addrs(www, 30, usV4),
			wantHealth: map[string]bool{"eu": false, "us": true, "ap": true, "global": true},
		},
		{
			name:       "eu good once: below rise",
			act:        func() { prober.setRegion(cfg, "eu", false); tick() },
			wantGB:     addrs(www, 30, usV4),
			wantHealth: map[string]bool{"eu": false, "us": true, "ap": true, "global": true},
		},
		{
			name:       "eu good twice: back",
			act:        tick,
			wantGB:     addrs(www, 30, euV4),
			wantHealth: map[string]bool{"eu": true, "us": true, "ap": true, "global": true},
		},
		{
			name: "eu and us down: default region",
			act: func() {
				prober.setRegion(cfg, "eu", true)
				prober.setRegion(cfg, "us", true)
				tick()
				tick()
			},
			wantGB:     addrs(www, 30, glV4),
			wantHealth: map[string]bool{"eu": false, "us": false, "ap": true, "global": true},
		},
		{
			name: "eu, us and default down: the healthy rest",
			act: func() {
				prober.setRegion(cfg, "global", true)
				tick()
				tick()
			},
			wantGB:     addrs(www, 30, apV4),
			wantHealth: map[string]bool{"eu": false, "us": false, "ap": true, "global": false},
		},
		{
			name: "all down: fail open with all edges",
			act: func() {
				prober.setRegion(cfg, "ap", true)
				tick()
				tick()
			},
			wantGB:     addrs(www, 30, euV4, usV4, apV4, glV4),
			wantHealth: map[string]bool{"eu": false, "us": false, "ap": false, "global": false},
		},
	}
	for _, st := range steps {
		st.act()
		if diff := cmp.Diff(st.wantGB, answerFor(gb)); diff != "" {
			t.Errorf("%s: GB answer (-want +got):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(st.wantHealth, s.Health()); diff != "" {
			t.Errorf("%s: health (-want +got):\n%s", st.name, diff)
		}
	}
	// The server counts a query after it wrote the answer: give the last
	// one a moment to be counted.
	var stats Stats
	for deadline := time.Now().Add(2 * time.Second); ; {
		stats = s.Stats()
		if stats.FailOpen >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if stats.Fallbacks == 0 || stats.FailOpen != 1 {
		t.Errorf("fallbacks %d, fail-open %d; want some and 1", stats.Fallbacks, stats.FailOpen)
	}
}

func TestRunStopsAndReportsListenErrors(t *testing.T) {
	s := newTestServer(t, testConfig())
	addr := runTestServer(t, s)

	cfg := testConfig()
	cfg.Addr = addr // taken by s
	other := newTestServer(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := other.Run(ctx); err == nil {
		t.Fatal("Run on a taken address: no error")
	}
}

func TestRunShutsDownGracefully(t *testing.T) {
	s := newTestServer(t, testConfig())
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	exchange(t, s.Addr(), "tcp", query{name: "www.example.test.", qtype: dns.TypeA}.msg())
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	if _, _, err := c.Exchange(query{name: "www.example.test.", qtype: dns.TypeA}.msg(), s.Addr()); err == nil {
		t.Error("answered after Run returned")
	}
}
