package filesync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// openTestStore opens a store on the local backend in dir.
func openTestStore(t *testing.T, dir string, mutate func(*Config)) *Store {
	t.Helper()
	cfg := testConfig(dir)
	if mutate != nil {
		mutate(&cfg)
	}
	blobs, err := NewDirBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := NewDirObjectStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(context.Background(), cfg, blobs, objs, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// putFile uploads content and commits a put of p.
func putFile(t *testing.T, s *Store, p, content string) uint64 {
	t.Helper()
	ctx := context.Background()
	h := hashBytes([]byte(content))
	if _, err := s.PutBlob(ctx, h, strings.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Commit(ctx, PushRequest{Origin: "test", Changes: []Change{
		{Op: OpPut, Path: p, Mode: 0o644, Size: int64(len(content)), Hash: h, MTime: 1e18, Origin: "test"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Results[0].Seq
}

func commit(t *testing.T, s *Store, cs ...Change) PushResponse {
	t.Helper()
	for i := range cs {
		cs[i].Origin = "test"
	}
	resp, err := s.Commit(context.Background(), PushRequest{Origin: "test", Changes: cs})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestStoreTornTailIsDropped(t *testing.T) {
	tests := []struct {
		name string
		// damage changes the last segment, which holds three records.
		damage func(t *testing.T, seg string, recs [3]int64)
	}{
		{"cut inside the last payload", func(t *testing.T, seg string, recs [3]int64) {
			truncate(t, seg, recs[0]+recs[1]+recs[2]/2)
		}},
		{"cut inside the last header", func(t *testing.T, seg string, recs [3]int64) {
			truncate(t, seg, recs[0]+recs[1]+3)
		}},
		{"last record's bytes flipped", func(t *testing.T, seg string, recs [3]int64) {
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)-2] ^= 0xff
			if err := os.WriteFile(seg, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage after the last record", func(t *testing.T, seg string, recs [3]int64) {
			appendBytes(t, seg, []byte{0, 0, 0, 40, 1, 2, 3})
			// The third record stays: it was complete.
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, nil)
			putFile(t, s, "a.txt", "one")
			putFile(t, s, "b.txt", "two")
			seg := filepath.Join(dir, "log", "00000000000000000001.log")
			before := fileSize(t, seg)
			putFile(t, s, "c.txt", "three")
			full := fileSize(t, seg)
			s.Close()
			r1, _ := appendRecord(nil, Change{Seq: 1, Op: OpPut, Path: "a.txt", Mode: 0o644, Size: 3, Hash: hashBytes([]byte("one")), MTime: 1e18, Origin: "test"})
			tt.damage(t, seg, [3]int64{int64(len(r1)), before - int64(len(r1)), full - before})

			s2 := openTestStore(t, dir, nil)
			wantSeq := uint64(2)
			if tt.name == "garbage after the last record" {
				wantSeq = 3
			}
			if got := s2.Seq(); got != wantSeq {
				t.Fatalf("Seq() after reopen = %d, want %d", got, wantSeq)
			}
			if _, ok := s2.Lookup("c.txt"); ok != (wantSeq == 3) {
				t.Errorf("c.txt present = %v, want %v", ok, wantSeq == 3)
			}
			// The log goes on after the cut, and reopens cleanly.
			if got := putFile(t, s2, "d.txt", "four"); got != wantSeq+1 {
				t.Errorf("next record got seq %d, want %d", got, wantSeq+1)
			}
			want := s2.Manifest()
			s2.Close()
			s3 := openTestStore(t, dir, nil)
			if diff := cmp.Diff(want, s3.Manifest()); diff != "" {
				t.Errorf("manifest after a second reopen (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStoreCorruptionBeforeTheTailFailsOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, func(c *Config) { c.SegmentSize = 1 << 10 })
	for i := range 40 {
		putFile(t, s, "f.txt", strings.Repeat("x", i+1))
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "log", "*.log"))
	if len(segs) < 2 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	data, _ := os.ReadFile(segs[0])
	data[20] ^= 0xff
	os.WriteFile(segs[0], data, 0o644)
	cfg := testConfig(dir)
	blobs, _ := NewDirBlobStore(filepath.Join(dir, "blobs"))
	objs, _ := NewDirObjectStore(dir)
	if _, err := OpenStore(context.Background(), cfg, blobs, objs, testLogger(t)); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("OpenStore on a log corrupt before its tail = %v, want an error saying it is corrupt", err)
	}
}

func TestStoreSnapshotsAndManifestAt(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStoreOn(t, b, dir, func(c *Config) { c.SnapshotEvery = 3; c.KeepSnapshots = 2; c.SegmentSize = 1 << 10 })
			var history []Manifest
			history = append(history, s.Manifest())
			for i := range 10 {
				switch i % 3 {
				case 0, 1:
					putFile(t, s, "dir/"+string(rune('a'+i))+".txt", strings.Repeat("y", i))
				case 2:
					commit(t, s, Change{Op: OpDelete, Path: "dir/" + string(rune('a'+i-1)) + ".txt"})
				}
				history = append(history, s.Manifest())
			}
			snaps, _ := s.objs.List(context.Background(), "snap/")
			if len(snaps) != 2 {
				t.Errorf("kept %d snapshots, want 2: %v", len(snaps), snaps)
			}
			for at, want := range history {
				got, err := s.ManifestAt(context.Background(), uint64(at))
				if err != nil {
					t.Fatalf("ManifestAt(%d): %v", at, err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ManifestAt(%d) (-want +got):\n%s", at, diff)
				}
			}
			if _, err := s.ManifestAt(context.Background(), 99); !errors.Is(err, ErrFuture) {
				t.Errorf("ManifestAt(99) = %v, want ErrFuture", err)
			}
			s.Close()
			s2 := openStoreOn(t, b, dir, nil)
			if diff := cmp.Diff(history[len(history)-1], s2.Manifest()); diff != "" {
				t.Errorf("manifest after reopen from a snapshot (-want +got):\n%s", diff)
			}
			if got := s2.Status().SnapshotSeq; got != 9 {
				t.Errorf("SnapshotSeq = %d, want 9", got)
			}
		})
	}
}

func TestStoreCommitSemantics(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			s := openStoreOn(t, b, t.TempDir(), nil)
			h := hashBytes([]byte("x"))
			if _, err := s.PutBlob(context.Background(), h, strings.NewReader("x"), 1); err != nil {
				t.Fatal(err)
			}
			put := func(p string) Change { return Change{Op: OpPut, Path: p, Mode: 0o644, Size: 1, Hash: h} }
			tests := []struct {
				name    string
				changes []Change
				want    []PushResult
			}{
				{"new file", []Change{put("a/b.txt")}, []PushResult{{Seq: 1}}},
				{"same content again is a no-op", []Change{put("a/b.txt")}, []PushResult{{Seq: 1, Noop: true}}},
				{"delete of a missing path is a no-op", []Change{{Op: OpDelete, Path: "nope"}}, []PushResult{{Seq: 0, Noop: true}}},
				{"existing directory is a no-op", []Change{{Op: OpMkdir, Path: "a", Mode: 0o755}}, []PushResult{{Seq: 1, Noop: true}}},
				{"rename as delete and put", []Change{{Op: OpDelete, Path: "a/b.txt"}, put("a/c.txt")}, []PushResult{{Seq: 2}, {Seq: 3}}},
				{"a no-op after a related change in the push is not one", []Change{{Op: OpDelete, Path: "a"}, put("a/c.txt")}, []PushResult{{Seq: 4}, {Seq: 5}}},
				{"a file replaces a directory", []Change{put("a")}, []PushResult{{Seq: 6}}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					resp := commit(t, s, tt.changes...)
					if diff := cmp.Diff(tt.want, resp.Results); diff != "" {
						t.Errorf("results (-want +got):\n%s", diff)
					}
				})
			}
			want := Manifest{Seq: 6, Entries: []Entry{{Path: "a", Mode: 0o644, Size: 1, Hash: h, Seq: 6}}}
			if diff := cmp.Diff(want, s.Manifest()); diff != "" {
				t.Errorf("final manifest (-want +got):\n%s", diff)
			}
			for p, want := range map[string]uint64{"a": 6, "a/c.txt": 6, "a/b.txt": 6, "never": 0} {
				if got, _ := s.PathSeq(p); got != want {
					t.Errorf("PathSeq(%q) = %d, want %d", p, got, want)
				}
			}
		})
	}
}

func truncate(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, p string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestStoreChangesFromDisk reads changes older than the in-memory tail from
// the log segments.
func TestStoreChangesFromDisk(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			s := openStoreOn(t, b, t.TempDir(), func(c *Config) { c.SegmentSize = 64 << 10 })
			const n = 3 * tailSize
			for b := 0; b < n/1024; b++ {
				cs := make([]Change, 1024)
				for i := range cs {
					cs[i] = Change{Op: OpMkdir, Path: fmt.Sprintf("d%05d", b*1024+i), Mode: 0o755}
				}
				commit(t, s, cs...)
			}
			var got uint64
			for got < n {
				cs, _, err := s.Changes(context.Background(), got, streamBatch)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cs {
					if c.Seq != got+1 || c.Path != fmt.Sprintf("d%05d", got) {
						t.Fatalf("after %d got seq %d path %s", got, c.Seq, c.Path)
					}
					got = c.Seq
				}
			}
			if st := s.Status(); st.Segments < 2 || st.Dirs != n {
				t.Errorf("Status = %+v, want several segments and %d dirs", st, n)
			}
		})
	}
}

// foundBlobs is a BlobStore whose Put of blob found answers that the
// blob was stored already without reading the body, as a bucket may answer
// a conditional create before it has read the upload.
type foundBlobs struct {
	BlobStore
	found string
}

func (f foundBlobs) Put(ctx context.Context, hash string, r io.Reader, size int64) (int64, bool, error) {
	if hash == f.found {
		return size, true, nil
	}
	return f.BlobStore.Put(ctx, hash, r, size)
}

// TestStoredBlobSizeNotTrusted: an upload of a blob the backend has
// stores nothing and is not read back, so the size it announced is not
// trusted at commit: a push naming the blob with that size is refused,
// and the quota counts the blob once.
func TestStoredBlobSizeNotTrusted(t *testing.T) {
	s := openTestStore(t, t.TempDir(), nil)
	ctx := context.Background()
	content := "stored by another files role"
	h := hashBytes([]byte(content))
	if _, err := s.PutBlob(ctx, h, strings.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	delete(s.stored, h) // stored by another files role, as far as s knows
	s.mu.Unlock()
	s.blobs = foundBlobs{BlobStore: s.blobs, found: h}
	lie := content + " and more"
	if _, err := s.PutBlob(ctx, h, strings.NewReader(lie), int64(len(lie))); err != nil {
		t.Fatalf("PutBlob of a stored blob = %v", err)
	}
	if got := s.Status().BlobBytes; got != int64(len(content)) {
		t.Errorf("BlobBytes = %d, want %d (the blob once)", got, len(content))
	}
	_, err := s.Commit(ctx, PushRequest{Origin: "test", Changes: []Change{
		{Op: OpPut, Path: "a.txt", Hash: h, Size: int64(len(lie)), Mode: 0o644, MTime: 1, Origin: "test"},
	}})
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Rule != RuleSize {
		t.Fatalf("commit = %v, want a refusal by %s", err, RuleSize)
	}
}
