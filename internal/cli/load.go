package cli

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
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
	slow := fs.Duration("slow", 0, "answers slower than this are counted by X-Cache and listed in --slow-log (0: off)")
	slowLog := fs.String("slow-log", "", "file for one line per slow answer: start offset, latency, status, X-Cache, Age")
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
	case *slow < 0:
		return errUsagef("--slow must not be negative, got %s", *slow)
	case *slowLog != "" && *slow == 0:
		return errUsagef("--slow-log needs --slow")
	}
	var log io.Writer = io.Discard
	if *slowLog != "" {
		f, err := os.Create(*slowLog)
		if err != nil {
			return fmt.Errorf("load: --slow-log: %w", err)
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		defer bw.Flush()
		log = bw
	}
	caches := newCacheTally(*slow, log)
	attacker := vegeta.NewAttacker(vegeta.Timeout(*timeout), vegeta.KeepAlive(true), vegeta.Redirects(vegeta.NoFollow))
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: *method, URL: *target, Header: http.Header{}})
	var m vegeta.Metrics
	for res := range attacker.Attack(targeter, vegeta.Rate{Freq: *rate, Per: time.Second}, *dur, "load") {
		m.Add(res)
		caches.add(res)
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
	fmt.Print(caches.summary())
	return nil
}

// cacheTally counts answers by their X-Cache header, and the answers slower
// than a threshold apart, with one line each to a log: where the slow
// answers of a cached URL come from (a HIT that waited for the CPU, a STALE
// or HIT that waited on a fill, a MISS) and when in the run.
type cacheTally struct {
	slow    time.Duration
	log     io.Writer
	start   time.Time
	all     map[string]int
	slowBy  map[string]int
	perSec  map[int]int // slow answers by the second of the run they started in
	nslow   int
	maxSlow time.Duration
}

func newCacheTally(slow time.Duration, log io.Writer) *cacheTally {
	return &cacheTally{slow: slow, log: log, all: map[string]int{}, slowBy: map[string]int{}, perSec: map[int]int{}}
}

func (t *cacheTally) add(res *vegeta.Result) {
	if t.start.IsZero() || res.Timestamp.Before(t.start) {
		t.start = res.Timestamp
	}
	xc := res.Headers.Get("X-Cache")
	if xc == "" {
		xc = "none"
	}
	t.all[xc]++
	if t.slow == 0 || res.Latency <= t.slow {
		return
	}
	t.nslow++
	t.slowBy[xc]++
	t.maxSlow = max(t.maxSlow, res.Latency)
	off := res.Timestamp.Sub(t.start)
	t.perSec[int(off/time.Second)]++
	age := res.Headers.Get("Age")
	if age == "" {
		age = "-"
	}
	fmt.Fprintf(t.log, "%.3f %s %d %s %s\n", off.Seconds(), res.Latency.Round(time.Microsecond), res.Code, xc, age)
}

// summary is the tally's lines of the report: "xcache HIT=.. MISS=..", and
// with a threshold "slow N over D (HIT=..), by second: s:n ...".
func (t *cacheTally) summary() string {
	var b strings.Builder
	b.WriteString("xcache    " + tallyString(t.all) + "\n")
	if t.slow == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "slow       %d over %s, max %s:%s\n", t.nslow, t.slow, t.maxSlow.Round(time.Microsecond), tallyString(t.slowBy))
	if t.nslow > 0 {
		secs := make([]int, 0, len(t.perSec))
		for s := range t.perSec {
			secs = append(secs, s)
		}
		sort.Ints(secs)
		b.WriteString("slow/s    ")
		for _, s := range secs {
			fmt.Fprintf(&b, " %d:%d", s, t.perSec[s])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// tallyString is " A=1 B=2", names sorted.
func tallyString(m map[string]int) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return b.String()
}
