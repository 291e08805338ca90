package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

func TestRetain(t *testing.T) {
	rec := func(id, status string) api.Release { return api.Release{ID: id, Status: status} }
	tests := []struct {
		name    string
		recs    []api.Release
		keep    int
		kept    []string
		dropped []string
	}{
		{"fewer than keep", []api.Release{rec("r1", api.ReleaseSuperseded), rec("r2", api.ReleaseLive)}, 10, []string{"r1", "r2"}, nil},
		{"the newest", []api.Release{rec("r1", api.ReleaseSuperseded), rec("r2", api.ReleaseSuperseded), rec("r3", api.ReleaseSuperseded), rec("r4", api.ReleaseLive)}, 2,
			[]string{"r3", "r4"}, []string{"r1", "r2"}},
		{"live and previous kept behind failed ones", []api.Release{rec("r1", api.ReleaseSuperseded), rec("r2", api.ReleaseRolledBack), rec("r3", api.ReleaseLive),
			rec("r4", api.ReleaseFailed), rec("r5", api.ReleaseFailed), rec("r6", api.ReleaseFailed)}, 2,
			[]string{"r2", "r3", "r5", "r6"}, []string{"r1", "r4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, dropped := Retain(tt.recs, tt.keep)
			var ids []string
			for _, r := range kept {
				ids = append(ids, r.ID)
			}
			if diff := cmp.Diff(tt.kept, ids); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.dropped, dropped); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPrune: releases beyond keep lose their record and tree, and the
// blobs only they named are removed; a blob a kept release names is never
// removed, also when a dropped release named it first (a rollback's tree
// is an old release's tree).
func TestPrune(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(content string) File {
		h, n, err := s.PutBlob(strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		return File{Path: "wp-includes/" + content + ".php", Mode: 0o644, Size: n, Hash: h}
	}
	// r1: a, b. r2: a, c. r3 (rollback to r1): a, b. r4 failed: d. r5: a, e.
	trees := map[string][]File{
		"r1": {{Path: "wp-includes", Dir: true, Mode: 0o755}, put("a"), put("b")},
		"r2": {put("a"), put("c")},
		"r3": {put("a"), put("b")},
		"r4": {put("d")},
		"r5": {put("a"), put("e")},
	}
	stray := put("staged-by-a-refused-update")
	recs := []api.Release{{ID: "r1", Status: api.ReleaseSuperseded}, {ID: "r2", Status: api.ReleaseRolledBack},
		{ID: "r3", Status: api.ReleaseSuperseded}, {ID: "r4", Status: api.ReleaseFailed}, {ID: "r5", Status: api.ReleaseLive}}
	for id, tree := range trees {
		if err := s.SaveTree(id, tree); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveRecords(recs); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.dir, "blobs", ".put-1.tmp"), []byte("half"), 0o600)

	kept, pruned, err := s.Prune(recs, 2)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range kept {
		ids = append(ids, r.ID)
	}
	// newest two: r4, r5; the one before the live: r3.
	if diff := cmp.Diff([]string{"r3", "r4", "r5"}, ids); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"r1", "r2"}, pruned.Releases); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}
	if saved, _ := s.Records(); len(saved) != 3 {
		t.Errorf("releases.json holds %d records, want 3", len(saved))
	}
	for id := range trees {
		_, err := s.Tree(id)
		if gone := id == "r1" || id == "r2"; gone != (err != nil) {
			t.Errorf("tree %s: %v (want it removed: %v)", id, err, gone)
		}
	}
	for _, id := range []string{"r3", "r4", "r5"} {
		for _, f := range trees[id] {
			if !f.Dir && !s.HasBlob(f.Hash) {
				t.Errorf("blob of %s (kept by %s) was removed", f.Path, id)
			}
		}
	}
	for _, f := range []File{trees["r2"][1], stray} {
		if s.HasBlob(f.Hash) {
			t.Errorf("blob of %s is named by no kept release but was kept", f.Path)
		}
	}
	if pruned.Blobs != 2 {
		t.Errorf("removed %d blobs, want 2", pruned.Blobs)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "blobs", ".put-1.tmp")); err != nil {
		t.Errorf("a temporary file outside the shards was touched: %v", err)
	}

	// A kept tree that cannot be read stops it before any blob goes.
	os.Remove(filepath.Join(s.dir, "trees", "r5.json"))
	extra := put("unreferenced")
	if _, _, err := s.Prune(kept, 2); err == nil {
		t.Error("Prune with a kept tree missing succeeded")
	}
	if !s.HasBlob(extra.Hash) || !s.HasBlob(trees["r3"][1].Hash) {
		t.Error("Prune removed blobs although it could not read every kept tree")
	}
}
