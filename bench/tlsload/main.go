// Command tlsload measures an HTTPS server from a client that controls what
// wrk cannot: the server name (SNI) apart from the address, TLS session
// resumption, and HTTP/2.
//
//	go run ./bench/tlsload -addr IP:PORT -name NAME -ca CA.pem [-path /] -mode MODE [-c 32] [-d 10s]
//
// Modes:
//
//	hits     HTTP/1.1, -c keep-alive connections, requests back to back
//	h2       HTTP/2, -c streams in flight over -conns connections
//	new      a new TLS connection per request, full handshake
//	resumed  a new TLS connection per request, resuming a session (tickets)
//
// It prints one line: requests/s, p50 and p99 latency, errors, and the
// share of handshakes that resumed.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "", "server IP:port")
	name := flag.String("name", "", "server name (SNI and Host)")
	caFile := flag.String("ca", "", "PEM root the server's chain verifies against")
	path := flag.String("path", "/", "request path")
	mode := flag.String("mode", "hits", "hits, h2, new or resumed")
	conc := flag.Int("c", 32, "connections (hits, new, resumed) or streams in flight (h2)")
	conns := flag.Int("conns", 4, "HTTP/2 connections (h2)")
	dur := flag.Duration("d", 10*time.Second, "duration")
	flag.Parse()
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail(fmt.Errorf("%s: no certificate", *caFile))
	}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, *addr)
	}
	// X25519 only: Go would offer X25519MLKEM768 first, which OpenSSL 3.0
	// (nginx) lacks; the same key exchange for both servers.
	base := &tls.Config{ServerName: *name, RootCAs: roots, CurvePreferences: []tls.CurveID{tls.X25519}}
	var clients []*http.Client
	var resumed, handshakes atomic.Int64
	newClient := func(tr *http.Transport) *http.Client {
		// Identity bodies: gunzipping would cost the client more than the
		// servers' work, and nginx's cache holds the identity variant.
		tr.DisableCompression = true
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	switch *mode {
	case "hits":
		c := newClient(&http.Transport{DialContext: dial, TLSClientConfig: base, MaxIdleConnsPerHost: *conc, ForceAttemptHTTP2: false,
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}})
		for range *conc {
			clients = append(clients, c)
		}
	case "h2":
		for i := range *conc {
			if i < *conns {
				clients = append(clients, newClient(&http.Transport{DialContext: dial, TLSClientConfig: base, ForceAttemptHTTP2: true}))
			} else {
				clients = append(clients, clients[i%*conns])
			}
		}
	case "new", "resumed":
		for range *conc {
			cfg := base.Clone()
			if *mode == "resumed" {
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			}
			tr := &http.Transport{DisableKeepAlives: true, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
				DialTLSContext: func(ctx context.Context, network, a string) (net.Conn, error) {
					raw, err := dial(ctx, network, a)
					if err != nil {
						return nil, err
					}
					c := tls.Client(raw, cfg)
					if err := c.HandshakeContext(ctx); err != nil {
						raw.Close()
						return nil, err
					}
					handshakes.Add(1)
					if c.ConnectionState().DidResume {
						resumed.Add(1)
					}
					return c, nil
				}}
			clients = append(clients, newClient(tr))
		}
	default:
		fail(fmt.Errorf("mode %q: hits, h2, new or resumed", *mode))
	}
	url := "https://" + *name + *path
	var (
		mu     sync.Mutex
		lat    []time.Duration
		errs   atomic.Int64
		wg     sync.WaitGroup
		stopAt = time.Now().Add(*dur)
	)
	// A first request per client: sessions to resume, connections to reuse.
	for _, c := range clients[:min(len(clients), *conns+*conc)] {
		if resp, err := c.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	resumed.Store(0)
	handshakes.Store(0)
	t0 := time.Now()
	for _, c := range clients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(stopAt) {
				s := time.Now()
				resp, err := c.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(s))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	el := time.Since(t0)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(float64(len(lat)-1)*p)]
	}
	res := "-"
	if h := handshakes.Load(); h > 0 {
		res = fmt.Sprintf("%.0f%%", 100*float64(resumed.Load())/float64(h))
	}
	fmt.Printf("requests %d rps %.0f p50 %s p99 %s errors %d resumed %s\n", len(lat), float64(len(lat))/el.Seconds(),
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), errs.Load(), res)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tlsload:", err)
	os.Exit(2)
}
