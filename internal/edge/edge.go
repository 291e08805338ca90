// Package edge is the site's HTTP front: it receives every request, answers
// its own health path, and proxies the rest to an in-service node chosen by
// internal/balancer (power of two choices, active and passive health, drain,
// retries of idempotent requests). Caching grows here (internal/pagecache).
package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/balancer"
	"github.com/scalepress/scalepress/internal/forward"
	"github.com/scalepress/scalepress/internal/hitfront"
	"github.com/scalepress/scalepress/internal/pagecache"
	"github.com/scalepress/scalepress/internal/token"
	"github.com/scalepress/scalepress/internal/upstream"
)

// The edge's paths and headers are in internal/api (wire.go).
const (
	pollInterval = 500 * time.Millisecond
)

// Edge is one running edge.
type Edge struct {
	spec      api.EdgeSpec
	logger    *slog.Logger
	bal       *balancer.Balancer
	transport *http.Transport  // health checks and the files role
	up        *upstream.Client // the proxy hop to nodes
	retries   int
	// headerTimeout bounds the wait for a node's response head to a GET or
	// HEAD while another node is in service (http.upstream_header_timeout).
	headerTimeout time.Duration

	generation  atomic.Uint64 // of the upstream set applied
	retried     atomic.Int64
	filesServed atomic.Int64 // uploads answered from the files role
	top         topPaths
	cache       *pagecache.Cache // nil when caching is off

	signer      *forward.Signer // nil: no forward key, nodes believe nothing forwarded
	trusted     []netip.Prefix  // front proxies whose X-Forwarded-* are believed
	clients     *clientLimit
	bodyTimeout time.Duration
	maxBody     int64
	logins      *logins // nil: no login throttling
	metrics     *edgeMetrics
	admission   *admissionLog

	keep *os.File // the node set kept across restarts (nil: none)

	tls     *tlsFront        // nil: plain HTTP only
	fast    *hitfront.Server // plain HTTP's fast path; nil: net/http (TLS on, cache.slow_hits)
	fastTLS *hitfront.Server // HTTPS/1.1's fast path; nil: net/http (TLS off, cache.slow_hits)
}

// Option changes how New builds an edge (tests).
type Option func(*balancer.Config)

// New builds an edge from its spec.
func New(spec api.EdgeSpec, logger *slog.Logger, opts ...Option) (*Edge, error) {
	if _, _, err := net.SplitHostPort(spec.Addr); err != nil {
		return nil, fmt.Errorf("edge: addr %q: %w", spec.Addr, err)
	}
	e := &Edge{spec: spec, logger: logger, clients: newClientLimit(spec.HTTP.ClientConcurrency),
		bodyTimeout: 30 * time.Second, maxBody: 64 << 20, headerTimeout: DefaultUpstreamHeaderTimeout}
	if err := e.httpLimits(spec); err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	e.transport = &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       50 * time.Second, // below the node's 75 s idle timeout
		ResponseHeaderTimeout: 130 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	bcfg := balancer.DefaultConfig()
	if spec.SlowStart != "" {
		d, err := time.ParseDuration(spec.SlowStart)
		if err != nil {
			return nil, fmt.Errorf("edge: slow_start: %w", err)
		}
		bcfg.SlowStart = d
	}
	if err := admissionConfig(spec.HTTP, &bcfg); err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(&bcfg)
	}
	var err error
	if e.up, err = upstream.New(upstream.DefaultConfig()); err != nil {
		return nil, err
	}
	bcfg.NewConns = func(addr string) io.Closer { return e.up.NewPool(addr) }
	checker := &balancer.HTTPChecker{Client: &http.Client{Transport: e.transport, Timeout: 2 * time.Second}, Path: api.NodePathHealth}
	bal, err := balancer.New(bcfg, checker, logger)
	if err != nil {
		return nil, err
	}
	e.bal = bal
	e.admission = newAdmissionLog(logger)
	bal.OnQueueWait(e.admission.observeWait)
	e.retries = bcfg.Retry.Max
	if e.cache, err = newCache(spec.Cache); err != nil {
		return nil, err
	}
	if spec.TLS != nil {
		if e.tls, err = newTLSFront(spec, logger); err != nil {
			return nil, err
		}
	}
	if spec.Cache == nil || !spec.Cache.SlowHits {
		// With TLS on, the plain port redirects (plainHandler, net/http)
		// and the fast path serves HTTPS/1.1 (serveTLS).
		fast := &e.fast
		if e.tls != nil {
			fast = &e.fastTLS
		}
		if *fast, err = hitfront.New(hitfront.DefaultConfig(), e.serveFast, logger); err != nil {
			return nil, err
		}
	}
	e.metrics = newEdgeMetrics(e)
	return e, nil
}

// httpLimits reads the spec's forward key and http section.
func (e *Edge) httpLimits(spec api.EdgeSpec) error {
	if spec.ForwardKey != "" {
		k, err := token.ParseKey(spec.ForwardKey)
		if err != nil {
			return fmt.Errorf("edge: forward_key: %w", err)
		}
		if e.signer, err = forward.NewSigner(spec.ID, k); err != nil {
			return fmt.Errorf("edge: %w", err)
		}
	}
	for _, s := range spec.HTTP.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("edge: http.trusted_proxies: %w", err)
		}
		e.trusted = append(e.trusted, p.Masked())
	}
	if spec.HTTP.BodyTimeout != "" {
		d, err := time.ParseDuration(spec.HTTP.BodyTimeout)
		if err != nil || d <= 0 {
			return fmt.Errorf("edge: http.body_timeout %q: must be a positive duration", spec.HTTP.BodyTimeout)
		}
		e.bodyTimeout = d
	}
	if spec.HTTP.UpstreamHeaderTimeout != "" {
		d, err := time.ParseDuration(spec.HTTP.UpstreamHeaderTimeout)
		if err != nil || d <= 0 {
			return fmt.Errorf("edge: http.upstream_header_timeout %q: must be a positive duration", spec.HTTP.UpstreamHeaderTimeout)
		}
		e.headerTimeout = d
	}
	if spec.HTTP.MaxBody > 0 {
		e.maxBody = spec.HTTP.MaxBody
	}
	var err error
	e.logins, err = newLogins(spec.HTTP.LoginThrottle)
	return err
}

// SetUpstreams replaces the node set: new nodes start in slow start, missing
// ones drain.
func (e *Edge) SetUpstreams(ups []api.Upstream) {
	list := make([]balancer.Upstream, 0, len(ups))
	for _, u := range ups {
		list = append(list, balancer.Upstream{ID: u.ID, Addr: u.Addr})
	}
	e.bal.Update(list)
}

// ServeHTTP is the site.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, api.InternalPrefix) {
		e.serveInternal(w, r)
		return
	}
	start := time.Now()
	hit := e.serveSite(w, r, start)
	e.metrics.observe(r.Method, w.Header(), hit, time.Since(start))
}

// serveSite serves a request for the site, which arrived at start:
// refused, from the cache (hit says it was a fresh stored copy) or from a
// node.
func (e *Edge) serveSite(w http.ResponseWriter, r *http.Request, start time.Time) (hit bool) {
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		if r.ContentLength > e.maxBody {
			w.Header().Set(api.HeaderCache, pagecache.XCacheBypass)
			w.Header().Set("Connection", "close") // the body is not read
			client, _, _ := e.clientAddr(r)
			e.refuse(w, r, client, http.StatusRequestEntityTooLarge, "413 request body too large: %d bytes, at most %d (http.max_body_mb)", r.ContentLength, e.maxBody)
			return false
		}
		r.Body = &bodyLimit{body: r.Body, rc: http.NewResponseController(w), timeout: e.bodyTimeout, left: e.maxBody}
	}
	if e.logins != nil && e.serveLogin(w, r) {
		return false
	}
	if e.cache == nil {
		e.forwardToNodes(w, r)
		return false
	}
	return e.serveCached(w, r, start)
}

func (e *Edge) serveInternal(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(api.HeaderCache, pagecache.XCacheBypass)
	switch r.URL.Path {
	case api.EdgePathHealth:
		w.Write([]byte("ok\n"))
		return
	case api.EdgePathPurge: // authenticated by the purge secret, from anywhere
		e.servePurge(w, r)
		return
	}
	// Everything else under /_scalepress/ is for operators on this host.
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || !net.ParseIP(host).IsLoopback() {
		http.NotFound(w, r)
		return
	}
	switch r.URL.Path {
	case api.EdgePathStatus:
		writeJSON(w, e.Status())
	case api.EdgePathTop:
		n, _ := strconv.Atoi(r.URL.Query().Get(api.ParamN))
		writeJSON(w, e.top.top(min(max(n, 1), 100)))
	case api.EdgePathMetrics:
		e.metrics.handler.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// Run serves the site on spec.Addr and follows the upstream list until ctx
// ends, then drains in-flight requests.
func (e *Edge) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", e.spec.Addr)
	if err != nil {
		return fmt.Errorf("edge %s: %w", e.spec.ID, err)
	}
	var handler http.Handler = e
	if e.tls != nil {
		handler = e.plainHandler()
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(e.logger.Handler(), slog.LevelWarn),
	}
	var wg sync.WaitGroup
	bctx, stopBal := context.WithCancel(context.Background())
	wg.Go(func() { e.bal.Run(bctx) })
	wg.Go(func() { e.up.Run(bctx) })
	pctx, stopPoll := context.WithCancel(ctx)
	if e.spec.UpstreamsURL != "" {
		wg.Go(func() { e.poll(pctx) })
	}
	wg.Go(func() { e.reportOverload(pctx) })
	if e.spec.EventsURL != "" && e.logins != nil {
		wg.Go(func() { e.reportLogins(pctx) })
	}
	serveErr := make(chan error, 4)
	if e.fast != nil {
		// Cache hits and plain GET/HEAD bypasses are answered by
		// hitfront (serveFast); it hands every other connection, unread,
		// to srv, which gives it back after a framed answer to a GET or
		// HEAD.
		handoff := e.fast.Handoff(ln.Addr())
		srv.Handler = e.fast.Returning(srv.Handler)
		wg.Go(func() {
			if err := e.fast.Serve(ln); !errors.Is(err, hitfront.ErrClosed) {
				serveErr <- err
			}
		})
		wg.Go(func() { serveErr <- srv.Serve(handoff) })
	} else {
		wg.Go(func() { serveErr <- srv.Serve(ln) })
	}
	stopTLS := func(context.Context) {}
	if e.tls != nil {
		if stopTLS, err = e.serveTLS(ctx, &wg, serveErr); err != nil {
			srv.Close()
			stopPoll()
			stopBal()
			wg.Wait()
			return err
		}
	}
	e.logger.Info("edge listening", "addr", e.spec.Addr, "region", e.spec.Region)
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("edge %s: %w", e.spec.ID, err)
	}
	stopPoll()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	stopTLS(sctx)
	if e.fast != nil {
		e.fast.Shutdown(sctx)
	}
	srv.Shutdown(sctx)
	cancel()
	stopBal()
	wg.Wait()
	e.transport.CloseIdleConnections()
	return runErr
}

// poll follows the controller's in-service set and tells it which
// generation this edge applied (the controller waits for every edge before
// it stops a drained node). The acknowledgement is a write, so it is a POST
// with this edge's own token; it is sent again until it is taken.
func (e *Edge) poll(ctx context.Context) {
	client := api.NewClient(e.spec.UpstreamsURL)
	client.HTTP.Timeout = 2 * time.Second
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var acked uint64
	for {
		var ups api.Upstreams
		// Generation 0 is a controller that published no set yet (one
		// started again, adopting what runs): keep serving with ours. With
		// no answer at all, too: the last set stays until one comes.
		if err := client.Get(ctx, "", &ups); err == nil && ups.Generation != 0 && ups.Generation != e.generation.Load() {
			e.SetUpstreams(ups.Nodes)
			e.generation.Store(ups.Generation)
			e.remember(ups)
			e.logger.Info("upstreams", "generation", ups.Generation, "nodes", len(ups.Nodes))
		}
		if g := e.generation.Load(); g != acked && e.spec.AckURL != "" {
			if err := e.ack(ctx, client.HTTP, g); err != nil {
				e.logger.Warn("upstreams ack failed; will retry", "generation", g, "err", err)
			} else {
				acked = g
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ack tells the controller that generation g is applied.
func (e *Edge) ack(ctx context.Context, hc *http.Client, g uint64) error {
	c := api.Client{Base: e.spec.AckURL, HTTP: hc, Token: e.spec.ControlToken}
	return c.Post(ctx, "", api.UpstreamsAck{Generation: g}, nil)
}
