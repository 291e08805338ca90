package node

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHeldResponse(t *testing.T) {
	t.Run("nothing is sent until commit", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h := newHeld(rec)
		defer h.release()
		h.Header().Set("Set-Cookie", "a=b")
		h.WriteHeader(http.StatusCreated)
		h.Write([]byte("part"))
		if rec.Body.Len() != 0 || rec.Code != 200 || rec.Flushed {
			t.Fatalf("sent before commit: %d %q", rec.Code, rec.Body)
		}
		if err := h.commit(); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusCreated || rec.Body.String() != "part" {
			t.Fatalf("after commit: %d %q", rec.Code, rec.Body)
		}
	})
	t.Run("a cut answer is discarded whole, headers too", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h := newHeld(rec)
		defer h.release()
		h.Header().Set("Set-Cookie", "a=b")
		h.Write([]byte("<html>half a pa"))
		if !h.discard() {
			t.Fatal("discard refused before anything was sent")
		}
		if len(rec.Header()) != 0 || rec.Body.Len() != 0 {
			t.Fatalf("left behind: %v %q", rec.Header(), rec.Body)
		}
	})
	t.Run("a large answer goes through and can no longer be discarded", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h := newHeld(rec)
		defer h.release()
		big := bytes.Repeat([]byte("x"), holdMax)
		h.Write(big)
		h.Write([]byte("more"))
		if rec.Body.Len() != holdMax+4 {
			t.Fatalf("sent %d bytes, want %d", rec.Body.Len(), holdMax+4)
		}
		if h.discard() {
			t.Fatal("discard after part of the answer was sent")
		}
	})
	t.Run("a finished answer goes with its length", func(t *testing.T) {
		tests := []struct {
			name   string
			status int
			head   bool
			header string // Content-Length PHP sent
			body   string
			want   []string
		}{
			{name: "page", status: 200, body: "<html>page</html>", want: []string{"17"}},
			{name: "no status written", body: "abc", want: []string{"3"}},
			{name: "empty 200", status: 200, want: []string{"0"}},
			{name: "404 page", status: 404, body: "gone", want: []string{"4"}},
			{name: "php's own length kept", status: 200, header: "3", body: "abc", want: []string{"3"}},
			{name: "HEAD", status: 200, head: true, want: nil},
			{name: "204", status: 204, want: nil},
			{name: "304", status: 304, want: nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec := httptest.NewRecorder()
				h := newHeld(rec)
				defer h.release()
				if tt.header != "" {
					h.Header().Set("Content-Length", tt.header)
				}
				if tt.status != 0 {
					h.WriteHeader(tt.status)
				}
				h.Write([]byte(tt.body))
				if err := h.finish(tt.head); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, rec.Result().Header["Content-Length"]); diff != "" {
					t.Errorf("Content-Length (-want +got):\n%s", diff)
				}
				if rec.Body.String() != tt.body {
					t.Errorf("body %q, want %q", rec.Body, tt.body)
				}
			})
		}
	})
	t.Run("a finished answer already partly sent gets no length", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h := newHeld(rec)
		defer h.release()
		h.Write(bytes.Repeat([]byte("x"), holdMax+1))
		if err := h.finish(false); err != nil {
			t.Fatal(err)
		}
		if cl := rec.Result().Header["Content-Length"]; cl != nil {
			t.Errorf("Content-Length %v after the answer streamed", cl)
		}
	})
}
