package atomicfile

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// entries lists a directory's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		old  []byte // nil: no file before
		data []byte
		mode fs.FileMode
	}{
		{name: "new file", data: []byte("hello\n"), mode: 0o644},
		{name: "secret", data: []byte("s3cret"), mode: 0o600},
		{name: "replaces", old: []byte("old content, longer"), data: []byte("new"), mode: 0o640},
		{name: "empty", old: []byte("x"), data: nil, mode: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if tt.old != nil {
				if err := os.WriteFile(p, tt.old, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(p, tt.data, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(tt.data), string(got)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.mode {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tt.mode)
			}
			if diff := cmp.Diff([]string{"f"}, entries(t, dir)); diff != "" {
				t.Errorf("directory (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteMissingDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "no", "f")
	if err := Write(p, []byte("x"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Write into a missing directory: err = %v, want ErrNotExist", err)
	}
}

func TestWriteJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "spec.json")
	in := map[string]any{"id": "node-1", "n": 2.0}
	if err := WriteJSON(p, in, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if b[len(b)-1] != '\n' {
		t.Errorf("no final newline: %q", b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := WriteJSON(p, func() {}, 0o600); err == nil {
		t.Error("WriteJSON of a func: no error")
	}
}

func TestFile(t *testing.T) {
	tests := []struct {
		name   string
		commit bool
		want   []string // directory after Close
	}{
		{name: "committed", commit: true, want: []string{"f"}},
		{name: "discarded", commit: false, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			f, err := Create(p, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("part")); err != nil {
				t.Fatal(err)
			}
			tmp := entries(t, dir)
			if len(tmp) != 1 || !IsTemp(tmp[0]) {
				t.Errorf("while writing: directory = %q, want one temporary file", tmp)
			}
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("path visible before Commit: %v", err)
			}
			if tt.commit {
				if err := f.Commit(); err != nil {
					t.Fatal(err)
				}
				if err := f.Commit(); err == nil {
					t.Error("second Commit: no error")
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if diff := cmp.Diff(tt.want, entries(t, dir)); diff != "" {
				t.Errorf("directory (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsTemp(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{".state.json.123456.tmp", true},
		{".node-1.pid.9.tmp", true},
		{"state.json", false},
		{"x.tmp", false},
		{".hidden", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTemp(tt.name); got != tt.want {
				t.Errorf("IsTemp(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory: err = %v", err)
	}
}

// BenchmarkWrite measures the durable write of a small file (two fsyncs);
// BenchmarkWriteNoSync the same steps without them, for comparison.
func BenchmarkWrite(b *testing.B) {
	p := filepath.Join(b.TempDir(), "applied")
	data := []byte("123456\n")
	for b.Loop() {
		if err := Write(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteNoSync(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "applied")
	data := []byte("123456\n")
	for b.Loop() {
		f, err := os.CreateTemp(dir, ".applied.*.tmp")
		if err != nil {
			b.Fatal(err)
		}
		f.Write(data)
		f.Close()
		if err := os.Rename(f.Name(), p); err != nil {
			b.Fatal(err)
		}
	}
}
