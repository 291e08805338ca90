package pagecache

import (
	"bytes"
	"compress/gzip"
	"strings"
	"sync"
)

// minCompress is the smallest body worth a gzip copy.
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

// gzipLevel trades ratio for store-time CPU; each body is compressed once.
const gzipLevel = 5

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzipLevel)
	return w
}}

// gzipBody returns b compressed, or nil when that does not make it smaller.
func gzipBody(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/3 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	zw.Write(b) // a bytes.Buffer does not fail
	zw.Close()
	gzipWriters.Put(zw)
	if buf.Len() >= len(b) {
		return nil
	}
	return bytes.Clone(buf.Bytes()) // exact size: the byte budget counts it
}
