package pagecache

import (
	"bytes"
	"compress/gzip"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// minCompress is the smallest body worth compressed copies.
const minCompress = 1 << 10

// compressibleTypes are compressed once, at store time.
var compressibleTypes = [...]string{
	"text/html", "text/css", "text/plain", "text/xml", "text/javascript",
	"application/javascript", "application/json", "application/xml",
	"application/rss+xml", "application/atom+xml", "image/svg+xml",
}

func compressible(contentType string) bool {
	mt := mediaType(contentType)
	for _, t := range compressibleTypes {
		if strings.EqualFold(mt, t) {
			return true
		}
	}
	return false
}

// Levels trade ratio for store-time CPU; each body is compressed once per
// fill, while the requests that wait for the fill wait for it too. Measured
// on the 52 KB home page (docs/benchmarks.md, "Compressed variants").
const (
	gzipLevel   = 5
	brotliLevel = 5
	zstdLevel   = zstd.SpeedBetterCompression
)

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzipLevel)
	return w
}}

var brotliWriters = sync.Pool{New: func() any {
	return brotli.NewWriterLevel(nil, brotliLevel)
}}

// zstdEncoder is shared: EncodeAll may be called concurrently. Without a
// window larger than the body nothing is gained, and a small window keeps
// the decoder's memory small (RFC 8878 §3.1.1.1.2 asks for ≤ 8 MB).
var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevel), zstd.WithWindowSize(1<<20), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic("pagecache: zstd encoder: " + err.Error()) // constant options
	}
	return e
})

// compressAll returns the gzip, br and zstd bodies of b that are smaller
// than b, bodies only (newObject renders their headers).
func compressAll(b []byte) []rep {
	var out []rep
	for _, c := range [...]coding{codingBr, codingZstd, codingGzip} {
		if z := compressBody(c, b); z != nil {
			out = append(out, rep{coding: c, body: z})
		}
	}
	return out
}

// compressBody returns b in coding c, or nil when that does not make it
// smaller.
func compressBody(c coding, b []byte) []byte {
	var buf bytes.Buffer
	switch c {
	case codingGzip:
		buf.Grow(len(b)/3 + 64)
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&buf)
		zw.Write(b) // a bytes.Buffer does not fail
		zw.Close()
		gzipWriters.Put(zw)
	case codingBr:
		buf.Grow(len(b)/3 + 64)
		bw := brotliWriters.Get().(*brotli.Writer)
		bw.Reset(&buf)
		bw.Write(b)
		bw.Close()
		brotliWriters.Put(bw)
	case codingZstd:
		z := zstdEncoder().EncodeAll(b, make([]byte, 0, len(b)/3+64))
		buf = *bytes.NewBuffer(z)
	default:
		return nil
	}
	if buf.Len() >= len(b) {
		return nil
	}
	return bytes.Clone(buf.Bytes()) // exact size: the byte budget counts it
}
