package controller

// The files role: the canonical site tree every node's docroot is kept
// identical to (see internal/filesync and docs/adr/0007-filesync.md).

import (
	"context"
	"encoding/json"
	"fmt"
	iofs "io/fs"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/filesync"
)

const (
	// filesReadyTimeout bounds how long a new node may take to get every
	// file of the store before it goes in service.
	filesReadyTimeout = 60 * time.Second
	// filesCheckInterval is how often the files role is checked.
	filesCheckInterval = time.Second
)

// Files is the files role's store (blobs, change log, snapshots).
func (l Layout) Files() string { return filepath.Join(l.Dir, "files") }

// NodeFilesState is a node's filesync state directory, outside its docroot.
func (l Layout) NodeFilesState(id string) string { return filepath.Join(l.Node(id), "filesync") }

// filesState is the running files role.
type filesState struct {
	proc    procHandle
	healthy bool
	seq     uint64
}

// procHandle is the part of a supervised process status needs.
type procHandle interface{ Pid() int }

func (c *Controller) filesURL() string { return "http://" + c.cfg.Files.Addr }

// filesRules are the sync rules of the files role and every node.
func (c *Controller) filesRules() api.FilesRules {
	r := filesync.DefaultRules()
	return api.FilesRules{Exclude: r.Exclude, MaxFileSize: int64(c.cfg.Files.MaxFileMB) << 20, MaxDepth: r.MaxDepth}
}

func toFilesyncRules(r api.FilesRules) filesync.Rules {
	return filesync.Rules{Exclude: r.Exclude, MaxFileSize: r.MaxFileSize, MaxDepth: r.MaxDepth}
}

// startFiles starts the files role when files is enabled, waits until it
// answers, and seeds an empty store from the canonical site tree (DIR/site),
// so that every node bootstraps its docroot from a store that holds the
// whole site.
func (c *Controller) startFiles(ctx context.Context) error {
	if !c.cfg.Files.Enabled {
		return nil
	}
	dir := c.layout.Files()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if c.asRoot {
		// The files role runs as the role user and owns its store; a store
		// written by an older version (as root) is handed over once.
		if err := chownTree(dir, c.roleUser); err != nil {
			return fmt.Errorf("files: %w", err)
		}
	}
	spec := api.FilesSpec{Addr: c.cfg.Files.Addr, Dir: dir, Rules: c.filesRules()}
	s, err := c.roleSpec("files", "files", spec)
	if err != nil {
		return err
	}
	s.StopTimeout = 10 * time.Second
	p, err := c.sup.Start(s)
	if err != nil {
		return err
	}
	fs := &filesState{proc: p}
	c.mu.Lock()
	c.files = fs
	c.mu.Unlock()
	if err := waitFor(ctx, "files", 15*time.Second, p, c.layout.Log("files"), c.httpCheck(c.filesURL()+"/healthz", "", 200)); err != nil {
		return err
	}
	client := filesync.NewClient(c.filesURL(), nil)
	st, err := client.Status(ctx)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if st.Seq == 0 {
		t0 := time.Now()
		n, err := filesync.Seed(ctx, client, c.layout.Site(), toFilesyncRules(spec.Rules))
		if err != nil {
			return fmt.Errorf("files: seed the store from %s: %w", c.layout.Site(), err)
		}
		if st, err = client.Status(ctx); err != nil {
			return fmt.Errorf("files: %w", err)
		}
		c.event("files", "", "files store seeded from %s: %d changes in %s", c.layout.Site(), n, time.Since(t0).Round(time.Millisecond))
	}
	c.mu.Lock()
	fs.healthy, fs.seq = true, st.Seq
	c.mu.Unlock()
	return nil
}

// filesLoop keeps the files role's health and sequence number current.
func (c *Controller) filesLoop(ctx context.Context) {
	c.mu.Lock()
	fs := c.files
	c.mu.Unlock()
	if fs == nil {
		return
	}
	client := filesync.NewClient(c.filesURL(), &http.Client{Timeout: 2 * time.Second})
	t := time.NewTicker(filesCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := client.Status(ctx)
		c.mu.Lock()
		fs.healthy = err == nil
		if err == nil {
			fs.seq = st.Seq
		}
		c.mu.Unlock()
	}
}

// filesStatusLocked is the status of the files role, nil when files is off.
func (c *Controller) filesStatusLocked() *api.FilesStatus {
	if !c.cfg.Files.Enabled || c.files == nil {
		return nil
	}
	st := &api.FilesStatus{Addr: c.cfg.Files.Addr, State: "down", Seq: c.files.seq, PID: c.files.proc.Pid()}
	if c.files.healthy {
		st.State = "up"
	}
	return st
}

// nodeFilesSpec fills in the file-sync part of a node's spec and prepares
// its state directory, owned by the PHP user that runs its filesync agent.
func (c *Controller) nodeFilesSpec(spec *api.NodeSpec) error {
	if !c.cfg.Files.Enabled {
		return nil
	}
	state := c.layout.NodeFilesState(spec.ID)
	if err := os.MkdirAll(state, 0o755); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if c.asRoot {
		if err := os.Chown(state, c.phpUser.UID, c.phpUser.GID); err != nil {
			return fmt.Errorf("files: %w", err)
		}
		// The filesync agent runs as the PHP user and applies every change
		// of the tree, core files included: the docroot is the PHP user's,
		// but for the node-local wp-config.php (root, readable by the group).
		err := filepath.WalkDir(spec.Docroot, func(p string, d iofs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p == filepath.Join(spec.Docroot, "wp-config.php") {
				return nil
			}
			return os.Lchown(p, c.phpUser.UID, c.phpUser.GID)
		})
		if err != nil {
			return fmt.Errorf("files: chown docroot: %w", err)
		}
	}
	r := c.filesRules()
	spec.Files, spec.FilesState, spec.FilesRules = c.cfg.Files.Addr, state, &r
	return nil
}

// waitNodeFiles waits until a node's docroot holds every change the store
// had when the wait began: the node goes in service with every file.
func (c *Controller) waitNodeFiles(ctx context.Context, ns *nodeState) error {
	if !c.cfg.Files.Enabled {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, filesReadyTimeout)
	defer cancel()
	client := filesync.NewClient(c.filesURL(), &http.Client{Timeout: 2 * time.Second})
	var head uint64
	haveHead := false
	var last error
	for {
		if !haveHead {
			if st, err := client.Status(ctx); err == nil {
				head, haveHead = st.Seq, true
			} else {
				last = fmt.Errorf("files: %w", err)
			}
		}
		if haveHead {
			ready, seq, err := c.nodeFilesSeq(ctx, ns.addr)
			switch {
			case err != nil:
				last = err
			case !ready:
				last = fmt.Errorf("docroot not bootstrapped yet")
			case seq >= head:
				return nil
			default:
				last = fmt.Errorf("docroot at files seq %d of %d", seq, head)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("files not in sync after %s: %v (log: %s)", filesReadyTimeout, last, c.layout.Log(ns.id+"-filesync"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// nodeFilesSeq reads files_ready and files_seq from a node's status.
func (c *Controller) nodeFilesSeq(ctx context.Context, addr string) (bool, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/_scalepress/status", nil)
	if err != nil {
		return false, 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, 0, err
	}
	defer resp.Body.Close()
	var st struct {
		FilesReady bool   `json:"files_ready"`
		FilesSeq   uint64 `json:"files_seq"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return false, 0, err
	}
	return st.FilesReady, st.FilesSeq, nil
}

// edgeFilesAddr is the files address the edges fall back to for uploads.
func (c *Controller) edgeFilesAddr() string {
	if !c.cfg.Files.Enabled {
		return ""
	}
	return c.cfg.Files.Addr
}

// chownTree gives dir and everything below it to u, unless dir is u's already.
func chownTree(dir string, u serviceUser) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == u.UID && int(st.Gid) == u.GID {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u.UID, u.GID)
	})
}
