package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

func TestDNSAnswers(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	read := func(at time.Duration, served ...uint64) dnsRead {
		r := dnsRead{at: t0.Add(at)}
		for i, n := range served {
			r.counters.Regions = append(r.counters.Regions, api.DNSRegionCounters{Name: []string{"eu", "us"}[i], Served: n, Matched: n + 100})
		}
		return r
	}
	ptr := func(r dnsRead) *dnsRead { return &r }
	tests := []struct {
		name string
		prev *dnsRead
		cur  dnsRead
		want []api.DNSAnswers
	}{
		{name: "first read: totals, no rate", cur: read(0, 5, 0),
			want: []api.DNSAnswers{{Region: "eu", Answers: 5}, {Region: "us"}}},
		{name: "rate over the interval", prev: ptr(read(0, 5, 0)), cur: read(2*time.Second, 25, 0),
			want: []api.DNSAnswers{{Region: "eu", Answers: 25, Rate: 10}, {Region: "us"}}},
		{name: "sub-second interval", prev: ptr(read(0, 0, 10)), cur: read(500*time.Millisecond, 0, 11),
			want: []api.DNSAnswers{{Region: "eu"}, {Region: "us", Answers: 11, Rate: 2}}},
		{name: "role restarted: counts from zero", prev: ptr(read(0, 100, 0)), cur: read(time.Second, 3, 0),
			want: []api.DNSAnswers{{Region: "eu", Answers: 3, Rate: 3}, {Region: "us"}}},
		{name: "same instant: no rate", prev: ptr(read(0, 1, 1)), cur: read(0, 9, 9),
			want: []api.DNSAnswers{{Region: "eu", Answers: 9}, {Region: "us", Answers: 9}}},
		{name: "region new since the last read: no rate", prev: ptr(read(0, 1)), cur: read(time.Second, 2, 7),
			want: []api.DNSAnswers{{Region: "eu", Answers: 2, Rate: 1}, {Region: "us", Answers: 7}}},
		{name: "no regions", cur: read(0), want: []api.DNSAnswers{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, dnsAnswers(tt.prev, tt.cur)); d != "" {
				t.Errorf("dnsAnswers (-want +got):\n%s", d)
			}
		})
	}
}

func TestDNSFailed(t *testing.T) {
	got := dnsFailed([]api.DNSRegionStatus{{Name: "eu"}, {Name: "us"}}, errors.New("connection refused"))
	want := []api.DNSAnswers{{Region: "eu", Error: "connection refused"}, {Region: "us", Error: "connection refused"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("dnsFailed (-want +got):\n%s", d)
	}
}

// TestReadDNS: each tick reads the dns role's status over HTTP and keeps
// the totals and the rate since the tick before; a failed read says why.
func TestReadDNS(t *testing.T) {
	var served atomic.Uint64
	up := atomic.Bool{}
	up.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.DNSPathStatus || !up.Load() {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(api.DNSCounters{Regions: []api.DNSRegionCounters{{Name: "eu"}, {Name: "us", Served: served.Load()}}})
	}))
	defer srv.Close()
	st := api.Status{DNS: &api.DNSStatus{Regions: []api.DNSRegionStatus{{Name: "eu"}, {Name: "us"}}}}
	cfg := DefaultConfig()
	cfg.Status, cfg.Events, cfg.DNSAddr = func() api.Status { return st }, newFakeLog(), strings.TrimPrefix(srv.URL, "http://")
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	steps := []struct {
		at     time.Duration
		served uint64
		up     bool
		want   []api.DNSAnswers
	}{
		{at: 0, served: 3, up: true, want: []api.DNSAnswers{{Region: "eu"}, {Region: "us", Answers: 3}}},
		{at: time.Second, served: 8, up: true, want: []api.DNSAnswers{{Region: "eu"}, {Region: "us", Answers: 8, Rate: 5}}},
		{at: 2 * time.Second, served: 8, up: true, want: []api.DNSAnswers{{Region: "eu"}, {Region: "us", Answers: 8}}},
		{at: 3 * time.Second, up: false, want: []api.DNSAnswers{{Region: "eu", Error: "x"}, {Region: "us", Error: "x"}}},
		{at: 4 * time.Second, served: 10, up: true, want: []api.DNSAnswers{{Region: "eu"}, {Region: "us", Answers: 10}}},
	}
	for i, s := range steps {
		served.Store(s.served)
		up.Store(s.up)
		c.readDNS(context.Background(), t0.Add(s.at), st)
		got := c.dnsNow()
		for j := range got {
			if got[j].Error != "" {
				got[j].Error = "x"
			}
		}
		if d := cmp.Diff(s.want, got); d != "" {
			t.Errorf("step %d (-want +got):\n%s", i, d)
		}
	}
	// Without dns in the status, nothing is read or shown.
	c2, _ := New(cfg)
	c2.readDNS(context.Background(), t0, api.Status{})
	if got := c2.dnsNow(); got != nil {
		t.Errorf("without dns: %+v", got)
	}
}
