package controller

// Automatic updates (docs/adr/0023-releases.md): release archives (WordPress
// core, plugins, themes) dropped into releases.source_dir are read once
// each; for each component the newest one releases.auto allows for its
// kind is rolled out like `scalepress update` (canary first); the others
// are only announced.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/atomicfile"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/release"
)

// sourceSettle is how long an archive must be left alone before it is
// read: one still being copied in is not a broken release.
const sourceSettle = 2 * time.Second

// sourceFile is what is known of one archive of the source directory.
type sourceFile struct {
	Key     string `json:"key"`               // size and modification time: a changed file is looked at again
	Kind    string `json:"kind,omitempty"`    // core, plugin or theme; "" when it is none
	Name    string `json:"name,omitempty"`    // the plugin's or theme's directory name
	Version string `json:"version,omitempty"` // the version it holds
	Problem string `json:"problem,omitempty"` // why it is not a release
	Tried   bool   `json:"tried,omitempty"`   // rolled out (or tried) once: never again by itself
	Told    bool   `json:"told,omitempty"`    // its event (left to the operator, not a release) was recorded
}

// component names what an archive updates: "core", "plugin akismet".
func (f sourceFile) component() string {
	if f.Kind == string(release.KindCore) {
		return f.Kind
	}
	return f.Kind + " " + f.Name
}

// autoVerdict is what automatic updates make of one archive.
type autoVerdict struct {
	Path   string
	Why    string // for one left to the operator: why
	Absent bool   // a plugin or theme that is not installed
}

// installed is the version of f's component that cur runs, and whether
// cur has it.
func installed(cur release.Inventory, f sourceFile) (string, bool) {
	switch release.Kind(f.Kind) {
	case release.KindCore:
		return cur.Core, true
	case release.KindPlugin:
		c, ok := release.Find(cur.Plugins, f.Name)
		return c.Version, ok
	case release.KindTheme:
		c, ok := release.Find(cur.Themes, f.Name)
		return c.Version, ok
	}
	return "", false
}

// autoPick is, for each component (core, each plugin, each theme), the
// newest archive newer than what cur runs that policy rolls out by itself
// and that was not tried yet: core first, then plugins and themes by
// name. The newer archives it leaves to the operator are in asked, with
// why. Only installed plugins and themes update by themselves.
func autoPick(cur release.Inventory, policy config.AutoPolicy, files map[string]sourceFile) (picks []string, asked []autoVerdict) {
	best := map[string]string{} // component → path
	for path, f := range files {
		if f.Kind == "" || f.Version == "" {
			continue
		}
		have, ok := installed(cur, f)
		if !ok {
			asked = append(asked, autoVerdict{Path: path, Absent: true})
			continue
		}
		if release.Compare(f.Version, have) <= 0 {
			continue
		}
		kind := release.Kind(f.Kind)
		pol := policy.For(f.Kind)
		var why string
		switch {
		case release.PreRelease(f.Version):
			why = "a pre-release never rolls out by itself"
		case pol == config.AutoOff:
			why = fmt.Sprintf("releases.auto.%s: off", autoKey(kind))
		case pol == config.AutoMinor && (have == "" || release.Line(kind, f.Version) != release.Line(kind, have)):
			why = fmt.Sprintf("releases.auto.%s: minor takes only the running %s line", autoKey(kind), lineName(kind, have))
		}
		if why != "" {
			asked = append(asked, autoVerdict{Path: path, Why: why})
			continue
		}
		if f.Tried {
			continue
		}
		c := f.component()
		if b, ok := best[c]; !ok || release.Compare(f.Version, files[b].Version) > 0 || release.Compare(f.Version, files[b].Version) == 0 && path < b {
			best[c] = path
		}
	}
	for _, p := range best {
		picks = append(picks, p)
	}
	order := func(p string) string {
		f := files[p]
		if f.Kind == string(release.KindCore) {
			return ""
		}
		return f.component()
	}
	slices.SortFunc(picks, func(a, b string) int { return cmp.Compare(order(a), order(b)) })
	slices.SortFunc(asked, func(a, b autoVerdict) int { return cmp.Compare(a.Path, b.Path) })
	return picks, asked
}

// autoKey is the releases.auto key of kind.
func autoKey(kind release.Kind) string {
	if kind == release.KindCore {
		return "core"
	}
	return string(kind) + "s"
}

func lineName(kind release.Kind, v string) string {
	if v == "" {
		return "(unknown: the installed copy has no Version header)"
	}
	if kind == release.KindCore {
		return release.Line(kind, v)
	}
	return release.Line(kind, v) + ".x"
}

func isArchive(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".tar.gz") || strings.HasSuffix(n, ".tgz") || strings.HasSuffix(n, ".zip")
}

func (c *Controller) sourceStatePath() string {
	return filepath.Join(c.layout.Dir, "releases", "source.json")
}

// updateCommand is the command that rolls f out by hand.
func updateCommand(f sourceFile, path string) string {
	if f.Kind == string(release.KindCore) {
		return "scalepress update core --from " + path
	}
	return fmt.Sprintf("scalepress update %s %s --from %s", f.Kind, f.Name, path)
}

// what names f's content in an event: "WordPress 6.2", "plugin akismet 5.3".
func (f sourceFile) what() string {
	if f.Kind == string(release.KindCore) {
		return "WordPress " + f.Version
	}
	return f.component() + " " + f.Version
}

// checkSource looks at releases.source_dir once and rolls out what
// releases.auto allows.
func (c *Controller) checkSource(ctx context.Context) error {
	dir := c.cfg.Releases.SourceDir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("releases.source_dir: %w", err)
	}
	// The state lives beside the releases, which may not exist yet.
	if err := os.MkdirAll(filepath.Dir(c.sourceStatePath()), 0o700); err != nil {
		return fmt.Errorf("releases: %w", err)
	}
	known := map[string]sourceFile{}
	if b, err := os.ReadFile(c.sourceStatePath()); err == nil {
		json.Unmarshal(b, &known)
	}
	files := map[string]sourceFile{}
	for _, e := range ents {
		if !e.Type().IsRegular() || !isArchive(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < sourceSettle {
			continue // still being written, perhaps: next time
		}
		path := filepath.Join(dir, e.Name())
		key := fmt.Sprintf("%d-%d", info.Size(), info.ModTime().UnixNano())
		if f, ok := known[path]; ok && f.Key == key {
			if f.Kind == "" && f.Version != "" {
				f.Kind = string(release.KindCore) // recorded when only core was read
			}
			files[path] = f
			continue
		}
		f := sourceFile{Key: key}
		if id, err := release.Identify(path, release.DefaultLimits()); err != nil {
			f.Problem = err.Error()
		} else {
			f.Kind, f.Name, f.Version = string(id.Kind), id.Name, id.Version
			if f.Version == "" {
				f.Problem = fmt.Sprintf("%s: the %s has no Version header: nothing to compare it with", path, f.component())
			}
		}
		files[path] = f
	}
	_, tree, content, err := managedTree(ctx, c.releaseFiles(c.filesURL(), c.filesToken(api.FilesControllerID)))
	if err != nil {
		return err
	}
	cur := release.Inspect(tree, content)
	tell := func(path string, args map[string]any, format string, a ...any) {
		f := files[path]
		if f.Told {
			return
		}
		args["path"] = path
		c.eventWith("release", "", args, format, a...)
		f.Told = true
		files[path] = f
	}
	for path, f := range files {
		if f.Problem != "" {
			tell(path, map[string]any{}, "release source %s is not a WordPress release: %s", path, f.Problem)
		}
	}
	picks, asked := autoPick(cur, c.cfg.Releases.Auto, files)
	for _, v := range asked {
		f := files[v.Path]
		have, _ := installed(cur, f)
		if v.Absent {
			tell(v.Path, map[string]any{"version": f.Version}, "release source %s holds %s, which is not installed: only installed plugins and themes update by themselves; %s installs it",
				v.Path, f.what(), updateCommand(f, v.Path))
			continue
		}
		tell(v.Path, map[string]any{"version": f.Version}, "release source %s holds %s (running %s); %s: it rolls out only when asked: %s",
			v.Path, f.what(), have, v.Why, updateCommand(f, v.Path))
	}
	var errs []error
	for _, pick := range picks {
		f := files[pick]
		req := api.UpdateRequest{Kind: f.Kind, Name: f.Name, From: pick}
		note := fmt.Sprintf("automatic, releases.auto.%s: %s", autoKey(release.Kind(f.Kind)), c.cfg.Releases.Auto.For(f.Kind))
		_, rerr := c.update(ctx, req, note)
		if errors.Is(rerr, errReleaseBusy) {
			break // next time
		}
		f.Tried = true
		files[pick] = f
		if rerr != nil {
			errs = append(errs, fmt.Errorf("automatic update to %s: %w", pick, rerr))
		}
	}
	if err := atomicfile.WriteJSON(c.sourceStatePath(), files, 0o600); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// sourceLoop checks releases.source_dir every releases.check_every.
func (c *Controller) sourceLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.Releases.CheckEvery)
	defer t.Stop()
	for {
		if err := c.checkSource(ctx); err != nil && ctx.Err() == nil {
			c.eventWith("release", "", nil, "release source: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
