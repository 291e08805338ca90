package controller

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/release"
	"github.com/scalepress/scalepress/test/tools"
)

// fakeFiles is a files store in memory: a unit push replaces the tree at
// its unit, as the files role does (docs/adr/0026-atomic-change-sets.md).
type fakeFiles struct {
	mu     sync.Mutex
	seq    uint64
	tree   map[string]release.File
	blobs  map[string][]byte
	pushes []string // units pushed
	fail   func(st release.Step) error
}

var _ ReleaseFiles = (*fakeFiles)(nil)

func newFakeFiles(files map[string]string) *fakeFiles {
	f := &fakeFiles{tree: map[string]release.File{}, blobs: map[string][]byte{}}
	for p, content := range files {
		h := sum([]byte(content))
		f.blobs[h] = []byte(content)
		f.tree[p] = release.File{Path: p, Mode: 0o644, Size: int64(len(content)), Hash: h}
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			f.tree[d] = release.File{Path: d, Dir: true, Mode: 0o755}
		}
	}
	f.seq = 1
	return f
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (f *fakeFiles) Tree(context.Context) (uint64, []release.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []release.File
	for _, e := range f.tree {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b release.File) int { return cmp.Compare(a.Path, b.Path) })
	return f.seq, out, nil
}

func (f *fakeFiles) GetBlob(_ context.Context, hash string, w io.Writer) (int64, error) {
	f.mu.Lock()
	b, ok := f.blobs[hash]
	f.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("no blob %s", hash)
	}
	n, err := w.Write(b)
	return int64(n), err
}

func (f *fakeFiles) Push(_ context.Context, st release.Step, open func(string) (io.ReadCloser, error)) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(st); err != nil {
			return 0, err
		}
	}
	for _, e := range st.Put {
		if e.Dir {
			continue
		}
		rc, err := open(e.Hash)
		if err != nil {
			return 0, err
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		f.blobs[e.Hash] = b
	}
	for p := range f.tree {
		if st.Unit != "" && (p == st.Unit || strings.HasPrefix(p, st.Unit+"/")) {
			delete(f.tree, p)
		}
	}
	for _, p := range st.Remove {
		delete(f.tree, p)
	}
	for _, e := range st.Put {
		f.tree[e.Path] = e
	}
	f.seq++
	f.pushes = append(f.pushes, st.Unit)
	return f.seq, nil
}

func (f *fakeFiles) content(p string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.tree[p]
	if !ok {
		return "<missing>"
	}
	return string(f.blobs[e.Hash])
}

func (f *fakeFiles) snapshot() map[string]release.File {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]release.File{}
	for k, v := range f.tree {
		out[k] = v
	}
	return out
}

func versionFile(v string) string { return "<?php\n$wp_version = '" + v + "';\n" }

const demoPlugin = "<?php\n/*\n * Plugin Name: Demo\n * Version: %s\n */\n"

func siteFiles() map[string]string {
	return map[string]string{
		"index.php":                         "<?php // front 6.1.9",
		"wp-config.php":                     "<?php // secrets",
		"wp-includes/version.php":           versionFile("6.1.9"),
		"wp-includes/old.php":               "<?php // removed in 6.1.10",
		"wp-admin/index.php":                "<?php // admin 6.1.9",
		"wp-content/uploads/a.jpg":          "jpeg",
		"wp-content/plugins/demo/demo.php":  fmt.Sprintf(demoPlugin, "1.0"),
		"wp-content/themes/t/style.css":     "/*\nTheme Name: T\nVersion: 1\n*/",
		"wp-content/themes/t/functions.php": "<?php",
	}
}

func writeSource(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func coreSource(t *testing.T, version string) string {
	return writeSource(t, map[string]string{
		"wordpress/index.php":               "<?php // front " + version,
		"wordpress/wp-includes/version.php": versionFile(version),
		"wordpress/wp-admin/index.php":      "<?php // admin " + version,
		"wordpress/wp-config.php":           "<?php // a sample that must never land",
	}) + "/wordpress"
}

func releaseController(t *testing.T) (*Controller, *fakeFiles) {
	t.Helper()
	c := apiController(t)
	c.cfg.Files.Enabled = true
	c.nodes = nil // no canary node here: canary_test.go checks its smoke checks
	ff := newFakeFiles(siteFiles())
	for p, f := range ff.tree { // the store holds the policy's modes
		ff.tree[p] = c.policyModes([]release.File{f})[0]
	}
	c.SetReleaseFiles(func(url, tok string) ReleaseFiles { return ff })
	return c, ff
}

func statuses(t *testing.T, c *Controller) []string {
	t.Helper()
	doc, err := c.releasesDoc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range doc.Releases {
		out = append(out, r.ID+" "+r.Status+" "+r.Core)
	}
	return out
}

func TestUpdateCoreAndRollback(t *testing.T) {
	c, ff := releaseController(t)
	ctx := context.Background()

	doc, err := c.releasesDoc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantCur := api.Release{Kind: "unrecorded", Status: "live", Seq: 1, Core: "6.1.9",
		Plugins: []api.ReleaseComponent{{Name: "demo", Title: "Demo", Version: "1.0"}},
		Themes:  []api.ReleaseComponent{{Name: "t", Title: "T", Version: "1"}}}
	if diff := gocmp.Diff(wantCur, doc.Current); diff != "" {
		t.Errorf("current before any update (-want +got):\n%s", diff)
	}

	rel, err := c.update(ctx, api.UpdateRequest{Kind: "core", From: coreSource(t, "6.1.10")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if rel.ID != "r2" || rel.Status != api.ReleaseLive || rel.Change != "core 6.1.9 → 6.1.10" {
		t.Errorf("update = %+v", rel)
	}
	for p, want := range map[string]string{
		"wp-includes/version.php":  versionFile("6.1.10"),
		"index.php":                "<?php // front 6.1.10",
		"wp-includes/old.php":      "<missing>",
		"wp-config.php":            "<?php // secrets",
		"wp-content/uploads/a.jpg": "jpeg",
	} {
		if got := ff.content(p); got != want {
			t.Errorf("%s after update = %q, want %q", p, got, want)
		}
	}
	if diff := gocmp.Diff([]string{"wp-includes", "wp-admin", ""}, ff.pushes); diff != "" {
		t.Errorf("pushed units (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]string{"r1 superseded 6.1.9", "r2 live 6.1.10"}, statuses(t, c)); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	if doc, _ := c.releasesDoc(ctx); doc.Current.ID != "r2" {
		t.Errorf("current = %q, want r2", doc.Current.ID)
	}

	rel, err = c.rollback(ctx, api.RollbackRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rel.ID != "r3" || rel.From != "r1" || rel.Core != "6.1.9" {
		t.Errorf("rollback = %+v", rel)
	}
	for p, want := range map[string]string{
		"wp-includes/version.php": versionFile("6.1.9"),
		"wp-includes/old.php":     "<?php // removed in 6.1.10",
		"index.php":               "<?php // front 6.1.9",
	} {
		if got := ff.content(p); got != want {
			t.Errorf("%s after rollback = %q, want %q", p, got, want)
		}
	}
	if diff := gocmp.Diff([]string{"r1 superseded 6.1.9", "r2 rolled-back 6.1.10", "r3 live 6.1.9"}, statuses(t, c)); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	// rollback again: the previous live one is r2
	if rel, err = c.rollback(ctx, api.RollbackRequest{}); err != nil || rel.From != "r2" {
		t.Errorf("second rollback = %+v, %v; want back to r2", rel, err)
	}
}

func TestUpdatePlugin(t *testing.T) {
	c, ff := releaseController(t)
	src := writeSource(t, map[string]string{"demo/demo.php": fmt.Sprintf(demoPlugin, "1.1"), "demo/inc/x.php": "<?php"})
	rel, err := c.update(context.Background(), api.UpdateRequest{Kind: "plugin", Name: "demo", From: src}, "")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Change != "plugin demo 1.0 → 1.1" {
		t.Errorf("change %q", rel.Change)
	}
	if got := ff.content("wp-content/plugins/demo/inc/x.php"); got != "<?php" {
		t.Errorf("new plugin file = %q", got)
	}
	if diff := gocmp.Diff([]string{"wp-content/plugins/demo"}, ff.pushes); diff != "" {
		t.Errorf("pushed units (-want +got):\n%s", diff)
	}
}

// TestUpdateRefused: bad input changes nothing — no push, no release
// recorded — and says why.
func TestUpdateRefused(t *testing.T) {
	c, ff := releaseController(t)
	before := ff.snapshot()
	notWP := writeSource(t, map[string]string{"index.php": "<?php"})
	tests := []struct {
		name string
		req  api.UpdateRequest
		want string
		is   error
	}{
		{"older without force", api.UpdateRequest{Kind: "core", From: coreSource(t, "6.1.8")}, "core 6.1.8 is older than the current 6.1.9; pass --force", errReleaseRefused},
		{"same version", api.UpdateRequest{Kind: "core", From: coreSource(t, "6.1.9")}, "core is at 6.1.9 already", errReleaseRefused},
		{"not wordpress", api.UpdateRequest{Kind: "core", From: notWP}, "is not WordPress: it has no wp-includes/version.php", release.ErrBadSource},
		{"relative path", api.UpdateRequest{Kind: "core", From: "wordpress"}, "must be an absolute path", errReleaseRefused},
		{"bad kind", api.UpdateRequest{Kind: "everything", From: notWP}, `kind "everything"`, errReleaseRefused},
		{"plugin name escaping", api.UpdateRequest{Kind: "plugin", Name: "../../wp-includes", From: notWP}, "plugin name", release.ErrBadSource},
		{"older plugin", api.UpdateRequest{Kind: "plugin", Name: "demo", From: writeSource(t, map[string]string{"demo.php": fmt.Sprintf(demoPlugin, "0.9")})}, "plugin demo 0.9 is older than the current 1.0", errReleaseRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.update(context.Background(), tt.req, "")
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("update = %v, want %v saying %q", err, tt.is, tt.want)
			}
			rec := httptest.NewRecorder()
			releaseError(rec, "update", err)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status %d, want 400", rec.Code)
			}
		})
	}
	if diff := gocmp.Diff(before, ff.snapshot()); diff != "" || len(ff.pushes) != 0 {
		t.Errorf("a refused update changed the store (%d pushes; -before +after):\n%s", len(ff.pushes), diff)
	}
	if got := statuses(t, c); len(got) != 0 {
		t.Errorf("a refused update recorded releases %v", got)
	}
	// --force takes an older version
	if rel, err := c.update(context.Background(), api.UpdateRequest{Kind: "core", From: coreSource(t, "6.1.8"), Force: true}, ""); err != nil || rel.Core != "6.1.8" {
		t.Errorf("forced downgrade = %+v, %v", rel, err)
	}
}

func TestRolloutWhileAnotherRuns(t *testing.T) {
	c, ff := releaseController(t)
	c.rollouts.mu.Lock() // a rollout in progress
	id := "r7"
	c.rollouts.running.Store(&id)
	_, err := c.update(context.Background(), api.UpdateRequest{Kind: "core", From: coreSource(t, "6.1.10")}, "")
	if !errors.Is(err, errReleaseBusy) || !strings.Contains(err.Error(), "r7") {
		t.Errorf("update during a rollout = %v, want errReleaseBusy naming r7", err)
	}
	_, err = c.rollback(context.Background(), api.RollbackRequest{Release: "r1"})
	if !errors.Is(err, errReleaseBusy) {
		t.Errorf("rollback during a rollout = %v, want errReleaseBusy", err)
	}
	rec := httptest.NewRecorder()
	releaseError(rec, "update", err)
	if rec.Code != http.StatusConflict {
		t.Errorf("status %d, want 409", rec.Code)
	}
	if len(ff.pushes) != 0 {
		t.Errorf("pushed %v during another rollout", ff.pushes)
	}
	c.rollouts.mu.Unlock()
}

// TestRolloutFailureRestores: a push that fails half-way puts the store
// back to the tree it had and marks the release failed with the reason.
func TestRolloutFailureRestores(t *testing.T) {
	c, ff := releaseController(t)
	before := ff.snapshot()
	ff.fail = func(st release.Step) error {
		if st.Unit == "wp-admin" && len(ff.pushes) == 1 { // the second unit of the rollout, not the restore
			return errors.New("files: HTTP 507: quota")
		}
		return nil
	}
	rel, err := c.update(context.Background(), api.UpdateRequest{Kind: "core", From: coreSource(t, "6.1.10")}, "")
	if err == nil || rel.Status != api.ReleaseFailed || !strings.Contains(rel.Reason, "push wp-admin: files: HTTP 507: quota") {
		t.Fatalf("update = %+v, %v; want failed with the push's reason", rel, err)
	}
	if diff := gocmp.Diff(before, ff.snapshot()); diff != "" {
		t.Errorf("the store was not restored (-before +after):\n%s", diff)
	}
	if diff := gocmp.Diff([]string{"r1 live 6.1.9", "r2 failed 6.1.10"}, statuses(t, c)); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	evs := c.events.Since(context.Background(), 0, 0).Events
	if len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Message, "release r2 failed: push wp-admin") {
		t.Errorf("events %+v, want the failure with its reason last", evs)
	}
	// a failed release cannot be rolled back to
	if _, err := c.rollback(context.Background(), api.RollbackRequest{Release: "r2"}); !errors.Is(err, errReleaseRefused) {
		t.Errorf("rollback to a failed release = %v, want refused", err)
	}
}

// TestDBUpgradeNeedsABackup: a core release that changes $wp_db_version
// is rolled out only after a backup; when the backup cannot be taken,
// nothing is pushed and the release fails saying why.
func TestDBUpgradeNeedsABackup(t *testing.T) {
	c, ff := releaseController(t)
	c.SetFilesBackup(nil) // no backup possible
	ff.tree["wp-includes/version.php"] = func() release.File {
		b := []byte(versionFile("6.1.9") + "$wp_db_version = 53496;\n")
		h := sum(b)
		ff.blobs[h] = b
		return release.File{Path: "wp-includes/version.php", Mode: 0o644, Size: int64(len(b)), Hash: h}
	}()
	before := ff.snapshot()
	src := coreSource(t, "6.2")
	os.WriteFile(filepath.Join(src, "wp-includes", "version.php"), []byte(versionFile("6.2")+"$wp_db_version = 53499;\n"), 0o644)
	rel, err := c.update(context.Background(), api.UpdateRequest{Kind: "core", From: src}, "")
	if err == nil || rel.Status != api.ReleaseFailed || !strings.Contains(rel.Reason, "the backup before the database upgrade (53496 → 53499) failed, nothing rolled out") {
		t.Fatalf("update = %+v, %v; want failed for want of a backup", rel, err)
	}
	if diff := gocmp.Diff(before, ff.snapshot()); diff != "" || len(ff.pushes) != 0 {
		t.Errorf("pushed %v without a backup (-before +after):\n%s", ff.pushes, diff)
	}
	// the same version of the database needs no backup
	os.WriteFile(filepath.Join(src, "wp-includes", "version.php"), []byte(versionFile("6.2")+"$wp_db_version = 53496;\n"), 0o644)
	if rel, err := c.update(context.Background(), api.UpdateRequest{Kind: "core", From: src}, ""); err != nil || rel.Status != api.ReleaseLive {
		t.Errorf("update without a database change = %+v, %v", rel, err)
	}
}

// TestReleaseRetention: after each rollout the store keeps releases.keep
// releases and the content they name, no more; a rollback to a kept
// release restores its files from what is left; one to a release no
// longer kept is refused saying so.
func TestReleaseRetention(t *testing.T) {
	c, ff := releaseController(t)
	c.cfg.Releases.Keep = 2
	ctx := context.Background()
	for _, v := range []string{"1.1", "1.2", "1.3", "1.4"} {
		src := writeSource(t, map[string]string{"demo/demo.php": fmt.Sprintf(demoPlugin, v), "demo/only-" + v + ".php": "<?php // " + v})
		if _, err := c.update(ctx, api.UpdateRequest{Kind: "plugin", Name: "demo", From: src + "/demo"}, ""); err != nil {
			t.Fatalf("update to %s: %v", v, err)
		}
	}
	doc, err := c.releasesDoc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range doc.Releases {
		ids = append(ids, r.ID+" "+r.Status)
	}
	if diff := gocmp.Diff([]string{"r4 superseded", "r5 live"}, ids); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	store, err := release.OpenStore(filepath.Join(c.layout.Dir, "releases"))
	if err != nil {
		t.Fatal(err)
	}
	// Every blob left is one r4 or r5 names.
	need := map[string]bool{}
	for _, id := range []string{"r4", "r5"} {
		tree, err := store.Tree(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range tree {
			if !f.Dir {
				need[f.Hash] = true
				if !store.HasBlob(f.Hash) {
					t.Errorf("%s's %s is gone from the store", id, f.Path)
				}
			}
		}
	}
	filepath.WalkDir(filepath.Join(c.layout.Dir, "releases", "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !need[d.Name()] {
			t.Errorf("blob %s is named by no kept release", d.Name())
		}
		return nil
	})
	if _, err := c.rollback(ctx, api.RollbackRequest{Release: "r2"}); err == nil || !strings.Contains(err.Error(), "release r2 is no longer kept (releases.keep; the oldest kept is r4)") {
		t.Errorf("rollback to a pruned release: %v", err)
	}
	if _, err := c.rollback(ctx, api.RollbackRequest{}); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if got := ff.content("wp-content/plugins/demo/only-1.3.php"); got != "<?php // 1.3" {
		t.Errorf("after the rollback to r4: only-1.3.php = %q", got)
	}
	if got := ff.content("wp-content/plugins/demo/only-1.4.php"); got != "<missing>" {
		t.Errorf("after the rollback to r4: only-1.4.php = %q, want it removed", got)
	}
}

// TestReleasesOnS3: with files.store.kind s3 the release store is also
// kept in the files store's bucket, so that a controller on another host
// (an empty DIR) lists every release and rolls back to one whose content
// only the bucket holds.
func TestReleasesOnS3(t *testing.T) {
	gw := tools.StartVersitygw(t, "127.0.0.1:0")
	gw.MakeBucket(t, "site")
	keys := t.TempDir()
	ak, sk := filepath.Join(keys, "access"), filepath.Join(keys, "secret")
	os.WriteFile(ak, []byte(gw.AccessKey+"\n"), 0o600)
	os.WriteFile(sk, []byte(gw.SecretKey+"\n"), 0o600)
	s3 := config.FilesStore{Kind: "s3", Endpoint: gw.Endpoint, Bucket: "site", Prefix: "one", Region: "us-east-1", AccessKeyFile: ak, SecretKeyFile: sk}

	c, ff := releaseController(t)
	c.cfg.Files.Store = s3
	ctx := context.Background()
	if _, err := c.update(ctx, api.UpdateRequest{Kind: "core", From: coreSource(t, "6.1.10")}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(gw.Data, "site", "one", "releases", "releases.json")); err != nil {
		t.Fatalf("no releases.json under PREFIX/releases/ in the bucket: %v", err)
	}

	// Another host: a new DIR, the same files store and bucket.
	c2, _ := releaseController(t)
	c2.cfg.Files.Store = s3
	c2.SetReleaseFiles(func(url, tok string) ReleaseFiles { return ff })
	if diff := gocmp.Diff([]string{"r1 superseded 6.1.9", "r2 live 6.1.10"}, statuses(t, c2)); diff != "" {
		t.Errorf("releases on another host (-want +got):\n%s", diff)
	}
	// r1's old.php is named by no live tree: only the bucket has it.
	if _, err := c2.rollback(ctx, api.RollbackRequest{Release: "r1"}); err != nil {
		t.Fatalf("rollback r1 on another host: %v", err)
	}
	if got := ff.content("wp-includes/old.php"); got != "<?php // removed in 6.1.10" {
		t.Errorf("after the rollback on another host, old.php = %q", got)
	}
	if got := ff.content("wp-includes/version.php"); got != versionFile("6.1.9") {
		t.Errorf("after the rollback on another host, version.php = %q", got)
	}
}
