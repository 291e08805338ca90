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
	// def is the plan of a WordPress page (tagged): the grace policy.
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
		{name: "static gets StaticTTL", status: 200, static: true, kv: []string{"Content-Type", "text/css"}, want: with(func(p *plan) { p.lifetime = time.Minute })},
		{name: "static explicit wins", status: 200, static: true, kv: []string{"Cache-Control", "max-age=60"}, want: with(func(p *plan) { p.lifetime = time.Minute })},
		{name: "json without freshness", status: 200, kv: []string{"Content-Type", "application/json"}, wantReason: passNoFreshness},
		{name: "json with max-age", status: 200, kv: []string{"Content-Type", "application/json", "Cache-Control", "public, max-age=120"}, want: with(func(p *plan) { p.lifetime = 2 * time.Minute })},
		// RFC 9111 §5.2.2.10: s-maxage overrides max-age in a shared cache
		// and "incorporates the semantics of the proxy-revalidate response
		// directive": no stale use.
		{name: "§5.2.2.10 s-maxage beats max-age, forbids stale", status: 200, kv: []string{"Cache-Control", "max-age=60, s-maxage=600"},
			want: with(func(p *plan) { p.lifetime, p.mayServeStale, p.swr, p.sie = 10*time.Minute, false, 0, 0 })},
		{name: "§5.2.2.10 s-maxage beats a larger max-age", status: 200, kv: []string{"Cache-Control", "s-maxage=60, max-age=600"},
			want: with(func(p *plan) { p.lifetime, p.mayServeStale, p.swr, p.sie = time.Minute, false, 0, 0 })},
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
			want: with(func(p *plan) { p.lifetime, p.noCache, p.mayServeStale, p.swr, p.sie = 5*time.Minute, true, false, 0, 0 })},
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
			p, reason := c.planFor(tt.status, h, arrival{static: tt.static, tagged: true, requested: now, received: now})
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

// TestPlanForRFC covers the freshness, age and stale rules of RFC 9111 and
// RFC 9213, each case naming the section it checks.
func TestPlanForRFC(t *testing.T) {
	clk := newFakeClock()
	now := clk.Now() // Sat, 01 Mar 2025 12:00:00 GMT
	c := newTestCache(t, clk, nil)
	const htmlCT = "text/html; charset=UTF-8"
	wp := arrival{tagged: true, requested: now, received: now}
	other := arrival{requested: now, received: now}
	static := arrival{static: true, requested: now, received: now}
	grace := plan{swr: 30 * time.Second, sie: 24 * time.Hour, mayServeStale: true}
	plain := plan{}
	with := func(base plan, f func(*plan)) plan {
		f(&base)
		return base
	}
	in := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name       string
		a          arrival
		kv         []string
		want       plan
		wantReason string
	}{
		// §4.2.4: "A cache MUST NOT generate a stale response unless ...
		// explicitly permitted by the client or origin server ... or
		// configuration": the configured windows are the WordPress grace
		// policy, for tagged pages and static assets only.
		{name: "§4.2.4 untagged html: no stale window", a: other, kv: []string{"Content-Type", htmlCT},
			want: with(plain, func(p *plan) { p.lifetime = 5 * time.Minute })},
		{name: "§4.2.4 tagged html: grace policy", a: wp, kv: []string{"Content-Type", htmlCT},
			want: with(grace, func(p *plan) { p.lifetime = 5 * time.Minute })},
		{name: "§4.2.4 static asset: grace policy", a: static, kv: []string{"Content-Type", "text/css"},
			want: with(grace, func(p *plan) { p.lifetime = time.Minute })},
		{name: "RFC 5861 untagged with directives", a: other, kv: []string{"Cache-Control", "max-age=60, stale-while-revalidate=5, stale-if-error=600"},
			want: with(plain, func(p *plan) { p.lifetime, p.swr, p.sie = time.Minute, 5*time.Second, 10*time.Minute })},
		{name: "§5.2.2.2 must-revalidate beats directives and grace", a: wp, kv: []string{"Cache-Control", "max-age=60, must-revalidate, stale-if-error=600, stale-while-revalidate=9"},
			want: with(plain, func(p *plan) { p.lifetime = time.Minute })},
		{name: "§5.2.2.8 proxy-revalidate beats grace", a: wp, kv: []string{"Cache-Control", "max-age=60, proxy-revalidate"},
			want: with(plain, func(p *plan) { p.lifetime = time.Minute })},
		{name: "§5.2.2.10 s-maxage forbids stale", a: wp, kv: []string{"Cache-Control", "s-maxage=60, stale-if-error=600"},
			want: with(plain, func(p *plan) { p.lifetime = time.Minute })},
		{name: "§5.2.2.4 no-cache forbids stale", a: wp, kv: []string{"Content-Type", htmlCT, "Cache-Control", "no-cache, stale-if-error=600"},
			want: with(plain, func(p *plan) { p.lifetime, p.noCache = 5*time.Minute, true })},
		{name: "§5.2.2.10 quoted max-age is not one", a: other, kv: []string{"Content-Type", "application/json", "Cache-Control", `foo="max-age=3600"`}, wantReason: passNoFreshness},

		// §4.2.3 age calculation.
		{name: "§4.2.3 Age counts", a: other, kv: []string{"Cache-Control", "max-age=60", "Age", "10"},
			want: with(plain, func(p *plan) { p.lifetime, p.initialAge = time.Minute, 10*time.Second })},
		{name: "§4.2.3 apparent age from Date", a: other, kv: []string{"Cache-Control", "max-age=60", "Date", in(-20 * time.Second)},
			want: with(plain, func(p *plan) { p.lifetime, p.initialAge = time.Minute, 20*time.Second })},
		{name: "§4.2.3 Date in the future: apparent age 0", a: other, kv: []string{"Cache-Control", "max-age=60", "Date", in(time.Hour)},
			want: with(plain, func(p *plan) { p.lifetime = time.Minute })},
		{name: "§4.2.3 response_delay added to Age", a: arrival{requested: now.Add(-3 * time.Second), received: now}, kv: []string{"Cache-Control", "max-age=60", "Age", "10"},
			want: with(plain, func(p *plan) { p.lifetime, p.initialAge = time.Minute, 13*time.Second })},
		{name: "§4.2.3 max(apparent, corrected)", a: other, kv: []string{"Cache-Control", "max-age=60", "Age", "5", "Date", in(-30 * time.Second)},
			want: with(plain, func(p *plan) { p.lifetime, p.initialAge = time.Minute, 30*time.Second })},
		{name: "§4.2.3 apparent age past lifetime", a: other, kv: []string{"Cache-Control", "max-age=60", "Date", in(-2 * time.Minute)}, wantReason: passStaleArrival},
		{name: "§5.1 Age list is invalid: stale", a: wp, kv: []string{"Cache-Control", "max-age=60", "Age", "old, 0"}, wantReason: passStaleArrival},
		{name: "§5.1 Age 0, 10 is invalid: stale", a: wp, kv: []string{"Cache-Control", "max-age=60", "Age", "0, 10"}, wantReason: passStaleArrival},
		{name: "§5.1 two Age lines: stale", a: wp, kv: []string{"Cache-Control", "max-age=60", "Age", "1", "Age", "2"}, wantReason: passStaleArrival},
		{name: "§5.1 Age not a number: stale", a: wp, kv: []string{"Content-Type", htmlCT, "Age", "1.5"}, wantReason: passStaleArrival},
		{name: "§5.1 negative Age: stale", a: wp, kv: []string{"Content-Type", htmlCT, "Age", "-1"}, wantReason: passStaleArrival},

		// §5.3 Expires, RFC 9110 §5.6.7 HTTP-date.
		{name: "§5.3 Expires minus Date", a: other, kv: []string{"Date", in(0), "Expires", in(time.Hour)},
			want: with(plain, func(p *plan) { p.lifetime = time.Hour })},
		{name: "§5.3 Expires without Date: minus response_time", a: other, kv: []string{"Expires", in(time.Hour)},
			want: with(plain, func(p *plan) { p.lifetime = time.Hour })},
		{name: "§5.3 rfc850 Expires accepted", a: other, kv: []string{"Expires", "Saturday, 01-Mar-25 13:00:00 GMT"},
			want: with(plain, func(p *plan) { p.lifetime = time.Hour })},
		{name: "§5.3 asctime Expires accepted", a: other, kv: []string{"Expires", "Sat Mar  1 13:00:00 2025"},
			want: with(plain, func(p *plan) { p.lifetime = time.Hour })},
		{name: "§5.3 Expires 0 is expired", a: wp, kv: []string{"Content-Type", htmlCT, "Expires", "0"}, wantReason: passStaleArrival},
		{name: "§5.3 Expires with double space is expired", a: wp, kv: []string{"Content-Type", htmlCT, "Expires", "Sat,  01 Mar 2025 13:00:00 GMT"}, wantReason: passStaleArrival},
		{name: "§5.3 Expires with 1-digit hour is expired", a: wp, kv: []string{"Content-Type", htmlCT, "Expires", "Sat, 01 Mar 2025 3:00:00 GMT"}, wantReason: passStaleArrival},
		{name: "§5.3 Expires in UTC is expired", a: wp, kv: []string{"Content-Type", htmlCT, "Expires", "Sat, 01 Mar 2025 13:00:00 UTC"}, wantReason: passStaleArrival},
		{name: "§4.2.1 two Expires lines are expired", a: wp, kv: []string{"Content-Type", htmlCT, "Expires", in(time.Hour), "Expires", in(time.Hour)}, wantReason: passStaleArrival},
		{name: "§5.3 max-age beats invalid Expires", a: other, kv: []string{"Cache-Control", "max-age=60", "Expires", "0"},
			want: with(plain, func(p *plan) { p.lifetime = time.Minute })},

		// RFC 9213 §2.1: the targeted field wins over Cache-Control and Expires.
		{name: "RFC 9213 §2.1 CDN max-age beats Cache-Control", a: other, kv: []string{"Cache-Control", "max-age=10", "CDN-Cache-Control", "max-age=600"},
			want: with(plain, func(p *plan) { p.lifetime = 10 * time.Minute })},
		{name: "RFC 9213 §2.1 CDN max-age beats Cache-Control private", a: other, kv: []string{"Cache-Control", "private", "CDN-Cache-Control", "max-age=600"},
			want: with(plain, func(p *plan) { p.lifetime = 10 * time.Minute })},
		{name: "RFC 9213 §2.1 Expires ignored", a: other, kv: []string{"Expires", "0", "CDN-Cache-Control", "max-age=600"},
			want: with(plain, func(p *plan) { p.lifetime = 10 * time.Minute })},
		{name: "RFC 9213 §2.1 CDN private", a: wp, kv: []string{"Cache-Control", "max-age=600", "CDN-Cache-Control", "private"}, wantReason: passPrivate},
		{name: "RFC 9213 §2.1 CDN no-store", a: wp, kv: []string{"Cache-Control", "max-age=600", "CDN-Cache-Control", "no-store"}, wantReason: passNoStore},
		{name: "RFC 9213 §2.1 CDN no-cache", a: wp, kv: []string{"Content-Type", htmlCT, "Cache-Control", "max-age=600", "CDN-Cache-Control", "no-cache"},
			want: with(plain, func(p *plan) { p.lifetime, p.noCache = 5*time.Minute, true })},
		{name: "RFC 9213 §2.1 CDN must-revalidate", a: wp, kv: []string{"CDN-Cache-Control", "max-age=60, must-revalidate"},
			want: with(plain, func(p *plan) { p.lifetime = time.Minute })},
		{name: "RFC 9213 §2.1 CDN s-maxage", a: other, kv: []string{"CDN-Cache-Control", "max-age=600, s-maxage=60"},
			want: with(plain, func(p *plan) { p.lifetime = time.Minute })},
		{name: "RFC 9213 §2.1 CDN no-store=?0 is off", a: other, kv: []string{"CDN-Cache-Control", "no-store=?0, max-age=60"},
			want: with(plain, func(p *plan) { p.lifetime = time.Minute })},
		{name: "RFC 9213 §2.1 invalid field falls back to Cache-Control", a: other, kv: []string{"Cache-Control", "max-age=10", "CDN-Cache-Control", "MAX-AGE=600"},
			want: with(plain, func(p *plan) { p.lifetime = 10 * time.Second })},
		{name: "RFC 9213 §2.1 trailing comma falls back", a: other, kv: []string{"Cache-Control", "no-store", "CDN-Cache-Control", "max-age=600,"}, wantReason: passNoStore},
		{name: "RFC 9213 §2.1 empty field falls back", a: other, kv: []string{"Cache-Control", "max-age=10", "CDN-Cache-Control", ""},
			want: with(plain, func(p *plan) { p.lifetime = 10 * time.Second })},
		{name: "RFC 9213 §2.1 string max-age is invalid: stale", a: wp, kv: []string{"Content-Type", htmlCT, "CDN-Cache-Control", `max-age="600"`}, wantReason: passStaleArrival},
		{name: "RFC 9213 §2.1 parameters ignored", a: other, kv: []string{"CDN-Cache-Control", "max-age=60;foo=bar, public"},
			want: with(plain, func(p *plan) { p.lifetime = time.Minute })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.kv); i += 2 {
				h.Add(tt.kv[i], tt.kv[i+1])
			}
			p, reason := c.planFor(200, h, tt.a)
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
