package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestCacheTally(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	res := func(off, lat time.Duration, xc, age string) *vegeta.Result {
		h := http.Header{}
		if xc != "" {
			h.Set("X-Cache", xc)
		}
		if age != "" {
			h.Set("Age", age)
		}
		return &vegeta.Result{Timestamp: t0.Add(off), Latency: lat, Code: 200, Headers: h}
	}
	tests := []struct {
		name    string
		slow    time.Duration
		results []*vegeta.Result
		summary string
		slowLog string
	}{
		{
			name:    "no threshold: only the tally",
			results: []*vegeta.Result{res(0, time.Second, "HIT", "1"), res(time.Millisecond, time.Millisecond, "MISS", "")},
			summary: "xcache     HIT=1 MISS=1\n",
		},
		{
			name: "slow answers by X-Cache and by second, one log line each",
			slow: 20 * time.Millisecond,
			results: []*vegeta.Result{
				res(0, time.Millisecond, "HIT", "3"),
				res(1500*time.Millisecond, 2*time.Second, "STALE", "301"),
				res(1600*time.Millisecond, 25*time.Millisecond, "HIT", "4"),
				res(3*time.Second, 20*time.Millisecond, "HIT", "5"), // not over
				res(4*time.Second, 30*time.Millisecond, "", ""),
			},
			summary: "xcache     HIT=3 STALE=1 none=1\n" +
				"slow       3 over 20ms, max 2s: HIT=1 STALE=1 none=1\n" +
				"slow/s     1:2 4:1\n",
			slowLog: "1.500 2s 200 STALE 301\n1.600 25ms 200 HIT 4\n4.000 30ms 200 none -\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			tally := newCacheTally(tt.slow, &log)
			for _, r := range tt.results {
				tally.add(r)
			}
			if diff := cmp.Diff(tt.summary, tally.summary()); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.slowLog, log.String()); diff != "" {
				t.Errorf("slow log (-want +got):\n%s", diff)
			}
		})
	}
}
