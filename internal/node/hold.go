package node

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
)

// holdMax is how much of a GET's answer the agent keeps before it sends
// anything: a WordPress page is well below it.
const holdMax = 1 << 20

// heldResponse keeps an idempotent request's answer until PHP finished it
// (up to holdMax), so that a PHP worker dying mid-page (its php-fpm killed,
// a crash) becomes the agent's own error, which the edge retries on another
// node, instead of a page cut short that the client sees. A larger answer
// is sent as it comes.
type heldResponse struct {
	w         http.ResponseWriter
	status    int
	buf       *bytes.Buffer
	committed bool
}

var holdBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func newHeld(w http.ResponseWriter) *heldResponse {
	b := holdBufs.Get().(*bytes.Buffer)
	b.Reset()
	return &heldResponse{w: w, buf: b}
}

func (h *heldResponse) Header() http.Header { return h.w.Header() }

func (h *heldResponse) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldResponse) Write(p []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	if !h.committed && h.buf.Len()+len(p) <= holdMax {
		return h.buf.Write(p)
	}
	if err := h.commit(); err != nil {
		return 0, err
	}
	return h.w.Write(p)
}

// commit sends what is held; later writes go straight through.
func (h *heldResponse) commit() error {
	if h.committed {
		return nil
	}
	h.committed = true
	if h.status == 0 {
		h.status = http.StatusOK
	}
	h.w.WriteHeader(h.status)
	if h.buf.Len() == 0 {
		return nil // a 204 or 304 takes no Write at all
	}
	_, err := h.w.Write(h.buf.Bytes())
	return err
}

// finish sends a complete answer. Whole, its length is known: it goes with
// a Content-Length (unless it has one, or is a HEAD's, or a status without
// a body), so the hop to the edge is not chunked.
func (h *heldResponse) finish(head bool) error {
	if !h.committed && !head {
		st, hdr := h.status, h.w.Header()
		if st == 0 {
			st = http.StatusOK
		}
		if st >= 200 && st != http.StatusNoContent && st != http.StatusNotModified && hdr["Content-Length"] == nil {
			hdr["Content-Length"] = []string{strconv.Itoa(h.buf.Len())}
		}
	}
	return h.commit()
}

// discard forgets what is held, headers included, so that another answer
// can be written; false when part of it was sent already.
func (h *heldResponse) discard() bool {
	if h.committed {
		return false
	}
	clear(h.w.Header())
	h.status = 0
	h.buf.Reset()
	return true
}

// release returns the buffer; h is not used afterwards.
func (h *heldResponse) release() {
	if h.buf.Cap() <= holdMax*2 {
		holdBufs.Put(h.buf)
	}
	h.buf = nil
}
