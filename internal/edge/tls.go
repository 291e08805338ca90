package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/edgetls"
	"github.com/scalepress/scalepress/internal/hitfront"
	"github.com/scalepress/scalepress/internal/token"
)

// tlsFront is the edge's HTTPS side (docs/adr/0013-edge-tls.md): the
// certificates, what plain HTTP does (redirect, ACME challenges), and the
// headers HTTPS responses carry.
type tlsFront struct {
	spec            api.TLSSpec
	mgr             *edgetls.Manager
	httpsPort       string // "" when it is 443: redirects leave it out
	hsts            string // Strict-Transport-Security value; "" = none
	altSvc          string // Alt-Svc value when HTTP/3 is on
	handshakeErrors atomic.Int64
	events          chan api.TLSEvent
}

// newTLSFront builds the HTTPS side from the spec; a certificate file that
// does not load is an error naming it.
func newTLSFront(spec api.EdgeSpec, logger *slog.Logger) (*tlsFront, error) {
	ts := *spec.TLS
	host, port, err := net.SplitHostPort(ts.Addr)
	if err != nil {
		return nil, fmt.Errorf("edge: tls.addr %q: %w", ts.Addr, err)
	}
	f := &tlsFront{spec: ts, events: make(chan api.TLSEvent, 64)}
	if port != "443" {
		f.httpsPort = port
	}
	if ts.HSTS > 0 {
		f.hsts = "max-age=" + strconv.FormatInt(ts.HSTS, 10)
	}
	if ts.HTTP3 {
		f.altSvc = `h3=":` + port + `"; ma=86400`
	}
	cfg := edgetls.DefaultConfig()
	cfg.Logger = logger.With("component", "tls")
	cfg.Event = f.event
	for _, c := range ts.Certificates {
		cfg.Certificates = append(cfg.Certificates, edgetls.CertFile{CertFile: c.CertFile, KeyFile: c.KeyFile})
	}
	if ts.TicketKey != "" {
		if cfg.TicketKey, err = token.ParseKey(ts.TicketKey); err != nil {
			return nil, fmt.Errorf("edge: tls.ticket_key: %w", err)
		}
	}
	if a := ts.ACME; a != nil {
		ci, err := time.ParseDuration(a.CheckInterval)
		if err != nil {
			return nil, fmt.Errorf("edge: tls.acme.check_interval: %w", err)
		}
		_, httpPort, _ := net.SplitHostPort(spec.Addr)
		hp, _ := strconv.Atoi(httpPort)
		tp, _ := strconv.Atoi(port)
		ac := &edgetls.ACME{Email: a.Email, DirectoryURL: a.DirectoryURL, Names: a.Names, Storage: a.Storage,
			CheckInterval: ci, ListenHost: host, HTTPPort: hp, TLSPort: tp}
		if a.CAPEM != "" {
			b := []byte(a.CAPEM)
			ac.Roots, _ = x509.SystemCertPool()
			if ac.Roots == nil {
				ac.Roots = x509.NewCertPool()
			}
			if !ac.Roots.AppendCertsFromPEM(b) {
				return nil, errors.New("edge: tls.acme.ca_pem: no PEM certificate")
			}
		}
		cfg.ACME = ac
	}
	if f.mgr, err = edgetls.New(cfg); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	return f, nil
}

// event queues an event for the controller; a full queue drops it (it was
// logged already).
func (f *tlsFront) event(alert bool, msg string) {
	if len(msg) > api.MaxEventMessage {
		msg = msg[:api.MaxEventMessage]
	}
	select {
	case f.events <- api.TLSEvent{Alert: alert, Message: msg}:
	default:
	}
}

// plainHandler is what the HTTP port serves with TLS on: ACME HTTP-01
// challenges, the edge's own paths, and either the site or a 308 to https.
func (e *Edge) plainHandler() http.Handler {
	f := e.tls
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.mgr.HandleHTTPChallenge(w, r) {
			return
		}
		if !f.spec.RedirectHTTP || strings.HasPrefix(r.URL.Path, api.InternalPrefix) || edgetls.IsChallenge(r) {
			e.ServeHTTP(w, r)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !redirectableHost(host) {
			client, _, _ := e.clientAddr(r)
			e.refuse(w, r, client, http.StatusBadRequest, "400 bad request: Host %q is not a name to redirect to https", r.Host)
			return
		}
		if f.httpsPort != "" {
			host = net.JoinHostPort(host, f.httpsPort)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
		w.Header().Set(api.HeaderCache, "BYPASS")
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}

// redirectableHost: a DNS name or an IP literal, nothing a Location could
// be bent with.
func redirectableHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
		_, err := net.ResolveIPAddr("ip6", h)
		return err == nil && strings.Contains(h, ":") && !strings.ContainsAny(h, "/%")
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// secureHandler is what HTTPS (and HTTP/3) serve: the site, with HSTS and
// Alt-Svc.
func (e *Edge) secureHandler() http.Handler {
	f := e.tls
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if f.hsts != "" {
			h.Set("Strict-Transport-Security", f.hsts)
		}
		if f.altSvc != "" && r.ProtoMajor < 3 {
			h.Set("Alt-Svc", f.altSvc)
		}
		e.ServeHTTP(w, r)
	})
}

// serveTLS listens on the HTTPS address (and UDP for HTTP/3) and serves
// until ctx ends; the returned func shuts the servers down gracefully.
func (e *Edge) serveTLS(ctx context.Context, wg *sync.WaitGroup, serveErr chan<- error) (shutdown func(context.Context), err error) {
	f := e.tls
	ln, err := net.Listen("tcp", f.spec.Addr)
	if err != nil {
		return nil, fmt.Errorf("edge %s: https: %w", e.spec.ID, err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	srv := &http.Server{
		Handler:           e.secureHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Also HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE.
		MaxHeaderBytes: 64 << 10,
		Protocols:      &protos,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: f.spec.MaxStreams,
			// Go's defaults otherwise: a 16 KiB frame size, 1 MiB of
			// receive window per stream, 4 KiB HPACK tables; a ping
			// after 15 s of silence closes a dead connection.
			SendPingTimeout:  15 * time.Second,
			PingTimeout:      15 * time.Second,
			WriteByteTimeout: 30 * time.Second,
		},
		ErrorLog: log.New(&handshakeLog{f: f, logger: e.logger}, "", 0),
	}
	fast := e.fastTLS
	if fast != nil {
		// HTTP/1.1 cache hits and plain GET/HEAD bypasses are answered by
		// hitfront after the handshake, as on the plain port; it hands
		// h2 connections and every other request to srv (ConnContext
		// keeps the TLS state of those it read from). HSTS and Alt-Svc
		// are its fixed fields, as secureHandler sets them.
		hdr := http.Header{}
		if f.hsts != "" {
			hdr.Set("Strict-Transport-Security", f.hsts)
		}
		if f.altSvc != "" {
			hdr.Set("Alt-Svc", f.altSvc)
		}
		t := hitfront.TLS{Config: f.mgr.TLSConfig(), Header: hdr, HandshakeError: func(remote net.Addr, reason string) {
			f.handshakeErrors.Add(1)
			e.logger.Debug("http: TLS handshake error from " + remote.String() + ": " + reason)
		}}
		handoff := fast.Handoff(ln.Addr())
		srv.Handler = fast.Returning(srv.Handler)
		srv.ConnContext = hitfront.ConnContext
		wg.Go(func() {
			if err := fast.ServeTLS(ln, t); !errors.Is(err, hitfront.ErrClosed) {
				serveErr <- fmt.Errorf("https: %w", err)
			}
		})
		wg.Go(func() {
			if err := srv.Serve(handoff); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("https: %w", err)
			}
		})
	} else {
		tln := tls.NewListener(ln, f.mgr.TLSConfig())
		wg.Go(func() {
			if err := srv.Serve(tln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("https: %w", err)
			}
		})
	}
	mctx, stopMgr := context.WithCancel(context.Background())
	wg.Go(func() {
		if err := f.mgr.Run(mctx); err != nil {
			serveErr <- err
		}
	})
	var h3 *http3.Server
	if f.spec.HTTP3 {
		pc, err := net.ListenPacket("udp", f.spec.Addr)
		if err != nil {
			stopMgr()
			srv.Close()
			return nil, fmt.Errorf("edge %s: http3: %w", e.spec.ID, err)
		}
		base := f.mgr.TLSConfig()
		h3 = &http3.Server{
			Handler: e.secureHandler(),
			// A clone per handshake, so the rotating ticket keys and
			// the certificates follow.
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				c := base.Clone()
				c.NextProtos = []string{http3.NextProtoH3}
				return c, nil
			}},
			QUICConfig:     &quic.Config{MaxIncomingStreams: int64(f.spec.MaxStreams), MaxIncomingUniStreams: 16, Allow0RTT: false},
			MaxHeaderBytes: 64 << 10,
			IdleTimeout:    120 * time.Second,
			Logger:         e.logger.With("component", "http3"),
		}
		wg.Go(func() {
			if err := h3.Serve(pc); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
				serveErr <- fmt.Errorf("http3: %w", err)
			}
		})
	}
	ectx, stopEvents := context.WithCancel(ctx)
	if e.spec.EventsURL != "" {
		wg.Go(func() { e.sendEvents(ectx) })
	}
	e.logger.Info("edge serving https", "addr", f.spec.Addr, "http3", f.spec.HTTP3, "redirect_http", f.spec.RedirectHTTP)
	return func(sctx context.Context) {
		stopEvents()
		if h3 != nil {
			h3.Shutdown(sctx)
		}
		if fast != nil {
			fast.Shutdown(sctx)
		}
		srv.Shutdown(sctx)
		stopMgr()
	}, nil
}

// sendEvents posts the TLS events to the controller's event log
// (APIPathEdgeEvents, with the login blocks' report), as they happen.
func (e *Edge) sendEvents(ctx context.Context) {
	c := api.Client{Base: e.spec.EventsURL, HTTP: &http.Client{Timeout: 5 * time.Second}, Token: e.spec.ControlToken}
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.tls.events:
			batch := []api.TLSEvent{ev}
			for len(batch) < api.MaxEdgeEvents && len(e.tls.events) > 0 {
				batch = append(batch, <-e.tls.events)
			}
			if err := c.Post(ctx, "", api.EdgeEvents{TLS: batch}, nil); err != nil && ctx.Err() == nil {
				e.logger.Warn("tls events not delivered to the controller", "err", err, "events", len(batch))
			}
		}
	}
}

// handshakeLog takes net/http's error log of the HTTPS server: TLS
// handshake failures (scanners, no SNI, unknown names, old clients) are
// counted and logged at debug, anything else at warn.
type handshakeLog struct {
	f      *tlsFront
	logger *slog.Logger
}

func (l *handshakeLog) Write(p []byte) (int, error) {
	msg := string(bytes.TrimSpace(p))
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		l.f.handshakeErrors.Add(1)
		l.logger.Debug(msg)
	} else {
		l.logger.Warn(msg)
	}
	return len(p), nil
}

// TLSStatus is the edge's HTTPS side in its status.
type TLSStatus struct {
	Addr            string           `json:"addr"`
	Certificates    []api.CertStatus `json:"certificates"`
	HandshakeErrors int64            `json:"handshake_errors"`
	RefusedNoSNI    int64            `json:"refused_no_sni"`
	RefusedUnknown  int64            `json:"refused_unknown_name"`
}

func (f *tlsFront) status() *TLSStatus {
	st := &TLSStatus{Addr: f.spec.Addr, HandshakeErrors: f.handshakeErrors.Load(), Certificates: []api.CertStatus{}}
	st.RefusedNoSNI, st.RefusedUnknown = f.mgr.Refused()
	for _, c := range f.mgr.Certificates() {
		st.Certificates = append(st.Certificates, api.CertStatus{Names: c.Names, Issuer: c.Issuer,
			NotAfter: c.NotAfter.UTC().Format(time.RFC3339), Source: c.Source})
	}
	return st
}
