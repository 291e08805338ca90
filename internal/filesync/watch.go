package filesync

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

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
	// errs has fsnotify's errors. A goroutine of the watcher drains
	// fsw.Errors into it at once: fsnotify sends some errors while it holds
	// the lock that Add and Remove take, so an Add made while nobody reads
	// fsw.Errors would wait forever. One pending error is enough (it asks
	// for a rescan); more are dropped.
	errs    chan error
	drained chan struct{}

	// mu guards dirs: the watch loop and the applier of a unit (which
	// rewatches the unit around its swap) both change the watches.
	mu   sync.Mutex
	dirs map[string]bool // watched directories, relative ("." is the docroot)
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
	w := &watcher{fsw: fsw, root: abs, rules: rules, logger: logger, dirs: make(map[string]bool),
		errs: make(chan error, 1), drained: make(chan struct{})}
	go func() {
		defer close(w.drained)
		for err := range fsw.Errors {
			select {
			case w.errs <- err:
			default:
			}
		}
	}()
	if err := w.watchAll(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *watcher) close() error {
	err := w.fsw.Close()
	<-w.drained
	return err
}

// watchAll (re)watches every directory of the docroot.
func (w *watcher) watchAll() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addTree(".", nil)
}

// unwatch drops the watches of dir and below, before the applier moves
// it away: fsnotify would otherwise, on the move, remove a watch by a name
// that by then is the new tree's.
func (w *watcher) unwatch(dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropTree(dir)
}

// rewatch watches dir and below, after the applier put a new tree there.
func (w *watcher) rewatch(dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropTree(dir)
	if err := w.addTree(dir, nil); err != nil {
		w.logger.Warn("cannot watch a swapped-in directory; its changes are found by the next rescan", "path", dir, "err", err)
	}
}

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
	w.mu.Lock()
	defer w.mu.Unlock()
	moved := ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
	if moved && w.dirs[rel] {
		w.dropTree(rel)
	}
	// A directory is still there after it was moved or removed when
	// another took its place: the agent swapped a unit in (stage.go), and
	// the events of the two trees may come in either order, under the old
	// tree's names. Whatever is at the name now is watched.
	if ev.Has(fsnotify.Create) || moved {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			if err := w.addTree(rel, dirty); err != nil {
				w.logger.Warn("cannot watch a new directory; its changes are found by the next rescan", "path", rel, "err", err)
			}
		}
	}
	dirty(rel)
}
