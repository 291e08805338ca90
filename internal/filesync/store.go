package filesync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// ErrClosed is returned by a Store, Server or Agent used after Close.
var ErrClosed = errors.New("filesync: closed")

// ErrFuture means a sequence number past the end of the log was asked for.
var ErrFuture = errors.New("sequence number is past the end of the log")

// ErrQuota means an upload would take the blobs over Config.QuotaBytes.
var ErrQuota = errors.New("the files store is full")

// errCollecting means a blob is being removed by garbage collection right
// now; an upload of it is refused until it is gone, and then succeeds.
var errCollecting = errors.New("the blob is being removed as unreferenced; upload it again in a moment")

// tailSize is how many recent records a Store keeps in memory for streams;
// older ones are read from the log.
const tailSize = 4096

// Store is the canonical site tree of the files role: blobs, the change log,
// snapshots, and the current manifest in memory. It is safe for concurrent
// use.
type Store struct {
	blobs  BlobStore
	objs   ObjectStore
	cfg    Config
	rules  pathRules
	logger *slog.Logger

	// commitMu serialises commits: the log's appends and what a commit
	// decides from the tree. A commit holds mu only while it decides and
	// while it applies, not across the log's write (a round trip to the
	// bucket), so that blob uploads (PutBlob, ClaimBlob, which take mu)
	// go on while a push commits.
	commitMu sync.Mutex

	mu     sync.Mutex
	log    *changeLog
	tree   *tree
	seq    uint64   // last sequence number in the log
	base   uint64   // sequence number of the snapshot the store was opened from
	tail   []Change // the last records, ascending
	snap   uint64   // sequence number of the newest snapshot
	notify chan struct{}
	closed bool
	broken error // set when the log could not be written nor repaired
	fenced error // set when another files role wrote to the log (ErrFenced)

	// Blob accounting and garbage collection (gc.go), under mu.
	used     int64                 // bytes of stored blobs
	reserved int64                 // bytes of uploads in progress
	claims   map[string]time.Time  // blobs confirmed present to a writer, by when
	stored   map[string]storedBlob // blobs this store's own PUT stored, by when (gc.go)
	pins     map[string]int        // blobs a commit in progress names
	dropping map[string]bool       // blobs the collector is removing
	gcPrune  int                   // len(claims) at which old claims are pruned

	gcMu sync.Mutex // one collection at a time
	now  func() time.Time
	// testHookGC runs between choosing blobs and removing them;
	// testHookCommit between checking a push's blobs and appending it.
	testHookGC, testHookCommit func()
}

// OpenStore opens a store on the given backends: it loads the newest
// snapshot, replays the log after it (dropping a torn last record) and is
// then ready for commits.
func OpenStore(ctx context.Context, cfg Config, blobs BlobStore, objs ObjectStore, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rules, err := compileRules(cfg.Rules)
	if err != nil {
		return nil, fmt.Errorf("filesync: open store: %w", err)
	}
	s := &Store{blobs: blobs, objs: objs, cfg: cfg, rules: rules, logger: logger, notify: make(chan struct{}),
		claims: make(map[string]time.Time), stored: make(map[string]storedBlob), pins: make(map[string]int), dropping: make(map[string]bool),
		gcPrune: minClaimPrune, now: time.Now}
	if err := blobs.List(ctx, func(b BlobInfo) error { s.used += b.Size; return nil }); err != nil {
		return nil, fmt.Errorf("filesync: open store: %w", err)
	}
	m, err := s.latestSnapshot(ctx, ^uint64(0))
	if err != nil {
		return nil, fmt.Errorf("filesync: open store: %w", err)
	}
	s.tree = treeFromEntries(m.Entries, true)
	s.base, s.snap, s.seq = m.Seq, m.Seq, m.Seq
	l, last, err := openLog(ctx, objs, cfg.SegmentSize, logger, m.Seq, func(c Change) {
		s.tree.apply(c)
		s.pushTail(c)
	})
	if err != nil {
		return nil, err
	}
	if last < m.Seq {
		// The snapshot is ahead of the log; later records start a new
		// segment at m.Seq+1.
		l.activeSize = -1
	}
	s.log, s.seq = l, max(last, m.Seq)
	logger.Info("files store open", "seq", s.seq, "snapshot", m.Seq, "files", s.tree.files, "dirs", s.tree.dirs, "blob_bytes", s.used)
	return s, nil
}

// latestSnapshot loads the newest snapshot at or below at; an empty
// manifest at 0 if there is none. A snapshot that does not decode is
// skipped (logged): snapshots are written atomically, so that is damage
// from outside, and an older one plus the log still give the state.
func (s *Store) latestSnapshot(ctx context.Context, at uint64) (Manifest, error) {
	names, err := s.objs.List(ctx, "snap/")
	if err != nil {
		return Manifest{}, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		seq, ok := parseSeqName(names[i], "snap/", ".json")
		if !ok || seq > at {
			continue
		}
		rc, err := s.objs.Open(ctx, names[i])
		if err != nil {
			return Manifest{}, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return Manifest{}, err
		}
		m, err := decodeManifest(data)
		if err == nil && m.Seq != seq {
			err = fmt.Errorf("holds seq %d", m.Seq)
		}
		if err != nil {
			s.logger.Warn("skipping a damaged snapshot", "snapshot", names[i], "err", err)
			continue
		}
		return m, nil
	}
	return Manifest{}, nil
}

func (s *Store) pushTail(c Change) {
	if len(s.tail) >= 2*tailSize {
		s.tail = append(s.tail[:0], s.tail[len(s.tail)-tailSize:]...)
	}
	s.tail = append(s.tail, c)
}

// Close stops the store: streams waiting for changes end, later calls fail
// with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.notify)
	}
	return nil
}

// PutBlob stores an uploaded blob of size bytes (-1: unknown) after
// checking it against its hash, the size limit and the quota. Over the
// quota it fails with ErrQuota before reading anything. A stored blob is
// claimed: garbage collection keeps it for Config.GCGrace.
func (s *Store) PutBlob(ctx context.Context, hash string, r io.Reader, size int64) (int64, error) {
	n, _, err := s.putBlob(ctx, hash, r, size)
	return n, err
}

// putBlob is PutBlob; existed reports that the blob was stored already
// (nothing was written). It asks the backend nothing before the upload:
// the upload itself tells whether the blob was there (BlobStore.Put), so
// a new blob costs one request. Only when the blob would take the store
// over its quota does it ask first, since a blob already stored takes no
// more room.
func (s *Store) putBlob(ctx context.Context, hash string, r io.Reader, size int64) (n int64, existed bool, err error) {
	if !validHash(hash) {
		return 0, false, reject("", RuleHash, "blob name %q is not a lowercase hex SHA-256", hash)
	}
	limit := s.cfg.Rules.MaxFileSize
	if size > limit {
		return 0, false, reject("", RuleTooLarge, "the blob is %d bytes, more than the limit of %d", size, limit)
	}
	// Claim first: once claimed, a stored blob stays stored.
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return 0, false, ErrClosed
	case s.dropping[hash]:
		s.mu.Unlock()
		return 0, false, errCollecting
	}
	s.claimLocked(hash)
	s.mu.Unlock()
	need := size // reserved as if new: Put says whether it was
	if need < 0 {
		need = limit
	}
	over := func() bool { q := s.cfg.QuotaBytes; return q > 0 && s.used+s.reserved+need > q }
	s.mu.Lock()
	if over() {
		s.mu.Unlock()
		if had, _ := s.blobs.Has(ctx, hash); had {
			need = 0 // stored already: takes no more room
		}
		s.mu.Lock()
	}
	if over() {
		used := s.used + s.reserved
		s.mu.Unlock()
		return 0, false, fmt.Errorf("%w: a blob of %d bytes would take it to %d bytes, over its quota of %d (files.quota_mb); raise the quota or remove files", ErrQuota, need, used+need, s.cfg.QuotaBytes)
	}
	s.reserved += need
	s.mu.Unlock()

	lr := &limitedReader{r: r, n: limit,
		err: reject("", RuleTooLarge, "the blob is larger than the limit of %d bytes", limit)}
	n, existed, err = s.blobs.Put(ctx, hash, lr, size)
	s.mu.Lock()
	s.reserved -= need
	if err == nil && !existed {
		s.used += n
		if !s.dropping[hash] {
			// Only a size this store's own PUT stored is trusted at
			// commit; a blob found there was not read back.
			s.stored[hash] = storedBlob{size: n, at: s.now()}
		}
	}
	s.mu.Unlock()
	if errors.Is(err, ErrHashMismatch) {
		return n, false, reject("", RuleHash, "the uploaded content does not hash to %s", hash)
	}
	return n, existed, err
}

// Commit validates a push and appends its changes to the log, all or
// nothing. Every change must pass the Rules, and the blob of every put must
// already be stored with the announced size. Changes that match the current
// state are no-ops and get no record. A log record is written only after
// its blob is durable.
func (s *Store) Commit(ctx context.Context, req PushRequest) (PushResponse, error) {
	if len(req.Changes) > s.cfg.MaxChanges {
		return PushResponse{}, reject("", RuleTooManyChanges, "the push has %d changes, more than %d", len(req.Changes), s.cfg.MaxChanges)
	}
	if err := checkUnit(req); err != nil {
		return PushResponse{}, err
	}
	if req.Unit != "" {
		if err := s.rules.checkPath(req.Unit); err != nil {
			return PushResponse{}, err
		}
	}
	var total int64
	for _, c := range req.Changes {
		if err := c.check(false); err != nil {
			return PushResponse{}, err
		}
		if err := s.rules.checkPath(c.Path); err != nil {
			return PushResponse{}, err
		}
		if c.Op != OpPut {
			continue
		}
		if c.Size > s.cfg.Rules.MaxFileSize {
			return PushResponse{}, reject(c.Path, RuleTooLarge, "the file is %d bytes, more than the limit of %d", c.Size, s.cfg.Rules.MaxFileSize)
		}
		if total += c.Size; total > s.cfg.MaxRequestSize {
			return PushResponse{}, reject(c.Path, RuleRequestTooLarge, "the push adds up to more than %d bytes; push fewer files at once", s.cfg.MaxRequestSize)
		}
	}
	// Pin the blobs: garbage collection leaves them alone until the
	// records naming them are in the tree (or the push failed).
	unpin, err := s.pin(req.Changes)
	if err != nil {
		return PushResponse{}, err
	}
	defer unpin()
	known := s.storedSizes(req.Changes)
	for _, c := range req.Changes {
		if size, ok := known[c.Hash]; c.Op != OpPut || ok && size == c.Size {
			// A blob this store stored itself, with this size, since
			// the collector last looked at it is durable and pinned:
			// no HEAD for it.
			continue
		}
		rc, size, err := s.blobs.Get(ctx, c.Hash)
		if errors.Is(err, ErrBlobNotFound) {
			return PushResponse{}, reject(c.Path, RuleBlob, "blob %s is not stored; upload it first with PUT /v1/blobs/%s", c.Hash, c.Hash)
		}
		if err != nil {
			return PushResponse{}, fmt.Errorf("filesync: commit: %w", err)
		}
		rc.Close()
		if size != c.Size {
			return PushResponse{}, reject(c.Path, RuleSize, "size %d differs from the stored blob's %d", c.Size, size)
		}
	}
	if s.testHookCommit != nil {
		s.testHookCommit()
	}

	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return PushResponse{}, ErrClosed
	case s.broken != nil:
		return PushResponse{}, fmt.Errorf("filesync: commit: %w; restart the files role", s.broken)
	case s.fenced != nil:
		return PushResponse{}, fmt.Errorf("filesync: commit: %w", s.fenced)
	}
	if err := s.settleLocked(ctx); err != nil {
		return PushResponse{}, err
	}
	resp := PushResponse{Results: make([]PushResult, len(req.Changes))}
	var recs []Change
	if req.Unit != "" {
		recs, resp.Results = s.tree.unitGroup(req.Unit, req.Origin, req.Changes, s.seq+1, s.base)
	}
	touched := make(map[string]bool)    // paths changed earlier in this push
	underTouch := make(map[string]bool) // parents of those
	next := s.seq + 1
	for i, c := range req.Changes {
		if req.Unit != "" {
			break // the group above
		}
		related := touched[c.Path] || underTouch[c.Path]
		for _, d := range parentDirs(c.Path) {
			related = related || touched[d]
		}
		if !related {
			if noop, seq := s.tree.noop(c, s.base); noop {
				resp.Results[i] = PushResult{Seq: seq, Noop: true}
				continue
			}
		}
		c.Seq = next
		next++
		recs = append(recs, c)
		resp.Results[i] = PushResult{Seq: c.Seq}
		touched[c.Path] = true
		for _, d := range parentDirs(c.Path) {
			underTouch[d] = true
		}
	}
	if len(recs) > 0 {
		// The records are decided (commitMu keeps every other commit out
		// until they are applied); mu is let go while the log is written.
		s.mu.Unlock()
		err := s.log.append(ctx, recs)
		s.mu.Lock()
		if err == nil && s.closed {
			// Durable but not acknowledged: the writer pushes it again
			// and the next store finds it a no-op.
			return PushResponse{}, ErrClosed
		}
		if err != nil {
			switch {
			case errors.Is(err, errLogBroken):
				s.broken = err
			case errors.Is(err, ErrFenced):
				s.fenceLocked(err)
			}
			return PushResponse{}, fmt.Errorf("filesync: commit: %w", err)
		}
		s.applyLocked(recs)
		if s.seq-s.snap >= uint64(s.cfg.SnapshotEvery) {
			if err := s.snapshotLocked(ctx); err != nil {
				// The log holds everything; a missing snapshot only makes
				// the next start slower.
				s.logger.Warn("snapshot failed", "seq", s.seq, "err", err)
			}
		}
	}
	resp.Seq = s.seq
	return resp, nil
}

// applyLocked takes records that are in the log into the tree and wakes
// the streams.
func (s *Store) applyLocked(recs []Change) {
	for _, c := range recs {
		s.tree.apply(c)
		s.pushTail(c)
	}
	s.seq = recs[len(recs)-1].Seq
	close(s.notify)
	s.notify = make(chan struct{})
}

// settleLocked settles an append whose outcome was unknown (object
// storage): records that did reach the log are applied, as a restart would.
func (s *Store) settleLocked(ctx context.Context) error {
	recs, err := s.log.resolve(ctx)
	if errors.Is(err, ErrFenced) {
		s.fenceLocked(err)
	}
	if err != nil {
		return fmt.Errorf("filesync: commit: %w", err)
	}
	if len(recs) > 0 {
		s.logger.Info("an append whose answer was lost is in the log", "first", recs[0].Seq, "last", recs[len(recs)-1].Seq)
		s.applyLocked(recs)
	}
	return nil
}

// fenceLocked stops writes for good: another files role writes to the log.
func (s *Store) fenceLocked(err error) {
	if s.fenced == nil {
		s.fenced = err
		s.logger.Error("files store fenced: another files role appended to the change log in the same bucket; this one refuses writes until it is restarted (and only one may run)", "seq", s.seq, "err", err)
	}
}

// Fenced returns why the store refuses writes (ErrFenced), or nil.
func (s *Store) Fenced() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fenced
}

func (s *Store) snapshotLocked(ctx context.Context) error {
	data, err := json.Marshal(Manifest{Seq: s.seq, Entries: s.tree.sorted()})
	if err != nil {
		return err
	}
	if err := s.objs.Put(ctx, snapshotName(s.seq), data); err != nil {
		return err
	}
	s.snap = s.seq
	names, err := s.objs.List(ctx, "snap/")
	if err != nil {
		return err
	}
	for i := 0; i < len(names)-s.cfg.KeepSnapshots; i++ {
		if err := s.objs.Remove(ctx, names[i]); err != nil {
			return err
		}
	}
	return nil
}

// Seq returns the last sequence number of the log.
func (s *Store) Seq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Changes returns up to max records after since, and a channel that is
// closed when more may be available (a commit, or Close).
func (s *Store) Changes(ctx context.Context, since uint64, max int) ([]Change, <-chan struct{}, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, ErrClosed
	}
	notify, seq := s.notify, s.seq
	if since > seq {
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("filesync: changes since %d: %w (last is %d)", since, ErrFuture, seq)
	}
	if since == seq {
		s.mu.Unlock()
		return nil, notify, nil
	}
	if len(s.tail) > 0 && s.tail[0].Seq <= since+1 {
		i := int(since + 1 - s.tail[0].Seq)
		out := append([]Change(nil), s.tail[i:min(len(s.tail), i+max)]...)
		s.mu.Unlock()
		return out, notify, nil
	}
	firsts := s.log.segments()
	s.mu.Unlock()
	out, err := readRange(ctx, s.objs, firsts, since, seq, max)
	if err != nil {
		return nil, nil, err
	}
	if len(out) == 0 || out[0].Seq != since+1 {
		return nil, nil, fmt.Errorf("filesync: changes since %d: the log no longer holds them; bootstrap again", since)
	}
	return out, notify, nil
}

// Manifest returns the current tree and its sequence number.
func (s *Store) Manifest() Manifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Manifest{Seq: s.seq, Entries: s.tree.sorted()}
}

// ManifestAt returns the tree as it was at sequence number at: the newest
// snapshot at or before it, plus the log up to it.
func (s *Store) ManifestAt(ctx context.Context, at uint64) (Manifest, error) {
	s.mu.Lock()
	seq := s.seq
	firsts := s.log.segments()
	if at == seq {
		defer s.mu.Unlock()
		return Manifest{Seq: s.seq, Entries: s.tree.sorted()}, nil
	}
	s.mu.Unlock()
	if at > seq {
		return Manifest{}, fmt.Errorf("filesync: manifest at %d: %w (last is %d)", at, ErrFuture, seq)
	}
	m, err := s.latestSnapshot(ctx, at)
	if err != nil {
		return Manifest{}, fmt.Errorf("filesync: manifest at %d: %w", at, err)
	}
	t := treeFromEntries(m.Entries, false)
	for from := m.Seq; from < at; {
		cs, err := readRange(ctx, s.objs, firsts, from, at, 4096)
		if err != nil {
			return Manifest{}, fmt.Errorf("filesync: manifest at %d: %w", at, err)
		}
		if len(cs) == 0 || cs[0].Seq != from+1 {
			return Manifest{}, fmt.Errorf("filesync: manifest at %d: the log no longer holds record %d", at, from+1)
		}
		for _, c := range cs {
			t.apply(c)
		}
		from = cs[len(cs)-1].Seq
	}
	return Manifest{Seq: at, Entries: t.sorted()}, nil
}

// Lookup returns the current entry of a path.
func (s *Store) Lookup(p string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.get(p)
}

// PathSeq returns the sequence number a node must have applied to see p as
// it is now, and whether p exists.
func (s *Store) PathSeq(p string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tree.get(p)
	return s.tree.pathSeq(p, s.base), ok
}

// Status is the body of GET /v1/status.
type Status struct {
	Seq         uint64 `json:"seq"`
	SnapshotSeq uint64 `json:"snapshot_seq"`
	Files       int    `json:"files"`
	Dirs        int    `json:"dirs"`
	// Bytes is the size of the files of the current tree; BlobBytes what
	// the stored blobs take (older contents until they are collected).
	Bytes      int64 `json:"bytes"`
	BlobBytes  int64 `json:"blob_bytes"`
	QuotaBytes int64 `json:"quota_bytes,omitempty"`
	Segments   int   `json:"segments"`
	// Fenced says why the store refuses writes: another files role
	// appended to the change log in the same bucket.
	Fenced string `json:"fenced,omitempty"`
}

// Status returns the store's counters.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Seq: s.seq, SnapshotSeq: s.snap, Files: s.tree.files, Dirs: s.tree.dirs, Bytes: s.tree.bytes,
		BlobBytes: s.used, QuotaBytes: s.cfg.QuotaBytes, Segments: len(s.log.segments())}
	if s.fenced != nil {
		st.Fenced = s.fenced.Error()
	}
	return st
}

// OpenBlob opens a stored blob.
func (s *Store) OpenBlob(ctx context.Context, hash string) (io.ReadSeekCloser, int64, error) {
	return s.blobs.Get(ctx, hash)
}

// ClaimBlob reports whether a blob is stored and, when it is, keeps it
// from garbage collection for Config.GCGrace: a writer that was told a
// blob is there can commit a push naming it without uploading it again.
func (s *Store) ClaimBlob(ctx context.Context, hash string) (bool, error) {
	if !validHash(hash) {
		return false, nil
	}
	s.mu.Lock()
	if s.dropping[hash] {
		s.mu.Unlock()
		return false, nil
	}
	s.claimLocked(hash)
	s.mu.Unlock()
	return s.blobs.Has(ctx, hash)
}
