package filesync

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQueueJournal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "queue.jsonl")
	q, err := openQueue(p)
	if err != nil {
		t.Fatal(err)
	}
	c := func(path string) Change { return Change{Op: OpDelete, Path: path} }
	if err := q.add([]Change{c("a"), c("b"), c("c")}); err != nil {
		t.Fatal(err)
	}
	if err := q.ack(2); err != nil {
		t.Fatal(err)
	}
	if err := q.add([]Change{c("d")}); err != nil {
		t.Fatal(err)
	}
	q.close()

	// A torn line at the end (a crash inside a write) is ignored.
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"id":9,"change":{"op":"del`)
	f.Close()

	q, err = openQueue(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []queued{{ID: 1, Change: c("a")}, {ID: 3, Change: c("c")}, {ID: 4, Change: c("d")}}
	if diff := cmp.Diff(want, q.head(10)); diff != "" {
		t.Errorf("queue after reopen (-want +got):\n%s", diff)
	}
	if err := q.add([]Change{c("e")}); err != nil {
		t.Fatal(err)
	}
	if got := q.head(10)[3].ID; got != 5 {
		t.Errorf("next id after reopen = %d, want 5", got)
	}
	if err := q.ack(1, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() != 0 {
		t.Errorf("a drained queue leaves a journal of %d bytes (%v), want 0", fi.Size(), err)
	}
	q.close()
	q, err = openQueue(p)
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	if q.len() != 0 {
		t.Errorf("drained queue reopened with %d entries", q.len())
	}
}
