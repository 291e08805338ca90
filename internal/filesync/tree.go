package filesync

import (
	"slices"
	"strings"
)

// Entry is the state of one path: a regular file or a directory.
type Entry struct {
	Path string `json:"path"`
	Dir  bool   `json:"dir,omitempty"`
	// Mode holds permission bits only.
	Mode  uint32 `json:"mode"`
	Size  int64  `json:"size,omitempty"`
	Hash  string `json:"hash,omitempty"`
	MTime int64  `json:"mtime,omitempty"`
	// Seq is the change that last set this entry (0 on a node for a local
	// change not yet confirmed).
	Seq uint64 `json:"seq,omitempty"`
}

// tree is a set of entries with the semantics of the change log: a put or
// mkdir creates missing parents and replaces whatever is in its way, a
// delete removes a whole subtree. Every entry's parents are directory
// entries. The server keeps one as the current manifest; an agent keeps one
// as its index of what its docroot holds.
type tree struct {
	entries map[string]Entry
	// tomb remembers which change removed a path, for PathSeq; nil on an
	// agent.
	tomb  map[string]uint64
	files int
	dirs  int
	bytes int64
}

func newTree(withTombstones bool) *tree {
	t := &tree{entries: make(map[string]Entry)}
	if withTombstones {
		t.tomb = make(map[string]uint64)
	}
	return t
}

func treeFromEntries(entries []Entry, withTombstones bool) *tree {
	t := newTree(withTombstones)
	for _, e := range entries {
		t.set(e)
	}
	return t
}

func (t *tree) get(p string) (Entry, bool) {
	e, ok := t.entries[p]
	return e, ok
}

func (t *tree) set(e Entry) {
	if old, ok := t.entries[e.Path]; ok {
		t.count(old, -1)
	}
	t.entries[e.Path] = e
	t.count(e, 1)
}

func (t *tree) count(e Entry, d int) {
	if e.Dir {
		t.dirs += d
	} else {
		t.files += d
		t.bytes += int64(d) * e.Size
	}
}

// remove deletes p and everything below it.
func (t *tree) remove(p string, seq uint64) {
	e, ok := t.entries[p]
	if ok {
		delete(t.entries, p)
		t.count(e, -1)
		if e.Dir {
			t.removeBelow(p, seq)
		}
	}
	if t.tomb != nil {
		t.tomb[p] = seq
	}
}

// removeBelow deletes everything strictly below dir.
func (t *tree) removeBelow(dir string, seq uint64) {
	for k, e := range t.entries {
		if isBelow(k, dir) {
			delete(t.entries, k)
			t.count(e, -1)
		}
	}
	if t.tomb != nil {
		t.tomb[dir] = seq
	}
}

// noop reports whether c would leave the tree as it is, and the sequence
// number of the state c would confirm.
func (t *tree) noop(c Change, base uint64) (bool, uint64) {
	e, ok := t.entries[c.Path]
	switch c.Op {
	case OpPut:
		return ok && !e.Dir && e.Hash == c.Hash && e.Mode == c.Mode, e.Seq
	case OpMkdir:
		return ok && e.Dir && e.Mode == c.Mode, e.Seq
	case OpDelete:
		return !ok, t.pathSeq(c.Path, base)
	}
	return false, 0
}

// apply applies c.
func (t *tree) apply(c Change) {
	if c.Op == OpDelete {
		t.remove(c.Path, c.Seq)
		return
	}
	for _, d := range parentDirs(c.Path) {
		e, ok := t.entries[d]
		if ok && e.Dir {
			continue
		}
		if ok {
			t.remove(d, c.Seq)
		}
		t.set(Entry{Path: d, Dir: true, Mode: 0o755, MTime: c.MTime, Seq: c.Seq})
	}
	old, ok := t.entries[c.Path]
	switch c.Op {
	case OpPut:
		if ok && old.Dir {
			t.removeBelow(c.Path, c.Seq)
		}
		t.set(Entry{Path: c.Path, Mode: c.Mode, Size: c.Size, Hash: c.Hash, MTime: c.MTime, Seq: c.Seq})
	case OpMkdir:
		t.set(Entry{Path: c.Path, Dir: true, Mode: c.Mode, MTime: c.MTime, Seq: c.Seq})
	}
}

// pathSeq returns the sequence number a reader must have applied to see p
// as it is now: the change that set it, or the one that removed it or a
// parent, and at least base (what the tree was loaded from, since removals
// before it are not remembered).
func (t *tree) pathSeq(p string, base uint64) uint64 {
	if e, ok := t.entries[p]; ok {
		return e.Seq
	}
	seq := base
	if t.tomb != nil {
		seq = max(seq, t.tomb[p])
		for _, d := range parentDirs(p) {
			seq = max(seq, t.tomb[d])
		}
	}
	return seq
}

// sorted returns the entries sorted by path, so that a directory comes
// before what it contains.
func (t *tree) sorted() []Entry {
	out := make([]Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}
