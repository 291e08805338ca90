// Package atomicfile writes files so that a reader sees the old content or
// the new, never a part, and so that the new content survives a crash once
// the write returns.
//
// One rule for every writer of state, specs, secrets, configs, pid files and
// store objects: the data goes to a temporary file in the same directory,
// gets its mode, is fsynced and closed, is renamed over the path, and the
// directory is fsynced. On this project's machines the two fsyncs cost about
// 0.16 ms per small file (BenchmarkWrite), so no such writer is exempt; only
// a replica rebuilt from a durable source (a node's docroot) is written
// without them (docs/architecture.md, "Files on disk").
package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tempSuffix ends every temporary name, so that file-sync rules that skip
// "*.tmp" skip them too, and IsTemp recognises them after a crash.
const tempSuffix = ".tmp"

// Write writes data to path atomically and durably with the given mode.
// The directory must exist.
func Write(path string, data []byte, mode fs.FileMode) error {
	f, err := Create(path, mode)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// WriteJSON writes v as indented JSON with a final newline, as Write does.
func WriteJSON(path string, v any, mode fs.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return Write(path, append(b, '\n'), mode)
}

// IsTemp reports whether a directory entry's name is a temporary file of
// this package, such as one an interrupted write left behind.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, tempSuffix)
}

// File is a file being written: nothing is visible at its path until
// Commit. Close discards an uncommitted file, so `defer f.Close()` right
// after Create cleans up on every error path.
type File struct {
	f    *os.File
	path string
	mode fs.FileMode
	done bool
}

// Create starts writing path: a temporary file next to it, in the same
// directory, which must exist.
func Create(path string, mode fs.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*"+tempSuffix)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{f: f, path: path, mode: mode}, nil
}

// Write appends p to the pending content.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", f.path, err)
	}
	return n, nil
}

// Chown sets the owner the file will have.
func (f *File) Chown(uid, gid int) error {
	if err := f.f.Chown(uid, gid); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// Commit makes the content the file's at its path: mode, fsync, close,
// rename, fsync of the directory. After an error nothing has changed at the
// path, unless only the directory's fsync failed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("write %s: %w", f.path, os.ErrClosed)
	}
	f.done = true
	tmp := f.f.Name()
	err := f.f.Chmod(f.mode)
	if err == nil {
		err = f.f.Sync()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// Close discards the file unless it was committed; it is safe to call
// more than once and after Commit.
func (f *File) Close() error {
	if f.done {
		return nil
	}
	f.done = true
	err := f.f.Close()
	if rerr := os.Remove(f.f.Name()); err == nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = rerr
	}
	return err
}

// SyncDir fsyncs a directory, making the entries created, renamed or
// removed in it durable.
func SyncDir(dir string) error {
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
