package filesync

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// watcher watches every directory of a docroot that is not excluded:
// fsnotify watches one directory, so a directory that appears gets its own
// watch (and its content, which may predate the watch, is reported), and a
// directory that is moved or removed loses the watches of its subtree.
type watcher struct {
	fsw    *fsnotify.Watcher
	root   string // absolute docroot
	rules  pathRules
	logger *slog.Logger
	dirs   map[string]bool // watched directories, relative ("." is the docroot)
}

func newWatcher(root string, rules pathRules, logger *slog.Logger) (*watcher, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	// A large buffer rides out bursts (a core update writes thousands of
	// files) without an overflow and the full rescan that follows.
	fsw, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return nil, err
	}
	w := &watcher{fsw: fsw, root: abs, rules: rules, logger: logger, dirs: make(map[string]bool)}
	if err := w.addTree(".", nil); err != nil {
		fsw.Close()
		return nil, err
	}
	return w, nil
}

func (w *watcher) close() error { return w.fsw.Close() }

// rel turns an event's absolute name into a docroot-relative slash path;
// ok is false for the docroot itself and names outside it.
func (w *watcher) rel(name string) (string, bool) {
	r, err := filepath.Rel(w.root, name)
	if err != nil || r == "." || r == ".." || len(r) > 2 && r[:3] == ".."+string(filepath.Separator) {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// addTree watches dir and every directory below it that is not ignored, and
// reports every path below it to found (when not nil).
func (w *watcher) addTree(dir string, found func(string)) error {
	return filepath.WalkDir(filepath.Join(w.root, filepath.FromSlash(dir)), func(p string, d fs.DirEntry, err error) error {
		rel := "."
		if p != w.root {
			var ok bool
			if rel, ok = w.rel(p); !ok {
				return nil
			}
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone meanwhile; its removal is reported
			}
			return err
		}
		if rel != "." && w.rules.ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if found != nil && rel != dir {
			found(rel)
		}
		if !d.IsDir() {
			return nil
		}
		if err := w.fsw.Add(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		w.dirs[rel] = true
		return nil
	})
}

// dropTree forgets the watches of dir and everything below it.
func (w *watcher) dropTree(dir string) {
	for d := range w.dirs {
		if d == dir || isBelow(d, dir) {
			w.fsw.Remove(filepath.Join(w.root, filepath.FromSlash(d)))
			delete(w.dirs, d)
		}
	}
}

// event handles one fsnotify event and reports the paths that may have
// changed to dirty.
func (w *watcher) event(ev fsnotify.Event, dirty func(string)) {
	rel, ok := w.rel(ev.Name)
	if !ok || w.rules.ignored(rel) {
		return
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if w.dirs[rel] {
			w.dropTree(rel)
		}
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			if err := w.addTree(rel, dirty); err != nil {
				w.logger.Warn("cannot watch a new directory; its changes are found by the next rescan", "path", rel, "err", err)
			}
		}
	}
	dirty(rel)
}
