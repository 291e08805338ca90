package filesync

// What only the tests use: a hard stop, inspection, a manual snapshot, and
// client calls of the files API no role makes.

import (
	"context"
	"fmt"
	"net/http"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/guard"
)

// Store returns the server's store.
func (s *Server) Store() *Store { return s.store }

// Close stops the server at once: listeners and connections are closed,
// the store is closed and the data directory unlocked. A new Server can then
// open the same directory.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	servers := s.servers
	s.mu.Unlock()
	for _, hs := range servers {
		hs.Close()
	}
	s.closeStore()
	return nil
}

// Snapshot writes a snapshot of the current state now.
func (s *Store) Snapshot(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.snapshotLocked(ctx); err != nil {
		return fmt.Errorf("filesync: snapshot: %w", err)
	}
	return nil
}

// Pending returns how many local changes wait for the server's
// acknowledgement.
func (a *Agent) Pending() int { return a.queue.len() }

// Status fetches the server's counters.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	if err := c.getJSON(ctx, api.FilesPathStatus, &st); err != nil {
		return Status{}, fmt.Errorf("filesync: status: %w", err)
	}
	return st, nil
}

// Handler returns the HTTP API, answering to the Host names of Config.Addr.
func (s *Server) Handler() http.Handler {
	return s.handler(guard.AllowedHosts(s.cfg.Addr))
}

// HasBlob reports whether a blob is stored.
func (s *Store) HasBlob(ctx context.Context, hash string) (bool, error) {
	return s.blobs.Has(ctx, hash)
}

// Quarantined returns how many changes this node has quarantined.
func (a *Agent) Quarantined() int { return int(a.quar.count.Load()) }
