package geodns

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// servePacket does with one message what the server does: screen the
// header (accept), parse, answer (respond) and pack. nil means silence.
// Rejected or unparseable messages get the header-only FORMERR or NOTIMP
// that the DNS library sends for them.
func servePacket(s *Server, pkt []byte, src netip.Addr, udp bool, rp *reply) []byte {
	if len(pkt) < 12 {
		return nil // the library drops messages shorter than a header
	}
	dh := dns.Header{
		Id:      binary.BigEndian.Uint16(pkt),
		Bits:    binary.BigEndian.Uint16(pkt[2:]),
		Qdcount: binary.BigEndian.Uint16(pkt[4:]),
		Ancount: binary.BigEndian.Uint16(pkt[6:]),
		Nscount: binary.BigEndian.Uint16(pkt[8:]),
		Arcount: binary.BigEndian.Uint16(pkt[10:]),
	}
	reject := func(rcode int) []byte {
		m := &dns.Msg{MsgHdr: dns.MsgHdr{Id: dh.Id, Response: true, Opcode: int(dh.Bits>>11) & 0xF, Rcode: rcode}}
		out, err := m.Pack()
		if err != nil {
			panic(err)
		}
		return out
	}
	switch s.accept(dh) {
	case dns.MsgIgnore:
		return nil
	case dns.MsgReject:
		return reject(dns.RcodeFormatError)
	case dns.MsgRejectNotImplemented:
		return reject(dns.RcodeNotImplemented)
	}
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		return reject(dns.RcodeFormatError)
	}
	return s.respond(req, src, udp, rp)
}

func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, q := range []query{
		{name: "www.example.test.", qtype: dns.TypeA},
		{name: "www.example.test.", qtype: dns.TypeAAAA, ecs: "81.2.69.142/32"},
		{name: "example.test.", qtype: dns.TypeANY, edns: true, do: true},
		{name: "big.example.test.", qtype: dns.TypeTXT},
		{name: "blog.example.test.", qtype: dns.TypeA, ecs: "2001:218::/48"},
		{name: "nope.example.test.", qtype: dns.TypeNS, version: 1},
		{name: "example.org.", qtype: dns.TypeA},
	} {
		b, err := q.msg().Pack()
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return append(seeds, []byte{}, []byte("garbage garbage!"))
}

// FuzzServeDNS feeds arbitrary bytes to the request path and checks the
// invariants of any answer: same ID, QR=1, at most 65535 bytes (and the
// UDP limits), parseable; NOERROR and NXDOMAIN only for names in the zone,
// with AA=1; nothing outside the zone with AA=1; TC only with empty
// sections.
func FuzzServeDNS(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	s := newTestServer(f, testConfig())
	src := netip.MustParseAddr("81.2.69.142")
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		out := servePacket(s, pkt, src, !tcp, newReply().(*reply))
		if out == nil {
			return
		}
		if len(out) > dns.MaxMsgSize {
			t.Fatalf("answer of %d bytes", len(out))
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(out); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		if resp.Id != binary.BigEndian.Uint16(pkt) || !resp.Response {
			t.Fatalf("answer id %d QR %v to id %d", resp.Id, resp.Response, binary.BigEndian.Uint16(pkt))
		}
		if resp.Truncated && len(resp.Answer)+len(resp.Ns) > 0 {
			t.Fatalf("TC with records: %v", resp)
		}
		req := new(dns.Msg)
		if req.Unpack(pkt) != nil {
			return // answered with a header-only error
		}
		if !tcp {
			limit := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				limit = int(min(max(opt.UDPSize(), dns.MinMsgSize), ednsUDPSize))
			}
			if len(out) > limit {
				t.Fatalf("UDP answer of %d bytes, limit %d", len(out), limit)
			}
		}
		if len(req.Question) != 1 {
			return
		}
		inZone := dns.IsSubDomain("example.test.", req.Question[0].Name)
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			if !inZone || !resp.Authoritative {
				t.Fatalf("%s for %q (in zone %v) with AA=%v", rcodeName(resp.Rcode), req.Question[0].Name, inZone, resp.Authoritative)
			}
			if len(resp.Question) != 1 || resp.Question[0] != req.Question[0] {
				t.Fatalf("question %v, want %v", resp.Question, req.Question)
			}
		}
		if !inZone && resp.Authoritative {
			t.Fatalf("AA=1 for %q outside the zone", req.Question[0].Name)
		}
		if resp.RecursionAvailable {
			t.Fatal("RA=1")
		}
	})
}

// TestServePacketOddities checks the header screen and parse failures.
func TestServePacketOddities(t *testing.T) {
	s := newTestServer(t, testConfig())
	src := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name string
		pkt  []byte
		want string // rcode, or "" for silence
	}{
		{"empty", nil, ""},
		{"header only", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "FORMERR"},
		{"QR set", []byte{0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0}, ""},
		{"IQUERY", []byte{0, 1, 1 << 3, 0, 0, 1, 0, 0, 0, 0, 0, 0}, "NOTIMP"},
		{"question cut", []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w'}, "FORMERR"},
		{"compression loop", []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, "FORMERR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := servePacket(s, tt.pkt, src, true, newReply().(*reply))
			got := ""
			if out != nil {
				resp := new(dns.Msg)
				if err := resp.Unpack(out); err != nil {
					t.Fatal(err)
				}
				got = rcodeName(resp.Rcode)
			}
			if got != tt.want {
				t.Errorf("rcode %q, want %q", got, tt.want)
			}
		})
	}
}
