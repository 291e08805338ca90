// Package edge is the site's HTTP front: it receives every request, answers
// its own health path, and proxies the rest to an in-service node. Caching and
// smart balancing grow here (pagecache, balancer); this version balances round
// robin and marks every response X-Cache: BYPASS.
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// Paths and headers of the edge.
const (
	PathHealth   = "/_scalepress/edge/health"
	internalPfx  = "/_scalepress/"
	HeaderCache  = "X-Cache"
	HeaderNode   = "X-Scalepress-Node"
	HeaderEdge   = "X-Scalepress-Edge"
	cacheBypass  = "BYPASS"
	pollInterval = 500 * time.Millisecond
)

// Edge is one running edge.
type Edge struct {
	spec   api.EdgeSpec
	logger *slog.Logger
	proxy  *httputil.ReverseProxy

	upstreams atomic.Pointer[[]*url.URL]
	next      atomic.Uint64
}

// New builds an edge from its spec.
func New(spec api.EdgeSpec, logger *slog.Logger) (*Edge, error) {
	if _, _, err := net.SplitHostPort(spec.Addr); err != nil {
		return nil, fmt.Errorf("edge: addr %q: %w", spec.Addr, err)
	}
	e := &Edge{spec: spec, logger: logger}
	empty := []*url.URL{}
	e.upstreams.Store(&empty)
	dialer := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	// Connect from the edge's own address: nodes trust X-Forwarded-* by source IP.
	if host, _, _ := net.SplitHostPort(spec.Addr); host != "" {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			dialer.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       50 * time.Second, // below the node's 75 s idle timeout
		ResponseHeaderTimeout: 130 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	e.proxy = &httputil.ReverseProxy{
		Rewrite:        e.rewrite,
		Transport:      transport,
		ModifyResponse: e.modifyResponse,
		ErrorHandler:   e.errorHandler,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		FlushInterval:  -1,
	}
	return e, nil
}

// SetUpstreams replaces the node set.
func (e *Edge) SetUpstreams(ups []api.Upstream) {
	list := make([]*url.URL, 0, len(ups))
	for _, u := range ups {
		list = append(list, &url.URL{Scheme: "http", Host: u.Addr})
	}
	e.upstreams.Store(&list)
}

var errNoUpstream = errors.New("no node in service")

type ctxKey struct{}

func (e *Edge) pick() *url.URL {
	list := *e.upstreams.Load()
	if len(list) == 0 {
		return nil
	}
	return list[e.next.Add(1)%uint64(len(list))]
}

func (e *Edge) rewrite(pr *httputil.ProxyRequest) {
	target := pr.In.Context().Value(ctxKey{}).(*url.URL)
	pr.SetURL(target)
	pr.Out.Host = pr.In.Host // WordPress answers for the site's host, not the node's
	pr.SetXForwarded()
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	pr.Out.Header.Set("X-Forwarded-Proto", proto)
}

func (e *Edge) modifyResponse(resp *http.Response) error {
	resp.Header.Set(HeaderCache, cacheBypass)
	if !e.spec.Debug {
		resp.Header.Del(HeaderNode)
	}
	return nil
}

func (e *Edge) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	e.logger.Warn("proxy error", "uri", r.RequestURI, "err", err)
	w.Header().Set(HeaderCache, cacheBypass)
	http.Error(w, "502 bad gateway: the node did not answer", http.StatusBadGateway)
}

// ServeHTTP is the site.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, internalPfx) {
		w.Header().Set(HeaderCache, cacheBypass)
		if r.URL.Path == PathHealth {
			w.Write([]byte("ok\n"))
			return
		}
		http.NotFound(w, r)
		return
	}
	target := e.pick()
	if target == nil {
		w.Header().Set(HeaderCache, cacheBypass)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "503 service unavailable: "+errNoUpstream.Error(), http.StatusServiceUnavailable)
		return
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, target)
	e.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// Run serves the site on spec.Addr and follows the upstream list until ctx
// ends, then drains in-flight requests.
func (e *Edge) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", e.spec.Addr)
	if err != nil {
		return fmt.Errorf("edge %s: %w", e.spec.ID, err)
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(e.logger.Handler(), slog.LevelWarn),
	}
	var wg sync.WaitGroup
	pctx, stopPoll := context.WithCancel(ctx)
	if e.spec.UpstreamsURL != "" {
		wg.Go(func() { e.poll(pctx) })
	}
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })
	e.logger.Info("edge listening", "addr", e.spec.Addr, "region", e.spec.Region)
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("edge %s: %w", e.spec.ID, err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	srv.Shutdown(sctx)
	cancel()
	stopPoll()
	wg.Wait()
	return runErr
}

func (e *Edge) poll(ctx context.Context) {
	client := api.NewClient(e.spec.UpstreamsURL)
	client.HTTP.Timeout = 2 * time.Second
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var gen uint64
	for {
		var ups api.Upstreams
		if err := client.Get(ctx, "", &ups); err == nil && (ups.Generation != gen || gen == 0) {
			gen = ups.Generation
			e.SetUpstreams(ups.Nodes)
			e.logger.Info("upstreams", "generation", gen, "nodes", len(ups.Nodes))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
