package fastcgi

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzReadRecords feeds arbitrary bytes, as if from php-fpm, to the response
// reader. It must never panic, and what it buffers stays bounded: the header
// block by 64 KiB, stderr by 64 KiB, a record by its 16-bit length.
// Seeds: testdata/fuzz/FuzzReadRecords.
func FuzzReadRecords(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		resp := &Response{}
		b := &resp.body
		b.cn = &conn{br: bufio.NewReaderSize(bytes.NewReader(data), readBufSize)}
		err := b.readHeader(resp)
		if err == nil {
			if resp.Status < 100 || resp.Status > 999 {
				t.Errorf("Status = %d, want a 3-digit code", resp.Status)
			}
			if _, ok := resp.Header["Status"]; ok {
				t.Errorf("Header still holds Status")
			}
			resp.Body = b
			n, _ := io.Copy(io.Discard, resp.Body)
			if n > int64(len(data)) {
				t.Errorf("read %d body bytes from %d input bytes", n, len(data))
			}
			if err := resp.Body.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		}
		if len(b.stderr) > maxStderr {
			t.Errorf("kept %d stderr bytes, want <= %d", len(b.stderr), maxStderr)
		}
		if cap(b.cn.hbuf) > maxHeaderBlock {
			t.Errorf("header buffer grew to %d, want <= %d", cap(b.cn.hbuf), maxHeaderBlock)
		}
	})
}

// FuzzNameValuePairs decodes arbitrary bytes as a name-value pair stream and
// checks that encoding round-trips, directly and through PARAMS records.
// Seeds: testdata/fuzz/FuzzNameValuePairs.
func FuzzNameValuePairs(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, name, value string) {
		if m, err := decodeParams(data); err == nil {
			checkRoundTrip(t, m)
		}
		checkRoundTrip(t, map[string]string{name: value})
	})
}

func checkRoundTrip(t *testing.T, m map[string]string) {
	t.Helper()
	enc, err := encodeParams(nil, m)
	if err != nil {
		t.Fatalf("encodeParams() error = %v", err)
	}
	got, err := decodeParams(enc)
	if err != nil {
		t.Fatalf("decodeParams(encodeParams()) error = %v", err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}

	// Through records, each of which must decode on its own (php-fpm's rule).
	w := paramWriter{}
	w.open()
	for k, v := range m {
		if err := w.add(k, v); err != nil {
			return // too large for php-fpm: rejected, not mangled
		}
	}
	w.finish()
	viaRecords := map[string]string{}
	for rest := w.buf; len(rest) > 0; {
		h, err := decodeHeader(rest)
		if err != nil {
			t.Fatalf("decodeHeader() error = %v", err)
		}
		n, p := int(h.ContentLength), int(h.PaddingLength)
		if h.Type != typeParams || n > maxWriteContent || (n+p)%8 != 0 || len(rest) < headerLen+n+p {
			t.Fatalf("bad PARAMS record %+v", h)
		}
		rec, err := decodeParams(rest[headerLen : headerLen+n])
		if err != nil {
			t.Fatalf("PARAMS record does not decode on its own: %v", err)
		}
		for k, v := range rec {
			viaRecords[k] = v
		}
		rest = rest[headerLen+n+p:]
	}
	if diff := cmp.Diff(m, viaRecords); diff != "" {
		t.Errorf("round trip through records mismatch (-want +got):\n%s", diff)
	}
}

func TestDecodeParams(t *testing.T) {
	long := string(bytes.Repeat([]byte("v"), 200))
	tests := []struct {
		name    string
		in      []byte
		want    map[string]string
		wantErr bool
	}{
		{name: "empty", in: nil, want: map[string]string{}},
		{name: "one byte lengths", in: []byte("\x01\x02ABC"), want: map[string]string{"A": "BC"}},
		{name: "four byte value length", in: append([]byte("\x01\x80\x00\x00\xc8K"), long...), want: map[string]string{"K": long}},
		{name: "four byte encoding of a small length", in: []byte("\x80\x00\x00\x01\x00K"), want: map[string]string{"K": ""}},
		{name: "repeated name keeps last", in: []byte("\x01\x01AB\x01\x01AC"), want: map[string]string{"A": "C"}},
		{name: "truncated length", in: []byte("\x80\x00"), wantErr: true},
		{name: "missing value length", in: []byte("\x01"), wantErr: true},
		{name: "truncated data", in: []byte("\x05\x05abc"), wantErr: true},
		{name: "huge length", in: []byte("\xff\xff\xff\xff\x01ab"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeParams(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("decodeParams() error = %v, wantErr %t", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodeParams() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		t       recType
		id      uint16
		content []byte
		want    header
	}{
		{name: "empty stdin", t: typeStdin, id: 1, want: header{Version: 1, Type: typeStdin, RequestID: 1}},
		{name: "padded", t: typeStdout, id: 0x1234, content: []byte("abc"), want: header{Version: 1, Type: typeStdout, RequestID: 0x1234, ContentLength: 3, PaddingLength: 5}},
		{name: "aligned", t: typeParams, id: 1, content: make([]byte, 16), want: header{Version: 1, Type: typeParams, RequestID: 1, ContentLength: 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := appendRecord(nil, tt.t, tt.id, tt.content)
			got, err := decodeHeader(rec)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("header mismatch (-want +got):\n%s", diff)
			}
			if len(rec)%8 != 0 || !bytes.Equal(rec[headerLen:headerLen+len(tt.content)], tt.content) {
				t.Errorf("record % x not padded or content lost", rec)
			}
		})
	}
	if _, err := decodeHeader(make([]byte, 7)); err == nil {
		t.Error("decodeHeader(7 bytes) succeeded")
	}
}
