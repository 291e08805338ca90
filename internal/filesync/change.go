package filesync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
)

// Op is what a change does to its path.
type Op uint8

// The operations of the change log. A rename is a delete of the old path and
// a put (or mkdir) of the new one, pushed in the same batch.
const (
	// OpPut makes Path a regular file with the content of blob Hash.
	// Missing parent directories are created (mode 0755); a file in the way
	// of a parent, or a directory at Path, is replaced.
	OpPut Op = 1
	// OpDelete removes Path and, if it is a directory, everything below it.
	OpDelete Op = 2
	// OpMkdir makes Path a directory (or sets the mode of an existing one);
	// a file in the way is replaced.
	OpMkdir Op = 3
)

var opNames = [...]string{OpPut: "put", OpDelete: "delete", OpMkdir: "mkdir"}

func (o Op) valid() bool { return o >= OpPut && o <= OpMkdir }

func (o Op) String() string {
	if o.valid() {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// MarshalText encodes the op by name ("put", "delete", "mkdir").
func (o Op) MarshalText() ([]byte, error) {
	if !o.valid() {
		return nil, fmt.Errorf("filesync: unknown op %d", uint8(o))
	}
	return []byte(opNames[o]), nil
}

// UnmarshalText decodes an op name.
func (o *Op) UnmarshalText(b []byte) error {
	for i, n := range opNames {
		if n != "" && string(b) == n {
			*o = Op(i)
			return nil
		}
	}
	return fmt.Errorf("unknown op %q (want put, delete or mkdir)", b)
}

// Change is one record of the change log, and the unit of a push.
type Change struct {
	// Seq is the record's position in the log, assigned by the server;
	// zero in a push.
	Seq uint64 `json:"seq,omitempty"`
	Op  Op     `json:"op"`
	// Path is relative to the docroot, '/'-separated and clean.
	Path string `json:"path"`
	// Mode holds permission bits only (0o777); zero for a delete.
	Mode uint32 `json:"mode,omitempty"`
	// Size and Hash (lowercase hex SHA-256) describe a put's content.
	Size int64  `json:"size,omitempty"`
	Hash string `json:"hash,omitempty"`
	// MTime is the file's modification time in Unix nanoseconds; the
	// applier sets it, so every node serves the same Last-Modified.
	MTime int64 `json:"mtime,omitempty"`
	// Origin is the NodeID of the node that pushed the change.
	Origin string `json:"origin,omitempty"`
	// Group is set on every record of a unit's group (see PushRequest.Unit)
	// to the sequence number of the group's last record: an agent applies
	// the records from the group's first (a delete of the unit) up to Group
	// all at once. Zero for a record of its own; assigned by the server.
	Group uint64 `json:"group,omitempty"`
}

const maxOriginLen = 64

func checkOrigin(s string) error {
	if len(s) > maxOriginLen {
		return fmt.Errorf("origin is %d bytes, more than %d", len(s), maxOriginLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return fmt.Errorf("origin %q has a character other than letters, digits, '.', '_', ':' and '-'", s)
		}
	}
	return nil
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// check validates the shape of a change, independent of configuration:
// the path syntax (at the hard depth limit), the op, and fields that fit
// the op. logged says whether the change comes from the log (Seq set) or
// from a push (Seq zero).
func (c Change) check(logged bool) error {
	if err := checkPathSyntax(c.Path, hardMaxDepth); err != nil {
		return err
	}
	if !logged {
		if err := checkFSLimits(c.Path); err != nil {
			return err
		}
	}
	if !c.Op.valid() {
		return reject(c.Path, RuleOp, "unknown op %d (want put, delete or mkdir)", uint8(c.Op))
	}
	if logged && c.Seq == 0 {
		return reject(c.Path, RuleSeq, "a log record has a sequence number of at least 1")
	}
	if !logged && c.Seq != 0 {
		return reject(c.Path, RuleSeq, "a pushed change carries no sequence number; the server assigns it")
	}
	if !logged && c.Group != 0 {
		return reject(c.Path, RuleSeq, "a pushed change carries no group; the server assigns it (set the push's unit)")
	}
	if logged && c.Group != 0 && c.Group < c.Seq {
		return reject(c.Path, RuleSeq, "group end %d is before the record's sequence number %d", c.Group, c.Seq)
	}
	if err := checkOrigin(c.Origin); err != nil {
		return reject(c.Path, RuleOrigin, "%v", err)
	}
	if fs.FileMode(c.Mode)&fs.ModeSymlink != 0 {
		return reject(c.Path, RuleSymlink, "symbolic links are never synced")
	}
	if c.Mode&^0o777 != 0 {
		return reject(c.Path, RuleMode, "mode %#o has bits other than the permission bits 0777", c.Mode)
	}
	switch c.Op {
	case OpPut:
		if !validHash(c.Hash) {
			return reject(c.Path, RuleHash, "a put needs the lowercase hex SHA-256 of its content, got %q", c.Hash)
		}
		if c.Size < 0 {
			return reject(c.Path, RuleSize, "size %d is negative", c.Size)
		}
	case OpDelete:
		if c.Mode != 0 {
			return reject(c.Path, RuleMode, "a delete carries no mode")
		}
		fallthrough
	case OpMkdir:
		if c.Hash != "" {
			return reject(c.Path, RuleHash, "a %s carries no hash", c.Op)
		}
		if c.Size != 0 {
			return reject(c.Path, RuleSize, "a %s carries no size", c.Op)
		}
	}
	return nil
}

// PushRequest is the body of POST /v1/changes: one or more changes from one
// node, committed all or nothing and in order.
type PushRequest struct {
	// Origin is the pushing node's NodeID; it is stamped on every change.
	Origin  string   `json:"origin"`
	Changes []Change `json:"changes"`
	// Unit, when set, is a clean '/'-separated path (a plugin's or theme's
	// directory, wp-includes, ...) that the changes replace as one unit:
	// every change lies at or under Unit, the tree at Unit becomes exactly
	// what the changes make of an empty Unit (a push of only a delete of
	// Unit removes it), the store commits it as one group of records, and
	// every agent applies the group at once (staged, then swapped). Empty
	// for an ordinary push.
	Unit string `json:"unit,omitempty"`
}

// PushResult is the outcome of one change of a push.
type PushResult struct {
	// Seq is the sequence number of the new record or, for a no-op, the
	// sequence number that the path's current state already has.
	Seq uint64 `json:"seq"`
	// Noop means the change matched the current state (same content and
	// mode, or a delete of a missing path); no record was written.
	Noop bool `json:"noop,omitempty"`
}

// PushResponse answers a successful push.
type PushResponse struct {
	Results []PushResult `json:"results"`
	// Seq is the last sequence number of the log after the push.
	Seq uint64 `json:"seq"`
}

// ParsePush decodes and validates the shape of a push body. It is strict:
// unknown fields, trailing data, sequence numbers and foreign origins are
// rejected. Configured limits (Exclude, sizes, depth, count) are checked by
// the store.
func ParsePush(data []byte) (PushRequest, error) {
	var req PushRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return PushRequest{}, reject("", RuleMalformedRequest, "the body is not a push request: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return PushRequest{}, reject("", RuleMalformedRequest, "the body has data after the push request")
	}
	if req.Origin == "" {
		return PushRequest{}, reject("", RuleOrigin, "the push names no origin node")
	}
	if err := checkOrigin(req.Origin); err != nil {
		return PushRequest{}, reject("", RuleOrigin, "%v", err)
	}
	if len(req.Changes) == 0 {
		return PushRequest{}, reject("", RuleMalformedRequest, "the push has no changes")
	}
	for i := range req.Changes {
		c := &req.Changes[i]
		if c.Origin != "" && c.Origin != req.Origin {
			return PushRequest{}, reject(c.Path, RuleOrigin, "change origin %q differs from the push origin %q", c.Origin, req.Origin)
		}
		c.Origin = req.Origin
		if err := c.check(false); err != nil {
			return PushRequest{}, err
		}
	}
	if err := checkUnit(req); err != nil {
		return PushRequest{}, err
	}
	return req, nil
}
