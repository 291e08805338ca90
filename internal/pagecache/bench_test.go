package pagecache

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// browserRequest is an anonymous visitor's request for a WordPress page.
func browserRequest(target, acceptEncoding string) *http.Request {
	r := req("GET", target,
		"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
		"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Accept-Language", "en-US,en;q=0.9",
		"Cookie", "_ga=GA1.1.123456789.1700000000; wordpress_test_cookie=WP%20Cookie%20check",
	)
	r.Host = "blog.example.com"
	if acceptEncoding != "" {
		r.Header.Set("Accept-Encoding", acceptEncoding)
	}
	return r
}

// pageOrigin answers like WordPress for an anonymous page of n bytes.
func pageOrigin(n int) *origin {
	body := html(n)
	return newOrigin(func(int) (*Response, error) {
		return resp(200, body,
			"Content-Type", "text/html; charset=UTF-8",
			"Link", `<https://blog.example.com/wp-json/>; rel="https://api.w.org/"`,
			"Link", `<https://blog.example.com/?p=12>; rel=shortlink`,
			"X-Scalepress-Tags", "post-12 term-3 home author-1",
			"Date", time.Now().UTC().Format(http.TimeFormat), // a fixed past Date is its age now (RFC 9111 §4.2.3)
		), nil
	})
}

func BenchmarkHit(b *testing.B) {
	for _, bb := range []struct {
		name, ae string
	}{
		{"gzip-64KiB", "gzip, deflate, br, zstd"},
		{"identity-64KiB", ""},
	} {
		b.Run(bb.name, func(b *testing.B) {
			c := newTestCache(b, nil, nil) // the real clock: time.Now is part of a hit
			r := browserRequest("/2024/05/hello-world/?utm_source=newsletter", bb.ae)
			do(b, c, r, pageOrigin(64<<10))
			w := &nopWriter{h: make(http.Header, 16)}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				d := c.Classify(r)
				if !c.ServeHit(w, r, d) {
					b.Fatal("ServeHit() = false")
				}
			}
			if w.status != 200 || w.n == 0 {
				b.Fatalf("status %d, %d bytes", w.status, w.n)
			}
		})
	}
	b.Run("gzip-64KiB-parallel", func(b *testing.B) {
		c := newTestCache(b, nil, nil)
		targets := make([]string, 64)
		for i := range targets {
			targets[i] = fmt.Sprintf("/2024/05/post-%d/", i)
			do(b, c, browserRequest(targets[i], "gzip"), pageOrigin(64<<10))
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := &nopWriter{h: make(http.Header, 16)}
			reqs := make([]*http.Request, len(targets))
			for i, t := range targets {
				reqs[i] = browserRequest(t, "gzip")
			}
			i := 0
			for pb.Next() {
				w.reset()
				r := reqs[i%len(reqs)]
				i++
				if !c.ServeHit(w, r, c.Classify(r)) {
					b.Error("ServeHit() = false")
					return
				}
			}
		})
	})
}

func BenchmarkMissCoalesced(b *testing.B) {
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("16KiB-%d-clients", clients), func(b *testing.B) {
			c := newTestCache(b, nil, nil)
			o := pageOrigin(16 << 10)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				target := fmt.Sprintf("/2024/05/post-%d/", i)
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						r := browserRequest(target, "gzip")
						w := &nopWriter{h: make(http.Header, 16)}
						d := c.Classify(r)
						if c.ServeHit(w, r, d) {
							return
						}
						c.Serve(w, r, c.Fill(context.Background(), r, d, o.fetch))
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(o.Calls())/float64(i), "fetches/op")
		})
	}
}

func BenchmarkClassifyBypass(b *testing.B) {
	c := newTestCache(b, nil, nil)
	r := browserRequest("/2024/05/hello-world/", "gzip")
	r.Header.Set("Cookie", "_ga=GA1.1.1; wordpress_test_cookie=WP%20Cookie%20check; wp-settings-1=x; wordpress_logged_in_0123456789abcdef=admin%7C1700000000%7Cabc%7Cdef")
	b.ReportAllocs()
	for b.Loop() {
		if c.Classify(r).Bypass == "" {
			b.Fatal("not bypassed")
		}
	}
}

func BenchmarkPurgeTag(b *testing.B) {
	const objects, perTag = 20000, 10
	setup := func(b *testing.B) *Cache {
		c := newTestCache(b, nil, nil)
		o := newOrigin(nil).with(func(path string) (*Response, error) {
			var n int
			fmt.Sscanf(path, "/p/%d", &n)
			return resp(200, "<p>post</p>", "Content-Type", htmlCT, "X-Scalepress-Tags", fmt.Sprintf("post-%d home", n/perTag)), nil
		})
		for i := range objects {
			do(b, c, req("GET", fmt.Sprintf("/p/%d", i)), o)
		}
		return c
	}
	b.Run(fmt.Sprintf("soft-%d-of-%d", perTag, objects), func(b *testing.B) {
		c := setup(b)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if n := c.PurgeTag(fmt.Sprintf("post-%d", i%(objects/perTag)), true); n != perTag {
				b.Fatalf("PurgeTag() = %d", n)
			}
			i++
		}
	})
	b.Run(fmt.Sprintf("hard-%d-of-%d", perTag, objects), func(b *testing.B) {
		c := setup(b)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			// Put back what the purge removes, outside the timer, so the
			// cache keeps its size without a fill per iteration.
			b.StopTimer()
			tag := fmt.Sprintf("post-%d", i%(objects/perTag))
			objs := c.tags.objects(tag)
			b.StartTimer()
			if n := c.PurgeTag(tag, false); n != perTag {
				b.Fatalf("PurgeTag() = %d", n)
			}
			b.StopTimer()
			for _, o := range objs {
				o.ue = nil
				c.insert(o)
			}
			b.StartTimer()
			i++
		}
	})
}

// BenchmarkCompress is the store-time cost of one coding of a 52 KB page.
func BenchmarkCompress(b *testing.B) {
	page := []byte(html(52 << 10))
	for _, c := range []coding{codingGzip, codingBr, codingZstd} {
		b.Run(codingNames[c], func(b *testing.B) {
			b.SetBytes(int64(len(page)))
			var n int
			for b.Loop() {
				n = len(compressBody(c, page))
			}
			b.ReportMetric(float64(n), "bytes")
		})
	}
}

// BenchmarkAcceptEncoding is the per-hit cost of choosing a coding.
func BenchmarkAcceptEncoding(b *testing.B) {
	v := []string{"gzip, deflate, br, zstd"}
	b.ReportAllocs()
	for b.Loop() {
		parseAcceptEncoding(v)
	}
}
