package controller

// The canary of a release (docs/adr/0023-releases.md): before anything is
// committed to the files store, the release runs on a node of its own —
// the store's tree with the release's code, never in the edges' set — and
// must pass smoke checks. A release that fails them never reaches a node
// that serves users.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/internal/nodehost"
	"github.com/scalepress/scalepress/internal/release"
)

// canaryID names the canary node's processes and directories.
const canaryID = "canary"

// Smoke check bounds: a canary page may take canarySlowFactor times what
// the live release takes for it, plus canarySlack, after one warm-up pass.
const (
	canarySlowFactor = 4
	canarySlack      = 500 * time.Millisecond
	canaryReady      = 30 * time.Second
)

// canaryFatals are what PHP writes to its log for an error that stops a
// request.
var canaryFatals = []string{"PHP Fatal error", "PHP Parse error", "PHP Compile error"}

// canaryDir holds the canary's state directory (its docroot, php-fpm's
// run directory and log); PHP must reach it, as DIR/nodes.
func (c *Controller) canaryDir() string { return filepath.Join(c.layout.Dir, "canary") }

// canaryAddr is the address above every node's: never in the edges' set.
func (c *Controller) canaryAddr() string { return c.cfg.NodeAddr(c.cfg.MaxNodes() + 1) }

// canary runs target on a canary node and checks it: home, a post,
// wp-login.php and the REST root answer 200 within the bound of the live
// release, and PHP logs no fatal error. It returns why it failed.
func (c *Controller) canary(ctx context.Context, store *release.Store, files ReleaseFiles, target []release.File) (err error) {
	if c.nodes == nil || c.group == nil {
		return errCanarySkipped
	}
	dir := c.canaryDir()
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	spec, err := c.nodeHostSpec()
	if err != nil {
		return err
	}
	spec.StateDir, spec.Files, spec.FilesTokens = dir, "", nil
	docroot := filepath.Join(dir, "nodes", canaryID, "docroot")
	for _, d := range []string{dir, filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := c.canaryTree(ctx, store, files, target, docroot); err != nil {
		return fmt.Errorf("prepare its docroot: %w", err)
	}
	h := nodehost.Host{Spec: spec, AsRoot: c.asRoot, PHPUser: c.phpUser, RoleUser: c.roleUser, Logger: c.logger}
	nodes := c.launcher.Nodes(func(ctx context.Context, n nodegroup.Node) ([]local.Role, error) { return h.Roles(ctx, n.ID, n.Addr) })
	n := nodegroup.Node{ID: canaryID, Addr: c.canaryAddr()}
	if _, err := nodes.Launch(ctx, n); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if serr := nodes.Stop(sctx, canaryID); serr != nil {
			c.logger.Warn("stop of the canary", "err", serr)
		}
	}()
	if err := waitCanary(ctx, c.http, n.Addr); err != nil {
		return err
	}
	c.logger.Info("canary up", "addr", n.Addr, "took", time.Since(t0).Round(time.Millisecond))
	site, _ := url.Parse(c.cfg.SiteURL())
	live := c.liveNode()
	paths := []string{"/", "/wp-login.php", "/?rest_route=/"}
	if live != "" {
		if p := postPath(ctx, c.http, live, site.Host); p != "" {
			paths = slices.Insert(paths, 1, p)
		}
	}
	logs := []string{filepath.Join(dir, "logs", canaryID+"-php-fpm.log"), c.launcher.Log(canaryID + "-php-fpm")}
	return smokeCheck(ctx, fetch, n.Addr, live, site.Host, paths, logs)
}

// errCanarySkipped: the nodes do not run here (Nomad), so no canary runs.
var errCanarySkipped = errors.New("no canary: nodes run on a scheduler")

// liveNode is the address of a node in service, "" when none is.
func (c *Controller) liveNode() string {
	for _, n := range c.group.Nodes() {
		if n.State == api.NodeInService {
			return n.Addr
		}
	}
	return ""
}

// canaryTree writes the store's tree with target as its code into
// docroot, leaving out uploads (no smoke check reads them; a site's media
// can be large).
func (c *Controller) canaryTree(ctx context.Context, store *release.Store, files ReleaseFiles, target []release.File, docroot string) error {
	_, tree, err := files.Tree(ctx)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	tree = release.Replace(tree, release.Managed, target)
	if err := os.MkdirAll(docroot, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(docroot)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range tree {
		if f.Path == "wp-content/uploads" || strings.HasPrefix(f.Path, "wp-content/uploads/") {
			continue
		}
		if f.Dir {
			if err := root.MkdirAll(f.Path, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := root.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return err
		}
		w, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if store.HasBlob(f.Hash) {
			var rc io.ReadCloser
			if rc, err = store.OpenBlob(f.Hash); err == nil {
				_, err = io.Copy(w, rc)
				rc.Close()
			}
		} else {
			_, err = files.GetBlob(ctx, f.Hash, w)
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	return nil
}

func waitCanary(ctx context.Context, hc *http.Client, addr string) error {
	deadline := time.Now().Add(canaryReady)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+api.NodePathHealth, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health: %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready within %s: %v", canaryReady, last)
}

// postPath is the path of the newest post, asked of the live node.
func postPath(ctx context.Context, hc *http.Client, addr, host string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/?rest_route=/wp/v2/posts&per_page=1&_fields=link", nil)
	req.Host = host
	resp, err := hc.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var posts []struct {
		Link string `json:"link"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&posts) != nil || len(posts) == 0 {
		return ""
	}
	u, err := url.Parse(posts[0].Link)
	if err != nil || u.Path == "" {
		return ""
	}
	return u.RequestURI()
}

// getter GETs path from addr as host: the final status, how long it took
// and the body.
type getter func(ctx context.Context, addr, host, path string) (int, time.Duration, string, error)

// fetch GETs path from addr as host, following same-site redirects (to
// addr), and returns the final status and how long it took.
func fetch(ctx context.Context, addr, host, path string) (int, time.Duration, string, error) {
	hc := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t0 := time.Now()
	for range 4 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return 0, 0, "", err
		}
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			return 0, 0, "", err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			u, err := url.Parse(loc)
			if err == nil && (u.Host == "" || u.Host == host) {
				path = u.RequestURI()
				continue
			}
		}
		return resp.StatusCode, time.Since(t0), string(body), nil
	}
	return 0, 0, "", fmt.Errorf("%s: too many redirects", path)
}

// smokeCheck runs the checks: a warm-up pass, then each path on the
// canary and on the live node (when there is one) for the time bound.
func smokeCheck(ctx context.Context, get getter, canary, live, host string, paths []string, logs []string) error {
	for _, p := range paths { // warm-up: a cold opcache is not the release's fault
		get(ctx, canary, host, p)
	}
	var problems []string
	for _, p := range paths {
		code, took, body, err := get(ctx, canary, host, p)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("GET %s: %v", p, err))
			continue
		case code != http.StatusOK:
			problems = append(problems, fmt.Sprintf("GET %s: status %d %s", p, code, oneLine(body, 120)))
			continue
		}
		if live == "" {
			continue
		}
		if _, old, _, err := get(ctx, live, host, p); err == nil {
			if bound := canarySlowFactor*old + canarySlack; took > bound {
				problems = append(problems, fmt.Sprintf("GET %s took %s, more than %s (the live release: %s)", p, took.Round(time.Millisecond), bound.Round(time.Millisecond), old.Round(time.Millisecond)))
			}
		}
	}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		for line := range bytes.Lines(b) {
			for _, f := range canaryFatals {
				if i := bytes.Index(line, []byte(f)); i >= 0 {
					problems = append(problems, oneLine(string(line[i:]), 300))
				}
			}
		}
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
		}
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(stripHTML(s)), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// stripHTML keeps the text of an error page readable in one line.
func stripHTML(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}
