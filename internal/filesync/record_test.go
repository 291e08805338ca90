package filesync

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var sampleHash = hashBytes([]byte("sample"))

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    Change
	}{
		{"put", Change{Seq: 1, Op: OpPut, Path: "wp-content/uploads/a.jpg", Mode: 0o644, Size: 12345, Hash: sampleHash, MTime: 1700000000123456789, Origin: "node-1"}},
		{"empty file", Change{Seq: 2, Op: OpPut, Path: "e", Hash: hashBytes(nil)}},
		{"delete", Change{Seq: 1 << 40, Op: OpDelete, Path: "a/b", MTime: -5}},
		{"mkdir", Change{Seq: 3, Op: OpMkdir, Path: "dir", Mode: 0o755, Origin: "n"}},
		{"longest path", Change{Seq: 4, Op: OpDelete, Path: strings.Repeat("p", MaxPathLen), Origin: strings.Repeat("o", maxOriginLen)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := appendRecord([]byte("prefix"), tt.c)
			if err != nil {
				t.Fatal(err)
			}
			got, n, err := decodeRecord(append(b[len("prefix"):], "next"...))
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b)-len("prefix") {
				t.Errorf("decoded length %d, want %d", n, len(b)-len("prefix"))
			}
			if diff := cmp.Diff(tt.c, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	good, err := appendRecord(nil, Change{Seq: 7, Op: OpPut, Path: "a", Mode: 0o644, Size: 1, Hash: sampleHash})
	if err != nil {
		t.Fatal(err)
	}
	// reseal recomputes the checksum after a change to the payload.
	reseal := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b, uint32(len(b)-recordHeader))
		binary.BigEndian.PutUint32(b[4:], crc32c(b[recordHeader:]))
		return b
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, errShortRecord},
		{"header only", good[:recordHeader], errShortRecord},
		{"cut payload", good[:len(good)-1], errShortRecord},
		{"zero length", make([]byte, 16), errBadRecord},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, errBadRecord},
		{"checksum", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), errBadRecord},
		{"version", mutate(func(b []byte) []byte { b[recordHeader] = 9; return reseal(b) }), errBadRecord},
		{"op", mutate(func(b []byte) []byte { b[recordHeader+1] = 9; return reseal(b) }), errBadRecord},
		{"seq zero", mutate(func(b []byte) []byte { b[recordHeader+2] = 0; return reseal(b) }), errBadRecord},
		{"trailing byte", mutate(func(b []byte) []byte { return reseal(append(b, 0)) }), errBadRecord},
		{"non-canonical varint", mutate(func(b []byte) []byte {
			// seq 7 as the two-byte varint 0x87 0x00.
			p := append([]byte{b[recordHeader], b[recordHeader+1], 0x87, 0x00}, b[recordHeader+3:]...)
			return reseal(append(b[:recordHeader:recordHeader], p...))
		}), errBadRecord},
		{"bad path", mutate(func(b []byte) []byte {
			i := bytes.Index(b, []byte{1, 'a'})
			b[i+1] = '/'
			return reseal(b)
		}), errBadRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeRecord(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("decodeRecord = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParsePush(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     PushRequest
		wantRule string
	}{
		{"batch", `{"origin":"n1","changes":[{"op":"mkdir","path":"d","mode":493},{"op":"put","path":"d/f","mode":420,"size":6,"hash":"` + sampleHash + `","mtime":5},{"op":"delete","path":"old"}]}`,
			PushRequest{Origin: "n1", Changes: []Change{
				{Op: OpMkdir, Path: "d", Mode: 0o755, Origin: "n1"},
				{Op: OpPut, Path: "d/f", Mode: 0o644, Size: 6, Hash: sampleHash, MTime: 5, Origin: "n1"},
				{Op: OpDelete, Path: "old", Origin: "n1"},
			}}, ""},
		{"own origin repeated", `{"origin":"n1","changes":[{"op":"delete","path":"x","origin":"n1"}]}`,
			PushRequest{Origin: "n1", Changes: []Change{{Op: OpDelete, Path: "x", Origin: "n1"}}}, ""},
		{"no changes", `{"origin":"n1","changes":[]}`, PushRequest{}, RuleMalformedRequest},
		{"bad origin", `{"origin":"n 1","changes":[{"op":"delete","path":"x"}]}`, PushRequest{}, RuleOrigin},
		{"delete with a hash", `{"origin":"n1","changes":[{"op":"delete","path":"x","hash":"` + sampleHash + `"}]}`, PushRequest{}, RuleHash},
		{"delete with a mode", `{"origin":"n1","changes":[{"op":"delete","path":"x","mode":420}]}`, PushRequest{}, RuleMode},
		{"mkdir with a size", `{"origin":"n1","changes":[{"op":"mkdir","path":"x","size":3}]}`, PushRequest{}, RuleSize},
		{"negative size", `{"origin":"n1","changes":[{"op":"put","path":"x","size":-1,"hash":"` + sampleHash + `"}]}`, PushRequest{}, RuleSize},
		{"uppercase hash", `{"origin":"n1","changes":[{"op":"put","path":"x","size":1,"hash":"` + strings.ToUpper(sampleHash) + `"}]}`, PushRequest{}, RuleHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePush([]byte(tt.body))
			if tt.wantRule != "" {
				var rej *RejectError
				if !errors.As(err, &rej) || rej.Rule != tt.wantRule {
					t.Fatalf("ParsePush = %v, want rule %s", err, tt.wantRule)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePush (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpJSON(t *testing.T) {
	for _, op := range []Op{OpPut, OpDelete, OpMkdir} {
		b, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		var got Op
		if err := json.Unmarshal(b, &got); err != nil || got != op {
			t.Errorf("%s: round trip gave %v, %v", op, got, err)
		}
	}
	if _, err := json.Marshal(Op(0)); err == nil {
		t.Error("Marshal(Op(0)) succeeded")
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crcTable) }
