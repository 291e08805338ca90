package controller

// Automatic updates (docs/adr/0023-releases.md): WordPress core archives
// dropped into releases.source_dir are staged once each; the newest one
// releases.auto allows is rolled out like `scalepress update core --from`
// (canary first); a major release is only announced.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	Version string `json:"version,omitempty"` // its core version; "" when it is not WordPress
	Problem string `json:"problem,omitempty"` // why it is not a release
	Tried   bool   `json:"tried,omitempty"`   // rolled out (or tried) once: never again by itself
	Told    bool   `json:"told,omitempty"`    // its event (major, not WordPress) was recorded
}

// autoPick is the newest archive newer than current that policy rolls out
// by itself (untried), and the newer ones it leaves to the operator.
func autoPick(current, policy string, files map[string]sourceFile) (pick string, asked []string) {
	var best string
	for path, f := range files {
		if f.Version == "" || release.Compare(f.Version, current) <= 0 {
			continue
		}
		allowed := policy == config.AutoAll || policy == config.AutoMinor && release.Major(f.Version) == release.Major(current)
		if !allowed {
			asked = append(asked, path)
			continue
		}
		if f.Tried {
			continue
		}
		if best == "" || release.Compare(f.Version, files[best].Version) > 0 || release.Compare(f.Version, files[best].Version) == 0 && path < best {
			best = path
		}
	}
	slices.Sort(asked)
	return best, asked
}

func isArchive(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".tar.gz") || strings.HasSuffix(n, ".tgz") || strings.HasSuffix(n, ".zip")
}

// hashOnly is a release.Put that keeps nothing: reading an archive for
// its version stores none of it.
func hashOnly(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func (c *Controller) sourceStatePath() string {
	return filepath.Join(c.layout.Dir, "releases", "source.json")
}

// checkSource looks at releases.source_dir once and rolls out what
// releases.auto allows.
func (c *Controller) checkSource(ctx context.Context) error {
	dir := c.cfg.Releases.SourceDir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("releases.source_dir: %w", err)
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
			files[path] = f
			continue
		}
		f := sourceFile{Key: key}
		st, err := release.Load(path, release.KindCore, "", release.DefaultLimits(), hashOnly)
		if err != nil {
			f.Problem = err.Error()
		} else {
			f.Version = release.Inspect(st.Files, st.Content).Core
		}
		files[path] = f
	}
	_, cur, content, err := managedTree(ctx, c.releaseFiles(c.filesURL(), c.filesToken(api.FilesControllerID)))
	if err != nil {
		return err
	}
	current := release.Inspect(cur, content).Core
	for path, f := range files {
		if f.Problem != "" && !f.Told {
			c.eventWith("release", "", map[string]any{"path": path}, "release source %s is not a WordPress release: %s", path, f.Problem)
			f.Told = true
			files[path] = f
		}
	}
	pick, asked := autoPick(current, c.cfg.Releases.Auto, files)
	for _, path := range asked {
		if f := files[path]; !f.Told {
			c.eventWith("release", "", map[string]any{"path": path, "version": f.Version},
				"release source %s holds WordPress %s (running %s); releases.auto: %s rolls out only when asked: scalepress update core --from %s",
				path, f.Version, current, c.cfg.Releases.Auto, path)
			f.Told = true
			files[path] = f
		}
	}
	var rerr error
	if pick != "" {
		f := files[pick]
		_, rerr = c.update(ctx, api.UpdateRequest{Kind: string(release.KindCore), From: pick}, "automatic, releases.auto: "+c.cfg.Releases.Auto)
		if errors.Is(rerr, errReleaseBusy) {
			rerr = nil // next time
		} else {
			f.Tried = true
			files[pick] = f
		}
	}
	if err := atomicfile.WriteJSON(c.sourceStatePath(), files, 0o600); err != nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("automatic update to %s: %w", pick, rerr)
	}
	return nil
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
