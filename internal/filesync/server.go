package filesync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/guard"
	"github.com/scalepress/scalepress/internal/metrics"
	"github.com/scalepress/scalepress/internal/s3store"
	"github.com/scalepress/scalepress/internal/sitepath"
)

// Server is the files role: a Store behind the HTTP API.
//
//	GET  /v1/manifest[?at=N]  Manifest (current, or as of seq N)
//	GET  /v1/blobs/{hash}     blob content (Range, ETag); HEAD to test presence
//	PUT  /v1/blobs/{hash}     upload a blob (application/octet-stream); verified against its hash
//	POST /v1/changes          PushRequest (application/json) → PushResponse
//	GET  /v1/stream?since=N   changes after N as JSON lines, pushed as they commit
//	GET  /v1/status           Status
//	GET  /v1/seq?path=P       PathSeqResponse (read-your-writes for the edge)
//	GET  /v1/files/{path...}  current content of a path (ServeFile)
//	GET  /healthz             200 while the store is open
//
// Every request must name this server in its Host header (403 otherwise:
// DNS rebinding), and every request but /healthz must carry a bearer token
// issued with Config.Key (401 otherwise). The token's identity is the
// caller: "controller" and "node-…" may write, anyone else (the edges) only
// read (403); a push's origin must be the caller (403).
type Server struct {
	cfg    Config
	store  *Store
	logger *slog.Logger
	unlock func()

	stop      chan struct{} // closed when shutdown starts: streams end
	closeOnce sync.Once

	mu      sync.Mutex
	servers []*http.Server
	closed  bool
}

// NewServer validates cfg, locks cfg.Dir and opens the store: on the local
// directory backend (cfg.Dir/blobs for blobs, cfg.Dir/log and cfg.Dir/snap
// for the log and snapshots), or with cfg.S3 in the bucket, resuming from
// what it holds (cfg.Dir then only spools uploads of unknown length).
func NewServer(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "filesync")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("filesync: new server: %w", err)
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("filesync: new server: %w", err)
	}
	blobs, objs, err := openBackends(cfg, logger)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("filesync: new server: %w", err)
	}
	st, err := OpenStore(context.Background(), cfg, blobs, objs, logger)
	if err != nil {
		unlock()
		return nil, err
	}
	return &Server{cfg: cfg, store: st, logger: logger, unlock: unlock, stop: make(chan struct{})}, nil
}

// openBackends makes the store's backends: cfg.S3's bucket (checked:
// reachable, credentials accepted, conditional creates honoured), or the
// local directory.
func openBackends(cfg Config, logger *slog.Logger) (BlobStore, ObjectStore, error) {
	if cfg.S3 == nil {
		blobs, err := NewDirBlobStore(filepath.Join(cfg.Dir, "blobs"))
		if err != nil {
			return nil, nil, err
		}
		objs, err := NewDirObjectStore(cfg.Dir)
		if err != nil {
			return nil, nil, err
		}
		return blobs, objs, nil
	}
	c, err := s3store.New(*cfg.S3, logger)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*cfg.S3.Timeout)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		return nil, nil, err
	}
	if err := c.CheckConditional(ctx); err != nil {
		return nil, nil, err
	}
	blobs, err := NewS3BlobStore(c, filepath.Join(cfg.Dir, "spool"))
	if err != nil {
		return nil, nil, err
	}
	logger.Info("files store in object storage", "where", c.Where())
	return blobs, NewS3ObjectStore(c), nil
}

// Run listens on cfg.Addr and serves until ctx ends; see Serve.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("filesync: run: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the API on ln until ctx ends or Close is called. When ctx
// ends it drains: change streams end, other requests get ShutdownTimeout to
// finish, then the store is closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Request bodies and blob downloads get deadlines sized to what they
	// carry (transferTimeout); the change stream lives as long as it is
	// read, so the server sets no overall read or write timeout.
	hs := &http.Server{
		Handler:           s.handler(append(guard.AllowedHosts(s.cfg.Addr), guard.AllowedHosts(ln.Addr().String())...)),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	s.logger.Info("files serving", "addr", ln.Addr().String())

	gctx, stopGC := context.WithCancel(ctx)
	var gc sync.WaitGroup
	defer gc.Wait()
	defer stopGC()
	if s.cfg.GCInterval > 0 {
		gc.Go(func() { s.store.gcLoop(gctx) })
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("filesync: serve: %w", err)
	case <-ctx.Done():
	}
	s.closeOnce.Do(func() { close(s.stop) })
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close()
	}
	<-errc
	s.closeStore()
	return nil
}

func (s *Server) closeStore() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.store.Close()
	s.unlock()
}

func (s *Server) handler(hosts []string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+api.FilesPathManifest, s.auth(false, s.handleManifest))
	mux.Handle("GET "+api.FilesPathBlobs+"/{hash}", s.auth(false, s.handleGetBlob))
	mux.Handle("PUT "+api.FilesPathBlobs+"/{hash}", s.auth(true, s.handlePutBlob))
	mux.Handle("POST "+api.FilesPathChanges, s.auth(true, s.handlePush))
	mux.Handle("GET "+api.FilesPathStream, s.auth(false, s.handleStream))
	mux.Handle("GET "+api.FilesPathStatus, s.auth(false, s.handleStatus))
	mux.Handle("GET "+api.FilesPathSeq, s.auth(false, s.handleSeq))
	mux.Handle("GET "+api.FilesPathFiles+"/{path...}", s.auth(false, func(w http.ResponseWriter, r *http.Request, _ string) {
		s.ServeFile(w, r, r.PathValue("path"))
	}))
	mux.Handle("GET "+api.FilesPathMetrics, s.authMetrics(metrics.Handler(metrics.NewRegistry(newStoreCollector(s.store)))))
	mux.HandleFunc("GET "+api.FilesPathHealth, func(w http.ResponseWriter, r *http.Request) {
		if s.isClosed() {
			http.Error(w, "closed", http.StatusServiceUnavailable)
			return
		}
		if err := s.store.Fenced(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	return guard.Hosts(hosts, s.logger, mux)
}

// ControllerID is the identity the controller uses with the files API
// (seeding, status); its pushes have this origin.
const ControllerID = api.FilesControllerID

// CanWrite reports whether a caller may upload and push: the controller
// and the nodes ("node-…"); the edges and anyone else only read.
func CanWrite(id string) bool { return id == ControllerID || strings.HasPrefix(id, "node-") }

// auth wraps h with the bearer token check; h gets the caller's identity.
// A write route refuses callers that may only read, and every route the
// metrics scraper's token (api.FilesMetricsID), which reads metrics only.
func (s *Server) auth(write bool, h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := guard.Authenticate(s.cfg.Key, r)
		if err != nil {
			guard.Unauthorized(w, r, s.logger, "files API", err)
			return
		}
		if id == api.FilesMetricsID {
			guard.Refuse(w, r, s.logger, http.StatusForbidden, "%s %s: %q may only read %s", r.Method, r.URL.Path, id, api.FilesPathMetrics)
			return
		}
		if write && !CanWrite(id) {
			guard.Refuse(w, r, s.logger, http.StatusForbidden, "%s %s: %q may only read the files API", r.Method, r.URL.Path, id)
			return
		}
		h(w, r, id)
	})
}

// authMetrics wraps the metrics handler with the bearer token check: any
// files token may read them.
func (s *Server) authMetrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := guard.Authenticate(s.cfg.Key, r); err != nil {
			guard.Unauthorized(w, r, s.logger, "files API", err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bodySize is the announced size of r's body, or limit when unknown.
func bodySize(r *http.Request, limit int64) int64 {
	if r.ContentLength >= 0 {
		return min(r.ContentLength, limit)
	}
	return limit
}

// setDeadline gives the transfer of n bytes on r its deadline (read for
// a request body, write for a response).
func (s *Server) setDeadline(w http.ResponseWriter, n int64, read bool) {
	rc := http.NewResponseController(w)
	at := time.Now().Add(s.cfg.transferTimeout(n))
	if read {
		rc.SetReadDeadline(at)
	} else {
		rc.SetWriteDeadline(at)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// apiError is the body of every error response.
type apiError struct {
	Error string `json:"error"`
	Path  string `json:"path,omitempty"`
	Rule  string `json:"rule,omitempty"`
	// Reason is RejectError.Reason.
	Reason string `json:"reason,omitempty"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	body := apiError{Error: err.Error()}
	code := http.StatusInternalServerError
	var rej *RejectError
	switch {
	case errors.As(err, &rej):
		body.Path, body.Rule, body.Reason, code = rej.Path, rej.Rule, rej.Reason, http.StatusBadRequest
		if rej.TooLarge() {
			code = http.StatusRequestEntityTooLarge
		}
		s.logger.Warn("request refused", "status", code, "reason", err.Error(), "client", r.RemoteAddr, "method", r.Method, "url", r.URL.Path)
	case errors.Is(err, ErrQuota):
		// 507, not 413: the request is fine, the store is full. A client
		// keeps the change and retries (a 5xx) rather than dropping it.
		code = http.StatusInsufficientStorage
		s.logger.Warn("request refused", "status", code, "reason", err.Error(), "client", r.RemoteAddr, "method", r.Method, "url", r.URL.Path)
	case errors.Is(err, errCollecting):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, ErrFuture):
		code = http.StatusConflict
	case errors.Is(err, ErrBlobNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrClosed):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrFenced):
		// A 5xx: the node keeps its change queued for the role that
		// writes the log.
		code = http.StatusServiceUnavailable
		s.logger.Warn("push refused: fenced", "client", r.RemoteAddr, "err", err)
	default:
		s.logger.Error("request failed", "method", r.Method, "url", r.URL.Path, "err", err)
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func parseSeqParam(r *http.Request, name string) (uint64, bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, reject("", RuleMalformedRequest, "query parameter %s=%q is not a sequence number", name, v)
	}
	return n, true, nil
}

func (s *Server) handleManifest(w http.ResponseWriter, r *http.Request, _ string) {
	at, ok, err := parseSeqParam(r, api.ParamAt)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m := s.store.Manifest()
	if ok && at != m.Seq {
		if m, err = s.store.ManifestAt(r.Context(), at); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleGetBlob(w http.ResponseWriter, r *http.Request, id string) {
	hash := r.PathValue("hash")
	if r.Method == http.MethodHead && CanWrite(id) {
		// A writer asks before it commits a push naming the blob without
		// uploading it: keep it from the collector meanwhile.
		if ok, err := s.store.ClaimBlob(r.Context(), hash); err == nil && !ok {
			s.writeError(w, r, ErrBlobNotFound)
			return
		}
	}
	rc, size, err := s.openBlob(r, hash)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	s.setDeadline(w, size, false)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+hash+`"`)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", time.Time{}, rc)
}

// wholeOpener is a BlobStore that opens a blob and learns its size in one
// request (S3: a GET instead of a HEAD and a GET).
type wholeOpener interface {
	OpenWhole(ctx context.Context, hash string) (io.ReadSeekCloser, int64, error)
}

// openBlob opens a stored blob to answer r: in one request when the
// backend can and r reads the blob from its start (a plain GET, no Range,
// no condition that may answer without the body).
func (s *Server) openBlob(r *http.Request, hash string) (io.ReadSeekCloser, int64, error) {
	if wo, ok := s.store.blobs.(wholeOpener); ok && r.Method == http.MethodGet && wholeRead(r.Header) {
		return wo.OpenWhole(r.Context(), hash)
	}
	return s.store.OpenBlob(r.Context(), hash)
}

// wholeRead reports whether a GET with header h is answered with the whole
// body (what http.ServeContent may answer otherwise: a range, a 304, a 412).
func wholeRead(h http.Header) bool {
	for _, k := range []string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if h.Get(k) != "" {
			return false
		}
	}
	return true
}

// headBeforePut is the blob size from which an upload first asks the
// backend whether it has the blob (a HEAD) and is answered 200 without
// storing anything if so. Below it the blob is stored straight away: blobs
// are content-addressed, so a PUT of a blob the backend has stores nothing
// new (a conditional create, BlobStore.Put) and the HEAD would cost every
// new file a round trip to the bucket to spare a few duplicates the
// sending of bytes that take about as long. 256 KiB takes ~2 ms at
// 1 Gbit/s, ~5 ms at 400 Mbit/s: about one round trip to a bucket on
// another host. Above it a duplicate (a plugin's zip uploaded again, a
// media file re-uploaded) costs more than the HEAD, and the HEAD is a
// small part of a new large file's upload.
const headBeforePut = 256 << 10

func (s *Server) handlePutBlob(w http.ResponseWriter, r *http.Request, _ string) {
	if !guard.RequireType(w, r, s.logger, "application/octet-stream") {
		return
	}
	hash := r.PathValue("hash")
	if r.ContentLength > s.cfg.Rules.MaxFileSize {
		s.writeError(w, r, reject("", RuleTooLarge, "the blob is %d bytes, more than the limit of %d", r.ContentLength, s.cfg.Rules.MaxFileSize))
		return
	}
	if r.ContentLength < 0 || r.ContentLength >= headBeforePut {
		// Large (or of unknown length): one HEAD spares sending it to a
		// backend that has it.
		if ok, err := s.store.ClaimBlob(r.Context(), hash); err == nil && ok {
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	s.setDeadline(w, bodySize(r, s.cfg.Rules.MaxFileSize), true)
	_, existed, err := s.store.putBlob(r.Context(), hash, r.Body, r.ContentLength)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if existed {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// maxPushBody bounds the JSON of a push: a change is well under 8 KiB.
func (s *Server) maxPushBody() int64 { return int64(s.cfg.MaxChanges)*8<<10 + 4<<10 }

func (s *Server) handlePush(w http.ResponseWriter, r *http.Request, id string) {
	if !guard.RequireType(w, r, s.logger, "application/json") {
		return
	}
	s.setDeadline(w, bodySize(r, s.maxPushBody()), true)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxPushBody()))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = reject("", RuleRequestTooLarge, "the push body is larger than %d bytes; push fewer changes at once", mbe.Limit)
		}
		s.writeError(w, r, err)
		return
	}
	req, err := ParsePush(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Origin != id {
		guard.Refuse(w, r, s.logger, http.StatusForbidden, "POST %s: the push claims origin %q but the caller is %q", r.URL.Path, req.Origin, id)
		return
	}
	resp, err := s.store.Commit(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, _ string) {
	since, _, err := parseSeqParam(r, api.ParamSince)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	cs, notify, err := s.store.Changes(ctx, since, streamBatch)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(api.HeaderFilesSeq, strconv.FormatUint(s.store.Seq(), 10)) // the log's head when the stream starts
	w.WriteHeader(http.StatusOK)
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	enc := json.NewEncoder(w)
	for {
		rc.SetWriteDeadline(time.Now().Add(3 * s.cfg.Heartbeat))
		for _, c := range cs {
			if err := enc.Encode(c); err != nil {
				return
			}
			since = c.Seq
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if len(cs) == 0 {
			select {
			case <-notify:
			case <-heartbeat.C:
				if _, err := io.WriteString(w, "\n"); err != nil {
					return
				}
				continue
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			}
		}
		if cs, notify, err = s.store.Changes(ctx, since, streamBatch); err != nil {
			if !errors.Is(err, ErrClosed) && ctx.Err() == nil {
				s.logger.Warn("change stream ended", "since", since, "err", err)
			}
			return
		}
	}
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, _ string) {
	writeJSON(w, http.StatusOK, s.store.Status())
}

// PathSeqResponse is the body of GET /v1/seq.
type PathSeqResponse struct {
	Path string `json:"path"`
	// Seq is the sequence number a node must have applied (AppliedSeq) to
	// serve the path as it is now.
	Seq    uint64 `json:"seq"`
	Exists bool   `json:"exists"`
}

func (s *Server) handleSeq(w http.ResponseWriter, r *http.Request, _ string) {
	p := r.URL.Query().Get(api.ParamPath)
	if err := checkPathSyntax(p, hardMaxDepth); err != nil {
		s.writeError(w, r, err)
		return
	}
	seq, ok := s.store.PathSeq(p)
	writeJSON(w, http.StatusOK, PathSeqResponse{Path: p, Seq: seq, Exists: ok})
}

// ServeFile serves the current content of path p (relative to the docroot,
// e.g. "wp-content/uploads/2024/01/a.jpg") with a Content-Type from its
// extension (or sniffed), ETag = the quoted hash, Last-Modified = its
// mtime, and Range and conditional requests via http.ServeContent. A
// missing path or a directory is a 404.
func (s *Server) ServeFile(w http.ResponseWriter, r *http.Request, p string) {
	if checkPathSyntax(p, hardMaxDepth) != nil {
		http.NotFound(w, r)
		return
	}
	if sitepath.Denied(p) { // what no node serves (PHP source, dumps, dotfiles, backups)
		guard.Refuse(w, r, s.logger, http.StatusForbidden, "403 forbidden: %s is never served", p)
		return
	}
	e, ok := s.store.Lookup(p)
	if !ok || e.Dir {
		http.NotFound(w, r)
		return
	}
	rc, size, err := s.openBlob(r, e.Hash)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	s.setDeadline(w, size, false)
	w.Header().Set("ETag", `"`+e.Hash+`"`)
	w.Header().Set(api.HeaderFilesSeq, strconv.FormatUint(e.Seq, 10)) // the file's own seq
	http.ServeContent(w, r, path.Base(p), time.Unix(0, e.MTime), rc)
}

// streamBatch is how many changes a stream takes from the store at once; a
// client far behind reads the log from disk, a segment scan per batch.
const streamBatch = 4096
