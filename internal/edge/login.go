package edge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/pagecache"
	"github.com/scalepress/scalepress/internal/throttle"
)

// logins is the edge's side of login throttling
// (docs/adr/0014-login-throttling.md): internal/throttle counts, the edge
// reads what a request carries and how the node answered it.
type logins struct {
	lim *throttle.Limiter
	// requests seen per kind: wp-login, xmlrpc, basic.
	wpLogin, xmlrpc, basic atomic.Int64
	blocks                 blockQueue // to report as events
	reportEvery            time.Duration
}

func newLogins(spec *api.LoginThrottleSpec) (*logins, error) {
	if spec == nil {
		return nil, nil
	}
	cfg := throttle.Config{PerAddress: spec.PerAddress, PerUser: spec.PerUser, MaxEntries: spec.MaxEntries}
	for _, d := range []struct {
		dst  *time.Duration
		s    string
		name string
	}{{&cfg.Window, spec.Window, "window"}, {&cfg.Block, spec.Block, "block"}, {&cfg.TrustFor, spec.TrustedFor, "trusted_for"}} {
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return nil, fmt.Errorf("edge: http.login_throttle.%s: %w", d.name, err)
		}
		*d.dst = v
	}
	lim, err := throttle.New(cfg, time.Now)
	if err != nil {
		return nil, fmt.Errorf("edge: http.login_throttle: %w", err)
	}
	return &logins{lim: lim, reportEvery: loginReportInterval}, nil
}

// serveLogin answers a login request (a POST to wp-login.php or
// xmlrpc.php, or a request with Basic credentials) and reports true, or
// reports false for any other request. A request over a limit gets 429
// and never reaches a node; the others go to a node, bypassing the cache,
// and the node's answer tells a success from a failure.
func (e *Edge) serveLogin(w http.ResponseWriter, r *http.Request) bool {
	kind := throttle.Classify(r)
	if kind == throttle.KindNone {
		return false
	}
	// Within the client's cap: one address cannot have more than
	// http.client_concurrency login bodies being read ahead.
	e.toNodes(w, r, func(r *http.Request) { e.serveLoginSlot(w, r, kind) })
	return true
}

func (e *Edge) serveLoginSlot(w http.ResponseWriter, r *http.Request, kind throttle.Kind) {
	client, _, _ := e.clientAddr(r)
	var login throttle.Login
	switch kind {
	case throttle.KindWPLogin, throttle.KindXMLRPC:
		prefix, truncated, err := peekBody(r)
		if err != nil {
			if !e.refuseBody(w, r) {
				w.WriteHeader(499) // the client went away; nobody reads this
			}
			return
		}
		if kind == throttle.KindWPLogin {
			e.logins.wpLogin.Add(1)
			login = throttle.ParseForm(r.Header.Get("Content-Type"), prefix, truncated)
			break
		}
		e.logins.xmlrpc.Add(1)
		if login, err = throttle.ParseXMLRPC(prefix, truncated); err != nil {
			w.Header().Set(api.HeaderCache, pagecache.XCacheBypass)
			w.Header().Set("Connection", "close") // the body may not be read
			status := http.StatusBadRequest
			if errors.Is(err, throttle.ErrTooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			e.refuse(w, r, client, status, "%d xmlrpc.php: %v (at most %d bytes are read; http.login_throttle)", status, err, throttle.MaxPrefix)
			return
		}
		if login.Calls == 0 {
			e.forward(w, r) // no password in it (a pingback)
			return
		}
	case throttle.KindBasic:
		e.logins.basic.Add(1)
		login.User, _ = throttle.BasicUser(r.Header) // Calls 0: counted when the node answers 401
	}
	if v := e.logins.lim.Attempt(client, login.User, login.Calls); v.Blocked {
		if b := v.Block; b != nil {
			// The event: who, which name, how many. Never the password.
			e.logger.Warn("login throttled", "by", b.By, "client", b.Address, "user", b.User, "count", b.Count, "until", b.Until.Format(time.RFC3339))
			e.logins.blocks.add(*b)
		}
		secs := int((v.RetryAfter + time.Second - 1) / time.Second)
		h := w.Header()
		h.Set(api.HeaderCache, pagecache.XCacheBypass)
		h.Set("Retry-After", strconv.Itoa(secs))
		if r.ContentLength != 0 {
			h.Set("Connection", "close") // the body is not read
		}
		what := "this address"
		if v.By == throttle.ByUser {
			what = "this user name"
		}
		e.refuse(w, r, client, http.StatusTooManyRequests,
			"429 too many login attempts for %s: %d failed within %s, the limit is %d; retry in %d s (http.login_throttle.per_%s)",
			what, v.Count, e.logins.lim.Config().Window, v.Limit, secs, v.By)
		return
	}
	e.forwardThen(w, r, func(resp *http.Response) { e.loginAnswered(kind, client, login, resp) })
}

// peekBody reads the start of r's body, which still streams whole to the
// node: at most throttle.MaxPrefix bytes, within the body's limits.
func peekBody(r *http.Request) (prefix []byte, truncated bool, err error) {
	b, ok := r.Body.(*bodyLimit)
	if !ok { // no body
		return nil, false, nil
	}
	n := throttle.MaxPrefix
	if r.ContentLength > 0 && r.ContentLength < int64(n) {
		n = int(r.ContentLength)
	}
	return b.peek(n)
}

// faultPeek is how much of an xmlrpc answer is read to find a fault
// (WordPress puts <fault> right after <methodResponse>).
const faultPeek = 1024

// loginAnswered tells the limiter how the node answered: a login that
// worked gives back the attempts charged for it.
func (e *Edge) loginAnswered(kind throttle.Kind, client netip.Addr, login throttle.Login, resp *http.Response) {
	lim := e.logins.lim
	switch kind {
	case throttle.KindWPLogin:
		// A failed login is 200 with the form again; a login sets the
		// logged-in cookie (with a redirect, or a 200 for the admin's
		// interim login), which proves the password: the pair is spared
		// the user's limit from now on.
		if loggedIn(resp.Header) {
			lim.Succeed(client, login.User, login.Calls, true)
		}
	case throttle.KindXMLRPC:
		// A failed call is a fault (403) in the XML; a multicall's calls
		// all stay counted.
		if login.Multicall || resp.StatusCode != http.StatusOK {
			return
		}
		buf := make([]byte, faultPeek)
		n, err := io.ReadFull(resp.Body, buf)
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(buf[:n]), resp.Body), resp.Body}
		if (err == nil || err == io.EOF || err == io.ErrUnexpectedEOF) && !bytes.Contains(buf[:n], []byte("<fault>")) {
			lim.Succeed(client, login.User, login.Calls, false)
		}
	case throttle.KindBasic:
		// WordPress answers wrong application passwords 401. A 200 proves
		// nothing (pages ignore Basic credentials), so it trusts nobody.
		if resp.StatusCode == http.StatusUnauthorized {
			lim.Fail(client, login.User)
		}
	}
}

// loggedIn reports a wordpress_logged_in_* cookie being set.
func loggedIn(h http.Header) bool {
	for _, c := range h.Values("Set-Cookie") {
		if strings.HasPrefix(c, "wordpress_logged_in_") {
			return true
		}
	}
	return false
}

type readCloser struct {
	io.Reader
	io.Closer
}
