package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/controller"
	"github.com/scalepress/scalepress/internal/filesync"
	"github.com/scalepress/scalepress/internal/release"
)

// releaseFiles is the files store as the controller's releases use it
// (controller.ReleaseFilesFunc).
func releaseFiles(url, tok string) controller.ReleaseFiles {
	return releaseStore{filesync.NewClient(url, tok, nil)}
}

var _ controller.ReleaseFilesFunc = releaseFiles

type releaseStore struct{ c *filesync.Client }

func (s releaseStore) Tree(ctx context.Context) (uint64, []release.File, error) {
	m, err := s.c.Manifest(ctx)
	if err != nil {
		return 0, nil, err
	}
	tree := make([]release.File, 0, len(m.Entries))
	for _, e := range m.Entries {
		tree = append(tree, release.File{Path: e.Path, Dir: e.Dir, Mode: e.Mode, Size: e.Size, Hash: e.Hash})
	}
	return m.Seq, tree, nil
}

func (s releaseStore) GetBlob(ctx context.Context, hash string, w io.Writer) (int64, error) {
	return s.c.GetBlob(ctx, hash, w)
}

// Push uploads the blobs of st the store lacks and commits st as one push
// with its unit (docs/adr/0026-atomic-change-sets.md).
func (s releaseStore) Push(ctx context.Context, st release.Step, open func(string) (io.ReadCloser, error)) (uint64, error) {
	now := time.Now().UnixNano()
	req := filesync.PushRequest{Origin: filesync.ControllerID, Unit: st.Unit}
	for _, p := range st.Remove {
		req.Changes = append(req.Changes, filesync.Change{Op: filesync.OpDelete, Path: p})
	}
	uploaded := map[string]bool{}
	for _, f := range st.Put {
		if f.Dir {
			req.Changes = append(req.Changes, filesync.Change{Op: filesync.OpMkdir, Path: f.Path, Mode: f.Mode, MTime: now})
			continue
		}
		if !uploaded[f.Hash] {
			has, err := s.c.HasBlob(ctx, f.Hash)
			if err != nil {
				return 0, err
			}
			if !has {
				rc, err := open(f.Hash)
				if err != nil {
					return 0, err
				}
				err = s.c.PutBlob(ctx, f.Hash, rc, f.Size)
				rc.Close()
				if err != nil {
					return 0, fmt.Errorf("%s: %w", f.Path, err)
				}
			}
			uploaded[f.Hash] = true
		}
		req.Changes = append(req.Changes, filesync.Change{Op: filesync.OpPut, Path: f.Path, Mode: f.Mode, Size: f.Size, Hash: f.Hash, MTime: now})
	}
	if len(req.Changes) == 0 {
		return 0, nil
	}
	resp, err := s.c.Push(ctx, req)
	if err != nil {
		return 0, err
	}
	return resp.Seq, nil
}

// runRelease shows the current release and every earlier one.
func runRelease(args []string) error {
	fs := newFlags("release")
	var d dirFlags
	d.register(fs, true)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := apiClient(d)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	var doc api.Releases
	if err := c.Get(ctx, api.APIPathReleases, &doc); err != nil {
		return usageIfRefused(err, http.StatusBadRequest)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	printReleases(os.Stdout, doc)
	return nil
}

func printReleases(w io.Writer, doc api.Releases) {
	cur := doc.Current
	id := cur.ID
	switch {
	case id == "" && len(doc.Releases) == 0:
		id = "(not recorded yet: the first update records it as r1)"
	case id == "":
		id = "(not recorded: the next update or rollback starts from it)"
	}
	fmt.Fprintf(w, "current release %s at files seq %d\n", id, doc.Seq)
	if cur.ID == "" && cur.Change != "" {
		fmt.Fprintf(w, "  %s\n", cur.Change)
	}
	fmt.Fprintf(w, "  core    WordPress %s\n", cur.Core)
	for _, p := range cur.Plugins {
		fmt.Fprintf(w, "  plugin  %s %s\n", p.Name, p.Version)
	}
	for _, t := range cur.Themes {
		fmt.Fprintf(w, "  theme   %s %s\n", t.Name, t.Version)
	}
	if doc.Rollout != "" {
		fmt.Fprintf(w, "rolling out: %s\n", doc.Rollout)
	}
	if len(doc.Releases) == 0 {
		return
	}
	fmt.Fprintln(w, "\nreleases (oldest first):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tSTATUS\tCORE\tCHANGE")
	for _, r := range doc.Releases {
		change := r.Change
		if r.Reason != "" {
			change += " — " + r.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Time, r.Status, r.Core, change)
	}
	tw.Flush()
}

// runUpdate stages a new core, plugin or theme release and rolls it out.
func runUpdate(args []string) error {
	fs := newFlags("update")
	var d dirFlags
	d.register(fs, true)
	from := fs.String("from", "", "the release source: a directory, .zip, .tar.gz or .tgz")
	force := fs.Bool("force", false, "roll out a version older than (or the same as) the current one")
	// flags may come after the positional arguments: update plugin akismet --from X
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	pos = append(pos, fs.Args()...)
	var req api.UpdateRequest
	switch {
	case len(pos) == 1 && pos[0] == "core":
		req.Kind = "core"
	case len(pos) == 2 && (pos[0] == "plugin" || pos[0] == "theme"):
		req.Kind, req.Name = pos[0], pos[1]
	default:
		return errUsagef("want: update core --from DIR|TARBALL, or update plugin|theme NAME --from DIR|ZIP")
	}
	if *from == "" {
		return errUsagef("--from is required: the directory or archive of the new %s", req.Kind)
	}
	abs, err := filepath.Abs(*from)
	if err != nil {
		return err
	}
	req.From, req.Force = abs, *force
	return postRelease(d, api.APIPathReleases, req)
}

// runRollback rolls out an earlier release again.
func runRollback(args []string) error {
	fs := newFlags("rollback")
	var d dirFlags
	d.register(fs, true)
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	pos = append(pos, fs.Args()...)
	if len(pos) > 1 {
		return errUsagef("want: rollback [RELEASE]")
	}
	var req api.RollbackRequest
	if len(pos) == 1 {
		req.Release = pos[0]
	}
	return postRelease(d, api.APIPathRollback, req)
}

func postRelease(d dirFlags, path string, req any) error {
	c, err := apiClient(d)
	if err != nil {
		return err
	}
	if c.Token, err = operatorToken(d); err != nil {
		return err
	}
	c.HTTP = &http.Client{} // a rollout takes as long as it takes; ^C ends the wait
	ctx, cancel := signalContext()
	defer cancel()
	var rel api.Release
	t0 := time.Now()
	if err := c.Post(ctx, path, req, &rel); err != nil {
		return usageIfRefused(err, http.StatusBadRequest, http.StatusConflict)
	}
	fmt.Printf("release %s live at files seq %d in %s: %s\n", rel.ID, rel.Seq, time.Since(t0).Round(time.Millisecond), rel.Change)
	return nil
}
