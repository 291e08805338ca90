package filesync

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
)

// Log record layout (all integers big-endian or varint):
//
//	offset 0  uint32  payload length n (1 ≤ n ≤ maxPayload)
//	offset 4  uint32  CRC-32C (Castagnoli) of the payload
//	offset 8  payload:
//	          byte     format version (1)
//	          byte     op (1 put, 2 delete, 3 mkdir)
//	          uvarint  seq
//	          uvarint  mode
//	          uvarint  size
//	          varint   mtime (Unix ns)
//	          byte     hash length (0, or 32 for a put) + raw SHA-256
//	          uvarint  path length + path bytes
//	          uvarint  origin length + origin bytes
//	          uvarint  group (version 2 only: the last seq of the record's
//	                   unit group, never 0; a record outside a group is
//	                   version 1, so logs written before groups read as is)
//
// A payload decodes only if it is canonical: re-encoding the decoded change
// gives the same bytes. That makes records round-trip exactly.
const (
	recordHeader  = 8
	recordVersion = 1
	// recordVersionGroup is a record of a unit's group (Change.Group set).
	recordVersionGroup = 2
	maxPayload         = 2 + 4*binary.MaxVarintLen64 + 1 + 32 + 2*binary.MaxVarintLen64 + MaxPathLen + maxOriginLen + binary.MaxVarintLen64
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var (
	// errShortRecord means the data ends inside a record: at the end of the
	// log, a torn write.
	errShortRecord = errors.New("record is cut short")
	// errBadRecord means the bytes are not a valid record.
	errBadRecord = errors.New("record is corrupt")
)

// appendRecord appends the encoding of c to dst. c must pass c.check(true).
func appendRecord(dst []byte, c Change) ([]byte, error) {
	if err := c.check(true); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, make([]byte, recordHeader)...)
	version := byte(recordVersion)
	if c.Group != 0 {
		version = recordVersionGroup
	}
	dst = append(dst, version, byte(c.Op))
	dst = binary.AppendUvarint(dst, c.Seq)
	dst = binary.AppendUvarint(dst, uint64(c.Mode))
	dst = binary.AppendUvarint(dst, uint64(c.Size))
	dst = binary.AppendVarint(dst, c.MTime)
	if c.Hash == "" {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 32)
		dst, _ = hex.AppendDecode(dst, []byte(c.Hash)) // checked by c.check
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.Path)))
	dst = append(dst, c.Path...)
	dst = binary.AppendUvarint(dst, uint64(len(c.Origin)))
	dst = append(dst, c.Origin...)
	if c.Group != 0 {
		dst = binary.AppendUvarint(dst, c.Group)
	}
	payload := dst[start+recordHeader:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst, nil
}

// decodeRecord decodes the record at the start of b and returns it with its
// encoded length. It returns errShortRecord if b ends inside the record and
// an error wrapping errBadRecord if the record is invalid.
func decodeRecord(b []byte) (Change, int, error) {
	if len(b) < recordHeader {
		return Change{}, 0, errShortRecord
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 || n > maxPayload {
		return Change{}, 0, fmt.Errorf("%w: payload length %d", errBadRecord, n)
	}
	if uint64(len(b)) < recordHeader+uint64(n) {
		return Change{}, 0, errShortRecord
	}
	payload := b[recordHeader : recordHeader+n]
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return Change{}, 0, fmt.Errorf("%w: checksum mismatch", errBadRecord)
	}
	c, err := decodePayload(payload)
	if err != nil {
		return Change{}, 0, fmt.Errorf("%w: %v", errBadRecord, err)
	}
	return c, recordHeader + int(n), nil
}

func decodePayload(p []byte) (Change, error) {
	r := payloadReader{b: p}
	var c Change
	version := r.byte()
	if version != recordVersion && version != recordVersionGroup {
		return Change{}, fmt.Errorf("unknown format version %d", version)
	}
	c.Op = Op(r.byte())
	c.Seq = r.uvarint()
	mode := r.uvarint()
	size := r.uvarint()
	c.MTime = r.varint()
	switch hl := r.byte(); hl {
	case 0:
	case 32:
		c.Hash = hex.EncodeToString(r.bytes(32))
	default:
		r.fail(fmt.Errorf("hash length %d", hl))
	}
	c.Path = string(r.bytes(r.uvarint()))
	c.Origin = string(r.bytes(r.uvarint()))
	if version == recordVersionGroup {
		c.Group = r.uvarint()
	}
	if r.err != nil {
		return Change{}, r.err
	}
	if len(r.b) != 0 {
		return Change{}, fmt.Errorf("%d bytes after the change", len(r.b))
	}
	if mode > 0o777 || size > 1<<62 {
		return Change{}, fmt.Errorf("mode %#o or size %d out of range", mode, size)
	}
	c.Mode, c.Size = uint32(mode), int64(size)
	if err := c.check(true); err != nil {
		return Change{}, err
	}
	again, err := appendRecord(nil, c)
	if err != nil || !bytes.Equal(again[recordHeader:], p) {
		return Change{}, errors.New("payload is not in canonical form")
	}
	return c, nil
}

// payloadReader reads the fields of a payload; the first error sticks.
type payloadReader struct {
	b   []byte
	err error
}

func (r *payloadReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *payloadReader) byte() byte {
	if len(r.b) < 1 {
		r.fail(errors.New("payload cut short"))
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *payloadReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad uvarint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail(errors.New("payload cut short"))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
