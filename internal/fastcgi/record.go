package fastcgi

import (
	"encoding/binary"
	"fmt"
)

// Wire constants from the FastCGI 1.0 specification.
const (
	version1 = 1

	headerLen = 8 // bytes in a record header

	// maxContentLen is the largest content length a record header can carry.
	maxContentLen = 65535
	// maxWriteContent is the largest content length this package sends. It is a
	// multiple of 8, so a full record needs no padding, and content+padding stays
	// within 65535, which php-fpm enforces for every record it reads.
	maxWriteContent = 65528

	// requestID is the only request id used: one request at a time per connection.
	requestID = 1

	roleResponder = 1
	flagKeepConn  = 1
)

// recType is a FastCGI record type.
type recType uint8

const (
	typeBeginRequest    recType = 1
	typeAbortRequest    recType = 2
	typeEndRequest      recType = 3
	typeParams          recType = 4
	typeStdin           recType = 5
	typeStdout          recType = 6
	typeStderr          recType = 7
	typeData            recType = 8
	typeGetValues       recType = 9
	typeGetValuesResult recType = 10
	typeUnknownType     recType = 11
)

// Protocol status values carried by END_REQUEST.
const (
	statusRequestComplete = 0
	statusCantMpxConn     = 1
	statusOverloaded      = 2
	statusUnknownRole     = 3
)

// header is a decoded FastCGI record header.
type header struct {
	Version       uint8
	Type          recType
	RequestID     uint16
	ContentLength uint16
	PaddingLength uint8
}

// decodeHeader decodes the first headerLen bytes of b. It reports an error
// when b is too short; it never validates the field values.
func decodeHeader(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, fmt.Errorf("fastcgi: decode record header: %d bytes, need %d", len(b), headerLen)
	}
	return header{
		Version:       b[0],
		Type:          recType(b[1]),
		RequestID:     binary.BigEndian.Uint16(b[2:4]),
		ContentLength: binary.BigEndian.Uint16(b[4:6]),
		PaddingLength: b[6],
	}, nil
}

// putHeader writes a record header into b[:headerLen].
func putHeader(b []byte, t recType, id uint16, contentLen, padLen int) {
	_ = b[headerLen-1]
	b[0] = version1
	b[1] = byte(t)
	binary.BigEndian.PutUint16(b[2:4], id)
	binary.BigEndian.PutUint16(b[4:6], uint16(contentLen))
	b[6] = byte(padLen)
	b[7] = 0
}

// padLen is the padding that aligns n content bytes to a multiple of 8.
func padLen(n int) int { return -n & 7 }

var zeros [8]byte

// appendRecord appends one complete record (header, content, padding).
// content must not exceed maxContentLen.
func appendRecord(dst []byte, t recType, id uint16, content []byte) []byte {
	p := padLen(len(content))
	n := len(dst)
	dst = append(dst, zeros[:]...)
	putHeader(dst[n:], t, id, len(content), p)
	dst = append(dst, content...)
	return append(dst, zeros[:p]...)
}

// appendBeginRequest appends a BEGIN_REQUEST record for the responder role.
func appendBeginRequest(dst []byte, keepConn bool) []byte {
	var body [8]byte
	binary.BigEndian.PutUint16(body[0:2], roleResponder)
	if keepConn {
		body[2] = flagKeepConn
	}
	return appendRecord(dst, typeBeginRequest, requestID, body[:])
}

// --- name-value pairs ---

// maxPairLen is the largest name or value length the 4-byte encoding holds.
const maxPairLen = 1<<31 - 1

// pairLen is the encoded size of one name-value pair.
func pairLen(nameLen, valueLen int) int {
	return lenLen(nameLen) + lenLen(valueLen) + nameLen + valueLen
}

func lenLen(n int) int {
	if n < 128 {
		return 1
	}
	return 4
}

func appendLen(dst []byte, n int) []byte {
	if n < 128 {
		return append(dst, byte(n))
	}
	return append(dst, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
}

// appendPair appends one encoded name-value pair. The caller checks that both
// lengths are at most maxPairLen.
func appendPair[N, V ~string | ~[]byte](dst []byte, name N, value V) []byte {
	dst = appendLen(dst, len(name))
	dst = appendLen(dst, len(value))
	dst = append(dst, name...)
	return append(dst, value...)
}

// truncate shortens s for error messages.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
