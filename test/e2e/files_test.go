package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/token"
)

// tinyJPEG is a valid 8×8 JPEG whose content differs with n.
func tinyJPEG(t *testing.T, n int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for x := range 8 {
		for y := range 8 {
			img.Set(x, y, color.RGBA{uint8(n * 37), uint8(x * 30), uint8(y * 30), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// uploadMedia uploads a JPEG through the REST API via the edge and returns
// its URL.
func (b *browser) uploadMedia(site, nonce, name string, data []byte) string {
	b.t.Helper()
	u, err := b.tryUploadMedia(site, nonce, name, data)
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// tryUploadMedia is uploadMedia for another goroutine: it returns errors.
func (b *browser) tryUploadMedia(site, nonce, name string, data []byte) (string, error) {
	return b.tryUploadMediaVia(site, "", nonce, name, data)
}

// tryUploadMediaVia uploads straight to the node at addr (with the site's
// Host and the browser's cookies), or through the edge when addr is "".
func (b *browser) tryUploadMediaVia(site, addr, nonce, name string, data []byte) (string, error) {
	req, err := http.NewRequest("POST", site+"/wp-json/wp/v2/media", bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	client := b.client
	if addr != "" {
		for _, c := range b.client.Jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
		req.URL.Host = addr // req.Host stays the site's
		client = &http.Client{Timeout: b.client.Timeout}
	}
	req.Header.Set("Content-Type", "image/jpeg")
	req.Header.Set("Content-Disposition", "attachment; filename="+name)
	req.Header.Set("X-WP-Nonce", nonce)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("upload %s: status %d: %.500s", name, resp.StatusCode, body)
	}
	var out struct {
		SourceURL string `json:"source_url"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.SourceURL == "" {
		return "", fmt.Errorf("upload %s: bad answer %v: %.300s", name, err, body)
	}
	return out.SourceURL, nil
}

func inServiceDocroots(st api.Status) map[string]string {
	out := map[string]string{}
	for _, n := range st.Nodes {
		if n.State == "in-service" {
			out[n.ID] = n.Docroot
		}
	}
	return out
}

// waitEverywhere waits until rel exists (or, with !present, is gone) in
// every docroot, and fails after timeout.
func waitEverywhere(t *testing.T, docroots map[string]string, rel string, present bool, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for {
		var missing []string
		for id, d := range docroots {
			_, err := os.Stat(filepath.Join(d, filepath.FromSlash(rel)))
			if (err == nil) != present {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return time.Since(t0)
		}
		if time.Since(t0) > timeout {
			t.Fatalf("%s: present=%v not reached on %v after %s", rel, present, missing, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFiles(t *testing.T) {
	s := newStack(t, 51, 2)
	// Autoscaling on, but with a target no load here reaches: the group
	// only changes when `scalepress scale` says so.
	cfg := strings.Replace(stackConfig(51, 2), "autoscaling:\n  enabled: false\n",
		"autoscaling:\n  enabled: true\n  min: 2\n  max: 3\n  target: 1.0\n", 1)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	took := s.up(t)
	st := s.status(t)
	if st.Files == nil || st.Files.State != "up" || st.Files.Seq == 0 || st.Files.Addr != "127.51.4.1:8080" {
		t.Fatalf("files status after up: %+v", st.Files)
	}
	t.Logf("up in %s, files seq %d", took.Round(time.Millisecond), st.Files.Seq)
	filesURL := "http://" + st.Files.Addr
	readToken := s.filesKey(t).Issue("edge-1") // the files API answers no one without a token
	pw, _ := os.ReadFile(st.Admin.PasswordFile)
	b := newBrowser(t)
	if p := b.login(s.site, "admin", strings.TrimSpace(string(pw))); !strings.Contains(p.url, "/wp-admin/") {
		t.Fatalf("login failed: %s", p.url)
	}
	nonce := b.restNonce(s.site)
	var uploaded []string // paths relative to the docroot
	relOf := func(u string) string {
		rel, ok := strings.CutPrefix(u, s.site+"/")
		if !ok {
			t.Fatalf("source_url %s is not on the site %s", u, s.site)
		}
		return rel
	}

	t.Run("an upload is served at once and is on every node within 1s", func(t *testing.T) {
		docroots := inServiceDocroots(st)
		name := fmt.Sprintf("e2e-%d.jpg", time.Now().UnixNano())
		u := b.uploadMedia(s.site, nonce, name, tinyJPEG(t, 1))
		t0 := time.Now()
		rel := relOf(u)
		uploaded = append(uploaded, rel)
		anon := &http.Client{Timeout: 10 * time.Second}
		var codes []int
		for range 30 {
			resp, err := anon.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		for _, c := range codes {
			if c != 200 {
				t.Fatalf("30 GETs right after the upload: %v", codes)
			}
		}
		d := waitEverywhere(t, docroots, rel, true, time.Second)
		t.Logf("30 GETs all 200; on %d nodes %s after the upload returned (%s after the GETs)", len(docroots), time.Since(t0).Round(time.Millisecond), d.Round(time.Millisecond))
	})

	t.Run("an upload fetched through a node that has not applied it yet comes from files", func(t *testing.T) {
		// node-2's filesync agent is paused, so node-2 cannot have the
		// upload; it is made on node-1 (straight to its address, so that
		// it cannot land on node-2), whose agent pushes it to files.
		st := s.status(t)
		var one, two api.NodeStatus
		for _, n := range st.Nodes {
			switch n.ID {
			case "node-1":
				one = n
			case "node-2":
				two = n
			}
		}
		if one.State != "in-service" || two.State != "in-service" {
			t.Fatalf("node-1 %q, node-2 %q: want both in service", one.State, two.State)
		}
		agent := procsOf(t, two).filesync
		if agent == 0 {
			t.Fatalf("node-2 has no filesync agent among %v", two.PIDs)
		}
		if err := kill(agent, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		paused := true
		defer func() {
			if paused {
				kill(agent, syscall.SIGCONT)
			}
		}()
		data := tinyJPEG(t, 3)
		name := fmt.Sprintf("e2e-fallback-%d.jpg", time.Now().UnixNano())
		u, err := b.tryUploadMediaVia(s.site, one.Addr, nonce, name, data)
		if err != nil {
			t.Fatal(err)
		}
		rel := relOf(u)
		uploaded = append(uploaded, rel)
		waitEverywhere(t, map[string]string{one.ID: one.Docroot}, rel, true, time.Second)
		// files has it once node-1's agent pushed it.
		for t0 := time.Now(); ; {
			code, body := filesCall{method: "GET", path: "/v1/files/" + rel, token: readToken}.do(t, filesURL)
			if code == 200 {
				break
			}
			if time.Since(t0) > 5*time.Second {
				t.Fatalf("files does not serve %s 5 s after the upload: %d %.200q", rel, code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// GETs that bypass the cache, until the edge has sent one to
		// node-2 (power of two choices: each GET goes there with
		// probability 1/2).
		edgeMetrics := s.site + "/_scalepress/edge/metrics"
		picks := func() float64 {
			return metric(t, edgeMetrics, "scalepress_edge_node_picks_total", `node="node-2"`)
		}
		fallbacks := func() float64 { return metric(t, edgeMetrics, "scalepress_edge_upload_fallbacks_total") }
		bypass := map[string]string{"Cookie": "wordpress_logged_in_x=invalid"}
		anon := newBrowser(t)
		var through, fell float64
		for i := 0; i < 40 && through == 0; i++ {
			p0, f0 := picks(), fallbacks()
			p := anon.do("GET", u, nil, bypass)
			through, fell = picks()-p0, fallbacks()-f0
			if p.status != 200 || p.body != string(data) {
				t.Fatalf("GET %d of the upload: status %d, %d bytes (want 200, %d bytes)", i, p.status, len(p.body), len(data))
			}
		}
		if through == 0 {
			t.Fatal("40 GETs and the edge sent none to node-2")
		}
		if _, err := os.Stat(filepath.Join(two.Docroot, filepath.FromSlash(rel))); err == nil {
			t.Fatal("node-2 has the upload although its filesync agent is paused")
		}
		if fell != 1 {
			t.Errorf("the GET sent to node-2 (which lacks the upload) moved the edge's upload fallback counter by %v, want 1", fell)
		}
		kill(agent, syscall.SIGCONT)
		paused = false
		d := waitEverywhere(t, inServiceDocroots(st), rel, true, 5*time.Second)
		t.Logf("the GET through node-2 was answered from files (fallback counter +%v); node-2 had the upload %s after its agent resumed", fell, d.Round(time.Millisecond))
	})

	t.Run("a plugin written on one node appears on all, and its removal too", func(t *testing.T) {
		docroots := inServiceDocroots(st)
		one := docroots["node-1"]
		dir := filepath.Join(one, "wp-content", "plugins", "e2e-sync")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "e2e-sync.php")
		if err := os.WriteFile(file, []byte("<?php\n/* Plugin Name: e2e sync */\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if u, err := user.Lookup("www-data"); err == nil && os.Geteuid() == 0 {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			os.Chown(dir, uid, gid)
			os.Chown(file, uid, gid)
		}
		d := waitEverywhere(t, docroots, "wp-content/plugins/e2e-sync/e2e-sync.php", true, time.Second)
		t.Logf("plugin on every node after %s", d.Round(time.Millisecond))
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		d = waitEverywhere(t, docroots, "wp-content/plugins/e2e-sync", false, time.Second)
		t.Logf("plugin removed from every node after %s", d.Round(time.Millisecond))
	})

	t.Run("malicious pushes are rejected and change nothing", func(t *testing.T) {
		nodeToken := s.filesKey(t).Issue("node-1")
		before := s.status(t).Files.Seq
		hash := strings.Repeat("ab", 32)
		for _, c := range []map[string]any{
			{"op": "put", "path": "../x", "mode": 0o644, "size": 1, "hash": hash},
			{"op": "put", "path": "/etc/passwd", "mode": 0o644, "size": 1, "hash": hash},
			{"op": "put", "path": "wp-content/evil", "mode": uint32(fs.ModeSymlink | 0o777), "size": 1, "hash": hash},
			{"op": "mkdir", "path": "wp-content/../../x", "mode": 0o755},
		} {
			// With a node's own token: the rules hold whoever sends them.
			body, _ := json.Marshal(map[string]any{"origin": "node-1", "changes": []any{c}})
			code, reason := filesCall{method: "POST", path: "/v1/changes", body: body, contentType: "application/json", token: nodeToken}.do(t, filesURL)
			if code != 400 {
				t.Errorf("push %v: status %d %q, want 400", c, code, reason)
			}
		}
		if after := s.status(t).Files.Seq; after != before {
			t.Errorf("files seq moved from %d to %d after rejected pushes", before, after)
		}
		for _, d := range inServiceDocroots(st) {
			if _, err := os.Lstat(filepath.Join(d, "wp-content", "evil")); err == nil {
				t.Errorf("%s has wp-content/evil", d)
			}
		}
	})

	t.Run("kill -9 of files during uploads loses nothing", func(t *testing.T) {
		st := s.status(t)
		pid := st.Files.PID
		var urls []string
		var uploadErr error
		jpegs := [][]byte{}
		for i := range 5 {
			jpegs = append(jpegs, tinyJPEG(t, 10+i))
		}
		filesSeq := func() uint64 {
			req, err := http.NewRequest("GET", filesURL+"/v1/status", nil)
			if err != nil {
				return 0
			}
			token.SetBearer(req.Header, readToken)
			resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
			if err != nil {
				return 0 // files is being killed and restarted
			}
			defer resp.Body.Close()
			var fst struct {
				Seq uint64 `json:"seq"`
			}
			json.NewDecoder(resp.Body).Decode(&fst)
			return fst.Seq
		}
		seq0 := filesSeq()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 5 {
				u, err := b.tryUploadMedia(s.site, nonce, fmt.Sprintf("e2e-kill-%d-%d.jpg", i, time.Now().UnixNano()), jpegs[i])
				if err != nil {
					uploadErr = err
					return
				}
				urls = append(urls, u)
			}
		}()
		// files is on the uploads' path: the first one has reached it
		// (its sequence number moved) when it is killed.
		var seq1 uint64
		for t0 := time.Now(); seq1 <= seq0; time.Sleep(5 * time.Millisecond) {
			if time.Since(t0) > 10*time.Second {
				t.Fatalf("files seq still %d 10 s after the uploads began", seq0)
			}
			seq1 = filesSeq()
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 files (pid %d): %v", pid, err)
		}
		<-done
		t.Logf("files killed once the first upload had reached it (seq %d → %d)", seq0, seq1)
		if uploadErr != nil {
			t.Fatalf("an upload failed while files was down: %v", uploadErr)
		}
		var rels []string
		for _, u := range urls {
			rels = append(rels, relOf(u))
		}
		back, d := s.waitNodes(t, "files back", 30*time.Second, func(st api.Status) bool {
			return st.Files != nil && st.Files.State == "up" && st.Files.PID != pid && st.Files.PID > 0
		})
		t.Logf("files back (pid %d → %d) after %s", pid, back.Files.PID, d.Round(time.Millisecond))
		docroots := inServiceDocroots(back)
		for _, rel := range rels {
			waitEverywhere(t, docroots, rel, true, 15*time.Second)
			uploaded = append(uploaded, rel)
		}
		t.Logf("all %d uploads on all %d nodes", len(rels), len(docroots))
	})

	t.Run("a node scaled out has every file before it is in service", func(t *testing.T) {
		if r := s.cli(t, "scale", "--min", "3", "--max", "3"); r.code != 0 {
			t.Fatalf("scale: %d %s", r.code, r.stderr)
		}
		t0 := time.Now()
		for {
			st := s.status(t)
			var newNode *api.NodeStatus
			for i, n := range st.Nodes {
				if n.ID == "node-3" && n.State == "in-service" {
					newNode = &st.Nodes[i]
				}
			}
			if newNode != nil {
				var missing []string
				for _, rel := range uploaded {
					if _, err := os.Stat(filepath.Join(newNode.Docroot, filepath.FromSlash(rel))); err != nil {
						missing = append(missing, rel)
					}
				}
				if len(missing) > 0 {
					t.Fatalf("node-3 in service without %v", missing)
				}
				t.Logf("node-3 in service after %s with all %d uploads", time.Since(t0).Round(time.Millisecond), len(uploaded))
				return
			}
			if time.Since(t0) > 90*time.Second {
				t.Fatalf("node-3 not in service after 90s: %+v", st.Nodes)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
