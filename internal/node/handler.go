package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/fastcgi"
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

	rt := resolve(a.root, r.URL.Path)
	switch rt.kind {
	case routeNotFound:
		http.Error(w, "404 not found", http.StatusNotFound)
	case routeForbidden:
		http.Error(w, "403 forbidden", http.StatusForbidden)
	case routeRedirect:
		u := r.URL.Path + "/"
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, u, http.StatusMovedPermanently)
	case routeStatic:
		a.serveStatic(w, r, rt.file)
	case routePHP:
		a.servePHP(w, r, rt)
	}
}

func (a *Agent) serveStatic(w http.ResponseWriter, r *http.Request, file string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, err := a.root.Open(file)
	if err != nil {
		http.Error(w, "404 not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "404 not found", http.StatusNotFound)
		return
	}
	http.ServeContent(w, r, path.Base(file), fi.ModTime(), f)
}

func (a *Agent) servePHP(w http.ResponseWriter, r *http.Request, rt route) {
	if r.ContentLength > MaxBody {
		http.Error(w, "413 request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if q := a.fcgi.Stats().Waiting; q >= a.maxQueue {
		// Every PHP worker is busy and the queue is full: refuse before PHP
		// sees the request, so the edge can send it (even a POST) elsewhere.
		w.Header().Set(api.HeaderSaturated, "1")
		w.Header().Set(api.HeaderNodeError, "1")
		http.Error(w, "503 service unavailable: node saturated", http.StatusServiceUnavailable)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	params := a.params(r, rt)
	err := a.fcgi.Forward(w, r, params)
	switch {
	case err == nil:
		a.load.done(time.Now())
	case errors.Is(err, fastcgi.ErrAborted):
		a.logger.Warn("php response cut short", "uri", r.RequestURI, "err", err)
		panic(http.ErrAbortHandler) // the client must not take a truncated body for a whole one
	case errors.Is(err, fastcgi.ErrLengthRequired):
		http.Error(w, "411 length required", http.StatusLengthRequired)
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

// params are the routing params of a request; fastcgi.Forward adds the
// standard CGI params derived from the request itself.
func (a *Agent) params(r *http.Request, rt route) map[string]string {
	peerIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	p := make(map[string]string, 12)
	p["DOCUMENT_ROOT"] = a.spec.Docroot
	p["DOCUMENT_URI"] = rt.script
	p["SCRIPT_NAME"] = rt.script
	p["SCRIPT_FILENAME"] = a.spec.Docroot + rt.script
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
	if a.isTrusted(peerIP) {
		p["SCALEPRESS_VIA_EDGE"] = "1"
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			// The edge appends the client it saw last; earlier entries are the client's claims.
			last := strings.TrimSpace(xff[strings.LastIndexByte(xff, ',')+1:])
			if _, err := netip.ParseAddr(last); err == nil {
				p["REMOTE_ADDR"] = last
			}
		}
	}
	return p
}

func (a *Agent) isTrusted(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, t := range a.trusted {
		if t == addr {
			return true
		}
	}
	return false
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
			ID: a.spec.ID, InFlight: a.inflight.Load(), Served: a.served.Load(),
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
		fs := a.fcgi.Stats()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		id := a.spec.ID
		fmt.Fprintf(w, "# HELP scalepress_node_in_flight HTTP requests being served.\n# TYPE scalepress_node_in_flight gauge\nscalepress_node_in_flight{node=%q} %d\n", id, a.inflight.Load())
		fmt.Fprintf(w, "# HELP scalepress_node_requests_total HTTP requests served.\n# TYPE scalepress_node_requests_total counter\nscalepress_node_requests_total{node=%q} %d\n", id, a.served.Load())
		fmt.Fprintf(w, "# HELP scalepress_node_php_busy PHP requests running.\n# TYPE scalepress_node_php_busy gauge\nscalepress_node_php_busy{node=%q} %d\n", id, fs.Busy)
		fmt.Fprintf(w, "# HELP scalepress_node_php_waiting Requests waiting for a PHP worker.\n# TYPE scalepress_node_php_waiting gauge\nscalepress_node_php_waiting{node=%q} %d\n", id, fs.Waiting)
		fmt.Fprintf(w, "# HELP scalepress_node_php_utilization Busy PHP workers / workers.\n# TYPE scalepress_node_php_utilization gauge\nscalepress_node_php_utilization{node=%q} %g\n", id, float64(fs.Busy)/float64(a.spec.PHPChildren))
		if a.spec.Files != "" {
			n, _ := a.filesQuarantine()
			fmt.Fprintf(w, "# HELP scalepress_node_files_quarantined_total Changes of the files log quarantined on this node (kept failing, skipped).\n# TYPE scalepress_node_files_quarantined_total counter\nscalepress_node_files_quarantined_total{node=%q} %d\n", id, n)
		}
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
