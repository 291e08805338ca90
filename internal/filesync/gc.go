package filesync

import (
	"context"
	"fmt"
	"time"
)

// Garbage collection removes blobs that no path of the current tree
// references: the old contents of replaced and deleted files. A blob is
// kept, referenced or not, while
//
//   - it is younger than Config.GCGrace (uploaded for a push not yet
//     committed),
//   - a writer was told within GCGrace that it is stored (a PUT of a blob
//     already there, or a HEAD by a node or the controller): the writer
//     commits without uploading it again,
//   - a commit in progress names it (pinned from before its blobs are
//     checked until its records are in the tree).
//
// The collector marks its victims under the store's lock, so that a commit
// either pinned a blob first (and it is kept) or finds it marked and is
// refused with RuleBlob (the agent uploads it again); an upload of a marked
// blob is refused with errCollecting (503) until it is gone. Nothing
// referenced is ever removed.

// storedBlob is a blob this store's PutBlob stored (the backend answered
// the PUT: durable) with its size. Commit trusts it instead of asking the
// backend again, until the collector marks the blob (which forgets it) or
// it is older than GCGrace (pruned with the claims).
type storedBlob struct {
	size int64
	at   time.Time
}

// storedSizes returns the sizes of the blobs of cs's puts that this store
// stored within GCGrace and the collector has not marked since; the
// others are not in the map. Call it with the blobs pinned.
func (s *Store) storedSizes(cs []Change) map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := s.now().Add(-s.cfg.GCGrace)
	known := make(map[string]int64)
	for _, c := range cs {
		if c.Op != OpPut {
			continue
		}
		if b, ok := s.stored[c.Hash]; ok && b.at.After(cutoff) && !s.dropping[c.Hash] {
			known[c.Hash] = b.size
		}
	}
	return known
}

// minClaimPrune is the number of claims from which claimLocked prunes the
// expired ones, so that the map stays bounded with collection turned off.
const minClaimPrune = 1024

// claimLocked records that a writer was just told blob hash is stored.
func (s *Store) claimLocked(hash string) {
	now := s.now()
	s.claims[hash] = now
	if len(s.claims) >= s.gcPrune {
		s.pruneClaimsLocked(now.Add(-s.cfg.GCGrace))
		s.gcPrune = max(minClaimPrune, 2*len(s.claims))
	}
}

func (s *Store) pruneClaimsLocked(cutoff time.Time) {
	for h, t := range s.claims {
		if !t.After(cutoff) {
			delete(s.claims, h)
		}
	}
	for h, b := range s.stored {
		if !b.at.After(cutoff) {
			delete(s.stored, h)
		}
	}
}

// pin keeps the blobs of cs from the collector until unpin is called. A
// blob the collector is removing right now cannot be pinned: the push is
// refused as if the blob were missing.
func (s *Store) pin(cs []Change) (unpin func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var hashes []string
	for _, c := range cs {
		if c.Op != OpPut {
			continue
		}
		if s.dropping[c.Hash] {
			for _, h := range hashes {
				s.unpinLocked(h)
			}
			return nil, reject(c.Path, RuleBlob, "blob %s is not stored (it was unreferenced and is being removed); upload it again with PUT /v1/blobs/%s", c.Hash, c.Hash)
		}
		s.pins[c.Hash]++
		hashes = append(hashes, c.Hash)
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, h := range hashes {
			s.unpinLocked(h)
		}
	}, nil
}

func (s *Store) unpinLocked(h string) {
	if s.pins[h]--; s.pins[h] <= 0 {
		delete(s.pins, h)
	}
}

// GCResult is what one collection did.
type GCResult struct {
	// Blobs is how many blobs were stored when it started.
	Blobs int `json:"blobs"`
	// Removed blobs and the bytes they took.
	Removed int   `json:"removed"`
	Freed   int64 `json:"freed"`
}

// GC removes the blobs that nothing needs (see above) and returns what it
// did. It is safe to run at any time, concurrently with uploads and
// commits.
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var res GCResult
	cutoff := s.now().Add(-s.cfg.GCGrace)
	var old []BlobInfo
	err := s.blobs.List(ctx, func(b BlobInfo) error {
		res.Blobs++
		if b.ModTime.Before(cutoff) {
			old = append(old, b)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("filesync: gc: %w", err)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return res, ErrClosed
	}
	refs := make(map[string]bool, s.tree.files)
	for _, e := range s.tree.entries {
		if !e.Dir {
			refs[e.Hash] = true
		}
	}
	var victims []BlobInfo
	for _, b := range old {
		if refs[b.Hash] || s.pins[b.Hash] > 0 || s.claims[b.Hash].After(cutoff) {
			continue
		}
		s.dropping[b.Hash] = true
		delete(s.stored, b.Hash)
		victims = append(victims, b)
	}
	s.pruneClaimsLocked(cutoff)
	s.mu.Unlock()

	if s.testHookGC != nil {
		s.testHookGC()
	}
	var removed []BlobInfo
	for _, b := range victims {
		if err = s.blobs.Remove(ctx, b.Hash); err != nil {
			break
		}
		removed = append(removed, b)
	}
	s.mu.Lock()
	for _, b := range victims {
		delete(s.dropping, b.Hash)
	}
	for _, b := range removed {
		s.used -= b.Size
		res.Removed++
		res.Freed += b.Size
	}
	s.mu.Unlock()
	if err != nil {
		return res, fmt.Errorf("filesync: gc: %w", err)
	}
	return res, nil
}

// gcLoop collects every Config.GCInterval until ctx ends.
func (s *Store) gcLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t0 := time.Now()
		res, err := s.GC(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("garbage collection failed", "err", err, "removed", res.Removed)
			}
			continue
		}
		s.logger.Info("garbage collection", "blobs", res.Blobs, "removed", res.Removed, "freed_bytes", res.Freed, "took", time.Since(t0).Round(time.Millisecond))
	}
}
