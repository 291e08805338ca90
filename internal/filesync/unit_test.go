package filesync

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// storeBlob uploads content and returns a put of p with it.
func storeBlob(t *testing.T, s *Store, p, content string) Change {
	t.Helper()
	h := hashBytes([]byte(content))
	if _, err := s.PutBlob(context.Background(), h, strings.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	return Change{Op: OpPut, Path: p, Mode: 0o644, Size: int64(len(content)), Hash: h, MTime: 1e18, Origin: "test"}
}

func unitPush(unit string, cs ...Change) PushRequest {
	for i := range cs {
		cs[i].Origin = "test"
	}
	return PushRequest{Origin: "test", Unit: unit, Changes: cs}
}

// logRec is a record of the log as the tests compare it.
type logRec struct {
	Op    Op
	Path  string
	Group uint64
}

func logSince(t *testing.T, s *Store, since uint64) []logRec {
	t.Helper()
	cs, _, err := s.Changes(context.Background(), since, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []logRec
	for _, c := range cs {
		out = append(out, logRec{c.Op, c.Path, c.Group})
	}
	return out
}

// TestStoreUnitReplacesTheTree: a unit push becomes one group of records
// (a delete of the unit, then its whole new tree); files of the old tree
// that the push does not name are gone; the same tree again is a no-op.
func TestStoreUnitReplacesTheTree(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			s := openStoreOn(t, b, t.TempDir(), nil)
			ctx := context.Background()
			const unit = "wp-content/plugins/p"
			old1 := storeBlob(t, s, unit+"/a.php", "v1 a")
			old2 := storeBlob(t, s, unit+"/old.php", "v1 old")
			other := storeBlob(t, s, "wp-content/plugins/q/q.php", "q")
			commit(t, s, old1, old2, other) // seqs 1..3 (dirs implied)

			new1 := storeBlob(t, s, unit+"/a.php", "v2 a")
			new2 := storeBlob(t, s, unit+"/inc/b.php", "v2 b")
			resp, err := s.Commit(ctx, unitPush(unit,
				Change{Op: OpMkdir, Path: unit, Mode: 0o755}, new1,
				Change{Op: OpMkdir, Path: unit + "/inc", Mode: 0o755}, new2))
			if err != nil {
				t.Fatal(err)
			}
			wantLog := []logRec{
				{OpDelete, unit, 8},
				{OpMkdir, unit, 8},
				{OpPut, unit + "/a.php", 8},
				{OpMkdir, unit + "/inc", 8},
				{OpPut, unit + "/inc/b.php", 8},
			}
			if diff := cmp.Diff(wantLog, logSince(t, s, 3)); diff != "" {
				t.Errorf("log after the unit push (-want +got):\n%s", diff)
			}
			wantRes := []PushResult{{Seq: 5}, {Seq: 6}, {Seq: 7}, {Seq: 8}}
			if diff := cmp.Diff(wantRes, resp.Results); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if _, ok := s.Lookup(unit + "/old.php"); ok {
				t.Errorf("%s/old.php survived the unit push that does not name it", unit)
			}
			if _, ok := s.Lookup("wp-content/plugins/q/q.php"); !ok {
				t.Errorf("a file outside the unit was removed")
			}

			// The same tree again: nothing written.
			resp, err = s.Commit(ctx, unitPush(unit,
				Change{Op: OpMkdir, Path: unit, Mode: 0o755}, new1,
				Change{Op: OpMkdir, Path: unit + "/inc", Mode: 0o755}, new2))
			if err != nil {
				t.Fatal(err)
			}
			if s.Seq() != 8 || !resp.Results[0].Noop {
				t.Errorf("same unit again: seq %d, results %+v; want seq 8 and no-ops", s.Seq(), resp.Results)
			}

			// A unit push of only its delete removes it, as a group of one.
			if _, err := s.Commit(ctx, unitPush(unit, Change{Op: OpDelete, Path: unit})); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]logRec{{OpDelete, unit, 9}}, logSince(t, s, 8)); diff != "" {
				t.Errorf("log after deleting the unit (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStoreUnitRefusals: a unit push whose changes leave the unit, or
// whose unit is not a clean path, is refused whole with the rule "unit"
// and the offending path; nothing is written.
func TestStoreUnitRefusals(t *testing.T) {
	s := openTestStore(t, t.TempDir(), nil)
	in := storeBlob(t, s, "wp-content/plugins/p/a.php", "a")
	tests := []struct {
		name     string
		req      PushRequest
		wantPath string
		wantRule string
	}{
		{"a change outside the unit", unitPush("wp-content/plugins/p", in, storeBlob(t, s, "wp-content/plugins/px/a.php", "x")),
			"wp-content/plugins/px/a.php", RuleUnit},
		{"a change at a parent of the unit", unitPush("wp-content/plugins/p", in, Change{Op: OpDelete, Path: "wp-content/plugins"}),
			"wp-content/plugins", RuleUnit},
		{"a unit with ..", unitPush("wp-content/plugins/../p", in), "wp-content/plugins/../p", RuleUnit},
		{"an absolute unit", unitPush("/wp-content/plugins/p", in), "/wp-content/plugins/p", RuleUnit},
		{"an excluded unit", unitPush("wp-config.php", Change{Op: OpPut, Path: "wp-config.php", Mode: 0o644, Size: in.Size, Hash: in.Hash}),
			"wp-config.php", RuleExcluded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Commit(context.Background(), tt.req)
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("Commit = %v, want a RejectError", err)
			}
			if rej.Path != tt.wantPath || rej.Rule != tt.wantRule {
				t.Errorf("refused %q rule %q (%v), want path %q rule %q", rej.Path, rej.Rule, err, tt.wantPath, tt.wantRule)
			}
			if s.Seq() != 0 {
				t.Errorf("a refused unit push wrote %d records", s.Seq())
			}
			// The wire parser refuses the same push with the same rule.
			if tt.wantRule == RuleUnit {
				body, _ := json.Marshal(tt.req)
				if _, err := ParsePush(body); !errors.As(err, &rej) || rej.Rule != RuleUnit {
					t.Errorf("ParsePush = %v, want rule %q", err, RuleUnit)
				}
			}
		})
	}
}

// TestStoreUnitTornGroupIsDropped: a crash in the middle of a group's
// append leaves whole records of it at the end of the log; reopening cuts
// the group off entirely, never keeps a part of it.
func TestStoreUnitTornGroupIsDropped(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, nil)
	putFile(t, s, "wp-content/plugins/p/a.php", "v1")
	seg := filepath.Join(dir, "log", "00000000000000000001.log")
	before := fileSize(t, seg)
	var cs []Change
	for _, n := range []string{"a", "b", "c", "d"} {
		cs = append(cs, storeBlob(t, s, "wp-content/plugins/p/"+n+".php", "v2 "+n))
	}
	if _, err := s.Commit(context.Background(), unitPush("wp-content/plugins/p", cs...)); err != nil {
		t.Fatal(err)
	}
	full := fileSize(t, seg)
	s.Close()
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Cut at every record boundary inside the group and in the middle of
	// each record: the store reopens at the record before the group.
	var cuts []int64
	for off := before; off < full; {
		_, n, err := decodeRecord(data[off:])
		if err != nil {
			t.Fatal(err)
		}
		cuts = append(cuts, off+1, off+int64(n)/2)
		if off+int64(n) < full {
			cuts = append(cuts, off+int64(n))
		}
		off += int64(n)
	}
	for _, cut := range cuts {
		if err := os.WriteFile(seg, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		s2 := openTestStore(t, dir, nil)
		if s2.Seq() != 1 {
			e, _ := s2.Lookup("wp-content/plugins/p/a.php")
			t.Fatalf("cut at %d of %d: reopened at seq %d (a.php %+v), want the log before the group", cut, full, s2.Seq(), e)
		}
		if _, ok := s2.Lookup("wp-content/plugins/p/b.php"); ok {
			t.Fatalf("cut at %d: a part of the torn group is in the tree", cut)
		}
		s2.Close()
	}
}
