package controller

// The files role: the canonical site tree every node's docroot is kept
// identical to (see internal/filesync and docs/adr/0007-filesync.md).

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/preflight"
	"github.com/scalepress/scalepress/internal/s3store"
	"github.com/scalepress/scalepress/internal/token"
	"github.com/scalepress/scalepress/internal/wordpress"
)

// filesCheckInterval is how often the files role is checked.
const filesCheckInterval = time.Second

// filesRole is the running files role: its process, health and the change
// log's last sequence number, kept current by Run.
type filesRole struct {
	service
	api atomic.Pointer[api.Client] // the files role's API, where it runs now
	// host names the Nomad client running the role (files on Nomad, "" else).
	host  atomic.Pointer[string]
	nomad bool // run by Nomad: no process of ours (set before Run)
	seq   atomic.Uint64
	// onFenced reports, once, that the store refuses writes because
	// another files role appended to its log (an event).
	onFenced func(reason string)
	fenced   bool // reported; owned by Run
}

// storeSeq asks the files role for its change log's last sequence number.
func (f *filesRole) storeSeq(ctx context.Context) (uint64, error) {
	st, err := f.storeStatus(ctx)
	return st.Seq, err
}

func (f *filesRole) storeStatus(ctx context.Context) (api.FilesStoreStatus, error) {
	var st api.FilesStoreStatus
	if err := f.api.Load().Get(ctx, api.FilesPathStatus, &st); err != nil {
		return st, fmt.Errorf("files: %w", err)
	}
	return st, nil
}

// FilesStore reads and checks the bucket of an s3 files store before
// anything starts: the credential files (refused when others may read
// them), the CA file, and the bucket itself (reachable, existing, taking
// the credentials). A problem is a config error naming the field (exit 2).
// nil for a local store. `up --detach` calls it before it detaches, so that
// the exit status says so too.
func FilesStore(ctx context.Context, cfg config.Config, logger *slog.Logger) (*api.FilesS3Spec, error) {
	fs := cfg.Files.Store
	if !cfg.Files.Enabled || fs.Kind != "s3" {
		return nil, nil
	}
	bad := func(field string, err error) error {
		return fmt.Errorf("%w: %s: %v", config.ErrInvalid, field, err)
	}
	spec := &api.FilesS3Spec{Endpoint: fs.Endpoint, Bucket: fs.Bucket, Prefix: fs.Prefix, Region: fs.Region}
	var err error
	if spec.AccessKey, err = s3store.ReadSecretFile(fs.AccessKeyFile); err != nil {
		return nil, bad("files.store.access_key_file", err)
	}
	if spec.SecretKey, err = s3store.ReadSecretFile(fs.SecretKeyFile); err != nil {
		return nil, bad("files.store.secret_key_file", err)
	}
	if fs.CAFile != "" {
		pem, err := os.ReadFile(fs.CAFile)
		if err != nil {
			return nil, bad("files.store.ca_file", err)
		}
		spec.CA = string(pem)
	}
	s3cfg := s3store.DefaultConfig()
	s3cfg.Endpoint, s3cfg.Bucket, s3cfg.Prefix, s3cfg.Region = spec.Endpoint, spec.Bucket, spec.Prefix, spec.Region
	s3cfg.AccessKey, s3cfg.SecretKey, s3cfg.CAPEM = spec.AccessKey, spec.SecretKey, []byte(spec.CA)
	client, err := s3store.New(s3cfg, logger)
	if err != nil {
		return nil, bad("files.store", err)
	}
	switch err := client.Check(ctx); {
	case errors.Is(err, s3store.ErrUnreachable):
		return nil, bad("files.store.endpoint", err)
	case errors.Is(err, s3store.ErrNoBucket):
		return nil, bad("files.store.bucket", err)
	case errors.Is(err, s3store.ErrAccessDenied):
		return nil, bad("files.store.access_key_file", err)
	case err != nil:
		return nil, fmt.Errorf("files.store: %w", err)
	}
	return spec, nil
}

// FilesSeeder fills an empty files store at url from the site tree dir
// under rules, with tok (the files token of api.FilesControllerID), and
// returns how many changes it pushed. The cli passes filesync's: the
// controller reaches the files role only over the wire.
type FilesSeeder func(ctx context.Context, url, tok, dir string, rules api.FilesRules) (int, error)

// filesToken is the files token of identity id (the controller, a node, an
// edge; docs/adr/0009-trust-model.md).
func (c *Controller) filesToken(id string) string { return c.secrets.Key(token.Files).Issue(id) }

// filesRules are the sync rules of the files role and every node: the
// configured size limit, filesync's defaults for the rest.
func (c *Controller) filesRules() api.FilesRules {
	return api.FilesRules{MaxFileSize: int64(c.cfg.Files.MaxFileMB) << 20, Writable: c.filePolicy().Writable}
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
	spec := api.FilesSpec{Addr: c.cfg.Files.Addr, Dir: dir, Rules: c.filesRules(),
		Key: c.secrets.Key(token.Files).Hex(), QuotaBytes: int64(c.cfg.Files.QuotaMB) << 20, GCInterval: c.cfg.Files.GCInterval.String(),
		S3: c.filesS3}
	fr := c.files
	fr.onFenced = func(reason string) {
		c.event("files", "", "files store fenced, it refuses writes: %s; stop the other files role on this bucket and prefix, then restart this one", reason)
	}
	if c.onNomad(config.RoleFiles) {
		if err := c.startFilesNomad(ctx, spec); err != nil {
			return err
		}
		return c.seedStore(ctx, spec.Rules)
	}
	fr.setAddr(c.cfg.Files.Addr, c.filesToken(api.FilesControllerID))
	url := fr.api.Load().Base
	err := c.start(ctx, &fr.service, c.unprivileged(local.Role{
		Name: "files", Role: "files", Spec: spec, StopTimeout: 10 * time.Second,
		Ready: local.HTTPCheck(c.http, url+api.FilesPathHealth, "", 200), ReadyTimeout: 15 * time.Second,
	}, spec.Addr))
	if err != nil {
		return err
	}
	return c.seedStore(ctx, spec.Rules)
}

// filesURL is the files role's base URL now.
func (c *Controller) filesURL() string {
	if cl := c.files.api.Load(); cl != nil {
		return cl.Base
	}
	return "http://" + c.cfg.Files.Addr
}

// setAddr points the controller's files client at the role on addr.
func (f *filesRole) setAddr(addr, tok string) {
	f.api.Store(&api.Client{Base: "http://" + addr, HTTP: &http.Client{Timeout: 2 * time.Second}, Token: tok})
}

// seedStore seeds an empty store from the canonical site tree and records
// its sequence number.
func (c *Controller) seedStore(ctx context.Context, rules api.FilesRules) error {
	fr := c.files
	seq, err := fr.storeSeq(ctx)
	if err != nil {
		return err
	}
	if seq == 0 {
		if c.seedFiles == nil {
			return fmt.Errorf("files: the store is empty and nothing can seed it (controller.New got no FilesSeeder)")
		}
		t0 := time.Now()
		// The store holds the modes of the file policy, so that every
		// node's docroot gets them (and PHP can write uploads everywhere).
		if err := wordpress.SetPermissions(c.layout.Site(), c.filePolicy(), false, 0, 0); err != nil {
			return fmt.Errorf("files: %w", err)
		}
		cl := fr.api.Load()
		n, err := c.seedFiles(ctx, cl.Base, cl.Token, c.layout.Site(), rules)
		if err != nil {
			return fmt.Errorf("files: seed the store from %s: %w", c.layout.Site(), err)
		}
		if seq, err = fr.storeSeq(ctx); err != nil {
			return err
		}
		c.event("files", "", "files store seeded from %s: %d changes in %s", c.layout.Site(), n, time.Since(t0).Round(time.Millisecond))
	}
	fr.seq.Store(seq)
	return nil
}

// Run keeps the files role's health and sequence number current.
func (f *filesRole) Run(ctx context.Context) {
	t := time.NewTicker(filesCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.check(ctx)
	}
}

// check asks the files role once: its health (a fenced store is not
// healthy: it refuses writes), its sequence number, and reports a fence
// the first time it is seen.
func (f *filesRole) check(ctx context.Context) {
	st, err := f.storeStatus(ctx)
	f.healthy.Store(err == nil && st.Fenced == "")
	if err != nil {
		return
	}
	f.seq.Store(st.Seq)
	if st.Fenced != "" && !f.fenced && f.onFenced != nil {
		f.onFenced(st.Fenced)
	}
	f.fenced = st.Fenced != ""
}

// Head is the store's last change, asked now: the node group's hook.
func (f *filesRole) Head(ctx context.Context) (uint64, error) {
	return f.storeSeq(ctx)
}

// Status is the files part of the status document, nil when files is off.
func (f *filesRole) Status(cfg config.Files) *api.FilesStatus {
	if !cfg.Enabled || (f.proc.Load() == nil && !f.nomad) {
		return nil
	}
	st := &api.FilesStatus{Addr: cfg.Addr, State: "down", Seq: f.seq.Load(), PID: f.pid()}
	if f.nomad {
		if cl := f.api.Load(); cl != nil {
			st.Addr = strings.TrimPrefix(cl.Base, "http://")
		}
		if h := f.host.Load(); h != nil {
			st.Host = *h
		}
	}
	if f.healthy.Load() {
		st.State = "up"
	}
	return st
}

// edgeFilesAddr is the files address the edges fall back to for uploads.
func (c *Controller) edgeFilesAddr() string {
	if !c.cfg.Files.Enabled || c.onNomad(config.RoleFiles) {
		// A files role on Nomad moves between hosts: the edge has no
		// fallback then (an upload not yet on a node is a 404 until its
		// node has it).
		return ""
	}
	return c.cfg.Files.Addr
}

// edgeFilesToken is the files token of edge id, which may only read.
func (c *Controller) edgeFilesToken(id string) string {
	if !c.cfg.Files.Enabled {
		return ""
	}
	return c.filesToken(id)
}

// chownTree gives dir and everything below it to u, unless dir is u's already.
func chownTree(dir string, u preflight.User) error {
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
