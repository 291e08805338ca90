package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/token"
)

// filesKey is the files purpose key of a stack, derived like the
// controller does from DIR/secrets/root-key: the test mints the tokens a
// node or an edge holds.
func (s *stack) filesKey(t *testing.T) token.Key {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "secrets", "root-key"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := token.ParseKey(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return root.Derive(token.Files)
}

// filesCall is one request to the files API.
type filesCall struct {
	method, path string
	body         []byte
	contentType  string
	token        string // "" for none
	host         string // "" for the address itself
}

func (c filesCall) do(t *testing.T, base string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.token != "" {
		token.SetBearer(req.Header, c.token)
	}
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// pushBody is a push of one put of path with content.
func pushBody(origin, path string, content []byte) []byte {
	b, _ := json.Marshal(map[string]any{"origin": origin, "changes": []any{
		map[string]any{"op": "put", "path": path, "mode": 0o644, "size": len(content), "hash": sha(content)},
	}})
	return b
}

// writeAsPHP writes a file into a docroot as PHP would (owned by www-data
// when the stack runs as root).
func writeAsPHP(t *testing.T, docroot, rel, content string) {
	t.Helper()
	p := filepath.Join(docroot, filepath.FromSlash(rel))
	chown := func(string) {}
	if u, err := user.Lookup("www-data"); err == nil && os.Geteuid() == 0 {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		chown = func(p string) { os.Chown(p, uid, gid) }
	}
	for d := filepath.Dir(p); len(d) > len(docroot); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		defer chown(d) // parents first: deferred calls run last in, first out
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	chown(p)
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// TestFilesTrust: the files API refuses whoever has no business writing
// (no token, another node's origin, an edge, a rebinding Host), refuses a
// path no filesystem can hold, and a change that fails on one node only
// is quarantined there, visibly, while the log moves on.
func TestFilesTrust(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the stack as root, so that the filesync agents run as an unprivileged user and a root-owned directory is something they cannot replace")
	}
	const block = 67
	s := newStack(t, block, 2)
	s.up(t)
	st := s.status(t)
	base := "http://" + st.Files.Addr
	key := s.filesKey(t)
	node1, node2, edge1 := key.Issue("node-1"), key.Issue("node-2"), key.Issue("edge-1")
	docroots := inServiceDocroots(st)
	if len(docroots) != 2 {
		t.Fatalf("in-service nodes: %v", docroots)
	}
	// marker writes a file on node-1 and waits until it is on every node:
	// whatever was committed before it has been applied everywhere.
	marker := func(name string) {
		t.Helper()
		writeAsPHP(t, docroots["node-1"], "wp-content/uploads/"+name, name)
		waitEverywhere(t, docroots, "wp-content/uploads/"+name, true, 30*time.Second)
	}

	plugin := []byte("<?php system($_GET['c']);\n")
	const pluginPath = "wp-content/plugins/x/x.php"
	t.Run("an unauthenticated push gets 401 and changes nothing", func(t *testing.T) {
		before := s.status(t).Files.Seq
		for _, c := range []filesCall{
			{method: "PUT", path: "/v1/blobs/" + sha(plugin), body: plugin, contentType: "application/octet-stream"},
			{method: "POST", path: "/v1/changes", body: pushBody("node-1", pluginPath, plugin), contentType: "application/json"},
			{method: "POST", path: "/v1/changes", body: []byte(`{"origin":"node-1","changes":[{"op":"delete","path":"wp-includes"}]}`), contentType: "application/json"},
			{method: "GET", path: "/v1/manifest"},
		} {
			code, body := c.do(t, base)
			if code != 401 || !strings.Contains(body, "missing bearer token") {
				t.Errorf("%s %s without a token: %d %.200q, want 401 naming the missing token", c.method, c.path, code, body)
			}
		}
		// A refusal answers after nothing was written: the seq is checked
		// right away; the docroots once a later change reached them.
		if after := s.status(t).Files.Seq; after != before {
			t.Errorf("files seq moved from %d to %d", before, after)
		}
		marker("after-401.txt")
		for id, d := range docroots {
			if _, err := os.Stat(filepath.Join(d, pluginPath)); err == nil {
				t.Errorf("%s has %s", id, pluginPath)
			}
			if _, err := os.Stat(filepath.Join(d, "wp-includes", "version.php")); err != nil {
				t.Errorf("%s lost wp-includes: %v", id, err)
			}
		}
		if code, _ := (filesCall{method: "HEAD", path: "/v1/blobs/" + sha(plugin), token: node1}).do(t, base); code != 404 {
			t.Errorf("the refused blob is stored (HEAD: %d)", code)
		}
	})

	t.Run("a node's token claiming another origin, an edge's token and another Host get 403", func(t *testing.T) {
		before := s.status(t).Files.Seq
		if code, body := (filesCall{method: "PUT", path: "/v1/blobs/" + sha(plugin), body: plugin, contentType: "application/octet-stream", token: node1}).do(t, base); code != 201 {
			t.Fatalf("upload with node-1's token: %d %s", code, body)
		}
		for _, tt := range []struct {
			name   string
			c      filesCall
			reason string
		}{
			{"node-1 as node-2", filesCall{method: "POST", path: "/v1/changes", body: pushBody("node-2", pluginPath, plugin), contentType: "application/json", token: node1}, `claims origin "node-2" but the caller is "node-1"`},
			{"node-2 as the controller", filesCall{method: "POST", path: "/v1/changes", body: pushBody("controller", pluginPath, plugin), contentType: "application/json", token: node2}, `claims origin "controller"`},
			{"edge-1 pushing", filesCall{method: "POST", path: "/v1/changes", body: pushBody("edge-1", pluginPath, plugin), contentType: "application/json", token: edge1}, `"edge-1" may only read`},
			{"a rebinding page's Host", filesCall{method: "POST", path: "/v1/changes", body: pushBody("node-1", pluginPath, plugin), contentType: "application/json", token: node1, host: "attacker.example:8080"}, "is not this server's address"},
		} {
			if code, body := tt.c.do(t, base); code != 403 || !strings.Contains(body, tt.reason) {
				t.Errorf("%s: %d %q, want 403 with %q", tt.name, code, body, tt.reason)
			}
		}
		if code, body := (filesCall{method: "POST", path: "/v1/changes", body: pushBody("node-1", pluginPath, plugin), contentType: "text/plain", token: node1}).do(t, base); code != 415 {
			t.Errorf("a text/plain push (a cross-site form): %d %q, want 415", code, body)
		}
		if after := s.status(t).Files.Seq; after != before {
			t.Errorf("files seq moved from %d to %d", before, after)
		}
		marker("after-403.txt")
		for id, d := range docroots {
			if _, err := os.Stat(filepath.Join(d, pluginPath)); err == nil {
				t.Errorf("%s has %s", id, pluginPath)
			}
		}
	})

	t.Run("a name of 256 bytes is refused at push", func(t *testing.T) {
		before := s.status(t).Files.Seq
		content := []byte("poison")
		if code, body := (filesCall{method: "PUT", path: "/v1/blobs/" + sha(content), body: content, contentType: "application/octet-stream", token: node1}).do(t, base); code != 201 {
			t.Fatalf("upload: %d %s", code, body)
		}
		poison := "wp-content/uploads/" + strings.Repeat("p", 256) + ".jpg"
		code, body := (filesCall{method: "POST", path: "/v1/changes", body: pushBody("node-1", poison, content), contentType: "application/json", token: node1}).do(t, base)
		if code != 400 || !strings.Contains(body, `"rule":"segment-too-long"`) || !strings.Contains(body, poison) {
			t.Errorf("push of a 256-byte name: %d %.300s; want 400 naming the path and the rule", code, body)
		}
		if after := s.status(t).Files.Seq; after != before {
			t.Errorf("files seq moved from %d to %d", before, after)
		}
	})

	t.Run("a change that fails on one node is quarantined there and the log moves on", func(t *testing.T) {
		// On node-2 only, a directory root owns: its filesync agent (an
		// unprivileged user) cannot create files in it. Its creation is
		// synced to node-1 as a directory the agent owns there.
		dir := "wp-content/uploads/e2e-poison"
		if err := os.Mkdir(filepath.Join(docroots["node-2"], dir), 0o755); err != nil {
			t.Fatal(err)
		}
		waitEverywhere(t, docroots, dir, true, 30*time.Second)
		t0 := time.Now()
		writeAsPHP(t, docroots["node-1"], dir+"/x.txt", "written on node-1")
		for { // committed before the marker, so node-2 must get past it
			code, _ := filesCall{method: "GET", path: "/v1/files/" + dir + "/x.txt", token: edge1}.do(t, base)
			if code == 200 {
				break
			}
			if time.Since(t0) > 30*time.Second {
				t.Fatalf("x.txt not in files after 30s (%d)", code)
			}
			time.Sleep(10 * time.Millisecond)
		}
		marker("after-quarantine.txt")
		t.Logf("a later file reached node-2 %s after the poison was written", time.Since(t0).Round(time.Millisecond))
		if _, err := os.Stat(filepath.Join(docroots["node-2"], dir, "x.txt")); err == nil {
			t.Fatal("node-2 wrote into the root-owned directory")
		}

		var ns struct {
			FilesQuarantined    int                  `json:"files_quarantined"`
			FilesQuarantineLast *api.FilesQuarantine `json:"files_quarantine_last"`
			FilesSeq            uint64               `json:"files_seq"`
		}
		addr := map[string]string{}
		for _, n := range st.Nodes {
			addr[n.ID] = n.Addr
		}
		// The log moves on: node-2 reaches the store's sequence as read
		// now (later changes, such as WordPress's own, may follow).
		var fst struct {
			Seq uint64 `json:"seq"`
		}
		_, body := filesCall{method: "GET", path: "/v1/status", token: edge1}.do(t, base)
		if err := json.Unmarshal([]byte(body), &fst); err != nil {
			t.Fatalf("files status %q: %v", body, err)
		}
		for until := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			getJSON(t, "http://"+addr["node-2"]+"/_scalepress/status", &ns)
			if ns.FilesSeq >= fst.Seq {
				break
			}
			if time.Now().After(until) {
				t.Fatalf("node-2 applied seq %d, files was at %d 15 s ago", ns.FilesSeq, fst.Seq)
			}
		}
		if ns.FilesQuarantined != 1 || ns.FilesQuarantineLast == nil || ns.FilesQuarantineLast.Path != dir+"/x.txt" || !strings.Contains(ns.FilesQuarantineLast.Error, "permission denied") {
			t.Errorf("node-2 status: quarantined %d, last %+v; want 1, %s/x.txt, permission denied", ns.FilesQuarantined, ns.FilesQuarantineLast, dir)
		}
		for id, want := range map[string]int{"node-1": 0, "node-2": 1} {
			resp, err := http.Get("http://" + addr[id] + "/_scalepress/metrics")
			if err != nil {
				t.Fatal(err)
			}
			m, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			line := fmt.Sprintf("scalepress_node_files_quarantined_total{node=%q} %d", id, want)
			if !strings.Contains(string(m), line) {
				t.Errorf("%s metrics lack %q", id, line)
			}
		}
		// The controller polls each node's status every second.
		deadline := time.Now().Add(15 * time.Second)
		for {
			var evs api.Events
			getJSON(t, s.api+"/v1/events?since=0", &evs)
			found := ""
			for _, e := range evs.Events {
				if e.Kind == "files" && e.Node == "node-2" && strings.Contains(e.Message, dir+"/x.txt") {
					found = e.Message
				}
			}
			if found != "" {
				t.Logf("event: %s", found)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no files event for node-2's quarantine; events: %+v", evs.Events)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The file is where it could be written, and was not pushed back
		// as deleted.
		if b, err := os.ReadFile(filepath.Join(docroots["node-1"], dir, "x.txt")); err != nil || string(b) != "written on node-1" {
			t.Errorf("node-1's x.txt: %q, %v", b, err)
		}
	})
}
