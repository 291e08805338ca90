package edge

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/balancer"
	"github.com/scalepress/scalepress/internal/pagecache"
	"github.com/scalepress/scalepress/internal/throttle"
)

var errNoHealthyNode = errors.New("no node passes its health checks")

func newCache(spec *api.CacheSpec) (*pagecache.Cache, error) {
	if spec != nil && !spec.Enabled {
		return nil, nil
	}
	cfg := pagecache.DefaultConfig()
	// A purged page is refetched by the next request, which the others wait
	// for (one fetch, no stampede): visitors never see the purged copy
	// again, unless no node can answer (then stale-if-error serves it).
	cfg.SoftPurgeGrace = 0
	if spec != nil {
		if spec.MaxBytes > 0 {
			cfg.MaxBytes = spec.MaxBytes
		}
		for _, d := range []struct {
			dst *time.Duration
			s   string
		}{{&cfg.DefaultTTL, spec.DefaultTTL}, {&cfg.StaticTTL, spec.StaticTTL}} {
			if d.s == "" {
				continue
			}
			v, err := time.ParseDuration(d.s)
			if err != nil {
				return nil, fmt.Errorf("edge: cache ttl %q: %w", d.s, err)
			}
			*d.dst = v
		}
	}
	return pagecache.New(cfg)
}

// serveCached answers through the page cache: a fresh hit is written without
// a node; a miss is fetched once (concurrent misses wait for it) and stored
// when cacheable; when no node answers, a stale copy is served.
func (e *Edge) serveCached(w http.ResponseWriter, r *http.Request, start time.Time) (hit bool) {
	d := e.cache.Classify(r)
	if d.Bypass != "" {
		if pagecache.SafeMethod(r.Method) {
			e.forwardToNodes(w, r)
			return false
		}
		// RFC 9111 §4.4: a non-error answer to an unsafe method invalidates
		// the URL (and its Location / Content-Location on the same host)
		// before the answer goes out.
		e.toNodes(w, r, func(r *http.Request) {
			e.forwardThen(w, r, func(resp *http.Response) {
				e.cache.Invalidate(r, resp.StatusCode, resp.Header)
			})
		})
		return false
	}
	d.At = start.UnixNano() // the cache's clock is time.Now
	if e.cache.ServeHit(w, r, d) {
		return true // hits do not count against the client's cap
	}
	e.toNodes(w, r, func(r *http.Request) {
		res := e.cache.Fill(r.Context(), r, d, func(ctx context.Context, cond pagecache.Conditional) (*pagecache.Response, error) {
			return e.fetch(ctx, r, cond)
		})
		if err := e.cache.Serve(w, r, res); err != nil {
			panic(http.ErrAbortHandler) // the origin failed mid-body: cut the connection
		}
	})
	return false
}

// serveFast answers a request for hitfront (a GET or HEAD without a body,
// plain HTTP/1.1, its header parsed strictly) as ServeHTTP would, with the
// same gates, the same forwarding and the same metrics: a fresh cache hit,
// or a request that goes to a node without the cache (a bypass, or any
// request when the cache is off). It reports false having written
// nothing for the rest, which reaches ServeHTTP through net/http: the
// edge's own paths (purge, status, metrics), login requests (throttled),
// cacheable misses (the fill, ADR 0028 says why).
func (e *Edge) serveFast(w http.ResponseWriter, r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, api.InternalPrefix) || (e.logins != nil && throttle.Classify(r) != throttle.KindNone) {
		return false
	}
	start := time.Now()
	if e.cache == nil {
		e.forwardToNodes(w, r)
		e.metrics.observe(r.Method, w.Header(), false, time.Since(start))
		return true
	}
	d := e.cache.Classify(r)
	if d.Bypass != "" {
		// A GET or HEAD: serveCached's bypass of a safe method.
		e.forwardToNodes(w, r)
		e.metrics.observe(r.Method, w.Header(), false, time.Since(start))
		return true
	}
	d.At = start.UnixNano()
	if !e.cache.ServeHit(w, r, d) {
		return false
	}
	e.metrics.observe(r.Method, w.Header(), true, time.Since(start))
	return true
}

// fetch is the cache's way to a node: a GET of r's URL, with retries on
// another node like any proxied request.
func (e *Edge) fetch(ctx context.Context, r *http.Request, cond pagecache.Conditional) (*pagecache.Response, error) {
	if e.bal.InService() == 0 {
		// Every node fails its health checks (frozen, overloaded, gone):
		// do not wait on one; the cache serves a stale copy if it has one,
		// a clear 503 if not.
		return nil, errNoHealthyNode
	}
	e.top.observe(http.MethodGet, r.URL.Path)
	out := e.outRequest(r)
	out = out.WithContext(ctx)
	out.Method, out.Body, out.ContentLength = http.MethodGet, nil, 0
	cond.Apply(out.Header)
	out.Header.Set("Accept-Encoding", "identity") // the cache compresses once, itself
	resp, node, err := e.roundTripOut(ctx, clientOf(ctx), http.MethodGet, out, nil)
	if err != nil {
		if errors.Is(err, balancer.ErrNoUpstream) {
			return nil, fmt.Errorf("no node in service: %w", err)
		}
		return nil, err
	}
	if !e.spec.Debug {
		resp.Header.Del(api.HeaderNode)
	}
	resp.Header.Del(api.HeaderNodeError)
	if node != nil {
		resp.Body = &doneOnClose{ReadCloser: resp.Body, node: node}
	}
	resp = e.fromFiles(ctx, r, resp, false)
	return pagecache.ResponseFrom(resp), nil
}

// doneOnClose reports the request done to the balancer when the cache has
// read the body.
type doneOnClose struct {
	io.ReadCloser
	node *balancer.Node
	done bool
}

func (d *doneOnClose) Close() error {
	err := d.ReadCloser.Close()
	if !d.done {
		d.done = true
		d.node.Done(balancer.OK)
	}
	return err
}

// servePurge applies a purge request from the controller or an operator.
func (e *Edge) servePurge(w http.ResponseWriter, r *http.Request) {
	want := "Bearer " + e.spec.PurgeSecret
	if e.spec.PurgeSecret == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
		http.Error(w, "purge: missing or wrong bearer token", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, pagecache.MaxPurgeBody+1))
	if err != nil && !errors.As(err, new(*http.MaxBytesError)) {
		http.Error(w, "purge: body: "+err.Error(), http.StatusBadRequest)
		return
	}
	req, err := pagecache.ParsePurgeRequest(r.Method, r.Header, body)
	if err != nil {
		code := http.StatusBadRequest
		switch {
		case errors.Is(err, pagecache.ErrPurgeMethod):
			code = http.StatusMethodNotAllowed
		case errors.Is(err, pagecache.ErrPurgeTooLarge):
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), code)
		return
	}
	n := 0
	if e.cache != nil {
		n = e.cache.Purge(req)
	}
	e.logger.Info("purge", "urls", len(req.URLs), "tags", len(req.Tags), "all", req.All, "soft", req.Soft, "purged", n)
	writeJSON(w, api.EdgePurgeResult{Purged: n})
}
