package node

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
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
}
