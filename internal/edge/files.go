package edge

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/sitepath"
)

// uploadsPrefix is where WordPress keeps uploaded media.
const uploadsPrefix = "/wp-content/uploads/"

// fromFiles answers a GET or HEAD of an upload the node did not have (404:
// its filesync agent has not applied the upload yet) from the files role,
// which holds every acknowledged file, so that no visitor sees a 404 for a
// file that was uploaded. It returns resp itself when the fallback does not
// apply or files has no such file either. conditional says whether the
// client's Range and validators go along (the bypass path); the cache
// path asks for the whole file.
func (e *Edge) fromFiles(ctx context.Context, r *http.Request, resp *http.Response, conditional bool) *http.Response {
	if e.spec.Files == "" || resp.StatusCode != http.StatusNotFound ||
		(r.Method != http.MethodGet && r.Method != http.MethodHead) ||
		!strings.HasPrefix(r.URL.Path, uploadsPrefix) || sitepath.Denied(r.URL.Path) {
		return resp // a name no node serves is not looked for elsewhere
	}
	method := r.Method
	if !conditional {
		method = http.MethodGet // the cache stores the whole answer
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+e.spec.Files+api.FilesPathFiles+r.URL.EscapedPath(), nil)
	if err != nil {
		return resp
	}
	req.Header.Set("Authorization", "Bearer "+e.spec.FilesToken) // the edge's files token: reads only
	if conditional {
		for _, h := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since"} {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
	}
	fresp, err := e.transport.RoundTrip(req)
	if err != nil {
		e.logger.Warn("upload fallback to files failed", "path", r.URL.Path, "err", err)
		return resp
	}
	switch fresp.StatusCode {
	case http.StatusOK, http.StatusPartialContent, http.StatusNotModified:
	default:
		io.Copy(io.Discard, io.LimitReader(fresp.Body, 64<<10))
		fresp.Body.Close()
		return resp
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	fresp.Header.Del(api.HeaderFilesSeq)
	e.filesServed.Add(1)
	return fresp
}
