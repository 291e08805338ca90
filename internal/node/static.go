package node

import (
	"io/fs"
	"net/http"
	"path"
	"strconv"
)

// serveStatic answers a GET or HEAD of a docroot file. http.ServeContent
// on the *os.File sends the body with sendfile(2) (net/http's ReadFrom),
// answers Range, If-Range, If-None-Match and If-Modified-Since, and sets
// Last-Modified; fileETag adds a strong ETag, the validator the edge's
// cache revalidates static assets with (docs/adr/0022-edge-hit-representations.md).
func (a *Agent) serveStatic(w http.ResponseWriter, r *http.Request, file string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, err := a.root.Open(file)
	if err != nil {
		http.Error(w, "404 not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "404 not found", http.StatusNotFound)
		return
	}
	w.Header()["Etag"] = []string{fileETag(fi)}
	http.ServeContent(w, r, path.Base(file), fi.ModTime(), f)
}

// fileETag is a strong entity-tag of a file's current content, from its
// modification time (nanoseconds) and size, as nginx does with seconds.
// The filesync agent gives every node's copy the mtime the change carries
// (nanoseconds), so every node answers the same ETag for the same content
// and a change through the files store gets a new one, even within the
// second Last-Modified resolves to.
func fileETag(fi fs.FileInfo) string {
	b := make([]byte, 0, 32)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.Size(), 16)
	b = append(b, '"')
	return string(b)
}
