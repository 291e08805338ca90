package release

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

// memRemote is a Remote in memory; fail, when set, fails every Put.
type memRemote struct {
	mu   sync.Mutex
	objs map[string][]byte
	fail error
}

func (m *memRemote) Put(name string, r io.Reader, size int64) error {
	if m.fail != nil {
		return m.fail
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("put %s: %d bytes, said %d", name, len(b), size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[name] = b
	return nil
}

func (m *memRemote) Get(name string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[name]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", name, os.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memRemote) List(prefix string, fn func(string) error) error {
	m.mu.Lock()
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range m.objs {
			if strings.HasPrefix(n, prefix) && !yield(n) {
				return
			}
		}
	})
	m.mu.Unlock()
	for _, n := range names {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

func (m *memRemote) Delete(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, name)
	return nil
}

func (m *memRemote) names() []string {
	var out []string
	m.List("", func(n string) error { out = append(out, n); return nil })
	return out
}

// TestRemote: with a remote, every write reaches it; a store on another
// host (an empty directory) reads the releases, trees and content from it,
// refusing content that does not hash to its name; a prune leaves the
// remote holding exactly what the kept releases need, uploading what was
// stored before the remote was configured.
func TestRemote(t *testing.T) {
	m := &memRemote{objs: map[string][]byte{}}
	// Content stored before the remote was configured.
	s0, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(s *Store, content string) File {
		t.Helper()
		h, n, err := s.PutBlob(strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		return File{Path: "wp-includes/" + content, Mode: 0o644, Size: n, Hash: h}
	}
	old := put(s0, "old")
	if err := s0.SaveTree("r1", []File{old}); err != nil {
		t.Fatal(err)
	}
	s1 := s0.WithRemote(m)
	a, b := put(s1, "a"), put(s1, "b")
	recs := []api.Release{{ID: "r1", Status: api.ReleaseSuperseded}, {ID: "r2", Status: api.ReleaseLive}}
	if err := s1.SaveTree("r2", []File{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := s1.SaveRecords(recs); err != nil {
		t.Fatal(err)
	}
	want := []string{blobRel(a.Hash), blobRel(b.Hash), "releases.json", "trees/r2.json"}
	slices.Sort(want)
	if diff := cmp.Diff(want, m.names()); diff != "" {
		t.Errorf("remote after the writes (-want +got):\n%s", diff)
	}

	// Another host.
	s2, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s2.WithRemote(m)
	got, err := s2.Records()
	if err != nil || len(got) != 2 || got[1].ID != "r2" {
		t.Fatalf("Records on another host = %v, %v", got, err)
	}
	tree, err := s2.Tree("r2")
	if err != nil || len(tree) != 2 {
		t.Fatalf("Tree on another host = %v, %v", tree, err)
	}
	if b, err := s2.ReadBlob(b.Hash, 100); err != nil || string(b) != "b" {
		t.Errorf("ReadBlob on another host = %q, %v", b, err)
	}
	if !s2.HasBlob(a.Hash) {
		t.Error("HasBlob on another host: false")
	}
	// A remote object whose content is not its name is not used.
	forged := sha([]byte("forged"))
	m.objs[blobRel(forged)] = []byte("evil")
	if s2.HasBlob(forged) {
		t.Error("HasBlob took remote content that does not hash to its name")
	}
	if _, err := s2.OpenBlob(forged); err == nil || !strings.Contains(err.Error(), "does not hash to its name") {
		t.Errorf("OpenBlob of forged remote content: %v", err)
	}
	delete(m.objs, blobRel(forged))

	// A blob the remote refused is not kept locally either.
	m.fail = errors.New("bucket unreachable")
	if _, _, err := s1.PutBlob(strings.NewReader("c")); err == nil {
		t.Error("PutBlob succeeded although the remote refused it")
	}
	m.fail = nil
	if _, err := os.Stat(s1.blobPath(sha([]byte("c")))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a blob the remote refused is kept locally: %v", err)
	}

	// Prune: r3 live, keep 2 → r2 (previous) and r3; r1 goes. The
	// remote ends with exactly r2's and r3's trees and blobs.
	c := put(s1, "c")
	if err := s1.SaveTree("r3", []File{a, c}); err != nil {
		t.Fatal(err)
	}
	recs = []api.Release{{ID: "r1", Status: api.ReleaseSuperseded}, {ID: "r2", Status: api.ReleaseSuperseded}, {ID: "r3", Status: api.ReleaseLive}}
	if err := s1.SaveRecords(recs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s1.Prune(recs, 2); err != nil {
		t.Fatal(err)
	}
	want = []string{blobRel(a.Hash), blobRel(b.Hash), blobRel(c.Hash), "releases.json", "trees/r2.json", "trees/r3.json"}
	slices.Sort(want)
	if diff := cmp.Diff(want, m.names()); diff != "" {
		t.Errorf("remote after the prune (-want +got):\n%s", diff)
	}
	// And one that keeps r1: its blob, stored before the remote, is uploaded.
	s3, _ := OpenStore(t.TempDir())
	s3.WithRemote(m)
	os.WriteFile(s3.dir+"/trees/r1.json", []byte(`[{"path":"wp-includes/old","mode":420,"size":3,"hash":"`+old.Hash+`"}]`), 0o600)
	os.MkdirAll(s3.dir+"/blobs/"+old.Hash[:2], 0o700)
	os.WriteFile(s3.blobPath(old.Hash), []byte("old"), 0o600)
	if _, _, err := s3.Prune([]api.Release{{ID: "r1", Status: api.ReleaseSuperseded}, {ID: "r3", Status: api.ReleaseLive}}, 2); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.objs["trees/r1.json"]; !ok {
		t.Error("the kept tree r1 stored before the remote was not uploaded by the prune")
	}
	if _, ok := m.objs[blobRel(old.Hash)]; !ok {
		t.Error("r1's blob was not on the remote after the prune")
	}
}
