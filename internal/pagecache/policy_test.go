package pagecache

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPlanFor(t *testing.T) {
	clk := newFakeClock()
	now := clk.Now()
	date := now.Format(http.TimeFormat)
	c := newTestCache(t, clk, nil)
	def := plan{swr: 30 * time.Second, sie: 24 * time.Hour, mayServeStale: true}
	with := func(f func(*plan)) plan {
		p := def
		f(&p)
		return p
	}
	const htmlCT = "text/html; charset=UTF-8"
	tests := []struct {
		name       string
		status     int
		static     bool
		kv         []string
		want       plan
		wantReason string
	}{
		{name: "anonymous html gets DefaultTTL", status: 200, kv: []string{"Content-Type", htmlCT}, want: with(func(p *plan) { p.lifetime = 5 * time.Minute })},
		{name: "404 html", status: 404, kv: []string{"Content-Type", htmlCT}, want: with(func(p *plan) { p.lifetime = 5 * time.Minute })},
		{name: "301 html", status: 301, kv: []string{"Content-Type", htmlCT, "Location", "/x/"}, want: with(func(p *plan) { p.lifetime = 5 * time.Minute })},
		{name: "feed", status: 200, kv: []string{"Content-Type", "application/rss+xml; charset=UTF-8"}, want: with(func(p *plan) { p.lifetime = 5 * time.Minute })},
		{name: "static gets StaticTTL", status: 200, static: true, kv: []string{"Content-Type", "text/css"}, want: with(func(p *plan) { p.lifetime = 7 * 24 * time.Hour })},
		{name: "static explicit wins", status: 200, static: true, kv: []string{"Cache-Control", "max-age=60"}, want: with(func(p *plan) { p.lifetime = time.Minute })},
		{name: "json without freshness", status: 200, kv: []string{"Content-Type", "application/json"}, wantReason: passNoFreshness},
		{name: "json with max-age", status: 200, kv: []string{"Content-Type", "application/json", "Cache-Control", "public, max-age=120"}, want: with(func(p *plan) { p.lifetime = 2 * time.Minute })},
		{name: "s-maxage beats max-age", status: 200, kv: []string{"Cache-Control", "max-age=60, s-maxage=600"}, want: with(func(p *plan) { p.lifetime = 10 * time.Minute })},
		{name: "max-age beats expires", status: 200, kv: []string{"Cache-Control", "max-age=60", "Expires", now.Add(time.Hour).Format(http.TimeFormat)}, want: with(func(p *plan) { p.lifetime = time.Minute })},
		{name: "expires minus date", status: 200, kv: []string{"Date", date, "Expires", now.Add(time.Hour).Format(http.TimeFormat)}, want: with(func(p *plan) { p.lifetime = time.Hour })},
		{name: "invalid expires is expired", status: 200, kv: []string{"Content-Type", htmlCT, "Expires", "0"}, wantReason: passStaleArrival},
		{name: "wordpress nocache headers", status: 200, kv: []string{"Content-Type", htmlCT, "Cache-Control", "no-cache, must-revalidate, max-age=0, no-store, private", "Expires", "Wed, 11 Jan 1984 05:00:00 GMT"}, wantReason: passNoStore},
		{name: "private", status: 200, kv: []string{"Cache-Control", "private, max-age=60"}, wantReason: passPrivate},
		{name: "set-cookie", status: 200, kv: []string{"Content-Type", htmlCT, "Set-Cookie", "a=b"}, wantReason: passSetCookie},
		{name: "vary star", status: 200, kv: []string{"Content-Type", htmlCT, "Vary", "Cookie, *"}, wantReason: passVaryStar},
		{name: "status 302", status: 302, kv: []string{"Content-Type", htmlCT, "Cache-Control", "max-age=60"}, wantReason: passStatus},
		{name: "status 500", status: 500, kv: []string{"Content-Type", htmlCT}, wantReason: passStatus},
		{name: "status 206", status: 206, kv: []string{"Cache-Control", "max-age=60"}, wantReason: passStatus},
		{name: "204 with max-age", status: 204, kv: []string{"Cache-Control", "max-age=60"}, want: with(func(p *plan) { p.lifetime = time.Minute })},
		{name: "max-age 0 is stale on arrival", status: 200, kv: []string{"Content-Type", htmlCT, "Cache-Control", "max-age=0"}, wantReason: passStaleArrival},
		{name: "age past max-age", status: 200, kv: []string{"Cache-Control", "max-age=60", "Age", "60"}, wantReason: passStaleArrival},
		{name: "age counts", status: 200, kv: []string{"Cache-Control", "max-age=60", "Age", "10"}, want: with(func(p *plan) { p.lifetime, p.initialAge = time.Minute, 10*time.Second })},
		{name: "no-cache stored, revalidated", status: 200, kv: []string{"Content-Type", htmlCT, "Cache-Control", "no-cache", "ETag", `"v1"`},
			want: with(func(p *plan) { p.lifetime, p.noCache, p.mayServeStale, p.swr = 5*time.Minute, true, false, 0 })},
		{name: "must-revalidate: no stale", status: 200, kv: []string{"Cache-Control", "max-age=60, must-revalidate"},
			want: with(func(p *plan) { p.lifetime, p.mayServeStale, p.swr, p.sie = time.Minute, false, 0, 0 })},
		{name: "stale directives", status: 200, kv: []string{"Cache-Control", "max-age=60, stale-while-revalidate=5, stale-if-error=600"},
			want: with(func(p *plan) { p.lifetime, p.swr, p.sie = time.Minute, 5*time.Second, 10*time.Minute })},
		{name: "no-transform", status: 200, kv: []string{"Content-Type", htmlCT, "Cache-Control", "no-transform"}, want: with(func(p *plan) { p.lifetime, p.noTransform = 5*time.Minute, true })},
		{name: "known encoding", status: 200, kv: []string{"Content-Type", htmlCT, "Content-Encoding", "br"}, want: with(func(p *plan) { p.lifetime = 5 * time.Minute })},
		{name: "stacked encodings", status: 200, kv: []string{"Content-Type", htmlCT, "Content-Encoding", "gzip, br"}, wantReason: passEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.kv); i += 2 {
				h.Add(tt.kv[i], tt.kv[i+1])
			}
			p, reason := c.planFor(tt.status, h, tt.static, now)
			if diff := cmp.Diff(tt.wantReason, reason); diff != "" {
				t.Fatalf("planFor() reason mismatch (-want +got):\n%s", diff)
			}
			if reason != "" {
				return
			}
			if diff := cmp.Diff(tt.want, p, cmp.AllowUnexported(plan{})); diff != "" {
				t.Errorf("planFor() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
