package geodns

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"

	"github.com/miekg/dns"
)

// ednsUDPSize is the EDNS UDP payload size advertised, and the most a UDP
// answer uses whatever the client offers (DNS flag day 2020: no
// fragmentation).
const ednsUDPSize = 1232

// maxChain bounds CNAME chasing inside the zone.
const maxChain = 8

// reply is the scratch space of one query, pooled so that the hot path
// allocates little: the response message, its sections, the OPT record
// and the pack buffer are reused.
type reply struct {
	msg      dns.Msg
	question [1]dns.Question
	answer   []dns.RR
	ns       []dns.RR
	extra    []dns.RR
	opt      dns.OPT
	optOpts  [1]dns.EDNS0
	// ecsOpt echoes the client subnet; its Data points into ecsData.
	ecsOpt  dns.EDNS0_LOCAL
	ecsData [4 + 16]byte
	buf     []byte
	scratch []weighted

	// Request facts, set by respond.
	edns    bool
	do      bool
	udpSize uint16
	// ecsAddr and ecsBits are the client subnet to place, when the query
	// carried one with a source prefix > 0.
	ecsAddr netip.Addr
	ecsBits int

	info queryInfo
}

// queryInfo is what metrics and the query log learn about one query.
type queryInfo struct {
	qname     string
	qtype     uint16
	rcode     int
	ecs       bool // the query had an ECS option that was echoed
	truncated bool
	geo       bool // a geo answer: placed and served are set
	placed    placement
	served    *edgeSet
	scope     int
}

func newReply() any {
	return &reply{
		buf:     make([]byte, 4096),
		answer:  make([]dns.RR, 0, 8),
		ns:      make([]dns.RR, 0, 1),
		extra:   make([]dns.RR, 0, 4),
		scratch: make([]weighted, 0, 8),
	}
}

// ServeDNS implements dns.Handler: it answers r, counts it and, with
// QueryLog, logs it. A panic is logged and answered with SERVFAIL rather
// than taking the server down.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if r == nil {
		return
	}
	src, udp := remoteAddr(w)
	rp := s.replies.Get().(*reply)
	defer func() {
		if v := recover(); v != nil {
			s.logger.Error("panic answering a query", "panic", v, "stack", string(debug.Stack()))
			fail := &dns.Msg{MsgHdr: dns.MsgHdr{Id: r.Id, Response: true, Opcode: r.Opcode, Rcode: dns.RcodeServerFailure}}
			_ = w.WriteMsg(fail)
			return // rp may be inconsistent: not put back
		}
		s.replies.Put(rp)
	}()
	out := s.respond(r, src, udp, rp)
	if out == nil {
		return
	}
	// A write error means the client is gone; there is no one to tell.
	_, _ = w.Write(out)
	s.count(rp, udp)
	if s.queryLog {
		s.logQuery(rp, src, udp)
	}
}

// remoteAddr returns the client's address and whether it came over UDP.
func remoteAddr(w dns.ResponseWriter) (netip.Addr, bool) {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap(), true
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap(), false
	}
	return netip.Addr{}, true // unknown transport: keep to UDP's limits
}

// respond builds the answer to req from a client at src and returns it
// packed, or nil when nothing is to be sent (req is a response). The
// result aliases rp and is valid until rp is reused.
func (s *Server) respond(req *dns.Msg, src netip.Addr, udp bool, rp *reply) []byte {
	if req.Response {
		return nil
	}
	m := &rp.msg
	*m = dns.Msg{}
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled
	rp.answer, rp.ns, rp.extra = rp.answer[:0], rp.ns[:0], rp.extra[:0]
	rp.edns, rp.do, rp.udpSize = false, false, 0
	rp.ecsAddr, rp.ecsBits = netip.Addr{}, 0
	rp.optOpts[0] = nil
	rp.info = queryInfo{}
	if len(req.Question) > 0 {
		rp.question[0] = req.Question[0]
		m.Question = rp.question[:1]
		rp.info.qname, rp.info.qtype = req.Question[0].Name, req.Question[0].Qtype
	}

	var opt *dns.OPT
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil { // RFC 6891 §6.1.1: one OPT at most
				return s.pack(rp, dns.RcodeFormatError, udp)
			}
			opt = o
		}
	}
	if opt != nil {
		if opt.Hdr.Name != "." {
			return s.pack(rp, dns.RcodeFormatError, udp)
		}
		rp.edns, rp.do, rp.udpSize = true, opt.Do(), opt.UDPSize()
	}

	switch {
	case req.Opcode != dns.OpcodeQuery:
		return s.pack(rp, dns.RcodeNotImplemented, udp)
	case len(req.Question) != 1:
		m.Question = nil
		return s.pack(rp, dns.RcodeFormatError, udp)
	case opt != nil && opt.Version() != 0:
		return s.pack(rp, dns.RcodeBadVers, udp)
	}
	q := &req.Question[0]
	if q.Qclass != dns.ClassINET {
		return s.pack(rp, dns.RcodeRefused, udp)
	}
	name := lowerName(q.Name)
	if !s.zone.contains(name) {
		return s.pack(rp, dns.RcodeRefused, udp) // not ours, and no recursion
	}
	m.Authoritative = true
	if opt != nil && !rp.clientSubnet(opt) {
		return s.pack(rp, dns.RcodeFormatError, udp) // RFC 7871 §7.1
	}
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		return s.pack(rp, dns.RcodeRefused, udp) // no zone transfers
	}
	return s.pack(rp, s.resolve(rp, name, q.Qtype, src), udp)
}

// clientSubnet reads the EDNS Client Subnet option of opt, if any, into rp
// and prepares its echo; false means the option is malformed (RFC 7871
// §7.1: FORMERR). Address lengths are normalised by the DNS library, so
// only the prefix and the bits beyond it can be checked here.
func (rp *reply) clientSubnet(opt *dns.OPT) bool {
	var e *dns.EDNS0_SUBNET
	for _, o := range opt.Option {
		if sub, ok := o.(*dns.EDNS0_SUBNET); ok {
			if e != nil {
				return false // one ECS option per query
			}
			e = sub
		}
	}
	if e == nil {
		return true
	}
	var addr netip.Addr
	switch e.Family {
	case 0:
		if e.SourceNetmask != 0 {
			return false
		}
	case 1:
		ip4 := e.Address.To4()
		if ip4 == nil || e.SourceNetmask > 32 {
			return false
		}
		addr = netip.AddrFrom4([4]byte(ip4))
	case 2:
		if len(e.Address) != net.IPv6len || e.SourceNetmask > 128 {
			return false
		}
		addr = netip.AddrFrom16([16]byte(e.Address))
	default:
		return false
	}
	bits := int(e.SourceNetmask)
	if addr.IsValid() {
		p, err := addr.Prefix(bits)
		if err != nil || p.Addr() != addr {
			return false // bits set beyond the source prefix
		}
	}
	if bits > 0 {
		rp.ecsAddr, rp.ecsBits = addr, bits
	}
	// The echo: family, source prefix, scope (0 until a geo answer sets it),
	// the address truncated to the source prefix.
	n := (bits + 7) / 8
	d := rp.ecsData[:4+n]
	d[0], d[1], d[2], d[3] = byte(e.Family>>8), byte(e.Family), byte(bits), 0
	if n > 0 {
		a := addr.As16()
		if addr.Is4() {
			copy(d[4:], a[12:12+n])
		} else {
			copy(d[4:], a[:n])
		}
	}
	rp.ecsOpt = dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: d}
	rp.optOpts[0] = &rp.ecsOpt
	rp.info.ecs = true
	return true
}

// resolve fills the sections for an in-zone name and returns the RCODE.
func (s *Server) resolve(rp *reply, name string, qtype uint16, src netip.Addr) int {
	for range maxChain {
		n := s.zone.nodes[name]
		switch {
		case n == nil:
			rp.ns = append(rp.ns, s.zone.negSOA)
			return dns.RcodeNameError
		case qtype == dns.TypeANY:
			if len(n.rrsets) == 0 && n.geo < 0 {
				break // an empty non-terminal has nothing: NODATA
			}
			// RFC 8482: a minimal answer, one synthesised HINFO.
			rp.answer = append(rp.answer, n.hinfo)
			return dns.RcodeSuccess
		case n.cname != nil && qtype != dns.TypeCNAME:
			rp.answer = append(rp.answer, n.cname)
			name = n.cname.Target
			if !s.zone.contains(name) {
				return dns.RcodeSuccess // the client's resolver follows it
			}
			continue
		case n.geo >= 0 && (qtype == dns.TypeA || qtype == dns.TypeAAAA):
			before := len(rp.answer)
			s.geoAnswer(rp, n, qtype, src)
			if len(rp.answer) == before {
				rp.ns = append(rp.ns, s.zone.negSOA) // no edge of this family
			}
			return dns.RcodeSuccess
		}
		if rrs := n.rrsets[qtype]; len(rrs) > 0 {
			rp.answer = append(rp.answer, rrs...)
			if qtype == dns.TypeNS {
				rp.extra = append(rp.extra, n.glue...)
			}
			return dns.RcodeSuccess
		}
		rp.ns = append(rp.ns, s.zone.negSOA) // NODATA
		return dns.RcodeSuccess
	}
	return dns.RcodeSuccess // chain too long: answer what we have
}

// geoAnswer places the client and appends the addresses of the region
// that serves it.
func (s *Server) geoAnswer(rp *reply, n *node, qtype uint16, src netip.Addr) {
	var pl placement
	if rp.ecsBits > 0 {
		pl = s.loc.locate(rp.ecsAddr)
		scope := rp.ecsBits
		if pl.bits >= 0 && pl.bits < scope {
			scope = pl.bits
		}
		rp.ecsData[3] = byte(scope)
		rp.info.scope = scope
	} else {
		pl = s.loc.locate(src)
	}
	fam := famV4
	if qtype == dns.TypeAAAA {
		fam = famV6
	}
	set := s.state.Load().serve[fam][pl.region]
	rp.answer = pickWeighted(rp.answer, s.zone.geoRRs[n.geo], set.edges, s.answerCount, &rp.scratch, s.intn)
	rp.info.geo, rp.info.placed, rp.info.served = true, pl, set
}

// pack finishes the response with rcode and packs it. Over UDP an answer
// larger than the client's buffer is compressed, and if still too large
// sent empty with TC=1 so that the client retries over TCP.
func (s *Server) pack(rp *reply, rcode int, udp bool) []byte {
	m := &rp.msg
	m.Rcode = rcode
	if rp.edns {
		rp.opt = dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: ednsUDPSize}}
		if rp.do {
			rp.opt.SetDo()
		}
		if rp.optOpts[0] != nil {
			rp.opt.Option = rp.optOpts[:1]
		}
		rp.extra = append(rp.extra, &rp.opt)
	}
	m.Answer, m.Ns, m.Extra = rp.answer, rp.ns, rp.extra

	limit := dns.MaxMsgSize
	if udp {
		limit = dns.MinMsgSize
		if rp.edns {
			limit = int(min(max(rp.udpSize, dns.MinMsgSize), ednsUDPSize))
		}
	}
	out, err := m.PackBuffer(rp.buf)
	if err == nil && len(out) > limit {
		m.Compress = true
		out, err = m.PackBuffer(rp.buf)
	}
	if err == nil && len(out) > limit {
		m.Truncated = true
		rp.info.truncated = true
		m.Compress = false
		m.Answer, m.Ns, m.Extra = nil, nil, s.optOnly(rp)
		out, err = m.PackBuffer(rp.buf)
	}
	if err != nil {
		s.logger.Warn("cannot pack an answer", "qname", rp.info.qname, "err", err)
		m.Rcode, m.Truncated = dns.RcodeServerFailure, false
		m.Answer, m.Ns, m.Extra = nil, nil, s.optOnly(rp)
		if out, err = m.PackBuffer(rp.buf); err != nil {
			return nil
		}
	}
	if cap(out) > cap(rp.buf) {
		rp.buf = out[:cap(out)] // keep the larger buffer for the next TCP answer
	}
	rp.info.rcode = m.Rcode
	return out
}

func (s *Server) optOnly(rp *reply) []dns.RR {
	if !rp.edns {
		return nil
	}
	return rp.extra[len(rp.extra)-1:]
}

// count updates the counters for the query just answered.
func (s *Server) count(rp *reply, udp bool) {
	c := s.counters
	if udp {
		c.udp.Add(1)
	} else {
		c.tcp.Add(1)
	}
	in := &rp.info
	if in.rcode >= 0 && in.rcode < numRcodes {
		c.rcodes[in.rcode].Add(1)
	}
	c.qtypes[qtypeIndex(in.qtype)].Add(1)
	if in.ecs {
		c.ecs.Add(1)
	}
	if in.truncated {
		c.truncated.Add(1)
	}
	if in.geo {
		c.matched[in.placed.region].Add(1)
		if in.served.region >= 0 && len(in.served.edges) > 0 {
			c.served[in.served.region].Add(1)
		}
		if in.served.fallback {
			c.fallbacks.Add(1)
		}
		if in.served.failOpen {
			c.failOpen.Add(1)
		}
	}
}

func (s *Server) logQuery(rp *reply, src netip.Addr, udp bool) {
	ctx := context.Background()
	if !s.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	in := &rp.info
	proto := "udp"
	if !udp {
		proto = "tcp"
	}
	attrs := []slog.Attr{
		slog.String("client", src.String()),
		slog.String("proto", proto),
		slog.String("qname", in.qname),
		slog.String("qtype", dns.Type(in.qtype).String()),
		slog.String("rcode", rcodeName(in.rcode)),
		slog.Int("answers", len(rp.msg.Answer)),
	}
	if in.ecs {
		ecs := "0"
		if rp.ecsBits > 0 {
			ecs = netip.PrefixFrom(rp.ecsAddr, rp.ecsBits).String()
		}
		attrs = append(attrs, slog.String("ecs", ecs), slog.Int("scope", in.scope))
	}
	if in.truncated {
		attrs = append(attrs, slog.Bool("truncated", true))
	}
	if in.geo {
		served := "all"
		if in.served.region >= 0 {
			served = s.regionNames[in.served.region]
		}
		attrs = append(attrs,
			slog.String("region", s.regionNames[in.placed.region]),
			slog.String("placed_by", in.placed.how),
			slog.String("served_by", served))
	}
	s.logger.LogAttrs(ctx, slog.LevelDebug, "query", attrs...)
}
