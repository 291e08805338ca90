package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// openLoad sends GETs at a fixed rate (open model: a slow answer does not
// slow the arrivals) until stopped, and counts the outcomes.
type openLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	stop       context.CancelFunc
	done       sync.WaitGroup
}

func startLoad(url string, rate int) *openLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &openLoad{stop: cancel}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	l.done.Go(func() {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			inflight.Go(func() {
				resp, err := client.Get(url)
				if err != nil {
					l.fail(err.Error())
					return
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.fail(fmt.Sprintf("status %d %q", resp.StatusCode, body))
					return
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
