package filesync

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// queue holds the local changes an agent has not yet had acknowledged by
// the server, in order, persisted in a journal (StateDir/queue.jsonl) so
// that an agent restart loses none. The journal has one JSON object a line:
//
//	{"id":7,"change":{...}}   a change was queued
//	{"ack":7}                 change 7 left the queue (committed or refused)
//
// An add is fsynced before add returns; an ack is not (after a crash the
// change is pushed again, and the server finds it a no-op). A torn last line
// is ignored. The journal is rewritten without the acknowledged changes
// when it is opened, and emptied when the queue drains.
type queue struct {
	path string

	mu      sync.Mutex
	f       *os.File
	nextID  uint64
	entries []queued
	// at is when each change of this run was queued (pushstats.go); the
	// journal does not keep it.
	at map[uint64]time.Time
}

type queued struct {
	ID     uint64 `json:"id"`
	Change Change `json:"change"`
	// Unit is set on every change of a unit (PushRequest.Unit): the
	// changes queued together by one addUnit, which are pushed together
	// and alone. UnitID is the ID of the unit's first change, UnitSize the
	// number of its changes.
	Unit     string `json:"unit,omitempty"`
	UnitID   uint64 `json:"unit_id,omitempty"`
	UnitSize int    `json:"unit_size,omitempty"`
}

type journalLine struct {
	ID       uint64  `json:"id,omitempty"`
	Change   *Change `json:"change,omitempty"`
	Ack      uint64  `json:"ack,omitempty"`
	Unit     string  `json:"unit,omitempty"`
	UnitID   uint64  `json:"unit_id,omitempty"`
	UnitSize int     `json:"unit_size,omitempty"`
}

func (e queued) line() journalLine {
	return journalLine{ID: e.ID, Change: &e.Change, Unit: e.Unit, UnitID: e.UnitID, UnitSize: e.UnitSize}
}

func openQueue(p string) (*queue, error) {
	q := &queue{path: p, nextID: 1, at: make(map[uint64]time.Time)}
	data, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("filesync: open queue: %w", err)
	}
	live := make(map[uint64]int) // id → index in entries
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var l journalLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			break // torn last line
		}
		switch {
		case l.Change != nil && l.ID > 0:
			if l.Change.check(false) != nil {
				continue
			}
			live[l.ID] = len(q.entries)
			q.entries = append(q.entries, queued{ID: l.ID, Change: *l.Change, Unit: l.Unit, UnitID: l.UnitID, UnitSize: l.UnitSize})
			q.nextID = max(q.nextID, l.ID+1)
		case l.Ack > 0:
			if i, ok := live[l.Ack]; ok {
				q.entries[i].ID = 0
				delete(live, l.Ack)
			}
		}
	}
	// A unit is pushed whole or not at all: one the journal holds only a
	// part of (a torn last write) is dropped; its paths are found again by
	// the scan after the agent catches up.
	unitLen := make(map[uint64]int)
	for _, e := range q.entries {
		if e.ID != 0 && e.Unit != "" {
			unitLen[e.UnitID]++
		}
	}
	kept := q.entries[:0]
	for _, e := range q.entries {
		if e.ID != 0 && (e.Unit == "" || unitLen[e.UnitID] == e.UnitSize) {
			kept = append(kept, e)
		}
	}
	q.entries = kept
	var buf []byte
	for _, e := range q.entries {
		buf = appendJournal(buf, e.line())
	}
	if err := writeFileAtomic(p, buf, 0o600); err != nil {
		return nil, fmt.Errorf("filesync: open queue: %w", err)
	}
	if q.f, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return nil, fmt.Errorf("filesync: open queue: %w", err)
	}
	return q, nil
}

func appendJournal(buf []byte, l journalLine) []byte {
	data, _ := json.Marshal(l)
	buf = append(buf, data...)
	return append(buf, '\n')
}

// add queues changes. They are queued in memory even if the journal write
// fails; the error says they would not survive a restart.
func (q *queue) add(cs []Change) error {
	return q.addUnit("", cs)
}

// addUnit queues the changes of a unit (see queued.Unit); with unit "",
// ordinary changes.
func (q *queue) addUnit(unit string, cs []Change) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	var buf []byte
	first := q.nextID
	now := time.Now()
	for _, c := range cs {
		e := queued{ID: q.nextID, Change: c}
		q.at[e.ID] = now
		if unit != "" {
			e.Unit, e.UnitID, e.UnitSize = unit, first, len(cs)
		}
		q.nextID++
		q.entries = append(q.entries, e)
		buf = appendJournal(buf, e.line())
	}
	if _, err := q.f.Write(buf); err != nil {
		return fmt.Errorf("filesync: queue: %w", err)
	}
	if err := q.f.Sync(); err != nil {
		return fmt.Errorf("filesync: queue: %w", err)
	}
	return nil
}

// head returns the next push from the front of the queue: a whole unit,
// or up to n ordinary changes.
func (q *queue) head(n int) []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.entries) > 0 && q.entries[0].Unit != "" {
		n = q.entries[0].UnitSize
	}
	var out []queued
	for _, e := range q.entries[:min(n, len(q.entries))] {
		if e.Unit != q.entries[0].Unit || e.UnitID != q.entries[0].UnitID {
			break
		}
		out = append(out, e)
	}
	return out
}

// ack removes changes from the queue.
func (q *queue) ack(ids ...uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	gone := make(map[uint64]bool, len(ids))
	var buf []byte
	for _, id := range ids {
		gone[id] = true
		delete(q.at, id)
		buf = appendJournal(buf, journalLine{Ack: id})
	}
	kept := q.entries[:0]
	for _, e := range q.entries {
		if !gone[e.ID] {
			kept = append(kept, e)
		}
	}
	q.entries = kept
	if len(q.entries) == 0 {
		if err := q.f.Truncate(0); err != nil {
			return fmt.Errorf("filesync: queue: %w", err)
		}
		return nil
	}
	if _, err := q.f.Write(buf); err != nil {
		return fmt.Errorf("filesync: queue: %w", err)
	}
	return nil
}

// queuedAt returns when change id was queued by this run (zero when it was
// queued by an earlier one, or has left the queue).
func (q *queue) queuedAt(id uint64) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.at[id]
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries)
}

func (q *queue) close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.f.Close()
}
