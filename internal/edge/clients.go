package edge

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/guard"
	"github.com/scalepress/scalepress/internal/pagecache"
)

// clientAddr is the effective client of r: the TCP peer, or, when the peer
// is a trusted proxy, the rightmost X-Forwarded-For address that is not one
// (proxies append the address they saw; entries left of the first
// untrusted one are that client's own claims). xff is what the edge
// forwards as X-Forwarded-For: the chain up to and including the client, so
// that its last entry is always the client the edge vouches for. trusted
// reports whether the peer is a trusted proxy, whose X-Forwarded-Proto and
// -Host are believed too.
func (e *Edge) clientAddr(r *http.Request) (client netip.Addr, xff string, trusted bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, "", false
	}
	peer := ap.Addr().Unmap()
	if len(e.trusted) == 0 || !e.isTrustedProxy(peer) {
		return peer, peer.String(), false
	}
	chain := strings.Join(r.Header.Values("X-Forwarded-For"), ",")
	client, xff = peer, peer.String()
	for end := len(chain); end > 0; {
		i := strings.LastIndexByte(chain[:end], ',')
		ip, err := netip.ParseAddr(strings.TrimSpace(chain[i+1 : end]))
		if err != nil {
			break // garbage: the last good hop is the client
		}
		client, xff = ip.Unmap(), strings.TrimSpace(chain[:end])
		if !e.isTrustedProxy(client) {
			break
		}
		end = max(i, 0)
	}
	return client, xff, true
}

func (e *Edge) isTrustedProxy(ip netip.Addr) bool {
	for _, p := range e.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientLimit caps the requests one client address has in flight to the
// nodes, so one client cannot take every PHP worker of the site.
type clientLimit struct {
	max     int // 0 = no cap
	refused atomic.Int64

	mu       sync.Mutex
	inflight map[netip.Addr]int
}

func newClientLimit(max int) *clientLimit {
	return &clientLimit{max: max, inflight: make(map[netip.Addr]int)}
}

// acquire takes a slot for client; false when it has max in flight.
func (l *clientLimit) acquire(client netip.Addr) bool {
	if l.max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[client] >= l.max {
		l.refused.Add(1)
		return false
	}
	l.inflight[client]++
	return true
}

func (l *clientLimit) release(client netip.Addr) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.inflight[client]; n <= 1 {
		delete(l.inflight, client) // the map holds only clients with requests in flight
	} else {
		l.inflight[client] = n - 1
	}
}

// toNodes runs next (a request that goes to a node) within the client's
// cap, or answers 429. next's request carries the client for admission
// control's fairness (clientOf).
func (e *Edge) toNodes(w http.ResponseWriter, r *http.Request, next func(*http.Request)) {
	c, ok := e.admitClient(w, r)
	if !ok {
		return
	}
	defer e.clients.release(c.addr)
	next(r.WithContext(context.WithValue(r.Context(), clientKey{}, c.addr)))
}

// forwardToNodes is toNodes(w, r, forward) without a copy of the request
// and its context per request (the proxy hop's fast path): the client
// goes to forwardAs itself.
func (e *Edge) forwardToNodes(w http.ResponseWriter, r *http.Request) {
	c, ok := e.admitClient(w, r)
	if !ok {
		return
	}
	defer e.clients.release(c.addr)
	e.forwardAs(w, r, c, nil)
}

// admitClient takes a slot of r's client under http.client_concurrency,
// or answers 429 and reports false.
func (e *Edge) admitClient(w http.ResponseWriter, r *http.Request) (reqClient, bool) {
	c := e.clientFor(r)
	if !e.clients.acquire(c.addr) {
		w.Header().Set(api.HeaderCache, pagecache.XCacheBypass)
		w.Header().Set("Retry-After", "1")
		e.refuse(w, r, c.addr, http.StatusTooManyRequests,
			"429 too many requests: %s has %d requests in flight (http.client_concurrency)", c.addr, e.clients.max)
		return c, false
	}
	return c, true
}

// reqClient is clientAddr's view of a request, computed once per request.
type reqClient struct {
	addr    netip.Addr
	xff     string
	trusted bool
}

func (e *Edge) clientFor(r *http.Request) reqClient {
	addr, xff, trusted := e.clientAddr(r)
	return reqClient{addr: addr, xff: xff, trusted: trusted}
}

// key is admission control's key for c, as clientOf(ctx) gives it: its
// address, "" when there is none.
func (c reqClient) key() string {
	if !c.addr.IsValid() {
		return ""
	}
	if !c.trusted {
		return c.xff // the peer's address, rendered already
	}
	return c.addr.String()
}

type clientKey struct{}

// clientOf is the client toNodes put in ctx, as admission control's key
// ("" when there is none: one anonymous client).
func clientOf(ctx context.Context) string {
	if c, ok := ctx.Value(clientKey{}).(netip.Addr); ok && c.IsValid() {
		return c.String()
	}
	return ""
}

// refuse is guard.Refuse, logging the effective client address.
func (e *Edge) refuse(w http.ResponseWriter, r *http.Request, client netip.Addr, status int, format string, args ...any) {
	if client.IsValid() {
		r2 := *r
		r2.RemoteAddr = client.String()
		r = &r2
	}
	guard.Refuse(w, r, e.logger, status, format, args...)
}
