package filesync

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTreeApply(t *testing.T) {
	h := sampleHash
	put := func(seq uint64, p string) Change {
		return Change{Seq: seq, Op: OpPut, Path: p, Mode: 0o644, Size: 6, Hash: h}
	}
	dir := func(seq uint64, p string) Entry { return Entry{Path: p, Dir: true, Mode: 0o755, Seq: seq} }
	file := func(seq uint64, p string) Entry { return Entry{Path: p, Mode: 0o644, Size: 6, Hash: h, Seq: seq} }
	tests := []struct {
		name    string
		changes []Change
		want    []Entry
	}{
		{"put creates parents", []Change{put(1, "a/b/c")},
			[]Entry{dir(1, "a"), dir(1, "a/b"), file(1, "a/b/c")}},
		{"delete removes a subtree", []Change{put(1, "a/b/c"), put(2, "a/d"), put(3, "x"), {Seq: 4, Op: OpDelete, Path: "a"}},
			[]Entry{file(3, "x")}},
		{"put replaces a directory", []Change{put(1, "a/b"), put(2, "a")},
			[]Entry{file(2, "a")}},
		{"a file in the way of a parent is replaced", []Change{put(1, "a"), put(2, "a/b")},
			[]Entry{dir(2, "a"), file(2, "a/b")}},
		{"mkdir keeps the content, sets the mode", []Change{put(1, "a/b"), {Seq: 2, Op: OpMkdir, Path: "a", Mode: 0o700}},
			[]Entry{{Path: "a", Dir: true, Mode: 0o700, Seq: 2}, file(1, "a/b")}},
		{"mkdir replaces a file", []Change{put(1, "a"), {Seq: 2, Op: OpMkdir, Path: "a", Mode: 0o755}},
			[]Entry{dir(2, "a")}},
		{"rename", []Change{put(1, "old"), {Seq: 2, Op: OpDelete, Path: "old"}, put(3, "new")},
			[]Entry{file(3, "new")}},
		{"similar prefix is not below", []Change{put(1, "a/x"), put(2, "a-b"), {Seq: 3, Op: OpDelete, Path: "a"}},
			[]Entry{file(2, "a-b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(true)
			for _, c := range tt.changes {
				tr.apply(c)
			}
			if diff := cmp.Diff(tt.want, tr.sorted()); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			files, dirs := 0, 0
			for _, e := range tt.want {
				if e.Dir {
					dirs++
				} else {
					files++
				}
			}
			if tr.files != files || tr.dirs != dirs || tr.bytes != int64(6*files) {
				t.Errorf("counts %d files %d dirs %d bytes, want %d %d %d", tr.files, tr.dirs, tr.bytes, files, dirs, 6*files)
			}
			if err := (Manifest{Seq: 99, Entries: tr.sorted()}).check(); err != nil {
				t.Errorf("the tree is not a valid manifest: %v", err)
			}
		})
	}
}

func TestManifestCheck(t *testing.T) {
	f := Entry{Path: "a/b", Mode: 0o644, Hash: sampleHash}
	tests := []struct {
		name    string
		entries []Entry
		ok      bool
	}{
		{"valid", []Entry{{Path: "a", Dir: true, Mode: 0o755}, f}, true},
		{"missing parent", []Entry{f}, false},
		{"unsorted", []Entry{f, {Path: "a", Dir: true}}, false},
		{"duplicate", []Entry{{Path: "a", Dir: true}, {Path: "a", Dir: true}}, false},
		{"bad path", []Entry{{Path: "../a", Dir: true}}, false},
		{"file without hash", []Entry{{Path: "a"}}, false},
		{"directory with hash", []Entry{{Path: "a", Dir: true, Hash: sampleHash}}, false},
		{"mode bits", []Entry{{Path: "a", Dir: true, Mode: 0o4755}}, false},
		{"entry after the manifest", []Entry{{Path: "a", Dir: true, Seq: 100}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Manifest{Seq: 10, Entries: tt.entries}.check()
			if (err == nil) != tt.ok {
				t.Errorf("check() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
