package fastcgi

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Forward proxies r to php-fpm and writes the response to w. params are the
// routing params the caller decides (SCRIPT_FILENAME, SCRIPT_NAME,
// DOCUMENT_ROOT, PATH_INFO, ...); Forward adds the standard CGI params
// derived from r (REQUEST_METHOD, REQUEST_URI, QUERY_STRING, CONTENT_TYPE,
// CONTENT_LENGTH, REMOTE_ADDR, HTTP_*, ...) that params does not set. Request
// headers with '_' in their name and the Proxy header are not passed.
//
// r.Body is read whole before a connection to php-fpm is taken (see
// spool.go), so a slow client holds no php-fpm child; r.ContentLength 0
// means no body (server request semantics), and a body of unknown length
// (chunked) gets its CONTENT_LENGTH once read. The response status and
// headers are written once the first chunk of the body is available, which
// lets a complete body that fits in 64 KiB get a Content-Length. The body
// is then streamed.
//
// A returned error that does not wrap ErrAborted means nothing was written to
// w: the caller answers 502 (or 413 for ErrBodyTooLarge, 408 for
// ErrBodyTimeout, 400 for ErrBodyRead, 504 for a context deadline). An error
// wrapping ErrAborted means the response failed midway and w must be
// abandoned. r's context cancels the request.
func (c *Client) Forward(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	var body io.Reader
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		sp, err := c.spool(w, r)
		if err != nil {
			return err
		}
		defer sp.close()
		r.ContentLength = sp.n // CONTENT_LENGTH, also for a chunked body
		if sp.n > 0 {
			body = sp.reader()
		}
	}
	// With no body the request is one write and safe to retry on a
	// connection php-fpm closed after pm.max_requests.
	var start time.Time
	if c.cfg.OnTiming != nil {
		start = time.Now()
	}
	resp, err := c.do(r.Context(), params, r, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if c.cfg.OnStderr != nil {
		defer func() {
			if len(resp.body.stderr) > 0 {
				c.cfg.OnStderr(r, resp.body.stderr)
			}
		}()
	}
	if resp.Status < 200 {
		return fmt.Errorf("fastcgi: malformed response: informational status %d", resp.Status)
	}

	bp := getBuf()
	defer putBuf(bp)
	buf := (*bp)[:cap(*bp)]
	n, rerr := resp.body.fill(buf)
	if rerr != nil && rerr != io.EOF {
		return rerr
	}
	h := w.Header()
	for k, vv := range resp.Header {
		if !isHopByHop(k) {
			h[k] = vv
		}
	}
	if rerr == io.EOF && r.Method != http.MethodHead && bodyAllowed(resp.Status) && h["Content-Length"] == nil {
		h["Content-Length"] = []string{strconv.Itoa(n)}
	}
	w.WriteHeader(resp.Status)
	if n > 0 {
		if _, err := w.Write(buf[:n]); err != nil {
			return fmt.Errorf("fastcgi: write response body: %w: %w", ErrAborted, err)
		}
	}
	for rerr == nil {
		var m int
		m, rerr = resp.Body.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return fmt.Errorf("fastcgi: write response body: %w: %w", ErrAborted, err)
			}
		}
	}
	if rerr != io.EOF {
		return fmt.Errorf("%w: %w", ErrAborted, rerr)
	}
	if c.cfg.OnTiming != nil {
		c.cfg.OnTiming(resp.Wait, time.Since(start)-resp.Wait)
	}
	return nil
}

// fill reads into p until p is full, the body ends, or reading more would
// wait on the network.
func (b *body) fill(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := b.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
		if len(b.pending) == 0 && !b.readable() {
			break
		}
	}
	return n, nil
}

// readable reports whether the next Read can make progress from buffered data.
func (b *body) readable() bool {
	br := b.cn.br
	if b.stdoutLeft > 0 {
		return br.Buffered() > 0
	}
	return b.ended || br.Buffered() >= headerLen
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func isHopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer":
		return true
	}
	return false
}

// addRequestParams adds the CGI params derived from r that params lacks.
func addRequestParams(w *paramWriter, r *http.Request, params map[string]string) error {
	add := func(k, v string) error {
		if _, ok := params[k]; ok {
			return nil
		}
		return w.add(k, v)
	}
	scheme, https := "http", ""
	if r.TLS != nil {
		scheme, https = "https", "on"
	}
	uri := r.RequestURI // as sent by the client, unless in absolute form
	if !strings.HasPrefix(uri, "/") {
		uri = r.URL.RequestURI()
	}
	remoteAddr, remotePort, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remoteAddr, remotePort = r.RemoteAddr, ""
	}
	serverName := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		serverName = h
	}
	var serverAddr, serverPort string
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		serverAddr, serverPort, _ = net.SplitHostPort(la.String())
	}
	var contentLength string
	if r.ContentLength > 0 {
		contentLength = strconv.FormatInt(r.ContentLength, 10)
	}
	for _, kv := range [...][2]string{
		{"GATEWAY_INTERFACE", "CGI/1.1"},
		{"SERVER_SOFTWARE", "scalepress"},
		{"SERVER_PROTOCOL", r.Proto},
		{"REQUEST_METHOD", r.Method},
		{"REQUEST_URI", uri},
		{"QUERY_STRING", r.URL.RawQuery},
		{"REQUEST_SCHEME", scheme},
		{"HTTPS", https},
		{"REMOTE_ADDR", remoteAddr},
		{"REMOTE_PORT", remotePort},
		{"SERVER_NAME", serverName},
		{"SERVER_ADDR", serverAddr},
		{"SERVER_PORT", serverPort},
		{"CONTENT_TYPE", r.Header.Get("Content-Type")},
		{"CONTENT_LENGTH", contentLength},
		{"HTTP_HOST", r.Host},
	} {
		if kv[1] == "" {
			continue
		}
		if err := add(kv[0], kv[1]); err != nil {
			return err
		}
	}
	var kb [64]byte
	for k, vv := range r.Header {
		if len(vv) == 0 || skipHeader(k) {
			continue
		}
		key := append(kb[:0], "HTTP_"...)
		for i := 0; i < len(k); i++ {
			c := k[i]
			switch {
			case c == '-':
				c = '_'
			case 'a' <= c && c <= 'z':
				c -= 'a' - 'A'
			}
			key = append(key, c)
		}
		if _, ok := params[string(key)]; ok {
			continue
		}
		v := vv[0]
		if len(vv) > 1 {
			sep := ", "
			if k == "Cookie" {
				sep = "; "
			}
			v = strings.Join(vv, sep)
		}
		if err := w.addBytes(key, v); err != nil {
			return err
		}
	}
	return nil
}

func skipHeader(k string) bool {
	switch k {
	case "Content-Type", "Content-Length", "Proxy", "Host":
		return true
	}
	return k == "" || !validName(k) || strings.IndexByte(k, '_') >= 0
}
