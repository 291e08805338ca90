package filesync

import (
	"bytes"
	"encoding/json"
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzChangeRecord decodes arbitrary bytes as a log record: invalid input is
// rejected without a panic, and a record that decodes re-encodes to the same
// bytes. It also encodes a change built from the other arguments: one that
// encodes decodes back to itself. Seeds: testdata/fuzz/FuzzChangeRecord.
func FuzzChangeRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, seq uint64, op byte, path string, mode uint32, size int64, mtime int64, origin string) {
		if c, n, err := decodeRecord(data); err == nil {
			if n < recordHeader || n > len(data) {
				t.Fatalf("decoded length %d of %d bytes", n, len(data))
			}
			again, err := appendRecord(nil, c)
			if err != nil {
				t.Fatalf("decoded %+v does not encode: %v", c, err)
			}
			if !bytes.Equal(again, data[:n]) {
				t.Fatalf("re-encoding %+v gave %x, want %x", c, again, data[:n])
			}
		} else if !errors.Is(err, errShortRecord) && !errors.Is(err, errBadRecord) {
			t.Fatalf("decodeRecord error %v is neither short nor bad", err)
		}

		c := Change{Seq: seq, Op: Op(op), Path: path, Mode: mode, Size: size, MTime: mtime, Origin: origin}
		if c.Op == OpPut {
			c.Hash = hashBytes(data)
		}
		b, err := appendRecord(nil, c)
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("appendRecord error %v is not a RejectError", err)
			}
			return
		}
		got, n, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("decodeRecord(appendRecord(%+v)) = %v", c, err)
		}
		if n != len(b) {
			t.Fatalf("decoded %d of %d bytes", n, len(b))
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		// Every prefix is a torn record, never a different valid one.
		for i := 0; i < len(b); i += 1 + len(b)/16 {
			if _, _, err := decodeRecord(b[:i]); !errors.Is(err, errShortRecord) {
				t.Fatalf("a %d-byte prefix of a %d-byte record: %v, want errShortRecord", i, len(b), err)
			}
		}
	})
}

// FuzzPushChange parses arbitrary bytes as the JSON body of a push: invalid
// input is rejected with a RejectError and no panic; a push that parses
// names only paths a filesystem can hold (no name over 255 bytes, no path
// over 4095), survives a JSON round trip unchanged, and each of its changes,
// once given a sequence number, survives a round trip through the log
// record format. Seeds: testdata/fuzz/FuzzPushChange.
func FuzzPushChange(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParsePush(data)
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("ParsePush error %v is not a RejectError", err)
			}
			return
		}
		for _, c := range req.Changes {
			if len(c.Path) > 4095 {
				t.Fatalf("a push with a path of %d bytes parsed; PATH_MAX is 4096 with the NUL", len(c.Path))
			}
			for _, seg := range strings.Split(c.Path, "/") {
				if len(seg) > 255 {
					t.Fatalf("a push with a name of %d bytes parsed; NAME_MAX is 255", len(seg))
				}
			}
		}
		out, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParsePush(out)
		if err != nil {
			t.Fatalf("ParsePush(%s) = %v after a round trip", out, err)
		}
		if diff := cmp.Diff(req, again); diff != "" {
			t.Fatalf("JSON round trip (-want +got):\n%s", diff)
		}
		for i, c := range req.Changes {
			c.Seq = uint64(i + 1)
			b, err := appendRecord(nil, c)
			if err != nil {
				t.Fatalf("valid pushed change %+v does not encode: %v", c, err)
			}
			got, _, err := decodeRecord(b)
			if err != nil || got != c {
				t.Fatalf("record round trip of %+v = %+v, %v", c, got, err)
			}
		}
	})
}

// FuzzUnitMarker parses arbitrary marker names: a name either is refused
// or declares one directory right below wp-content/plugins or
// wp-content/themes. Seeds: testdata/fuzz/FuzzUnitMarker.
func FuzzUnitMarker(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		unit, err := parseUnitMarker(name)
		if err != nil {
			return
		}
		dir, base := path.Split(unit)
		if dir != "wp-content/plugins/" && dir != "wp-content/themes/" {
			t.Fatalf("marker %q declares %q, outside plugins and themes", name, unit)
		}
		if err := checkPathSyntax(unit, 3); err != nil || base == "" {
			t.Fatalf("marker %q declares %q, not a clean path of 3 segments: %v", name, unit, err)
		}
	})
}
