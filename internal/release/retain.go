package release

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/scalepress/scalepress/internal/api"
)

// Retain is which of recs (oldest first) a store keeping keep releases
// holds: the newest keep, and always the live release and the one before
// it (the latest that was live and was replaced: the default rollback
// target), whatever their age. dropped are the ids of the others.
func Retain(recs []api.Release, keep int) (kept []api.Release, dropped []string) {
	must := map[string]bool{}
	for _, r := range slices.Backward(recs) {
		if r.Status == api.ReleaseLive {
			must[r.ID] = true
			break
		}
	}
	for _, r := range slices.Backward(recs) {
		if r.Status == api.ReleaseSuperseded || r.Status == api.ReleaseRolledBack {
			must[r.ID] = true
			break
		}
	}
	for i, r := range recs {
		if i >= len(recs)-keep || must[r.ID] {
			kept = append(kept, r)
		} else {
			dropped = append(dropped, r.ID)
		}
	}
	return kept, dropped
}

// Pruned says what a Prune removed.
type Pruned struct {
	Releases []string // ids
	Blobs    int
	Bytes    int64
}

// Prune keeps the releases Retain keeps of recs and removes the others:
// their records, then their trees, then every blob no kept release's tree
// names. It returns the records kept. A kept tree that cannot be read
// stops it before any blob is removed: a blob is only ever removed when
// every kept release is known not to need it. The caller holds the
// rollout lock (nothing is being staged into the store meanwhile).
func (s *Store) Prune(recs []api.Release, keep int) ([]api.Release, Pruned, error) {
	kept, dropped := Retain(recs, keep)
	var out Pruned
	if len(dropped) > 0 {
		if err := s.SaveRecords(kept); err != nil {
			return recs, out, err
		}
		out.Releases = dropped
	}
	need := map[string]bool{}
	keepTree := map[string]bool{}
	for _, r := range kept {
		keepTree[r.ID+".json"] = true
		tree, err := s.Tree(r.ID)
		if err != nil {
			return kept, out, fmt.Errorf("releases: keep: no blob removed: %w", err)
		}
		for _, f := range tree {
			if !f.Dir {
				need[f.Hash] = true
			}
		}
	}
	trees, err := os.ReadDir(filepath.Join(s.dir, "trees"))
	if err != nil {
		return kept, out, fmt.Errorf("releases: %w", err)
	}
	for _, e := range trees {
		if !keepTree[e.Name()] && strings.HasSuffix(e.Name(), ".json") {
			if err := os.Remove(filepath.Join(s.dir, "trees", e.Name())); err != nil {
				return kept, out, fmt.Errorf("releases: %w", err)
			}
		}
	}
	shards, err := os.ReadDir(filepath.Join(s.dir, "blobs"))
	if err != nil {
		return kept, out, fmt.Errorf("releases: %w", err)
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue // a .put-*.tmp of a PutBlob that died
		}
		ents, err := os.ReadDir(filepath.Join(s.dir, "blobs", sh.Name()))
		if err != nil {
			return kept, out, fmt.Errorf("releases: %w", err)
		}
		for _, e := range ents {
			if need[e.Name()] || !hashRE.MatchString(e.Name()) {
				continue
			}
			p := filepath.Join(s.dir, "blobs", sh.Name(), e.Name())
			info, err := e.Info()
			if err != nil {
				continue
			}
			if err := os.Remove(p); err != nil {
				return kept, out, fmt.Errorf("releases: %w", err)
			}
			out.Blobs++
			out.Bytes += info.Size()
		}
	}
	if _, err := s.syncRemote(keepTree, need); err != nil {
		return kept, out, err
	}
	return kept, out, nil
}
