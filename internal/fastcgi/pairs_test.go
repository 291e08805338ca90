package fastcgi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Decoding name-value pairs is php-fpm's side of the protocol: only the
// fake server and the fuzz tests need it, never the client.

// errShortPair reports a truncated name-value pair.
var errShortPair = errors.New("fastcgi: decode params: truncated name-value pair")

// readLen decodes one length from b.
func readLen(b []byte) (int, []byte, error) {
	if len(b) == 0 {
		return 0, nil, errShortPair
	}
	if b[0] < 0x80 {
		return int(b[0]), b[1:], nil
	}
	if len(b) < 4 {
		return 0, nil, errShortPair
	}
	n := binary.BigEndian.Uint32(b) & 0x7fffffff
	return int(n), b[4:], nil
}

// readPair decodes one name-value pair from the front of b. The returned
// slices alias b.
func readPair(b []byte) (name, value, rest []byte, err error) {
	nl, b, err := readLen(b)
	if err != nil {
		return nil, nil, nil, err
	}
	vl, b, err := readLen(b)
	if err != nil {
		return nil, nil, nil, err
	}
	// Compare without adding: nl+vl may overflow int on 32-bit platforms.
	if nl > len(b) || vl > len(b)-nl {
		return nil, nil, nil, errShortPair
	}
	return b[:nl], b[nl : nl+vl], b[nl+vl:], nil
}

// decodeParams decodes a complete name-value pair stream. A repeated name
// keeps its last value, as php-fpm does.
func decodeParams(b []byte) (map[string]string, error) {
	m := make(map[string]string)
	for len(b) > 0 {
		name, value, rest, err := readPair(b)
		if err != nil {
			return nil, err
		}
		m[string(name)] = string(value)
		b = rest
	}
	return m, nil
}

// encodeParams appends every pair of m as one name-value pair stream, in map
// order.
func encodeParams(dst []byte, m map[string]string) ([]byte, error) {
	for k, v := range m {
		if len(k) > maxPairLen || len(v) > maxPairLen {
			return dst, fmt.Errorf("fastcgi: encode params: %q too long", truncate(k))
		}
		dst = appendPair(dst, k, v)
	}
	return dst, nil
}
