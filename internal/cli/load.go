package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// runLoad is an open-model load generator: requests start at a fixed rate
// whatever the latency, so a slow site builds a queue the way real visitors
// do (a closed-loop tool like wrk would slow down with the site instead).
func runLoad(args []string) error {
	fs := newFlags("load")
	target := fs.String("url", "", "URL to request (required)")
	rate := fs.Int("rate", 10, "requests per second")
	dur := fs.Duration("duration", 10*time.Second, "how long")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	method := fs.String("method", "GET", "HTTP method")
	if err := parse(fs, args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	switch {
	case *target == "":
		return errUsagef("--url is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errUsagef("--url %q is not an http(s) URL", *target)
	case *rate < 1 || *rate > 100000:
		return errUsagef("--rate must be 1-100000, got %d", *rate)
	case *dur <= 0 || *dur > 24*time.Hour:
		return errUsagef("--duration must be positive and at most 24h, got %s", *dur)
	}
	attacker := vegeta.NewAttacker(vegeta.Timeout(*timeout), vegeta.KeepAlive(true), vegeta.Redirects(vegeta.NoFollow))
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: *method, URL: *target, Header: http.Header{}})
	var m vegeta.Metrics
	for res := range attacker.Attack(targeter, vegeta.Rate{Freq: *rate, Per: time.Second}, *dur, "load") {
		m.Add(res)
	}
	m.Close()
	fmt.Printf("requests   %d in %s (%.1f/s), throughput %.1f/s\n", m.Requests, m.Duration.Round(time.Millisecond), m.Rate, m.Throughput)
	fmt.Printf("latency    p50 %s  p90 %s  p95 %s  p99 %s  max %s\n",
		m.Latencies.P50.Round(time.Microsecond), m.Latencies.P90.Round(time.Microsecond), m.Latencies.P95.Round(time.Microsecond),
		m.Latencies.P99.Round(time.Microsecond), m.Latencies.Max.Round(time.Microsecond))
	codes := make([]string, 0, len(m.StatusCodes))
	for c := range m.StatusCodes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	fmt.Print("status    ")
	for _, c := range codes {
		name := c
		if c == "0" {
			name = "error"
		}
		fmt.Printf(" %s=%d", name, m.StatusCodes[c])
	}
	fmt.Println()
	if len(m.Errors) > 0 {
		n := min(len(m.Errors), 5)
		fmt.Printf("errors     %v\n", m.Errors[:n])
	}
	fmt.Printf("success    %.2f%%\n", m.Success*100)
	return nil
}
