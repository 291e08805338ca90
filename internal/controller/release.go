package controller

// Releases (docs/adr/0023-releases.md): `scalepress update` stages a new
// core, plugin or theme release and rolls it out through the files store,
// one unit of file sync at a time; `scalepress rollback` rolls out an
// earlier release's files again; `scalepress release` shows what the store
// holds and every release. One rollout runs at a time.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/release"
	"github.com/scalepress/scalepress/internal/wordpress"
)

// ReleaseFiles is the files store as releases read and write it, over the
// files role's API with the controller's files token. The cli passes
// filesync's: the controller reaches the files role only over the wire.
type ReleaseFiles interface {
	// Tree is the store's sequence number and its tree.
	Tree(ctx context.Context) (uint64, []release.File, error)
	// GetBlob writes blob hash to w.
	GetBlob(ctx context.Context, hash string, w io.Writer) (int64, error)
	// Push commits one step as one push (with its unit), uploading the
	// blobs the store lacks from open, and returns the log's sequence
	// number after it.
	Push(ctx context.Context, st release.Step, open func(hash string) (io.ReadCloser, error)) (uint64, error)
}

// ReleaseFilesFunc makes the ReleaseFiles of the files role at url with
// the files token tok.
type ReleaseFilesFunc func(url, tok string) ReleaseFiles

// SetReleaseFiles gives the controller the files store as releases use it.
func (c *Controller) SetReleaseFiles(f ReleaseFilesFunc) { c.releaseFiles = f }

// Errors a release request branches on.
var (
	errReleaseBusy    = errors.New("a rollout is running")
	errReleaseRefused = errors.New("refused")
)

// rollouts runs one rollout at a time.
type rollouts struct {
	mu      sync.Mutex             // held for a whole rollout
	running atomic.Pointer[string] // the release being rolled out
}

func (r *rollouts) current() string {
	if p := r.running.Load(); p != nil {
		return *p
	}
	return ""
}

// releaseDeps are the store of releases and the files store.
func (c *Controller) releaseDeps() (*release.Store, ReleaseFiles, error) {
	if !c.cfg.Files.Enabled || c.releaseFiles == nil {
		return nil, nil, fmt.Errorf("%w: releases need the files role (files.enabled: true): it is how code reaches every node", errReleaseRefused)
	}
	st, err := c.openReleaseStore()
	if err != nil {
		return nil, nil, err
	}
	return st, c.releaseFiles(c.filesURL(), c.filesToken(api.FilesControllerID)), nil
}

// managedTree is the store's sequence number and the part of its tree
// that releases cover, with the header content of it.
func managedTree(ctx context.Context, files ReleaseFiles) (uint64, []release.File, map[string][]byte, error) {
	seq, tree, err := files.Tree(ctx)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("files: %w", err)
	}
	tree = release.Filter(tree, release.Managed)
	content := map[string][]byte{}
	for _, f := range release.HeaderFiles(tree) {
		var b strings.Builder
		if _, err := files.GetBlob(ctx, f.Hash, &limitWriter{w: &b, n: 8 << 10}); err != nil && !errors.Is(err, errLimit) {
			return 0, nil, nil, fmt.Errorf("files: %s: %w", f.Path, err)
		}
		content[f.Path] = []byte(b.String())
	}
	return seq, tree, content, nil
}

var errLimit = errors.New("limit reached")

// limitWriter keeps the first n bytes, then stops the copy.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		l.w.Write(p[:l.n])
		l.n = 0
		return 0, errLimit
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// keepBlobs copies into the release store the content of tree it lacks,
// so that a rollback to it never depends on the files store's garbage
// collection.
func keepBlobs(ctx context.Context, store *release.Store, files ReleaseFiles, tree []release.File) error {
	for _, f := range tree {
		if f.Dir || store.HasBlob(f.Hash) {
			continue
		}
		pr, pw := io.Pipe()
		go func() {
			_, err := files.GetBlob(ctx, f.Hash, pw)
			pw.CloseWithError(err)
		}()
		hash, _, err := store.PutBlob(pr)
		pr.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			return fmt.Errorf("keep %s: %w", f.Path, err)
		}
		if hash != f.Hash {
			return fmt.Errorf("keep %s: the files store sent content hashing to %s, not %s", f.Path, hash, f.Hash)
		}
	}
	return nil
}

func inventoryOf(inv release.Inventory, r *api.Release) {
	r.Core = inv.Core
	conv := func(cs []release.Component) []api.ReleaseComponent {
		out := []api.ReleaseComponent{}
		for _, c := range cs {
			out = append(out, api.ReleaseComponent(c))
		}
		return out
	}
	r.Plugins, r.Themes = conv(inv.Plugins), conv(inv.Themes)
}

func nextReleaseID(recs []api.Release) string {
	n := 0
	for _, r := range recs {
		if i, ok := releaseNum(r.ID); ok && i > n {
			n = i
		}
	}
	return "r" + strconv.Itoa(n+1)
}

// releaseNum is N of release id rN.
func releaseNum(id string) (int, bool) {
	i, err := strconv.Atoi(strings.TrimPrefix(id, "r"))
	return i, err == nil
}

// baseline records the store's managed tree as release r1 ("initial")
// when nothing is recorded yet, and keeps the content of the current tree
// in the release store either way.
func (c *Controller) baseline(ctx context.Context, store *release.Store, files ReleaseFiles, recs []api.Release, seq uint64, cur []release.File, content map[string][]byte) ([]api.Release, error) {
	if err := keepBlobs(ctx, store, files, cur); err != nil {
		return nil, err
	}
	if len(recs) > 0 {
		return recs, nil
	}
	r := api.Release{ID: "r1", Time: time.Now().UTC().Format(time.RFC3339), Kind: "initial", Status: api.ReleaseLive, Seq: seq, Change: "the site as it was before the first update"}
	inventoryOf(release.Inspect(cur, content), &r)
	if err := store.SaveTree(r.ID, cur); err != nil {
		return nil, err
	}
	recs = append(recs, r)
	return recs, store.SaveRecords(recs)
}

// update stages req's source and rolls it out; note, when set, says why
// (an automatic update).
func (c *Controller) update(ctx context.Context, req api.UpdateRequest, note string) (api.Release, error) {
	kind := release.Kind(req.Kind)
	if kind != release.KindCore && kind != release.KindPlugin && kind != release.KindTheme {
		return api.Release{}, fmt.Errorf("%w: kind %q: want core, plugin or theme", errReleaseRefused, req.Kind)
	}
	if err := release.CheckName(kind, req.Name); err != nil {
		return api.Release{}, err
	}
	if !filepath.IsAbs(req.From) {
		return api.Release{}, fmt.Errorf("%w: from %q must be an absolute path", errReleaseRefused, req.From)
	}
	store, files, recs, done, err := c.beginRollout()
	if err != nil {
		return api.Release{}, err
	}
	defer done()
	staged, err := release.Load(req.From, kind, req.Name, release.DefaultLimits(), store.PutBlob)
	if err != nil {
		return api.Release{}, err
	}
	seq, cur, content, err := managedTree(ctx, files)
	if err != nil {
		return api.Release{}, err
	}
	curInv := release.Inspect(cur, content)
	merged := map[string][]byte{}
	scope := release.Scope(kind, req.Name)
	for p, b := range content {
		if !scope(p) {
			merged[p] = b
		}
	}
	for p, b := range staged.Content {
		merged[p] = b
	}
	target := release.Replace(cur, scope, staged.Files)
	newInv := release.Inspect(target, merged)
	change, err := versionChange(kind, req.Name, curInv, newInv, req.Force)
	if err != nil {
		return api.Release{}, err
	}
	if note != "" {
		change += " (" + note + ")"
	}
	if recs, err = c.baseline(ctx, store, files, recs, seq, cur, content); err != nil {
		return api.Release{}, err
	}
	rec := api.Release{ID: nextReleaseID(recs), Time: time.Now().UTC().Format(time.RFC3339), Kind: req.Kind, Name: req.Name,
		From: req.From, Change: change, Status: api.ReleaseStaged}
	inventoryOf(newInv, &rec)
	db := dbChange{from: release.DBVersion(content[release.VersionFile]), to: release.DBVersion(merged[release.VersionFile])}
	return c.rollout(ctx, store, files, recs, rec, cur, target, api.ReleaseSuperseded, db)
}

// versionChange says what an update changes, one line, and refuses one
// that is not newer unless forced.
func versionChange(kind release.Kind, name string, from, to release.Inventory, force bool) (string, error) {
	var old, new string
	what := string(kind)
	switch kind {
	case release.KindCore:
		old, new = from.Core, to.Core
	case release.KindPlugin:
		c, _ := release.Find(from.Plugins, name)
		old = c.Version
		c, _ = release.Find(to.Plugins, name)
		new = c.Version
		what = "plugin " + name
	case release.KindTheme:
		c, _ := release.Find(from.Themes, name)
		old = c.Version
		c, _ = release.Find(to.Themes, name)
		new = c.Version
		what = "theme " + name
	}
	if old == "" {
		return fmt.Sprintf("%s %s (new)", what, new), nil
	}
	switch d := release.Compare(new, old); {
	case d < 0 && !force:
		return "", fmt.Errorf("%w: %s %s is older than the current %s; pass --force to downgrade (or use rollback)", errReleaseRefused, what, new, old)
	case d == 0 && !force:
		return "", fmt.Errorf("%w: %s is at %s already; pass --force to roll out the same version again", errReleaseRefused, what, old)
	}
	return fmt.Sprintf("%s %s → %s", what, old, new), nil
}

// rollback rolls out the files of an earlier release again.
func (c *Controller) rollback(ctx context.Context, req api.RollbackRequest) (api.Release, error) {
	if req.Release != "" && !release.ValidID(req.Release) {
		return api.Release{}, fmt.Errorf("%w: %q is not a release id (r1, r2, …: see scalepress release)", errReleaseRefused, req.Release)
	}
	store, files, recs, done, err := c.beginRollout()
	if err != nil {
		return api.Release{}, err
	}
	defer done()
	to, err := rollbackTarget(recs, req.Release)
	if err != nil {
		return api.Release{}, err
	}
	target, err := store.Tree(to.ID)
	if err != nil {
		return api.Release{}, err
	}
	for _, f := range target {
		if !f.Dir && !store.HasBlob(f.Hash) {
			return api.Release{}, fmt.Errorf("release %s cannot be rolled back to: the content of %s is missing from %s", to.ID, f.Path, filepath.Join(c.layout.Dir, "releases"))
		}
	}
	seq, cur, content, err := managedTree(ctx, files)
	if err != nil {
		return api.Release{}, err
	}
	if recs, err = c.baseline(ctx, store, files, recs, seq, cur, content); err != nil {
		return api.Release{}, err
	}
	curInv := release.Inspect(cur, content)
	rec := api.Release{ID: nextReleaseID(recs), Time: time.Now().UTC().Format(time.RFC3339), Kind: "rollback", From: to.ID,
		Status: api.ReleaseStaged, Core: to.Core, Plugins: to.Plugins, Themes: to.Themes}
	rec.Change = fmt.Sprintf("back to %s", to.ID)
	if curInv.Core != to.Core {
		rec.Change += fmt.Sprintf(": core %s → %s", curInv.Core, to.Core)
	}
	db := dbChange{from: release.DBVersion(content[release.VersionFile])}
	for _, f := range target {
		if f.Path == release.VersionFile {
			b, err := store.ReadBlob(f.Hash, 8<<10)
			if err != nil {
				return api.Release{}, err
			}
			db.to = release.DBVersion(b)
		}
	}
	return c.rollout(ctx, store, files, recs, rec, cur, target, api.ReleaseRolledBack, db)
}

// rollbackTarget is the release id names, or, for "", the latest one
// other than the live one that was live once.
func rollbackTarget(recs []api.Release, id string) (api.Release, error) {
	if id != "" {
		for _, r := range recs {
			if r.ID == id {
				if r.Status == api.ReleaseFailed || r.Status == api.ReleaseStaged {
					return api.Release{}, fmt.Errorf("%w: release %s is %s, it was never live", errReleaseRefused, id, r.Status)
				}
				return r, nil
			}
		}
		if n, ok := releaseNum(id); ok && len(recs) > 0 {
			if first, ok := releaseNum(recs[0].ID); ok && n < first {
				return api.Release{}, fmt.Errorf("%w: release %s is no longer kept (releases.keep; the oldest kept is %s)", errReleaseRefused, id, recs[0].ID)
			}
		}
		return api.Release{}, fmt.Errorf("%w: there is no release %s (scalepress release lists them)", errReleaseRefused, id)
	}
	for _, r := range slices.Backward(recs) {
		if r.Status == api.ReleaseSuperseded || r.Status == api.ReleaseRolledBack {
			return r, nil
		}
	}
	return api.Release{}, fmt.Errorf("%w: there is no earlier release to roll back to", errReleaseRefused)
}

// rollout records rec as staged, pushes the steps from cur to target, and
// marks rec live (the release live before it becomes replaced) or failed,
// in which case the store is put back to cur.
func (c *Controller) rollout(ctx context.Context, store *release.Store, files ReleaseFiles, recs []api.Release, rec api.Release, cur, target []release.File, replaced string, db dbChange) (api.Release, error) {
	t0 := time.Now()
	target = c.policyModes(target)
	id := rec.ID
	c.rollouts.running.Store(&id)
	defer c.rollouts.running.Store(nil)
	if err := store.SaveTree(rec.ID, target); err != nil {
		return api.Release{}, err
	}
	recs = append(recs, rec)
	if err := store.SaveRecords(recs); err != nil {
		return api.Release{}, err
	}
	i := len(recs) - 1
	steps := release.Plan(cur, target)
	c.eventWith("release", "", map[string]any{"release": rec.ID, "units": len(steps)}, "release %s rolling out: %s (%d units)", rec.ID, rec.Change, len(steps))
	var err error
	if rec.Kind != "rollback" {
		// A rollback returns to code that was live: no canary.
		err = c.runCanary(ctx, store, files, recs, i, target)
	}
	if err == nil && db.needed() {
		// A database upgrade is not undone by a rollback of the files:
		// a backup first (docs/adr/0016-backups.md).
		if _, _, berr := c.takeBackup(ctx, "", "before the database upgrade of release "+rec.ID); berr != nil {
			err = fmt.Errorf("the backup before the database upgrade (%d → %d) failed, nothing rolled out: %w", db.from, db.to, berr)
		}
	}
	var seq uint64
	if err == nil {
		seq, err = pushSteps(ctx, files, steps, store.OpenBlob)
	}
	if err != nil {
		reason := err.Error()
		// Put the store back to the tree it had, from whatever it holds now.
		if _, now, _, terr := managedTree(ctx, files); terr != nil {
			reason += "; reading the store to restore it failed too: " + terr.Error()
		} else if _, rerr := pushSteps(ctx, files, release.Plan(now, cur), store.OpenBlob); rerr != nil {
			reason += "; restoring the previous files failed too: " + rerr.Error()
		}
		recs[i].Status, recs[i].Reason = api.ReleaseFailed, reason
		recs[i].DurationMS = time.Since(t0).Milliseconds()
		c.eventWith("release", "", map[string]any{"release": rec.ID, "reason": reason}, "release %s failed: %s", rec.ID, reason)
		if serr := store.SaveRecords(recs); serr != nil {
			return recs[i], serr
		}
		c.pruneReleases(store, recs)
		return recs[i], fmt.Errorf("release %s failed: %s", rec.ID, reason)
	}
	for j := range recs[:i] {
		if recs[j].Status == api.ReleaseLive {
			recs[j].Status = replaced
		}
	}
	recs[i].Status, recs[i].Seq = api.ReleaseLive, seq
	if db.needed() {
		res, uerr := c.upgradeDB(ctx, seq)
		if uerr != nil {
			recs[i].Reason = "the files are live; the database upgrade failed: " + uerr.Error()
			c.eventWith("release", "", map[string]any{"release": rec.ID, "level": "alert"}, "release %s: %s", rec.ID, recs[i].Reason)
		} else {
			recs[i].DB = fmt.Sprintf("%d → %d", res.From, res.To)
		}
	}
	recs[i].DurationMS = time.Since(t0).Milliseconds()
	if err := store.SaveRecords(recs); err != nil {
		return recs[i], err
	}
	c.pruneReleases(store, recs)
	// Cached pages carry the old version (the generator meta, asset
	// versions): everything goes.
	body, _ := json.Marshal(api.PurgeRequest{All: true})
	c.purges.Purge(ctx, body)
	c.eventWith("release", "", map[string]any{"release": rec.ID, "seq": seq, "duration_ms": recs[i].DurationMS},
		"release %s live at files seq %d in %s: %s", rec.ID, seq, time.Since(t0).Round(time.Millisecond), rec.Change)
	return recs[i], nil
}

// pruneReleases keeps releases.keep releases (and always the live one
// and the one before it) and removes the content no kept release needs;
// it runs at the end of every rollout, under the rollout lock. A failure
// is an event: the rollout itself is done.
func (c *Controller) pruneReleases(store *release.Store, recs []api.Release) {
	keep := c.cfg.Releases.Keep
	if keep < 2 {
		return // 0: every release is kept (Validate refuses 1)
	}
	_, p, err := store.Prune(recs, keep)
	if err != nil {
		c.eventWith("release", "", map[string]any{"level": "alert"}, "releases.keep: %v", err)
		return
	}
	if len(p.Releases) > 0 || p.Blobs > 0 {
		c.eventWith("release", "", map[string]any{"releases": p.Releases, "blobs": p.Blobs, "bytes": p.Bytes},
			"releases.keep: %d: removed releases %v and %d files of content no kept release names (%d bytes)", keep, p.Releases, p.Blobs, p.Bytes)
	}
}

// runCanary marks release i canary and runs it on the canary node; an
// error says why it failed (nothing was pushed).
func (c *Controller) runCanary(ctx context.Context, store *release.Store, files ReleaseFiles, recs []api.Release, i int, target []release.File) error {
	recs[i].Status = api.ReleaseCanary
	if err := store.SaveRecords(recs); err != nil {
		return err
	}
	t0 := time.Now()
	c.eventWith("release", "", map[string]any{"release": recs[i].ID, "addr": c.canaryAddr()}, "release %s on the canary node (%s)", recs[i].ID, c.canaryAddr())
	switch err := c.canary(ctx, store, files, target); {
	case errors.Is(err, errCanarySkipped):
		c.eventWith("release", "", nil, "release %s: %v", recs[i].ID, err)
	case err != nil:
		return fmt.Errorf("canary: %w", err)
	default:
		c.eventWith("release", "", map[string]any{"release": recs[i].ID}, "release %s passed its canary checks in %s", recs[i].ID, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// dbChange is the database version ($wp_db_version) of the code before
// and after a rollout; 0 when unknown.
type dbChange struct{ from, to int }

// needed says whether the new code needs wp_upgrade: a rollback to older
// code never downgrades the database.
func (d dbChange) needed() bool { return d.from != 0 && d.to > d.from }

// upgradeDB runs wp_upgrade once through PHP CLI, in the docroot of a
// local in-service node that has applied seq (it holds the new core and
// wp-config.php), as the PHP user.
func (c *Controller) upgradeDB(ctx context.Context, seq uint64) (wordpress.UpgradeResult, error) {
	if c.nodes == nil || c.group == nil {
		return wordpress.UpgradeResult{}, fmt.Errorf("nodes run on %s: visit /wp-admin/upgrade.php to upgrade the database", c.cfg.Scheduler.Kind)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		for _, n := range c.group.Nodes() {
			if n.State == api.NodeInService && n.FilesSeq >= seq {
				return wordpress.Upgrade{PHP: c.bin.PHP, Docroot: c.layout.Docroot(n.ID), SiteURL: c.cfg.SiteURL(),
					ScratchDir: c.layout.Run(), Credential: c.credential(c.phpUser)}.Run(ctx)
			}
		}
		if time.Now().After(deadline) {
			return wordpress.UpgradeResult{}, fmt.Errorf("no node in service applied files seq %d within a minute", seq)
		}
		select {
		case <-ctx.Done():
			return wordpress.UpgradeResult{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// policyModes gives every file of tree the mode the file policy gives it
// (plugins and themes stay writable by PHP while installs from wp-admin
// are allowed; core never is), as the store and every node hold them.
func (c *Controller) policyModes(tree []release.File) []release.File {
	pol := c.filePolicy()
	out := make([]release.File, len(tree))
	for i, f := range tree {
		f.Mode = uint32(pol.Mode(f.Path, f.Dir, iofs.FileMode(f.Mode)))
		out[i] = f
	}
	return out
}

func pushSteps(ctx context.Context, files ReleaseFiles, steps []release.Step, open func(string) (io.ReadCloser, error)) (uint64, error) {
	var seq uint64
	for _, st := range steps {
		s, err := files.Push(ctx, st, open)
		if err != nil {
			unit := st.Unit
			if unit == "" {
				unit = "single files"
			}
			return seq, fmt.Errorf("push %s: %w", unit, err)
		}
		seq = s
	}
	return seq, nil
}

// beginRollout takes the one-rollout-at-a-time lock (refusing with
// errReleaseBusy when another runs) and reads the release store; done
// releases the lock.
func (c *Controller) beginRollout() (*release.Store, ReleaseFiles, []api.Release, func(), error) {
	if !c.rollouts.mu.TryLock() {
		return nil, nil, nil, nil, fmt.Errorf("%w (release %s); wait until it is done (scalepress release shows it)", errReleaseBusy, c.rollouts.current())
	}
	store, files, err := c.releaseDeps()
	if err == nil {
		var recs []api.Release
		if recs, err = store.Records(); err == nil {
			return store, files, recs, c.rollouts.mu.Unlock, nil
		}
	}
	c.rollouts.mu.Unlock()
	return nil, nil, nil, nil, err
}

// releasesDoc is GET /v1/releases: the store's current code and every release.
func (c *Controller) releasesDoc(ctx context.Context) (api.Releases, error) {
	store, files, err := c.releaseDeps()
	if err != nil {
		return api.Releases{}, err
	}
	recs, err := store.Records()
	if err != nil {
		return api.Releases{}, err
	}
	seq, cur, content, err := managedTree(ctx, files)
	if err != nil {
		return api.Releases{}, err
	}
	doc := api.Releases{Seq: seq, Rollout: c.rollouts.current(), Releases: recs}
	if doc.Releases == nil {
		doc.Releases = []api.Release{}
	}
	doc.Current = api.Release{Kind: "unrecorded", Status: api.ReleaseLive, Seq: seq}
	inventoryOf(release.Inspect(cur, content), &doc.Current)
	for _, r := range slices.Backward(recs) {
		if r.Status != api.ReleaseLive {
			continue
		}
		if t, err := store.Tree(r.ID); err == nil && slices.Equal(t, cur) {
			doc.Current = r
		} else {
			doc.Current.Change = "changed since release " + r.ID + " (from wp-admin or by hand)"
		}
		break
	}
	return doc, nil
}

func (c *Controller) handleReleases(w http.ResponseWriter, r *http.Request) {
	doc, err := c.releasesDoc(r.Context())
	if err != nil {
		releaseError(w, "release", err)
		return
	}
	writeJSON(w, doc)
}

func (c *Controller) handleUpdate(w http.ResponseWriter, r *http.Request, _ string) {
	var req api.UpdateRequest
	if !decodeStrict(w, r, "update", &req) {
		return
	}
	// A rollout runs to its end (or its own failure) even when the client
	// goes away: half a rollout is worse than a late answer.
	rel, err := c.update(context.WithoutCancel(r.Context()), req, "")
	if err != nil {
		releaseError(w, "update", err)
		return
	}
	writeJSON(w, rel)
}

func (c *Controller) handleRollback(w http.ResponseWriter, r *http.Request, _ string) {
	var req api.RollbackRequest
	if !decodeStrict(w, r, "rollback", &req) {
		return
	}
	rel, err := c.rollback(context.WithoutCancel(r.Context()), req)
	if err != nil {
		releaseError(w, "rollback", err)
		return
	}
	writeJSON(w, rel)
}

func decodeStrict(w http.ResponseWriter, r *http.Request, op string, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, op+": bad request body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// releaseError answers 400 for a refused request (nothing changed), 409
// while another rollout runs, 500 otherwise.
func releaseError(w http.ResponseWriter, op string, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, release.ErrBadSource), errors.Is(err, errReleaseRefused):
		code = http.StatusBadRequest
	case errors.Is(err, errReleaseBusy):
		code = http.StatusConflict
	}
	http.Error(w, op+": "+err.Error(), code)
}
