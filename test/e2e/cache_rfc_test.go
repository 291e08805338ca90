package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// rfcScript is a PHP endpoint whose caching headers the test controls
// (it is not WordPress: untagged, so no grace policy applies).
const rfcScript = `<?php
header('Content-Type: text/plain');
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
	if (!empty($_SERVER['HTTP_X_E2E_DENY'])) {
		http_response_code(403);
		echo "denied";
		exit;
	}
	if (isset($_GET['comment'])) {
		header('Location: /e2e-rfc.php#comment-1', true, 302);
		exit;
	}
	echo "posted";
	exit;
}
if (isset($_GET['cdn'])) {
	header('Cache-Control: no-store');
	header('CDN-Cache-Control: max-age=600');
	echo "cdn";
	exit;
}
header('ETag: "v1"');
if (($_SERVER['HTTP_IF_NONE_MATCH'] ?? '') === '"v1"') {
	http_response_code(304);
	header('Cache-Control: max-age=300');
	header('X-E2E-Version: second');
	exit;
}
header('Cache-Control: max-age=4');
header('X-E2E-Version: first');
echo "body v1";
`

// TestCacheRFC9111 drives the real stack (block 74) through the RFC 9111
// rules whose effect a visitor sees: a 304 revalidation updates the stored
// headers (§4.3.4), a non-error POST invalidates the URL and the URL its
// Location names (§4.4) while an error does not, and CDN-Cache-Control
// takes precedence over Cache-Control and never reaches the client
// (RFC 9213 §2.1, ADR 0020).
func TestCacheRFC9111(t *testing.T) {
	s := newStack(t, 74, 1)
	s.up(t)
	for _, n := range s.status(t).Nodes {
		if err := os.WriteFile(filepath.Join(n.Docroot, "e2e-rfc.php"), []byte(rfcScript), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t)
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	url := s.site + "/e2e-rfc.php"
	// seen is what a response shows of the cache's work.
	seen := func(p page) string {
		return strings.Join([]string{p.header.Get("X-Cache"), p.header.Get("X-E2E-Version"), p.header.Get("Cache-Control"), p.header.Get("CDN-Cache-Control"), p.body}, " | ")
	}
	post := func(u string, hdr map[string]string) string {
		p := b.do("POST", u, strings.NewReader("comment=hi"), mergeHdr(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, hdr))
		return p.header.Get("X-Cache") + " " + http3xx(p)
	}

	t.Run("a 304 updates the stored headers (§4.3.4)", func(t *testing.T) {
		got := []string{seen(b.get(url)), seen(b.get(url))}
		time.Sleep(5 * time.Second) // max-age=4 runs out (Date has whole seconds)
		got = append(got, seen(b.get(url)), seen(b.get(url)))
		want := []string{
			"MISS | first | max-age=4 |  | body v1",
			"HIT | first | max-age=4 |  | body v1",
			"MISS | second | max-age=300 |  | body v1", // revalidated: the 304's fields
			"HIT | second | max-age=300 |  | body v1",  // and they are stored
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("responses mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("a POST invalidates the URL; a 403 does not (§4.4)", func(t *testing.T) {
		got := []string{
			post(url, map[string]string{"X-E2E-Deny": "1"}), seen(b.get(url)),
			post(url, nil), seen(b.get(url)), seen(b.get(url)),
			post(url+"?comment=1", nil), seen(b.get(url)),
		}
		want := []string{
			"BYPASS 403", "HIT | second | max-age=300 |  | body v1",
			"BYPASS 200", "MISS | first | max-age=4 |  | body v1", "HIT | first | max-age=4 |  | body v1",
			"BYPASS 302 /e2e-rfc.php#comment-1", "MISS | first | max-age=4 |  | body v1", // the Location's URL
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("requests mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("CDN-Cache-Control wins over Cache-Control and is not served (RFC 9213)", func(t *testing.T) {
		got := []string{seen(b.get(url + "?cdn=1")), seen(b.get(url + "?cdn=1"))}
		want := []string{"MISS |  | no-store |  | cdn", "HIT |  | no-store |  | cdn"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("responses mismatch (-want +got):\n%s", diff)
		}
	})

	// The failing part (every node) on the request path: the grace policy
	// serves the WordPress page stale, and nothing else (§4.2.4).
	t.Run("every node frozen: a stale WordPress page is STALE, a stale other response a 503", func(t *testing.T) {
		b.get(s.site + "/")
		if p := b.get(s.site + "/"); p.header.Get("X-Cache") != "HIT" || p.header.Get("X-Scalepress-Tags") != "" {
			t.Fatalf("home page not cached: X-Cache %q", p.header.Get("X-Cache"))
		}
		b.get(url) // stored (or still fresh) for 4 s
		thaw := freezeNodes(t, s)
		defer thaw()
		for _, args := range [][]string{{"purge", "--tag", "home"}, {"purge", url}} { // both now stale
			if r := s.cli(t, args...); r.code != 0 {
				t.Fatalf("%v: %d %s", args, r.code, r.stderr)
			}
		}
		home, other := b.get(s.site+"/"), b.get(url)
		got := []string{strconv.Itoa(home.status) + " " + home.header.Get("X-Cache"), strconv.Itoa(other.status) + " " + other.header.Get("X-Cache")}
		if diff := cmp.Diff([]string{"200 STALE", "503 MISS"}, got); diff != "" {
			t.Errorf("with every node frozen (-want +got):\n%s", diff)
		}
	})
}

// freezeNodes stops every node process (SIGSTOP) and waits until the edge's
// health checks count none healthy; thaw resumes them.
func freezeNodes(t *testing.T, s *stack) (thaw func()) {
	t.Helper()
	var frozen []int
	thaw = func() {
		for _, pid := range frozen {
			kill(pid, syscall.SIGCONT)
		}
		frozen = nil
	}
	for _, n := range s.status(t).Nodes {
		for _, pid := range n.PIDs {
			if kill(pid, syscall.SIGSTOP) == nil {
				frozen = append(frozen, pid)
			}
		}
	}
	b := newBrowser(t)
	t0 := time.Now()
	for {
		var es struct {
			Balancer struct {
				Nodes []struct{ Healthy bool }
			}
		}
		json.Unmarshal([]byte(b.get(s.site+"/_scalepress/edge/status").body), &es)
		healthy := 0
		for _, n := range es.Balancer.Nodes {
			if n.Healthy {
				healthy++
			}
		}
		if healthy == 0 && len(es.Balancer.Nodes) > 0 {
			return thaw
		}
		if time.Since(t0) > 12*time.Second {
			thaw()
			t.Fatalf("the edge still counts %d healthy nodes %s after freezing them all", healthy, time.Since(t0))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mergeHdr(a, b map[string]string) map[string]string {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// http3xx is the status, and the Location of a redirect.
func http3xx(p page) string {
	s := strconv.Itoa(p.status)
	if l := p.header.Get("Location"); l != "" {
		s += " " + l
	}
	return s
}
