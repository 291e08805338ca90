package cli

import (
	"github.com/scalepress/scalepress/internal/fileperm"

	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/dbrouter"
	"github.com/scalepress/scalepress/internal/edge"
	"github.com/scalepress/scalepress/internal/filesync"
	"github.com/scalepress/scalepress/internal/geodns"
	"github.com/scalepress/scalepress/internal/node"
	"github.com/scalepress/scalepress/internal/preflight"
	"github.com/scalepress/scalepress/internal/s3store"
	"github.com/scalepress/scalepress/internal/token"
)

func roleSpec(name string, args []string, v any) error {
	fs := newFlags(name)
	spec := fs.String("spec", "", "role spec (JSON) written by the controller")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *spec == "" {
		return errUsagef("--spec is required")
	}
	return api.ReadSpec(*spec, v)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runNode(args []string) error {
	var spec api.NodeSpec
	if err := roleSpec("node", args, &spec); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	return node.Run(ctx, spec, newLogger(os.Stderr, spec.ID))
}

// runEdge serves the site in one region (the edge role).
func runEdge(args []string) error {
	fs := newFlags("edge")
	specPath := fs.String("spec", "", "role spec (JSON) written by the controller")
	addr := fs.String("addr", "", "IP:port to serve on instead of the spec's (a Nomad allocation's)")
	as := fs.String("user", "", "started as root (a Nomad task): run as this user once the spec is read")
	keep := fs.String("keep", "", "file the node set is kept in across restarts (a Nomad allocation's)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *specPath == "" {
		return errUsagef("--spec is required")
	}
	var spec api.EdgeSpec
	if err := api.ReadSpec(*specPath, &spec); err != nil {
		return err
	}
	if *addr != "" {
		spec.Addr = *addr
	}
	// Opened before the privileges are dropped: the allocation's directory
	// is root's.
	var kept *os.File
	if *keep != "" {
		f, err := os.OpenFile(*keep, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("edge: --keep: %w", err)
		}
		defer f.Close()
		kept = f
	}
	// Certificates rendered by Nomad beside the spec (names, not paths:
	// docs/adr/0033-tls-for-edges-on-nomad.md) are read from there.
	if err := edgeCertDir(*specPath, spec.TLS, *as); err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	if *as != "" && os.Geteuid() == 0 {
		// The edge keeps nothing else on disk (its cache is memory).
		d, err := dropPrivileges(*as)
		if err != nil {
			return fmt.Errorf("edge: %w", err)
		}
		os.Remove(d)
	}
	ctx, cancel := signalContext()
	defer cancel()
	e, err := edge.New(spec, newLogger(os.Stderr, spec.ID))
	if err != nil {
		return err
	}
	if kept != nil {
		e.KeepUpstreams(kept)
	}
	return e.Run(ctx)
}

// edgeCertDir prepares certificate files an edge on Nomad finds beside its
// spec (the task's secrets/, rendered from its job's variable, root's and
// 0600): the edge runs in that directory, so that it reads them by name
// without traversing the allocation's directories above (which its user
// may not), and when it is to drop root for user as, the files become
// that user's. Nomad renders a renewed certificate over the same name
// keeping the file's owner, so the edge reloads it as it reloads any
// certificate file. Nothing to do when every certificate is a path.
func edgeCertDir(specPath string, ts *api.TLSSpec, as string) error {
	if ts == nil {
		return nil
	}
	var names []string
	for _, c := range ts.Certificates {
		for _, f := range []string{c.CertFile, c.KeyFile} {
			if !filepath.IsAbs(f) {
				if !filepath.IsLocal(f) || strings.ContainsRune(f, filepath.Separator) {
					return fmt.Errorf("tls certificate %q: want an absolute path or a file name beside the spec", f)
				}
				names = append(names, f)
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	dir, err := filepath.Abs(filepath.Dir(specPath))
	if err != nil {
		return err
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("certificates beside the spec: %w", err)
	}
	if as == "" || os.Geteuid() != 0 {
		return nil
	}
	u, err := preflight.LookupUser(as)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Chown(n, u.UID, u.GID); err != nil {
			return fmt.Errorf("certificates beside the spec: %w", err)
		}
	}
	return nil
}

func runDBRouter(args []string) error {
	var spec api.RouterSpec
	if err := roleSpec("dbrouter", args, &spec); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	cfg := dbrouter.ConfigFromSpec(spec)
	r, err := dbrouter.New(cfg, newLogger(os.Stderr, "dbrouter"))
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// runDNS serves the zone. Its spec is a geodns.Config as JSON (durations in
// nanoseconds), written whole by the controller from the dns section.
func runDNS(args []string) error {
	fs := newFlags("dns")
	specPath := fs.String("spec", "", "role spec (JSON) written by the controller")
	addr := fs.String("addr", "", "IP:port to serve on instead of the spec's (a Nomad allocation's)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *specPath == "" {
		return errUsagef("--spec is required")
	}
	var spec geodns.Config
	if err := api.ReadSpec(*specPath, &spec); err != nil {
		return err
	}
	if *addr != "" {
		spec.Addr = *addr
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := geodns.New(spec, newLogger(os.Stderr, "dns"))
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func filesRules(r api.FilesRules) filesync.Rules {
	rules := filesync.DefaultRules()
	if r.Exclude != nil {
		rules.Exclude = r.Exclude
	}
	if r.MaxFileSize > 0 {
		rules.MaxFileSize = r.MaxFileSize
	}
	if r.MaxDepth > 0 {
		rules.MaxDepth = r.MaxDepth
	}
	rules.Perms = fileperm.Policy{Writable: r.Writable}
	return rules
}

// seedFiles fills an empty files store from the site tree (the controller's
// controller.FilesSeeder).
func seedFiles(ctx context.Context, url, tok, dir string, rules api.FilesRules) (int, error) {
	return filesync.Seed(ctx, filesync.NewClient(url, tok, nil), dir, filesRules(rules))
}

// runFiles serves the canonical site tree (the files role).
func runFiles(args []string) error {
	fs := newFlags("files")
	specPath := fs.String("spec", "", "role spec (JSON) written by the controller")
	addr := fs.String("addr", "", "IP:port to serve on instead of the spec's (a Nomad allocation's)")
	dir := fs.String("dir", "", "directory for the lock and the spool instead of the spec's (a Nomad allocation's)")
	as := fs.String("user", "", "started as root (a Nomad task): run as this user once the spec is read")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *specPath == "" {
		return errUsagef("--spec is required")
	}
	var spec api.FilesSpec
	if err := api.ReadSpec(*specPath, &spec); err != nil {
		return err
	}
	if *addr != "" {
		spec.Addr = *addr
	}
	if *dir != "" {
		spec.Dir = *dir
	}
	if *as != "" && os.Geteuid() == 0 {
		// The allocation's directory may sit below a data_dir the user
		// cannot traverse: the role keeps its lock and spool (transient:
		// the store is the bucket) in a private directory of its own.
		d, err := dropPrivileges(*as)
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		defer os.RemoveAll(d)
		spec.Dir = d
	}
	ctx, cancel := signalContext()
	defer cancel()
	cfg := filesync.DefaultConfig()
	cfg.Addr, cfg.Dir, cfg.Rules = spec.Addr, spec.Dir, filesRules(spec.Rules)
	cfg.MaxRequestSize = max(cfg.MaxRequestSize, cfg.Rules.MaxFileSize)
	cfg.QuotaBytes = spec.QuotaBytes
	key, err := token.ParseKey(spec.Key)
	if err != nil {
		return fmt.Errorf("files: spec key: %w", err)
	}
	cfg.Key = key
	if b := spec.S3; b != nil {
		s3 := s3store.DefaultConfig()
		s3.Endpoint, s3.Bucket, s3.Prefix, s3.Region = b.Endpoint, b.Bucket, b.Prefix, b.Region
		s3.AccessKey, s3.SecretKey, s3.CAPEM = b.AccessKey, b.SecretKey, []byte(b.CA)
		cfg.S3 = &s3
	}
	if spec.GCInterval != "" {
		if cfg.GCInterval, err = time.ParseDuration(spec.GCInterval); err != nil {
			return fmt.Errorf("files: spec gc_interval: %w", err)
		}
	}
	s, err := filesync.NewServer(cfg, newLogger(os.Stderr, "files"))
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// runFilesync keeps a node's docroot in sync with the files role. The node
// agent starts it as the PHP user, so that what it writes is the site's.
func runFilesync(args []string) error {
	var spec api.FilesyncSpec
	if err := roleSpec("filesync", args, &spec); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	logger := newLogger(os.Stderr, spec.NodeID+"-filesync")
	cfg := filesync.DefaultAgentConfig()
	cfg.Server, cfg.NodeID, cfg.Docroot, cfg.StateDir = spec.Server, spec.NodeID, spec.Docroot, spec.StateDir
	cfg.ServerFile = spec.ServerFile
	cfg.Token = spec.Token
	cfg.Rules = filesRules(spec.Rules)
	cfg.LinkPool = spec.LinkPool
	a, err := filesync.NewAgent(cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	err = a.Run(ctx)
	if !errors.Is(err, filesync.ErrNotBootstrapped) {
		return err
	}
	// A new docroot: make it identical to the store, retrying while the
	// files role is unreachable; the node is not in service before that.
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := a.Bootstrap(ctx)
		if err == nil {
			break
		}
		logger.Warn("bootstrap failed; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
	return a.Run(ctx)
}

// dropPrivileges runs this process as name, without supplementary groups,
// and returns a new private directory (0700, name's) under the temporary
// directory: a role a scheduler starts as root reads its spec (root's,
// 0600) first, then drops root for good (docs/adr/0009-trust-model.md,
// least privilege).
func dropPrivileges(name string) (string, error) {
	u, err := preflight.LookupUser(name)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "scalepress-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("drop privileges: %w", err)
	}
	if err := os.Chown(dir, u.UID, u.GID); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("drop privileges: %w", err)
	}
	if err := syscall.Setgroups(nil); err != nil {
		return dir, fmt.Errorf("drop privileges: setgroups: %w", err)
	}
	if err := syscall.Setgid(u.GID); err != nil {
		return dir, fmt.Errorf("drop privileges: setgid: %w", err)
	}
	if err := syscall.Setuid(u.UID); err != nil {
		return dir, fmt.Errorf("drop privileges: setuid: %w", err)
	}
	return dir, nil
}
