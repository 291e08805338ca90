package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/fastcgi"
	"github.com/scalepress/scalepress/internal/forward"
	"github.com/scalepress/scalepress/internal/guard"
)

// The agent's own paths (api.NodePath*), answered by the agent itself; the
// edge never forwards a path under api.InternalPrefix. The document at
// api.NodePathStatus is an api.NodeReport.

func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, api.InternalPrefix) {
		a.serveInternal(w, r)
		return
	}
	a.inflight.Add(1)
	defer a.inflight.Add(-1)
	a.served.Add(1)
	w.Header().Set(api.HeaderNode, a.spec.ID)
	fw := a.forwarded(r)

	rt, file, runs := a.decide(r.Context(), r.URL.Path)
	switch rt.kind {
	case routeNotFound:
		http.Error(w, "404 not found", http.StatusNotFound)
	case routeForbidden:
		a.refuse(w, r, fw, http.StatusForbidden, "403 forbidden: %s is never served", r.URL.Path)
	case routeRedirect:
		u := r.URL.Path + "/"
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, u, http.StatusMovedPermanently)
	case routeStatic:
		a.serveStatic(w, r, rt.file)
	case routePHP:
		if !runs {
			a.refuse(w, r, fw, http.StatusForbidden, "403 forbidden: %s does not run (it resolves outside the docroot or into uploads)", rt.script)
			return
		}
		a.servePHP(w, r, rt, file, fw)
	}
}

// refuse answers status with a one-line reason, logged once with the
// client's address (the one the edge vouched for, else the TCP peer).
func (a *Agent) refuse(w http.ResponseWriter, r *http.Request, fw forwarded, status int, format string, args ...any) {
	if fw.client != "" {
		r2 := *r
		r2.RemoteAddr = fw.client
		r = &r2
	}
	guard.Refuse(w, r, a.logger, status, format, args...)
}

// saturatedRetryAfter is the Retry-After, in seconds, of a saturated node's
// 503: the edge's admission 503s say the same.
const saturatedRetryAfter = "1"

func (a *Agent) servePHP(w http.ResponseWriter, r *http.Request, rt route, file string, fw forwarded) {
	if q := a.fcgi.Stats().Waiting; q >= a.maxQueue {
		// Every PHP worker is busy and the queue is full: refuse before PHP
		// sees the request, so the edge can send it (even a POST) elsewhere.
		// Retry-After: the client (or the edge, passing it on when every
		// node refused) learns when a retry makes sense, as with the edge's
		// own admission 503s: a queue this full drains within a second.
		w.Header().Set(api.HeaderSaturated, "1")
		w.Header().Set(api.HeaderNodeError, "1")
		w.Header().Set("Retry-After", saturatedRetryAfter)
		http.Error(w, "503 service unavailable: node saturated (every PHP worker busy and the queue full); retry shortly", http.StatusServiceUnavailable)
		return
	}
	// Forward reads the whole body before it takes a PHP worker. The
	// answer to a GET or HEAD is held until PHP finished it, so a worker
	// that dies mid-page is an error the edge retries elsewhere.
	out := w
	var held *heldResponse
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		held = newHeld(w)
		defer held.release()
		out = held
	}
	err := a.fcgi.Forward(out, r, a.params(r, rt, file, fw))
	if err == nil && held != nil {
		if cerr := held.finish(r.Method == http.MethodHead); cerr != nil {
			err = fmt.Errorf("%w: %w", fastcgi.ErrAborted, cerr)
		}
	}
	if errors.Is(err, fastcgi.ErrAborted) && held != nil && r.Context().Err() == nil && held.discard() {
		a.logger.Warn("php answer cut short before anything was sent; the edge may retry", "uri", r.RequestURI, "err", err)
		w.Header().Set(api.HeaderNodeError, "1")
		http.Error(w, "502 bad gateway: PHP did not finish its answer", http.StatusBadGateway)
		return
	}
	switch {
	case err == nil:
		a.load.done(time.Now())
	case errors.Is(err, fastcgi.ErrAborted):
		a.logger.Warn("php response cut short", "uri", r.RequestURI, "err", err)
		panic(http.ErrAbortHandler) // the client must not take a truncated body for a whole one
	case errors.Is(err, fastcgi.ErrBodyTooLarge):
		w.Header().Set("Connection", "close") // the rest of the body is not read
		a.refuse(w, r, fw, http.StatusRequestEntityTooLarge, "413 request body too large: %v", err)
	case errors.Is(err, fastcgi.ErrBodyTimeout):
		w.Header().Set("Connection", "close")
		a.refuse(w, r, fw, http.StatusRequestTimeout, "408 request timeout: %v", err)
	case errors.Is(err, fastcgi.ErrBodyRead) && r.Context().Err() == nil:
		w.Header().Set("Connection", "close")
		a.refuse(w, r, fw, http.StatusBadRequest, "400 bad request: %v", err)
	case errors.Is(err, context.DeadlineExceeded):
		w.Header().Set(api.HeaderNodeError, "1")
		http.Error(w, "504 gateway timeout: PHP did not answer in time", http.StatusGatewayTimeout)
	case r.Context().Err() != nil:
		// the client went away
	default:
		a.logger.Warn("php request failed", "uri", r.RequestURI, "err", err)
		w.Header().Set(api.HeaderNodeError, "1") // PHP did not answer: the edge may retry a GET elsewhere
		http.Error(w, "502 bad gateway: PHP did not answer", http.StatusBadGateway)
	}
}

// forwarded is what a node believes of a request's forwarded headers.
type forwarded struct {
	edge   string // the edge that signed them; "" = not believed
	client string // the client's address (X-Forwarded-For's last entry)
	https  bool   // X-Forwarded-Proto: https
}

// forwarded checks the edge's signature of r's forwarded headers. Only a
// signed request's X-Forwarded-* reach PHP; others lose them (and
// Forwarded, X-Real-IP), so PHP sees the TCP peer. The signature itself
// never reaches PHP: a plugin printing $_SERVER could replay it.
func (a *Agent) forwarded(r *http.Request) forwarded {
	id, err := a.edges.Verify(r.Header, r.Method, r.Host, r.RequestURI, time.Now())
	r.Header.Del(api.HeaderEdge)
	if err != nil {
		if !errors.Is(err, forward.ErrMissing) {
			a.logger.Warn("forwarded headers not believed", "err", err, "client", r.RemoteAddr, "uri", r.RequestURI)
		}
		for _, h := range untrustedHeaders {
			delete(r.Header, h)
		}
		return forwarded{}
	}
	fw := forwarded{edge: id, https: strings.EqualFold(r.Header.Get(forward.HeaderProto), "https")}
	if xff := r.Header.Get(forward.HeaderFor); xff != "" {
		// The edge ends the list with the client it vouches for.
		last := strings.TrimSpace(xff[strings.LastIndexByte(xff, ',')+1:])
		if ip, err := netip.ParseAddr(last); err == nil {
			fw.client = ip.String()
		}
	}
	return fw
}

// untrustedHeaders are dropped from requests no edge signed.
var untrustedHeaders = []string{forward.HeaderFor, forward.HeaderProto, forward.HeaderHost, "Forwarded", "X-Real-Ip"}

// params are the routing params of a request; fastcgi.Forward adds the
// standard CGI params derived from the request itself.
func (a *Agent) params(r *http.Request, rt route, file string, fw forwarded) map[string]string {
	p := make(map[string]string, 12)
	p["DOCUMENT_ROOT"] = a.spec.Docroot
	p["DOCUMENT_URI"] = rt.script
	p["SCRIPT_NAME"] = rt.script
	p["SCRIPT_FILENAME"] = file
	p["PHP_SELF"] = rt.script + rt.pathInfo
	if rt.pathInfo != "" {
		p["PATH_INFO"] = rt.pathInfo
		p["PATH_TRANSLATED"] = a.spec.Docroot + rt.pathInfo
	}
	// WordPress builds URLs from the Host the visitor used, not the node's port.
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		p["SERVER_PORT"] = port
	} else {
		p["SERVER_PORT"] = "80"
	}
	if fw.edge != "" {
		p["SCALEPRESS_VIA_EDGE"] = "1"
		if fw.client != "" {
			p["REMOTE_ADDR"] = fw.client
		}
		if fw.https {
			p["HTTPS"], p["REQUEST_SCHEME"] = "on", "https"
		}
	}
	return p
}

func (a *Agent) serveInternal(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case api.NodePathHealth:
		if err := a.phpAlive(r); err != nil {
			http.Error(w, "php-fpm: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	case api.NodePathStatus:
		// Utilisation comes from our own FastCGI connections, not php-fpm's
		// status page: php-fpm counts a child holding an idle keep-alive
		// connection as active, and may report more processes than max_children.
		busy, waiting := a.load.averages()
		st := api.NodeReport{
			ID: a.spec.ID, InFlight: a.inflight.Load(), Served: a.served.Load(), PHPDone: a.phpDone.Load(),
			Waiting: int(waiting + 0.5), Active: int(busy + 0.5), Total: a.spec.PHPChildren,
			Utilization: busy / float64(a.spec.PHPChildren),
		}
		st.FilesSeq, st.FilesReady = a.filesApplied()
		st.FilesQuarantined, st.FilesQuarantineLast = a.filesQuarantine()
		if err := a.phpAlive(r); err != nil {
			st.PHPError = err.Error()
		} else {
			st.PHPOK = true
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	case api.NodePathMetrics:
		a.metrics.handler.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// phpAlive proves PHP answers: a request completed within the last two
// seconds, or php-fpm answers its ping within a second. A saturated node
// (every worker busy, so a ping waits) is alive as long as work completes.
func (a *Agent) phpAlive(r *http.Request) error {
	if a.load.progressed(time.Now(), 2*time.Second) {
		return nil
	}
	ctx, cancel := contextTimeout(r, time.Second)
	defer cancel()
	return a.ping(ctx)
}
