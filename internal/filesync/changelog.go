package filesync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"sort"
	"sync"
)

// ErrFenced means another files role appended to the change log in the
// same bucket: this one refuses writes so that the log cannot fork.
var ErrFenced = errors.New("another files role writes to this store; this one refuses writes")

// objectCreator is an ObjectStore whose objects can be created only if
// absent (S3: If-None-Match: *). The change log then writes every append as
// an immutable object of its own, named by the sequence number of its first
// record: a torn append cannot exist, and two stores on one bucket cannot
// both write a sequence number (the loser is fenced).
type objectCreator interface {
	// Create stores data as name unless name exists (an error matching
	// fs.ErrExist), durably before it returns.
	Create(ctx context.Context, name string, data []byte) error
}

// changeLog is the append-only change log: segments named by the sequence
// number of their first record (log/<seq>.log), each a run of records (see
// record.go). It is not safe for concurrent appends; the Store serialises
// them.
type changeLog struct {
	objs    ObjectStore
	segSize int64
	logger  *slog.Logger

	// firsts are the first sequence numbers of the segments, ascending,
	// under mu: the store reads them (segments) while an append, which
	// it serialises itself, writes.
	mu         sync.Mutex
	firsts     []uint64
	activeSize int64

	// creator is objs when it creates objects conditionally: every append
	// is then a segment of its own (appendPart).
	creator objectCreator
	// pending is an append whose outcome is unknown (the request failed
	// after it may have reached the store); resolve settles it before the
	// next append.
	pending *pendingPart
}

type pendingPart struct {
	name string
	data []byte
}

// openLog reads every segment, calls fn for each record with a sequence
// number above after, and returns the log and its last sequence number.
// Records must be consecutive. A record that is cut short or corrupt at the
// end of the last segment is a torn write: it is cut off (logged) and never
// applied. One anywhere else is corruption and fails the open.
func openLog(ctx context.Context, objs ObjectStore, segSize int64, logger *slog.Logger, after uint64, fn func(Change)) (*changeLog, uint64, error) {
	l := &changeLog{objs: objs, segSize: segSize, logger: logger}
	l.creator, _ = objs.(objectCreator)
	names, err := objs.List(ctx, "log/")
	if err != nil {
		return nil, 0, err
	}
	for _, n := range names {
		if first, ok := parseSeqName(n, "log/", ".log"); ok {
			l.firsts = append(l.firsts, first)
		}
	}
	sort.Slice(l.firsts, func(i, j int) bool { return l.firsts[i] < l.firsts[j] })
	var last uint64
	var sizes []int64
	for i, first := range l.firsts {
		name := segmentName(first)
		isLast := i == len(l.firsts)-1
		// Skip segments that end before after: the next one starts at or
		// below after+1.
		if !isLast && l.firsts[i+1] <= after+1 {
			last = l.firsts[i+1] - 1
			sizes = append(sizes, -1)
			continue
		}
		size, lastSeq, err := l.scan(ctx, name, first, last, func(c Change) {
			if c.Seq > after {
				fn(c)
			}
		})
		var torn *tornError
		switch {
		case errors.As(err, &torn) && isLast:
			logger.Warn("dropping a torn record at the end of the change log",
				"segment", name, "offset", torn.offset, "reason", torn.err)
			if err := objs.Truncate(ctx, name, torn.offset); err != nil {
				return nil, 0, err
			}
		case err != nil:
			return nil, 0, fmt.Errorf("filesync: open log: %w; the log is corrupt, restore the files store from a backup", err)
		}
		sizes = append(sizes, size)
		if lastSeq > 0 {
			last = lastSeq
		}
	}
	if n := len(l.firsts); n > 0 {
		l.activeSize = sizes[n-1]
		if l.activeSize == 0 {
			// An empty last segment (created, then torn at its first
			// record): start afresh at the next append.
			if err := objs.Remove(ctx, segmentName(l.firsts[n-1])); err != nil {
				return nil, 0, err
			}
			l.firsts = l.firsts[:n-1]
			l.activeSize = -1 // unknown; the next append opens a new segment
		}
	} else {
		l.activeSize = -1
	}
	return l, last, nil
}

type tornError struct {
	offset int64
	err    error
}

func (e *tornError) Error() string { return fmt.Sprintf("offset %d: %v", e.offset, e.err) }

// scan reads a segment whose first record must be first (and follow prev),
// calling fn for each record. It returns the size of the valid records and
// the last sequence number read; a bad record is reported as *tornError.
// The records of a unit's group are passed to fn only once the group is
// complete: a group that the segment ends inside (a crash in the middle of
// its append) is torn from its first record on, so that a group is in the
// log whole or not at all.
func (l *changeLog) scan(ctx context.Context, name string, first, prev uint64, fn func(Change)) (int64, uint64, error) {
	rc, err := l.objs.Open(ctx, name)
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	rr := newRecordReader(rc)
	var off int64
	var last uint64
	var group []Change // an open group's records so far
	var groupOff int64 // where the open group starts
	for {
		c, n, err := rr.next()
		if err == io.EOF && len(group) > 0 {
			err = fmt.Errorf("the log ends inside the group of records %d to %d", group[0].Seq, group[0].Group)
		}
		if err == io.EOF {
			return off, last, nil
		}
		if err != nil {
			if len(group) > 0 {
				return groupOff, group[0].Seq - 1, &tornError{offset: groupOff, err: fmt.Errorf("segment %s: %w", name, err)}
			}
			return off, last, &tornError{offset: off, err: fmt.Errorf("segment %s: %w", name, err)}
		}
		want := first
		if last > 0 {
			want = last + 1
		} else if prev > 0 && first != prev+1 {
			return off, last, fmt.Errorf("segment %s starts at %d, after %d", name, first, prev)
		}
		if c.Seq != want {
			return off, last, fmt.Errorf("segment %s offset %d: record seq %d, want %d", name, off, c.Seq, want)
		}
		switch {
		case len(group) > 0 && c.Group != group[0].Group:
			return off, last, fmt.Errorf("segment %s offset %d: record %d is not of the open group ending at %d", name, off, c.Seq, group[0].Group)
		case c.Group > c.Seq:
			if len(group) == 0 {
				groupOff = off
			}
			group = append(group, c)
		case len(group) > 0: // the group's last record
			for _, g := range group {
				fn(g)
			}
			group = group[:0]
			fn(c)
		default:
			fn(c)
		}
		off += int64(n)
		last = c.Seq
	}
}

// append writes the records of cs (consecutive, after the log's last) in
// one durable append. On failure it cuts the segment back to where it was;
// errLogBroken says that this failed too.
func (l *changeLog) append(ctx context.Context, cs []Change) error {
	var buf []byte
	for _, c := range cs {
		var err error
		if buf, err = appendRecord(buf, c); err != nil {
			return err
		}
	}
	if l.creator != nil {
		return l.appendPart(ctx, cs[0].Seq, buf)
	}
	l.mu.Lock()
	if len(l.firsts) == 0 || l.activeSize < 0 || l.activeSize > 0 && l.activeSize+int64(len(buf)) > l.segSize {
		l.firsts = append(l.firsts, cs[0].Seq)
		l.activeSize = 0
	}
	name := segmentName(l.firsts[len(l.firsts)-1])
	l.mu.Unlock()
	if err := l.objs.Append(ctx, name, buf); err != nil {
		if terr := l.objs.Truncate(ctx, name, l.activeSize); terr != nil {
			return fmt.Errorf("%w: %v (and cutting it back failed: %v)", errLogBroken, err, terr)
		}
		if l.activeSize == 0 {
			l.objs.Remove(ctx, name)
			l.mu.Lock()
			l.firsts = l.firsts[:len(l.firsts)-1]
			l.mu.Unlock()
			l.activeSize = -1
		}
		return err
	}
	l.activeSize += int64(len(buf))
	return nil
}

var errLogBroken = errors.New("the change log could not be written nor repaired")

// appendPart creates the segment of one append. The create is conditional:
// finding the object there means either that an earlier attempt of this
// very append was stored and its answer lost (same bytes: done), or that
// another files role wrote that sequence number (ErrFenced). When the
// outcome is unknown the append is pending until resolve settles it.
func (l *changeLog) appendPart(ctx context.Context, first uint64, buf []byte) error {
	if l.pending != nil {
		return fmt.Errorf("filesync: append: the outcome of %s is not known yet", l.pending.name)
	}
	name := segmentName(first)
	err := l.creator.Create(ctx, name, buf)
	if errors.Is(err, fs.ErrExist) {
		err = l.sameObject(ctx, name, buf)
	}
	switch {
	case err == nil:
		l.mu.Lock()
		l.firsts = append(l.firsts, first)
		l.mu.Unlock()
		l.activeSize = int64(len(buf))
		return nil
	case errors.Is(err, ErrFenced):
		return err
	}
	l.pending = &pendingPart{name: name, data: buf}
	return err
}

// sameObject returns nil when object name holds data, ErrFenced when it
// holds something else.
func (l *changeLog) sameObject(ctx context.Context, name string, data []byte) error {
	rc, err := l.objs.Open(ctx, name)
	if err != nil {
		return err
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("%w: %s was written by another files role", ErrFenced, name)
	}
	return nil
}

// resolve settles a pending append: it returns its records when the store
// holds them (they are in the log, so the store applies them), nothing when
// it does not, ErrFenced when another role wrote there, or the error that
// keeps it from knowing.
func (l *changeLog) resolve(ctx context.Context) ([]Change, error) {
	p := l.pending
	if p == nil {
		return nil, nil
	}
	switch err := l.sameObject(ctx, p.name, p.data); {
	case errors.Is(err, fs.ErrNotExist):
		l.pending = nil
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("filesync: settle the last append (%s): %w", p.name, err)
	}
	var cs []Change
	rr := newRecordReader(bytes.NewReader(p.data))
	for {
		c, _, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("filesync: settle the last append (%s): %w", p.name, err)
		}
		cs = append(cs, c)
	}
	l.pending = nil
	if len(cs) > 0 {
		l.mu.Lock()
		l.firsts = append(l.firsts, cs[0].Seq)
		l.mu.Unlock()
		l.activeSize = int64(len(p.data))
	}
	return cs, nil
}

// segments returns a copy of the segments' first sequence numbers.
func (l *changeLog) segments() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.firsts)
}

// readRange returns up to max records with since < seq ≤ upto, from the
// segments (firsts is a copy taken under the store's lock).
func readRange(ctx context.Context, objs ObjectStore, firsts []uint64, since, upto uint64, max int) ([]Change, error) {
	i := sort.Search(len(firsts), func(i int) bool { return firsts[i] > since+1 }) - 1
	if i < 0 {
		i = 0
	}
	var out []Change
	for ; i < len(firsts) && len(out) < max; i++ {
		rc, err := objs.Open(ctx, segmentName(firsts[i]))
		if err != nil {
			return nil, err
		}
		rr := newRecordReader(rc)
		for len(out) < max {
			c, _, err := rr.next()
			if err == io.EOF || errors.Is(err, errShortRecord) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, fmt.Errorf("filesync: read log: %w", err)
			}
			if c.Seq > upto {
				break
			}
			if c.Seq > since {
				out = append(out, c)
			}
		}
		rc.Close()
	}
	return out, nil
}

// recordReader decodes records from a stream.
type recordReader struct {
	br  *bufio.Reader
	buf []byte
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next record and its encoded size; io.EOF at a clean end,
// errShortRecord when the data ends inside a record.
func (r *recordReader) next() (Change, int, error) {
	hdr, err := r.br.Peek(recordHeader)
	if len(hdr) == 0 && err == io.EOF {
		return Change{}, 0, io.EOF
	}
	if len(hdr) < recordHeader {
		return Change{}, 0, errShortRecord
	}
	n := binary.BigEndian.Uint32(hdr)
	if n == 0 || n > maxPayload {
		return Change{}, 0, fmt.Errorf("%w: payload length %d", errBadRecord, n)
	}
	total := recordHeader + int(n)
	if cap(r.buf) < total {
		r.buf = make([]byte, total)
	}
	b := r.buf[:total]
	if _, err := io.ReadFull(r.br, b); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return Change{}, 0, errShortRecord
		}
		return Change{}, 0, err
	}
	return decodeRecord(b)
}
