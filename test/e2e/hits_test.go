package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// rawGet is a GET with these headers and no transparent decompression.
func rawGet(t *testing.T, url string, kv ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decodeBody(t *testing.T, ce string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch ce {
	case "":
		return b
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("Content-Encoding %q", ce)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", ce, err)
	}
	return out
}

// TestHits: through the real stack, a cached page is served in the coding
// the client prefers and decodes to the plain body; a static asset is a
// HIT on the second request and shows a change made through the files
// store (written on node-1, applied on node-2 by filesync) within
// cache.static_ttl of every node having it.
func TestHits(t *testing.T) {
	s := newStack(t, 80, 2)
	cfg := stackConfig(80, 2) + "cache:\n  static_ttl: 2s\n"
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.up(t)
	st := s.status(t)

	t.Run("a page in br, zstd and gzip decodes to the plain body", func(t *testing.T) {
		rawGet(t, s.site+"/") // fill
		resp, plain := rawGet(t, s.site+"/")
		if resp.Header.Get("X-Cache") != "HIT" || resp.Header.Get("Content-Encoding") != "" || len(plain) < 10<<10 {
			t.Fatalf("plain: X-Cache %q, Content-Encoding %q, %d bytes", resp.Header.Get("X-Cache"), resp.Header.Get("Content-Encoding"), len(plain))
		}
		for _, tt := range []struct{ ae, want string }{
			{"br", "br"},
			{"gzip, deflate, br, zstd", "br"}, // a browser: the smallest
			{"zstd", "zstd"},
			{"gzip", "gzip"},
			{"br;q=0, gzip;q=0.5", "gzip"},
		} {
			resp, b := rawGet(t, s.site+"/", "Accept-Encoding", tt.ae)
			h := resp.Header
			if h.Get("X-Cache") != "HIT" || h.Get("Content-Encoding") != tt.want || !strings.Contains(h.Get("Vary"), "Accept-Encoding") {
				t.Errorf("Accept-Encoding %q: X-Cache %q, Content-Encoding %q, Vary %q; want HIT, %s, Accept-Encoding",
					tt.ae, h.Get("X-Cache"), h.Get("Content-Encoding"), h.Get("Vary"), tt.want)
				continue
			}
			if h.Get("Content-Length") != strconv.Itoa(len(b)) {
				t.Errorf("Accept-Encoding %q: Content-Length %s, body %d bytes", tt.ae, h.Get("Content-Length"), len(b))
			}
			if got := decodeBody(t, tt.want, b); !bytes.Equal(got, plain) {
				t.Errorf("Accept-Encoding %q: the %s body decodes to %d bytes that differ from the plain %d", tt.ae, tt.want, len(got), len(plain))
			}
			t.Logf("Accept-Encoding %q: %s, %d bytes (plain %d)", tt.ae, tt.want, len(b), len(plain))
		}
	})

	t.Run("a static asset is a hit and shows a change made through the files store", func(t *testing.T) {
		docroots := inServiceDocroots(st)
		if len(docroots) != 2 {
			t.Fatalf("in-service nodes: %v", docroots)
		}
		rel := "wp-content/themes/e2e-hits.css"
		write := func(body string) {
			t.Helper()
			file := filepath.Join(docroots["node-1"], filepath.FromSlash(rel))
			if err := os.WriteFile(file+".tmp", []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			if u, err := user.Lookup("www-data"); err == nil && os.Geteuid() == 0 {
				uid, _ := strconv.Atoi(u.Uid)
				gid, _ := strconv.Atoi(u.Gid)
				os.Chown(file+".tmp", uid, gid)
			}
			if err := os.Rename(file+".tmp", file); err != nil {
				t.Fatal(err)
			}
			// Until node-2 (which only the files store feeds) has it.
			t0 := time.Now()
			for {
				b, _ := os.ReadFile(filepath.Join(docroots["node-2"], filepath.FromSlash(rel)))
				if string(b) == body {
					break
				}
				if time.Since(t0) > 10*time.Second {
					t.Fatalf("node-2 did not get %s through the files store in 10 s", rel)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		v1 := "/* v1 */ body { color: red; }\n" + strings.Repeat("/* padding */\n", 100)
		v2 := "/* v2 */ body { color: blue; }\n" + strings.Repeat("/* padding */\n", 100)
		write(v1)
		url := s.site + "/" + rel
		if resp, b := rawGet(t, url); resp.StatusCode != 200 || string(b) != v1 {
			t.Fatalf("first GET: %d, %q", resp.StatusCode, b)
		}
		resp, b := rawGet(t, url)
		if resp.Header.Get("X-Cache") != "HIT" || string(b) != v1 || resp.Header.Get("Etag") == "" {
			t.Fatalf("second GET: X-Cache %q ETag %q, v1 %v; want HIT with the node's ETag", resp.Header.Get("X-Cache"), resp.Header.Get("Etag"), string(b) == v1)
		}
		write(v2)
		applied := time.Now()
		// Bound: static_ttl (2 s), then one request is served the stale
		// copy while the refresh runs (stale-while-revalidate), the next
		// gets the new file. 2 s of slack for the shared machine.
		for {
			resp, b = rawGet(t, url)
			if string(b) == v2 {
				break
			}
			if time.Since(applied) > 6*time.Second {
				t.Fatalf("still the old file %s after every node had the new one (X-Cache %q)", time.Since(applied).Round(time.Millisecond), resp.Header.Get("X-Cache"))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("new file served %s after every node had it", time.Since(applied).Round(time.Millisecond))
		if resp, b := rawGet(t, url); resp.Header.Get("X-Cache") != "HIT" || string(b) != v2 {
			t.Errorf("after the change: X-Cache %q, v2 %v; want a HIT of the new file", resp.Header.Get("X-Cache"), string(b) == v2)
		}
	})
}
