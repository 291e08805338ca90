package filesync

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// heldAppends is an ObjectStore whose log appends wait, once armed, until
// the test lets them go.
type heldAppends struct {
	ObjectStore
	entered chan struct{} // one per append that waits
	release chan struct{}
}

func (h *heldAppends) Append(ctx context.Context, name string, data []byte) error {
	if h.release != nil && strings.HasPrefix(name, "log/") {
		h.entered <- struct{}{}
		<-h.release
	}
	return h.ObjectStore.Append(ctx, name, data)
}

// TestCommitLetsUploadsGoOn: while a commit writes the log (a round trip
// to the bucket), the store's lock is free, so a blob upload goes on
// (the pusher's pipeline uploads the next push's blobs meanwhile); but
// another commit waits, and the records are neither served nor counted
// before the write returned: a record is only acknowledged durable.
func TestCommitLetsUploadsGoOn(t *testing.T) {
	dir := t.TempDir()
	blobs, err := NewDirBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := NewDirObjectStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	held := &heldAppends{ObjectStore: objs}
	s, err := OpenStore(context.Background(), testConfig(dir), blobs, held, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	before := putFile(t, s, "a.txt", "a")

	held.entered, held.release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(held.release) }) }
	t.Cleanup(release) // before Close (cleanups run last first)
	done := make(chan error, 1)
	go func() {
		_, err := s.Commit(context.Background(), PushRequest{Origin: "test", Changes: []Change{
			{Op: OpDelete, Path: "a.txt", Origin: "test"},
		}})
		done <- err
	}()
	<-held.entered // the commit is writing the log

	if !s.mu.TryLock() {
		t.Fatal("the store's lock is held across the log's write: uploads wait for the commit")
	}
	s.mu.Unlock()
	if s.commitMu.TryLock() {
		s.commitMu.Unlock()
		t.Fatal("another commit could start while one writes the log")
	}
	// An upload completes meanwhile (it would wait for the lock above).
	h := hashBytes([]byte("b"))
	if _, err := s.PutBlob(context.Background(), h, strings.NewReader("b"), 1); err != nil {
		t.Fatal(err)
	}
	if got := s.Seq(); got != before {
		t.Errorf("Seq = %d while the log write is in flight, want %d: a record counted before it is durable", got, before)
	}
	if cs, _, err := s.Changes(context.Background(), before, 10); err != nil || len(cs) != 0 {
		t.Errorf("Changes after %d while the log write is in flight = %v, %v; want none", before, cs, err)
	}
	if _, ok := s.Lookup("a.txt"); !ok {
		t.Error("a.txt left the tree before its delete is durable")
	}

	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := s.Seq(); got != before+1 {
		t.Errorf("Seq after the commit = %d, want %d", got, before+1)
	}
	if _, ok := s.Lookup("a.txt"); ok {
		t.Error("a.txt is still in the tree after its delete was committed")
	}
}

// TestCommitAfterCloseDuringWrite: a store closed while a commit writes
// the log answers the commit with ErrClosed (the writer pushes again; the
// next store finds the records there and the push a no-op) and does not
// apply it to a tree nobody serves.
func TestCommitAfterCloseDuringWrite(t *testing.T) {
	dir := t.TempDir()
	blobs, err := NewDirBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := NewDirObjectStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	held := &heldAppends{ObjectStore: objs}
	s, err := OpenStore(context.Background(), testConfig(dir), blobs, held, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	before := putFile(t, s, "a.txt", "a")
	held.entered, held.release = make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := s.Commit(context.Background(), PushRequest{Origin: "test", Changes: []Change{
			{Op: OpDelete, Path: "a.txt", Origin: "test"},
		}})
		done <- err
	}()
	<-held.entered
	s.Close()
	close(held.release)
	if err := <-done; err != ErrClosed {
		t.Fatalf("commit across Close = %v, want ErrClosed", err)
	}
	held.release = nil
	s2, err := OpenStore(context.Background(), testConfig(dir), blobs, held, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.Seq(); got != before+1 {
		t.Errorf("reopened Seq = %d, want %d (the write was durable)", got, before+1)
	}
}
