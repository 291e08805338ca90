package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// openLoad sends GETs at a fixed rate (open model: a slow answer does not
// slow the arrivals) until stopped, and counts the outcomes.
type openLoad struct {
	ok, failed atomic.Int64
	// cached counts answers the edge served from its cache (X-Cache other
	// than BYPASS): a failure test asserts none, so that every request of
	// its load ran on a node.
	cached   atomic.Int64
	mu       sync.Mutex
	failures []string
	stop     context.CancelFunc
	done     sync.WaitGroup
}

// searches are uncached URLs: the edge never caches a search (`s` in the
// query), so every request runs PHP on a node; each one searches for
// another word, so no layer can answer it from a previous one.
func searches(site, tag string) func(i int) string {
	return func(i int) string { return fmt.Sprintf("%s/?s=%s-%d", site, url.QueryEscape(tag), i) }
}

// startLoad sends GETs of target(0), target(1), ... at rate per second.
func startLoad(target func(i int) string, rate int) *openLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &openLoad{stop: cancel}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	l.done.Go(func() {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			u := target(i)
			inflight.Go(func() {
				resp, err := client.Get(u)
				if err != nil {
					l.fail(err.Error())
					return
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					l.fail(fmt.Sprintf("status %d, body cut short: %v", resp.StatusCode, err))
					return
				case resp.StatusCode != 200:
					l.fail(fmt.Sprintf("status %d %q", resp.StatusCode, body))
					return
				}
				if resp.Header.Get("X-Cache") != "BYPASS" {
					l.cached.Add(1)
				}
				l.ok.Add(1)
			})
		}
	})
	return l
}

func (l *openLoad) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.failures) < 10 {
		l.failures = append(l.failures, time.Now().Format("15:04:05.000")+" "+msg)
	}
	l.mu.Unlock()
}

// Stop ends the load and waits for the requests in flight.
func (l *openLoad) Stop() (ok, failed int64, failures []string) {
	l.stop()
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok.Load(), l.failed.Load(), l.failures
}

// throughput runs conc clients back to back for d (closed model) and
// returns the requests per second that succeeded: what the site carries
// right now, on a machine whose spare CPU changes with other work.
func throughput(target func(i int) string, conc int, d time.Duration) (perSec float64, failed int64) {
	client := &http.Client{Timeout: 30 * time.Second}
	var ok, bad, next atomic.Int64
	deadline := time.Now().Add(d)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				resp, err := client.Get(target(int(next.Add(1))))
				if err != nil {
					bad.Add(1)
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					bad.Add(1)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(t0).Seconds(), bad.Load()
}
