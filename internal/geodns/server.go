package geodns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"

	"github.com/scalepress/scalepress/internal/metrics"
)

// Server is an authoritative DNS server for one zone that answers the geo
// names with the edges of the client's nearest healthy region.
type Server struct {
	cfg         Config
	logger      *slog.Logger
	zone        *zone
	loc         *locator
	regionNames []string
	edges       []edgeInfo
	fallbacks   [][]int
	defRegion   int
	answerCount int
	queryLog    bool
	intn        func(int) int
	checker     *checker
	counters    *counters
	replies     sync.Pool

	// state is the current health and who answers whom; replaced whole.
	state atomic.Pointer[answerState]

	// mu guards the sockets, bound by Listen and served by Run.
	mu        sync.Mutex
	udpConn   net.PacketConn
	tcpLn     net.Listener
	metricsLn net.Listener // nil without Config.MetricsAddr
	running   bool
}

// Option customises New.
type Option func(*options)

type options struct {
	prober Prober
	clock  Clock
	geo    GeoIP
}

// Timeouts of the DNS transports.
const (
	tcpReadTimeout  = 2 * time.Second
	tcpIdleTimeout  = 8 * time.Second // RFC 7766 suggests seconds
	writeTimeout    = 2 * time.Second
	shutdownTimeout = 5 * time.Second
	udpReadSize     = 4096 // larger queries are cut and then fail to parse
)

// New checks cfg, opens its GeoIP database if needed and builds the zone;
// serving starts with Run. logger may be nil.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "geodns")
	o := options{clock: realClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.prober == nil {
		o.prober = NewHTTPProber(cfg.Health.Path)
	}

	usesGeo := false
	for _, r := range cfg.Regions {
		usesGeo = usesGeo || len(r.Countries) > 0 || len(r.Continents) > 0
	}
	if usesGeo && o.geo == nil {
		if cfg.GeoIPPath == "" {
			return nil, errors.New("geodns: geoip_path: regions list countries or continents, so a GeoIP database is needed; set geoip_path to a GeoLite2/GeoIP2 Country or City file")
		}
		db, err := OpenMMDB(cfg.GeoIPPath)
		if err != nil {
			return nil, err
		}
		o.geo = db
	}

	s := &Server{
		cfg:         cfg,
		logger:      logger,
		answerCount: cfg.AnswerCount,
		queryLog:    cfg.QueryLog,
		intn:        rand.IntN,
	}
	s.replies.New = newReply
	index := make(map[string]int, len(cfg.Regions))
	for i, r := range cfg.Regions {
		index[r.Name] = i
		s.regionNames = append(s.regionNames, r.Name)
	}
	if cfg.DefaultRegion != "" {
		s.defRegion = index[cfg.DefaultRegion]
	}
	var edgeRegion []string
	for i, r := range cfg.Regions {
		var fb []int
		for _, f := range r.Fallback {
			fb = append(fb, index[f])
		}
		s.fallbacks = append(s.fallbacks, fb)
		for _, e := range r.Edges {
			w := e.Weight
			if w == 0 {
				w = 1
			}
			s.edges = append(s.edges, edgeInfo{region: i, addr: netip.MustParseAddr(e.IP), healthAddr: e.HealthAddr, weight: int32(w)})
			edgeRegion = append(edgeRegion, r.Name)
		}
	}
	serial := cfg.SOA.Serial
	if serial == 0 {
		serial = uint32(o.clock.Now().Unix())
	}
	z, err := buildZone(cfg, s.edges, serial)
	if err != nil {
		return nil, fmt.Errorf("geodns: zone: %w", err)
	}
	s.zone = z
	s.loc = newLocator(cfg.Regions, s.defRegion, o.geo)
	s.counters = newCounters(s.regionNames)
	s.checker = newChecker(cfg.Health, s.edges, edgeRegion, o.prober, o.clock, logger, s.publish)
	up := make([]bool, len(s.edges))
	for i := range up {
		up[i] = true
	}
	s.publish(up)
	return s, nil
}

// publish replaces the answer state after a health change.
func (s *Server) publish(edgeUp []bool) {
	st := buildState(s.cfg.Regions, s.fallbacks, s.defRegion, s.edges, edgeUp)
	if old := s.state.Swap(st); old != nil {
		for i, name := range s.regionNames {
			if old.regionUp[i] != st.regionUp[i] {
				s.logger.Info("region health changed", "region", name, "healthy", st.regionUp[i])
			}
		}
	}
}

// Health returns whether each region has a healthy edge.
func (s *Server) Health() map[string]bool {
	st := s.state.Load()
	h := make(map[string]bool, len(s.regionNames))
	for i, name := range s.regionNames {
		h[name] = st.regionUp[i]
	}
	return h
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats { return s.counters.Snapshot() }

// MetricsAddr returns the address Run serves metrics on once Listen has
// bound it, "" without Config.MetricsAddr.
func (s *Server) MetricsAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// MetricsHandler serves the counters and region health, with the Go and
// process collectors, in the Prometheus exposition formats.
func (s *Server) MetricsHandler() http.Handler {
	return metrics.Handler(metrics.NewRegistry(newCollector(s)))
}

// Listen binds the UDP and TCP sockets of Config.Addr (one port for both,
// also when the port is 0). Run calls it if needed; calling it first lets
// the caller learn Addr before serving.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udpConn != nil {
		return nil
	}
	host, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("geodns: listen: %w", err)
	}
	tries := 1
	if port == "0" {
		tries = 16 // another process may take the TCP side of a random UDP port
	}
	for try := 1; ; try++ {
		pc, err := net.ListenPacket("udp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("geodns: listen: %w", err)
		}
		bound := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, bound))
		if err != nil {
			_ = pc.Close()
			if try < tries {
				continue
			}
			return fmt.Errorf("geodns: listen: %w", err)
		}
		if s.cfg.MetricsAddr != "" {
			mln, err := net.Listen("tcp", s.cfg.MetricsAddr)
			if err != nil {
				pc.Close()
				ln.Close()
				return fmt.Errorf("geodns: listen metrics: %w", err)
			}
			s.metricsLn = mln
		}
		s.udpConn, s.tcpLn = pc, ln
		return nil
	}
}

// Addr returns the bound address after Listen, else Config.Addr.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udpConn != nil {
		return s.udpConn.LocalAddr().String()
	}
	return s.cfg.Addr
}

// Run serves DNS over UDP and TCP and checks the edges' health until ctx
// is done, then stops accepting, lets queries in flight finish (up to 5 s)
// and returns nil. It returns an error if a socket fails. Run may be
// called once.
//
// Over TCP, a connection may carry any number of queries (pipelined or
// not) and is closed after 8 s idle or 2 s into an unfinished message;
// MaxTCPConns bounds the connections, so memory for TCP messages (at most
// 64 KiB each, the protocol's limit) is bounded too.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("geodns: run: already running")
	}
	s.running = true
	pc, ln, mln := s.udpConn, s.tcpLn, s.metricsLn
	s.mu.Unlock()
	if s.cfg.MaxTCPConns > 0 {
		ln = netutil.LimitListener(ln, s.cfg.MaxTCPConns)
	}

	udp := s.newDNSServer()
	udp.PacketConn, udp.UDPSize = pc, udpReadSize
	tcp := s.newDNSServer()
	tcp.Listener = ln
	servers := []*serving{startServing(udp), startServing(tcp)}
	s.logger.Info("serving", "addr", pc.LocalAddr().String(), "zone", s.zone.origin)

	hctx, stopHealth := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.checker.run(hctx) })
	if mln != nil {
		srv := &http.Server{Handler: s.monitorHandler(mln.Addr().String()), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() { srv.Serve(mln) })
		wg.Go(func() {
			<-hctx.Done()
			srv.Close()
		})
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-servers[0].done:
		servers[0].exited, runErr = true, fmt.Errorf("geodns: serve udp: %w", errOrStopped(err))
	case err := <-servers[1].done:
		servers[1].exited, runErr = true, fmt.Errorf("geodns: serve tcp: %w", errOrStopped(err))
	}

	stopHealth()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	for _, sv := range servers {
		sv.stop(sctx)
	}
	wg.Wait()
	s.logger.Info("stopped", "addr", pc.LocalAddr().String())
	return runErr
}

func errOrStopped(err error) error {
	if err == nil {
		return errors.New("stopped unexpectedly")
	}
	return err
}

func (s *Server) newDNSServer() *dns.Server {
	return &dns.Server{
		Handler:        s,
		ReadTimeout:    tcpReadTimeout,
		WriteTimeout:   writeTimeout,
		IdleTimeout:    func() time.Duration { return tcpIdleTimeout },
		MsgAcceptFunc:  s.accept,
		MsgInvalidFunc: func([]byte, error) { s.counters.rejected.Add(1) },
		MaxTCPQueries:  -1, // the idle timeout ends connections; a count cuts pipelines
	}
}

// accept screens a message by its header before it is parsed: responses
// are dropped (never answer an answer), other opcodes than QUERY get
// NOTIMP, and a query must have one question and nothing in the answer
// and authority sections (FORMERR otherwise).
func (s *Server) accept(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	action := dns.MsgAccept
	switch {
	case dh.Bits&qr != 0:
		action = dns.MsgIgnore
	case int(dh.Bits>>11)&0xF != dns.OpcodeQuery:
		action = dns.MsgRejectNotImplemented
	case dh.Qdcount != 1 || dh.Ancount != 0 || dh.Nscount != 0 || dh.Arcount > 2:
		action = dns.MsgReject
	}
	if action != dns.MsgAccept {
		s.counters.rejected.Add(1)
	}
	return action
}

// serving is one dns.Server run by Run.
type serving struct {
	srv     *dns.Server
	started chan struct{}
	done    chan error
	exited  bool // done was received
}

func startServing(srv *dns.Server) *serving {
	sv := &serving{srv: srv, started: make(chan struct{}), done: make(chan error, 1)}
	srv.NotifyStartedFunc = func() { close(sv.started) }
	go func() { sv.done <- srv.ActivateAndServe() }()
	return sv
}

// stop shuts the server down once it has started (or failed to) and waits
// for its serving goroutine.
func (sv *serving) stop(ctx context.Context) {
	if sv.exited {
		return
	}
	select {
	case <-sv.started:
		_ = sv.srv.ShutdownContext(ctx) // past ctx, in-flight queries are abandoned
	case <-sv.done:
		sv.exited = true
		return
	}
	<-sv.done
	sv.exited = true
}
